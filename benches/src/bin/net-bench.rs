//! Networking measurements beside the echo grid: large sends, and memory per idle connection.
//!
//! ```text
//! net-bench [--sends] [--rss] [--out DIR] [--note TEXT]
//!   sends: [--secs 2] [--rounds 5] [--sizes 1048576,65536] [--modes write_all,send_zc,send_zc2,std]
//!   rss:   [--conns 10000] [--rss-rounds 3] [--servers coring,coring-ms,...] [--sources 1]
//! ```
//! With neither `--sends` nor `--rss`, both run. Results go to `DIR/net.md`, `DIR/net.csv`
//! (medians) and `DIR/net-raw.csv` (every run); DIR defaults to `docs/bench`.
//!
//! # Sends
//! One coring client (this process, pinned to CPU 0) sends buffers of `--sizes` bytes over
//! loopback TCP to a sink (a child process, pinned to CPU 1: a plain `std` reader that
//! drains and discards, then tells the byte count at end of stream) for `--secs` seconds,
//! per mode:
//! - `write_all`: `TcpStream::write_all` (`IORING_OP_SEND`, repeated for a partial send);
//! - `send_zc`: `TcpStream::send_zc` on the rest of the buffer until all of it went
//!   (`IORING_OP_SEND_ZC`; the buffer comes back after the kernel's notification);
//! - `send_zc2`: two buffers in flight, each sent with `send_zc` as above by its own future
//!   (joined): not a correct way to send a stream (the two may interleave; the sink does not
//!   care), but it shows what waiting for each notification before the next send costs;
//! - `std`: a blocking `std::net::TcpStream::write_all` (plain `send(2)`), the reference.
//!
//! Throughput is the sink's byte count over the time from the first send to the sink's
//! answer. Sender CPU is `getrusage(RUSAGE_SELF)` utime+stime (the whole process, so any
//! io-wq worker is included) per MiB sent; on loopback it includes the receive-side TCP
//! processing (softirq) that runs in the sender's context. Sink CPU is its utime+stime from
//! `/proc/PID/stat`. Rounds interleave the configurations (the first rotates each round);
//! the table shows medians. Before each run the machine must be quiet (other processes using
//! under 0.15 CPUs, waiting up to 60 s).
//!
//! # RSS per idle connection
//! For each server of `--servers`, `echo-server NAME 127.0.0.1:0` is started as a child
//! pinned to CPU 1, so the resident set measured is that server process's only. Its VmRSS
//! (`/proc/PID/status`) is read after it prints `listening on`, after half the connections
//! and after all `--conns`; each connection (blocking `std` socket, opened in turn) sends
//! 128 bytes, reads the echo, then stays open and idle. Reported: `(RSS(all) - RSS(0)) /
//! conns`, and the marginal `(RSS(all) - RSS(half)) / (conns/2)`, which leaves out costs
//! paid once early (a buffer ring's pages are touched by its first few thousand receives).
//! Both the client and the servers raise `RLIMIT_NOFILE` to the hard limit. With
//! `--sources K`, connections come from 127.0.0.1..=127.0.0.K
//! (`IP_BIND_ADDRESS_NO_PORT`), for when ephemeral ports run short.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coring::buf::IoBuf;
use coring_bench::{die, fmt, machine_busy_us, median, proc_cpu_us, raise_nofile_limit, sh, Args};

const MIB: f64 = 1024.0 * 1024.0;
const RSS_SERVERS: &[&str] = &[
    "coring",
    "coring-ms",
    "coring-ms-512",
    "tokio",
    "tokio-readable",
    "monoio",
    "floor-tuned",
    "floor-best",
];
const SEND_MODES: &[&str] = &["write_all", "send_zc", "send_zc2", "std"];
/// Payload of the one round trip each idle connection makes.
const PING: usize = 128;

/// One measured value of one run.
#[derive(Debug, Clone)]
struct Sample {
    measurement: &'static str,
    subject: String,
    param: usize,
    round: usize,
    metric: &'static str,
    value: f64,
}

