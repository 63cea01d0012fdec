//! Shared pieces of the coring benchmark harness: argument parsing, process CPU sampling and
//! the bare io_uring echo loops (the floors).

pub mod floor;

use std::collections::HashMap;
use std::io;
use std::time::Duration;

/// `--key value` / `--flag` arguments after positional ones.
#[derive(Debug, Default)]
pub struct Args {
    /// Positional arguments, in order.
    pub positional: Vec<String>,
    named: HashMap<String, Option<String>>,
}

impl Args {
    /// Parses `std::env::args()`; `flags` lists the options that take no value.
    pub fn parse(flags: &[&str]) -> Args {
        Self::parse_from(std::env::args().skip(1), flags)
    }

    /// Parses an explicit argument list.
    pub fn parse_from(args: impl IntoIterator<Item = String>, flags: &[&str]) -> Args {
        let mut out = Args::default();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            if let Some(key) = a.strip_prefix("--") {
                if let Some((k, v)) = key.split_once('=') {
                    out.named.insert(k.to_string(), Some(v.to_string()));
                } else if flags.contains(&key) {
                    out.named.insert(key.to_string(), None);
                } else {
                    let v = it
                        .next()
                        .unwrap_or_else(|| die(&format!("--{key} needs a value")));
                    out.named.insert(key.to_string(), Some(v));
                }
            } else {
                out.positional.push(a);
            }
        }
        out
    }

    /// Whether `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.named.contains_key(name)
    }

    /// The value of `--name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.named.get(name).and_then(|v| v.as_deref())
    }

    /// The value of `--name` parsed, or `default`.
    pub fn parse_or<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        match self.get(name) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| die(&format!("--{name}: cannot parse {v:?}"))),
        }
    }

    /// A comma-separated list, or `default`.
    pub fn list_or<T: std::str::FromStr + Clone>(&self, name: &str, default: &[T]) -> Vec<T> {
        match self.get(name) {
            None => default.to_vec(),
            Some(v) => v
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.trim()
                        .parse()
                        .unwrap_or_else(|_| die(&format!("--{name}: cannot parse {s:?}")))
                })
                .collect(),
        }
    }

    /// Seconds as a float option, or `default`.
    pub fn secs_or(&self, name: &str, default: f64) -> Duration {
        Duration::from_secs_f64(self.parse_or(name, default))
    }
}

/// Prints `msg` and exits with status 2.
pub fn die(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

/// Clock ticks per second for `/proc/PID/stat` times.
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf takes no pointers.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// utime + stime of process `pid` (all its threads, including io_uring's `iou-sqp`/`iou-wrk`
/// threads) in microseconds.
pub fn proc_cpu_us(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces: fields restart after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("malformed stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15 (1-based).
    let utime: u64 = fields[11].parse().map_err(io::Error::other)?;
    let stime: u64 = fields[12].parse().map_err(io::Error::other)?;
    Ok((utime + stime) * 1_000_000 / clk_tck())
}

/// Busy CPU time of the whole machine (all CPUs, everything but idle and iowait) in
/// microseconds, from `/proc/stat`.
pub fn machine_busy_us() -> io::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .next()
        .ok_or_else(|| io::Error::other("empty /proc/stat"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = v.iter().take(8).sum::<u64>()
        - v.get(3).copied().unwrap_or(0)
        - v.get(4).copied().unwrap_or(0);
    Ok(busy * 1_000_000 / clk_tck())
}

/// The median of `v` (mean of the middle two for an even count); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Parses `key=value` pairs separated by spaces.
pub fn kv(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A listening TCP socket with `SO_REUSEADDR` and a deep backlog (1000 connections arrive at
/// once in the grid).
pub fn std_listener(addr: &str) -> io::Result<std::net::TcpListener> {
    use std::net::ToSocketAddrs;
    let addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other("no address"))?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Sets TCP_NODELAY on a raw socket.
pub fn set_nodelay(fd: i32) {
    let one: libc::c_int = 1;
    // SAFETY: passes a pointer to a live local of the size given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Raises this process's `RLIMIT_NOFILE` soft limit to its hard limit; returns the new limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the live local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads the live local.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// `x` with `prec` decimals, or `-` when it is not a number (a missing measurement).
pub fn fmt(x: f64, prec: usize) -> String {
    if x.is_finite() {
        format!("{x:.prec$}")
    } else {
        "-".to_string()
    }
}

/// The trimmed stdout of `sh -c cmd`, or an empty string if it cannot run (for the machine
/// facts printed in reports: kernel, CPU model, commit).
pub fn sh(cmd: &str) -> String {
    std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Pins the calling thread (and the threads it starts afterwards) to `cpu`.
pub fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET and sched_setaffinity get pointers to it,
    // with its real size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// CPU time (user + system) of the whole process (`libc::RUSAGE_SELF`, io_uring's kernel
/// threads included) or of the calling thread (`libc::RUSAGE_THREAD`).
pub fn cpu_time(who: libc::c_int) -> std::time::Duration {
    // SAFETY: a zeroed rusage is valid; getrusage writes one into it.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut u);
        u
    };
    let tv = |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// This process's io-wq threads (`iou-wrk-*`) now.
pub fn io_wq_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.starts_with("iou-wrk"))
                })
                .count()
        })
        .unwrap_or(0)
}