fn main() {
    let args = Args::parse(&["sends", "rss"]);
    if args.positional.first().map(String::as_str) == Some("__sink") {
        if let Err(e) = sink() {
            die(&format!("sink: {e}"));
        }
        return;
    }
    if args.flag("help") || !args.positional.is_empty() {
        eprintln!(
            "usage: net-bench [--sends] [--rss] [--out DIR] [--note TEXT] [--secs 2] [--rounds 5] \
             [--sizes 1048576,65536] [--modes write_all,send_zc,send_zc2,std] [--conns 10000] \
             [--rss-rounds 3] [--servers {}] [--sources 1]",
            RSS_SERVERS.join(",")
        );
        std::process::exit(2);
    }
    let (mut sends, mut rss) = (args.flag("sends"), args.flag("rss"));
    if !sends && !rss {
        (sends, rss) = (true, true);
    }
    let out = PathBuf::from(
        args.get("out")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/../docs/bench", env!("CARGO_MANIFEST_DIR"))),
    );
    match raise_nofile_limit() {
        Ok(n) => eprintln!("RLIMIT_NOFILE {n}"),
        Err(e) => eprintln!("warning: cannot raise RLIMIT_NOFILE: {e}"),
    }
    let mut samples = Vec::new();
    let mut sections = Vec::new();
    if sends {
        let secs: f64 = args.parse_or("secs", 2.0);
        let rounds: usize = args.parse_or("rounds", 5);
        let sizes: Vec<usize> = args.list_or("sizes", &[1 << 20, 64 << 10]);
        let default_modes: Vec<String> = SEND_MODES.iter().map(|s| s.to_string()).collect();
        let modes: Vec<String> = args.list_or("modes", &default_modes);
        for m in &modes {
            if !SEND_MODES.contains(&m.as_str()) {
                die(&format!(
                    "unknown mode {m:?}; one of {}",
                    SEND_MODES.join(",")
                ));
            }
        }
        let s = run_sends(secs, rounds, &sizes, &modes);
        sections.push(sends_table(&s, &sizes, &modes, secs, rounds));
        samples.extend(s);
    }
    if rss {
        let conns: usize = args.parse_or("conns", 10_000);
        let rounds: usize = args.parse_or("rss-rounds", 3);
        let sources: u8 = args.parse_or("sources", 1);
        let default_servers: Vec<String> = RSS_SERVERS.iter().map(|s| s.to_string()).collect();
        let servers: Vec<String> = args.list_or("servers", &default_servers);
        let s = run_rss(&servers, conns, rounds, sources.max(1));
        sections.push(rss_table(&s, &servers, conns, rounds));
        samples.extend(s);
    }
    let command = std::env::args()
        .map(|a| if a.contains(' ') { format!("{a:?}") } else { a })
        .collect::<Vec<_>>()
        .join(" ");
    let note = args.get("note").unwrap_or_default();
    if let Err(e) = write_outputs(&out, &samples, &sections, &command, note) {
        die(&format!("writing {}: {e}", out.display()));
    }
}

// ------------------------------------------------------------------------------------------
// Sends

/// The sink: accepts one connection at a time, reads and discards until end of stream, then
/// answers with the byte count (8 bytes, little endian) and closes.
fn sink() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let (mut stream, _) = listener.accept()?;
        let mut total: u64 = 0;
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        stream.write_all(&total.to_le_bytes())?;
    }
}

/// Pins the calling thread to `cpu`.
fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity get
    // pointers to that live local and its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!(
                "warning: cannot pin to CPU {cpu}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// utime + stime of this process (every thread, including io_uring's workers), in us.
fn self_cpu_us() -> u64 {
    // SAFETY: a zeroed rusage is valid; getrusage writes into the live local.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

/// Waits (at most `max_wait`) until the machine's busy time is under `limit` CPUs.
fn wait_quiet(limit: f64, max_wait: Duration) -> f64 {
    let start = Instant::now();
    loop {
        let a = machine_busy_us().unwrap_or(0);
        std::thread::sleep(Duration::from_millis(500));
        let b = machine_busy_us().unwrap_or(0);
        let load = b.saturating_sub(a) as f64 / 0.5e6;
        if load < limit || start.elapsed() >= max_wait {
            return load;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Starts `cmd` and waits (at most 10 s) for its `listening on ADDR` line.
fn spawn_listening(mut cmd: Command) -> Result<(Child, SocketAddr), String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(a) = line.strip_prefix("listening on ") {
                    let addr = a.trim().parse().map_err(|e| format!("{a:?}: {e}"))?;
                    return Ok((child, addr));
                }
            }
            Err(_) => {
                kill(&mut child);
                return Err(format!("{cmd:?} did not print `listening on`"));
            }
        }
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// What one send run measured.
struct SendRun {
    bytes: u64,
    secs: f64,
    sender_cpu_us: u64,
    sink_cpu_us: u64,
    /// Submissions per buffer sent (coring modes).
    sqes_per_buf: f64,
}

fn run_sends(secs: f64, rounds: usize, sizes: &[usize], modes: &[String]) -> Vec<Sample> {
    let dir = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1"]).arg(&dir).arg("__sink");
    let (mut sink, addr) = spawn_listening(cmd).unwrap_or_else(|e| die(&e));
    let sink_pid = sink.id();
    pin_to_cpu(0);
    let rt = coring::runtime::Runtime::new().unwrap_or_else(|e| die(&format!("runtime: {e}")));
    let configs: Vec<(usize, &str)> = sizes
        .iter()
        .flat_map(|&s| modes.iter().map(move |m| (s, m.as_str())))
        .collect();
    let mut samples = Vec::new();
    for round in 0..rounds {
        for k in 0..configs.len() {
            let (size, mode) = configs[(k + round) % configs.len()];
            let others = wait_quiet(0.15, Duration::from_secs(60));
            let run = rt.block_on(send_run(&rt, addr, sink_pid, size, mode, secs));
            let run = match run {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("round {round} {mode} {size}: {e}");
                    continue;
                }
            };
            let mib = run.bytes as f64 / MIB;
            let gbps = run.bytes as f64 / run.secs / 1e9;
            let cpu_per_mib = run.sender_cpu_us as f64 / mib;
            let sink_per_mib = run.sink_cpu_us as f64 / mib;
            eprintln!(
                "round {round} {mode:>9} {size:>8} B: {gbps:6.2} GB/s, sender {cpu_per_mib:6.1} \
                 us/MiB ({:3.0}% of a CPU), sink {sink_per_mib:6.1} us/MiB, sqes/buf {:.2}, \
                 others before {others:.2} CPUs",
                run.sender_cpu_us as f64 / 1e4 / run.secs,
                run.sqes_per_buf
            );
            let mut push = |metric, value| {
                samples.push(Sample {
                    measurement: "send",
                    subject: mode.to_string(),
                    param: size,
                    round,
                    metric,
                    value,
                })
            };
            push("gb_per_s", gbps);
            push("sender_cpu_us_per_mib", cpu_per_mib);
            push("sender_util", run.sender_cpu_us as f64 / 1e6 / run.secs);
            push("sink_cpu_us_per_mib", sink_per_mib);
            push("sqes_per_buf", run.sqes_per_buf);
        }
    }
    let m = rt.metrics();
    eprintln!(
        "sender runtime: {} SQEs, {} CQEs, {} enters, {} io-wq workers",
        m.sqes, m.cqes, m.enters, m.io_wq_workers
    );
    kill(&mut sink);
    samples
}

/// Sends all of `buf` with `send_zc`, each call on what the previous ones left.
async fn send_zc_all(
    stream: &coring::net::TcpStream,
    mut buf: Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    let mut off = 0;
    while off < buf.len() {
        let (res, slice) = stream.send_zc(buf.slice(off..)).await;
        buf = slice.into_inner();
        off += res?;
    }
    Ok(buf)
}

async fn send_run(
    rt: &coring::runtime::Runtime,
    addr: SocketAddr,
    sink_pid: u32,
    size: usize,
    mode: &str,
    secs: f64,
) -> std::io::Result<SendRun> {
    let window = Duration::from_secs_f64(secs);
    let mut buf = vec![0xa5u8; size];
    let (bytes, t0, cpu0, sink0, sqes, bufs) = if mode == "std" {
        let mut stream = TcpStream::connect(addr)?;
        let (t0, cpu0, sink0) = (Instant::now(), self_cpu_us(), proc_cpu_us(sink_pid)?);
        while t0.elapsed() < window {
            stream.write_all(&buf)?;
        }
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut count = [0u8; 8];
        stream.read_exact(&mut count)?;
        (u64::from_le_bytes(count), t0, cpu0, sink0, 0, 1)
    } else {
        let stream = coring::net::TcpStream::connect(addr).await?;
        let (t0, cpu0, sink0) = (Instant::now(), self_cpu_us(), proc_cpu_us(sink_pid)?);
        let sqes0 = rt.metrics().sqes;
        let mut bufs = 0u64;
        let mut second = buf.clone();
        while t0.elapsed() < window {
            if mode == "send_zc" {
                buf = send_zc_all(&stream, buf).await?;
            } else if mode == "send_zc2" {
                let (a, b) = futures_lite::future::zip(
                    send_zc_all(&stream, buf),
                    send_zc_all(&stream, second),
                )
                .await;
                (buf, second) = (a?, b?);
                bufs += 1;
            } else {
                let (res, b) = stream.write_all(buf).await;
                buf = b;
                res?;
            }
            bufs += 1;
        }
        let sqes = rt.metrics().sqes - sqes0;
        stream.shutdown(std::net::Shutdown::Write)?;
        let (res, count) = stream.read_exact(vec![0u8; 8]).await;
        res?;
        let count: [u8; 8] = count[..].try_into().expect("8 bytes");
        (u64::from_le_bytes(count), t0, cpu0, sink0, sqes, bufs)
    };
    Ok(SendRun {
        bytes,
        secs: t0.elapsed().as_secs_f64(),
        sender_cpu_us: self_cpu_us() - cpu0,
        sink_cpu_us: proc_cpu_us(sink_pid)? - sink0,
        sqes_per_buf: if mode == "std" {
            f64::NAN
        } else {
            sqes as f64 / bufs.max(1) as f64
        },
    })
}

fn sends_table(
    samples: &[Sample],
    sizes: &[usize],
    modes: &[String],
    secs: f64,
    rounds: usize,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "## Large sends over loopback\n\n\
         One sender (coring, or blocking `std` for the `std` row) on CPU 0, a `std` sink that \
         drains and discards on CPU 1, one connection, {secs} s per run, {rounds} interleaved \
         rounds, medians. Sender CPU is the sending process's utime+stime per MiB (on loopback \
         it includes the receive-side TCP work, which runs in the sender's softirq); `util` is \
         that CPU time over the run's wall time. `vs write_all` is the median of per-round \
         ratios of throughput against `write_all` of the same size. `send_zc` sends one buffer at \
         a time (its next send waits for the previous buffer's notification); `send_zc2` keeps \
         two buffers in flight with two concurrent `send_zc` loops (not order-safe, so not a \
         way to send a stream: it shows what that wait costs); `std` is a blocking `std` \
         `write_all` in place of the coring client.\n\n\
         | size | mode | GB/s | vs write_all | sender CPU us/MiB | sender util | sink CPU us/MiB | SQEs per buffer |\n\
         |---|---|---|---|---|---|---|---|"
    );
    for &size in sizes {
        for mode in modes {
            let m = |metric: &str| median(&values(samples, "send", mode, size, metric));
            let ratio = per_round_ratio(samples, "send", mode, "write_all", size, "gb_per_s");
            let _ = writeln!(
                t,
                "| {} | {mode} | {} | {} | {} | {} | {} | {} |",
                size_name(size),
                fmt(m("gb_per_s"), 2),
                fmt(ratio, 2),
                fmt(m("sender_cpu_us_per_mib"), 1),
                pct(m("sender_util")),
                fmt(m("sink_cpu_us_per_mib"), 1),
                fmt(m("sqes_per_buf"), 2),
            );
        }
    }
    t
}

// ------------------------------------------------------------------------------------------
// RSS per idle connection

/// VmRSS and RssAnon of `pid`, in KiB.
fn rss_kib(pid: u32) -> Result<(u64, u64), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("RssAnon:")?))
}

/// Opens one idle connection: connect, 128 bytes there and back, then left open.
fn open_idle(addr: SocketAddr, source: Option<Ipv4Addr>) -> Result<TcpStream, String> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| format!("socket: {e}"))?;
    if let Some(src) = source {
        let one: libc::c_int = 1;
        // SAFETY: passes a pointer to a live local of the size given.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        socket
            .bind(&SocketAddr::V4(SocketAddrV4::new(src, 0)).into())
            .map_err(|e| format!("bind {src}: {e}"))?;
    }
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    let mut stream: TcpStream = socket.into();
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let ping = [0x5au8; PING];
    stream.write_all(&ping).map_err(|e| format!("write: {e}"))?;
    let mut pong = [0u8; PING];
    stream
        .read_exact(&mut pong)
        .map_err(|e| format!("read the echo: {e}"))?;
    if pong != ping {
        return Err("the echo differs from what was sent".into());
    }
    Ok(stream)
}

/// RSS of `server` (KiB) with no connections, half of `conns` and all of them.
fn rss_run(server: &str, conns: usize, sources: u8) -> Result<[(u64, u64); 3], String> {
    let dir = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1"])
        .arg(dir.with_file_name("echo-server"))
        .args([server, "127.0.0.1:0"]);
    let (mut child, addr) = spawn_listening(cmd)?;
    let pid = child.id();
    let settle = || std::thread::sleep(Duration::from_millis(300));
    let result = (|| {
        settle();
        let before = rss_kib(pid)?;
        let mut half = before;
        let mut streams = Vec::with_capacity(conns);
        let deadline = Instant::now() + Duration::from_secs(120);
        for i in 0..conns {
            let source =
                (sources > 1).then(|| Ipv4Addr::new(127, 0, 0, 1 + (i % sources as usize) as u8));
            streams.push(open_idle(addr, source).map_err(|e| format!("connection {i}: {e}"))?);
            if i + 1 == conns / 2 {
                settle();
                half = rss_kib(pid)?;
            }
            if Instant::now() > deadline {
                return Err(format!("only {i} connections in 120 s"));
            }
        }
        settle();
        let after = rss_kib(pid)?;
        Ok([before, half, after])
    })();
    kill(&mut child);
    result
}

fn run_rss(servers: &[String], conns: usize, rounds: usize, sources: u8) -> Vec<Sample> {
    pin_to_cpu(0);
    let mut samples = Vec::new();
    for round in 0..rounds {
        for k in 0..servers.len() {
            let server = &servers[(k + round) % servers.len()];
            let [before, half, after] = match rss_run(server, conns, sources) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("round {round} {server}: {e}");
                    continue;
                }
            };
            let per_conn = (after.0 as f64 - before.0 as f64) / conns as f64;
            let marginal = (after.0 as f64 - half.0 as f64) / (conns - conns / 2) as f64;
            let anon = (after.1 as f64 - before.1 as f64) / conns as f64;
            eprintln!(
                "round {round} {server:>14}: VmRSS {} -> {} -> {} KiB: {per_conn:.2} KiB per \
                 connection (marginal {marginal:.2}, anon {anon:.2})",
                before.0, half.0, after.0
            );
            let mut push = |metric, value| {
                samples.push(Sample {
                    measurement: "rss",
                    subject: server.clone(),
                    param: conns,
                    round,
                    metric,
                    value,
                })
            };
            push("rss_before_kib", before.0 as f64);
            push("rss_after_kib", after.0 as f64);
            push("kib_per_conn", per_conn);
            push("marginal_kib_per_conn", marginal);
            push("anon_kib_per_conn", anon);
        }
    }
    samples
}

fn rss_table(samples: &[Sample], servers: &[String], conns: usize, rounds: usize) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "## Memory per idle connection\n\n\
         Each server (`echo-server NAME`, one thread, pinned to CPU 1) gets {conns} \
         connections, each making one {PING}-byte round trip and then staying open and idle. \
         VmRSS of the server process from `/proc/PID/status` before the first connection, \
         after half of them and after all; {rounds} interleaved rounds, medians. `KiB per \
         connection` is (RSS after - RSS before) / {conns}; `marginal` is (RSS after - RSS at \
         half) / {}, which leaves out memory touched once early (a buffer ring's buffers); \
         `anon` is the RssAnon part of the first column. Kernel socket memory is not in RSS.\n\n\
         | server | RSS before (KiB) | RSS after (KiB) | KiB per connection | marginal KiB per connection | anon KiB per connection |\n\
         |---|---|---|---|---|---|",
        conns - conns / 2
    );
    for server in servers {
        let m = |metric: &str| median(&values(samples, "rss", server, conns, metric));
        let _ = writeln!(
            t,
            "| {server} | {} | {} | {} | {} | {} |",
            fmt(m("rss_before_kib"), 0),
            fmt(m("rss_after_kib"), 0),
            fmt(m("kib_per_conn"), 2),
            fmt(m("marginal_kib_per_conn"), 2),
            fmt(m("anon_kib_per_conn"), 2),
        );
    }
    t
}

// ------------------------------------------------------------------------------------------
// Output

fn values(
    samples: &[Sample],
    measurement: &str,
    subject: &str,
    param: usize,
    metric: &str,
) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| is(s, measurement, subject, param, metric))
        .map(|s| s.value)
        .collect()
}

/// Whether `s` is `subject`'s `metric` of `measurement` at `param`.
fn is(s: &Sample, measurement: &str, subject: &str, param: usize, metric: &str) -> bool {
    s.measurement == measurement && s.subject == subject && s.param == param && s.metric == metric
}

/// Median over rounds of `subject / reference` for `metric`, same round and parameter.
fn per_round_ratio(
    samples: &[Sample],
    measurement: &str,
    subject: &str,
    reference: &str,
    param: usize,
    metric: &str,
) -> f64 {
    let find = |round: usize| {
        samples
            .iter()
            .find(|s| s.round == round && is(s, measurement, reference, param, metric))
    };
    let ratios: Vec<f64> = samples
        .iter()
        .filter(|s| is(s, measurement, subject, param, metric))
        .filter_map(|s| Some(s.value / find(s.round)?.value))
        .collect();
    median(&ratios)
}

fn size_name(size: usize) -> String {
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{} MiB", size >> 20)
    } else if size >= 1 << 10 && size.is_multiple_of(1 << 10) {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.0}%", x * 100.0)
    } else {
        "-".to_string()
    }
}

fn write_outputs(
    dir: &Path,
    samples: &[Sample],
    sections: &[String],
    command: &str,
    note: &str,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let commit = sh(concat!(
        "git -C ",
        env!("CARGO_MANIFEST_DIR"),
        " rev-parse --short HEAD 2>/dev/null"
    ));
    let commit = if commit.is_empty() {
        String::new()
    } else {
        format!("; coring at commit {commit} (plus any uncommitted changes)")
    };
    let note = if note.is_empty() {
        String::new()
    } else {
        format!("\n{note}\n")
    };
    let header = format!(
        "# Networking: large sends, memory per idle connection\n\n\
         {}, kernel {}, {} CPUs ({}){commit}.\n{note}\n\
         command: `{command}`\n",
        sh("date -u '+%Y-%m-%d %H:%M UTC'"),
        sh("uname -r"),
        sh("getconf _NPROCESSORS_ONLN"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").trim(),
    );
    let md = format!("{header}\n{}", sections.join("\n"));
    print!("{md}");
    std::fs::write(dir.join("net.md"), &md)?;

    let mut raw = String::from("measurement,subject,param,round,metric,value\n");
    for s in samples {
        let _ = writeln!(
            raw,
            "{},{},{},{},{},{}",
            s.measurement, s.subject, s.param, s.round, s.metric, s.value
        );
    }
    std::fs::write(dir.join("net-raw.csv"), raw)?;

    let mut csv = String::from("measurement,subject,param,metric,median,runs\n");
    let mut keys: Vec<(&str, &str, usize, &str)> = Vec::new();
    for s in samples {
        let k = (s.measurement, s.subject.as_str(), s.param, s.metric);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (measurement, subject, param, metric) in keys {
        let v = values(samples, measurement, subject, param, metric);
        let _ = writeln!(
            csv,
            "{measurement},{subject},{param},{metric},{},{}",
            median(&v),
            v.len()
        );
    }
    std::fs::write(dir.join("net.csv"), csv)?;
    eprintln!("wrote {}/net.{{md,csv}} and net-raw.csv", dir.display());
    Ok(())
}
