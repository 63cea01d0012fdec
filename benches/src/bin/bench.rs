//! The echo grid runner.
//!
//! `bench [--quick] [--rounds R] [--duration D] [--warmup W] [--servers a,b] [--conns 16,64]
//!        [--payload 128,1024] [--out DIR] [--loadgen-args "..."]`
//!
//! For each round, each grid point (connections x payload) and each server (round-robin, the
//! starting server rotating per round): starts `echo-server NAME 127.0.0.1:0` pinned to CPU 1,
//! starts `loadgen` pinned to CPU 0, samples the server's utime+stime (and, for coring, its
//! `Runtime::metrics()` via SIGUSR1) when the loadgen opens and closes its window, then kills
//! the server. Medians over rounds go to `DIR/echo.csv`, `DIR/echo.md` and `DIR/echo.svg`;
//! every single run goes to `DIR/echo-raw.csv`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use coring_bench::{die, fmt, kv, machine_busy_us, median, proc_cpu_us, sh, Args};

const ALL_SERVERS: &[&str] = &[
    "floor-default",
    "floor-tuned",
    "floor-best",
    "coring",
    "monoio",
    "glommio",
    "tokio-uring",
    "compio",
    "tokio",
];

#[derive(Debug, Clone, Default)]
struct Run {
    round: usize,
    server: String,
    conns: usize,
    payload: usize,
    rps: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    srv_cpu_us_per_rt: f64,
    srv_util: f64,
    lg_cpu_us_per_rt: f64,
    enters_per_rt: f64,
    sqes_per_rt: f64,
    /// CPU used by other processes during the window, in CPUs (0.25 = a quarter of a core).
    foreign: f64,
    /// `perf stat` counts of the server per round trip, with `--perf`.
    perf: Vec<(String, f64)>,
}

fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .expect("current_exe")
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

fn lines(reader: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn kill(child: &mut Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
}

struct Metrics {
    enters: u64,
    sqes: u64,
}

fn coring_metrics(pid: u32, stderr: &Receiver<String>, log: &mut String) -> Option<Metrics> {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
    let deadline = Instant::now() + Duration::from_secs(3);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = stderr.recv_timeout(left) else {
            break;
        };
        if line.starts_with("metrics ") {
            let m = kv(&line);
            return Some(Metrics {
                enters: m.get("enters")?.parse().ok()?,
                sqes: m.get("sqes")?.parse().ok()?,
            });
        }
        log.push_str(&line);
        log.push('\n');
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    server: &str,
    conns: usize,
    payload: usize,
    warmup: f64,
    duration: f64,
    extra: &[String],
    nice: bool,
    perf_events: &str,
) -> Result<Run, String> {
    let dir = bin_dir();
    let pinned = |cpu: &str| {
        let mut c = Command::new(if nice { "nice" } else { "taskset" });
        if nice {
            c.args(["-n", "-20", "taskset"]);
        }
        c.args(["-c", cpu]);
        c
    };
    // Two-thread servers (`*-2t`) get both CPUs and share them with the load generator.
    let server_cpus = if server.ends_with("-2t") { "0,1" } else { "1" };
    let mut srv = pinned(server_cpus)
        .arg(dir.join("echo-server"))
        .args([server, "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn echo-server: {e}"))?;
    let pid = srv.id();
    let out = lines(srv.stdout.take().unwrap());
    let err = lines(srv.stderr.take().unwrap());
    let result = (|| {
        let mut log = String::new();
        let addr = loop {
            match out.recv_timeout(Duration::from_secs(10)) {
                Ok(l) => {
                    if let Some(a) = l.strip_prefix("listening on ") {
                        break a.trim().to_string();
                    }
                }
                Err(_) => {
                    while let Ok(l) = err.try_recv() {
                        log.push_str(&l);
                        log.push('\n');
                    }
                    return Err(format!("{server} did not start: {log}"));
                }
            }
        };
        let mut lg = pinned("0")
            .arg(dir.join("loadgen"))
            .args(["--addr", &addr])
            .args([
                "--conns",
                &conns.to_string(),
                "--size",
                &payload.to_string(),
            ])
            .args([
                "--warmup",
                &warmup.to_string(),
                "--duration",
                &duration.to_string(),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn loadgen: {e}"))?;
        let lg_out = lines(lg.stdout.take().unwrap());
        let lg_err = lines(lg.stderr.take().unwrap());
        // The single-thread coring servers answer SIGUSR1 with their metrics.
        let is_coring = server.starts_with("coring") && !server.ends_with("-2t");
        let lg_pid = lg.id();
        let (mut cpu0, mut t0, mut m0, mut other0) = (0, Instant::now(), None, 0i64);
        let (mut cpu1, mut t1, mut m1, mut other1) = (0, Instant::now(), None, 0i64);
        let mut perf: Option<Child> = None;
        let mut perf_out = String::new();
        // Machine busy time minus the server's and the loadgen's: what others used.
        let others = |srv_cpu: u64| -> i64 {
            let all = machine_busy_us().unwrap_or(0) as i64;
            let lg_cpu = proc_cpu_us(lg_pid).unwrap_or(0) as i64;
            all - srv_cpu as i64 - lg_cpu
        };
        let timeout = Duration::from_secs_f64(warmup + duration + 60.0);
        let res = loop {
            let Ok(l) = lg_out.recv_timeout(timeout) else {
                kill(&mut lg, libc::SIGKILL);
                let _ = lg.wait();
                let e: Vec<String> = lg_err.try_iter().collect();
                return Err(format!("loadgen gave no result: {}", e.join(" | ")));
            };
            if l == "window-start" {
                cpu0 = proc_cpu_us(pid).map_err(|e| e.to_string())?;
                other0 = others(cpu0);
                t0 = Instant::now();
                if !perf_events.is_empty() {
                    perf = Command::new("perf")
                        .args(["stat", "-x", ",", "-e", perf_events, "-p", &pid.to_string()])
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .ok();
                }
                if is_coring {
                    m0 = coring_metrics(pid, &err, &mut log);
                }
            } else if l == "window-end" {
                cpu1 = proc_cpu_us(pid).map_err(|e| e.to_string())?;
                other1 = others(cpu1);
                t1 = Instant::now();
                if let Some(mut p) = perf.take() {
                    kill(&mut p, libc::SIGINT);
                    if let Ok(o) = p.wait_with_output() {
                        perf_out = String::from_utf8_lossy(&o.stderr).into_owned();
                    }
                }
                if is_coring {
                    m1 = coring_metrics(pid, &err, &mut log);
                }
            } else if l.starts_with("result ") {
                break kv(&l);
            }
        };
        let _ = lg.wait();
        let f = |k: &str| {
            res.get(k)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let rps = f("rps");
        let wall = t1.duration_since(t0).as_secs_f64();
        let srv_rts = rps * wall;
        let (enters_per_rt, sqes_per_rt) = match (m0, m1) {
            (Some(a), Some(b)) => (
                (b.enters - a.enters) as f64 / srv_rts,
                (b.sqes - a.sqes) as f64 / srv_rts,
            ),
            _ => (f64::NAN, f64::NAN),
        };
        Ok(Run {
            round: 0,
            server: server.to_string(),
            conns,
            payload,
            rps,
            p50: f("p50_us"),
            p99: f("p99_us"),
            p999: f("p999_us"),
            srv_cpu_us_per_rt: (cpu1 - cpu0) as f64 / srv_rts,
            srv_util: (cpu1 - cpu0) as f64 / 1e6 / wall,
            lg_cpu_us_per_rt: f("cpu_us_per_rt"),
            enters_per_rt,
            sqes_per_rt,
            foreign: (other1 - other0).max(0) as f64 / 1e6 / wall,
            perf: perf_out
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(',').collect();
                    let count: f64 = f.first()?.trim().parse().ok()?;
                    Some((f.get(2)?.trim().to_string(), count / srv_rts))
                })
                .collect(),
        })
    })();
    kill(&mut srv, libc::SIGKILL);
    let _ = srv.wait();
    result
}

/// Waits (at most `max_wait`) until other processes use less than `limit` CPUs, measured over
/// half a second. Returns the last load seen.
fn wait_quiet(limit: f64, max_wait: Duration) -> f64 {
    let start = Instant::now();
    let mut told = false;
    loop {
        let a = machine_busy_us().unwrap_or(0);
        std::thread::sleep(Duration::from_millis(500));
        let b = machine_busy_us().unwrap_or(0);
        let load = b.saturating_sub(a) as f64 / 0.5e6;
        if load < limit {
            return load;
        }
        if start.elapsed() >= max_wait {
            eprintln!(
                "    the machine is still busy ({load:.2} CPUs used by others); running anyway"
            );
            return load;
        }
        if !told {
            eprintln!("    waiting for the machine to quiet down ({load:.2} CPUs used by others)");
            told = true;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn machine_line() -> String {
    let model = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2");
    let mem = sh("awk '/MemTotal/{printf \"%.0f GiB\", $2/1048576}' /proc/meminfo");
    format!("{} CPUs ({}), {}", sh("nproc"), model.trim(), mem)
}

/// One aggregated grid cell.
struct Cell {
    server: String,
    conns: usize,
    payload: usize,
    runs: usize,
    rps: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    cpu: f64,
    util: f64,
    lg_cpu: f64,
    enters: f64,
    sqes: f64,
    vs_floor: f64,
    cpu_vs_floor: f64,
    vs_monoio: f64,
    vs_tokio: f64,
    foreign: f64,
}

/// Median of the per-round ratio `server / reference` (same round, same grid point).
fn ratio(runs: &[Run], server: &str, reference: &str, key: fn(&Run) -> f64) -> f64 {
    let mut v = Vec::new();
    for r in runs.iter().filter(|r| r.server == server) {
        if let Some(b) = runs.iter().find(|b| {
            b.server == reference
                && b.round == r.round
                && b.conns == r.conns
                && b.payload == r.payload
        }) {
            v.push(key(r) / key(b));
        }
    }
    median(&v)
}

fn aggregate(runs: &[Run], servers: &[String], grid: &[(usize, usize)]) -> Vec<Cell> {
    let mut cells = Vec::new();
    for &(conns, payload) in grid {
        let here: Vec<Run> = runs
            .iter()
            .filter(|r| r.conns == conns && r.payload == payload)
            .cloned()
            .collect();
        for s in servers {
            let mine: Vec<&Run> = here.iter().filter(|r| &r.server == s).collect();
            let m = |k: fn(&Run) -> f64| median(&mine.iter().map(|r| k(r)).collect::<Vec<_>>());
            cells.push(Cell {
                server: s.clone(),
                conns,
                payload,
                runs: mine.iter().filter(|r| r.rps.is_finite()).count(),
                rps: m(|r| r.rps),
                p50: m(|r| r.p50),
                p99: m(|r| r.p99),
                p999: m(|r| r.p999),
                cpu: m(|r| r.srv_cpu_us_per_rt),
                util: m(|r| r.srv_util),
                lg_cpu: m(|r| r.lg_cpu_us_per_rt),
                enters: m(|r| r.enters_per_rt),
                sqes: m(|r| r.sqes_per_rt),
                vs_floor: ratio(&here, s, "floor-tuned", |r| r.rps),
                cpu_vs_floor: ratio(&here, s, "floor-tuned", |r| r.srv_cpu_us_per_rt),
                vs_monoio: ratio(&here, s, "monoio", |r| r.rps),
                vs_tokio: ratio(&here, s, "tokio", |r| r.rps),
                foreign: m(|r| r.foreign),
            });
        }
    }
    cells
}

fn write_outputs(
    out: &Path,
    runs: &[Run],
    cells: &[Cell],
    header: &str,
    grid: &[(usize, usize)],
    servers: &[String],
) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let mut raw = String::from(
        "round,server,conns,payload,rps,p50_us,p99_us,p999_us,srv_cpu_us_per_rt,srv_util,\
         loadgen_cpu_us_per_rt,enters_per_rt,sqes_per_rt,others_cpus,perf_per_rt\n",
    );
    for r in runs {
        let _ = writeln!(
            raw,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.round,
            r.server,
            r.conns,
            r.payload,
            fmt(r.rps, 0),
            fmt(r.p50, 1),
            fmt(r.p99, 1),
            fmt(r.p999, 1),
            fmt(r.srv_cpu_us_per_rt, 3),
            fmt(r.srv_util, 3),
            fmt(r.lg_cpu_us_per_rt, 3),
            fmt(r.enters_per_rt, 4),
            fmt(r.sqes_per_rt, 4),
            fmt(r.foreign, 3),
            r.perf
                .iter()
                .map(|(e, v)| format!("{e}={v:.4}"))
                .collect::<Vec<_>>()
                .join(";"),
        );
    }
    std::fs::write(out.join("echo-raw.csv"), raw)?;

    let mut csv = String::new();
    for l in header.lines() {
        let _ = writeln!(csv, "# {l}");
    }
    csv.push_str(
        "server,conns,payload,runs,rps,rps_vs_floor_tuned,rps_vs_monoio,rps_vs_tokio,\
         srv_cpu_us_per_rt,cpu_vs_floor_tuned,srv_util,p50_us,p99_us,p999_us,\
         loadgen_cpu_us_per_rt,enters_per_rt,sqes_per_rt,others_cpus\n",
    );
    let mut md = format!("{header}\n\n");
    md.push_str(
        "| conns | payload | server | rt/s | vs floor-tuned | vs monoio | vs tokio | \
         server CPU us/rt | CPU vs floor-tuned | server util | p50 us | p99 us | p99.9 us | \
         others CPUs | coring enters/rt |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in cells {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            c.server,
            c.conns,
            c.payload,
            c.runs,
            fmt(c.rps, 0),
            fmt(c.vs_floor, 3),
            fmt(c.vs_monoio, 3),
            fmt(c.vs_tokio, 3),
            fmt(c.cpu, 3),
            fmt(c.cpu_vs_floor, 3),
            fmt(c.util, 3),
            fmt(c.p50, 1),
            fmt(c.p99, 1),
            fmt(c.p999, 1),
            fmt(c.lg_cpu, 3),
            fmt(c.enters, 4),
            fmt(c.sqes, 4),
            fmt(c.foreign, 3),
        );
        let _ = writeln!(
            md,
            "| {} | {} | {} | {}k | {} | {} | {} | {} | {} | {}% | {} | {} | {} | {} | {} |",
            c.conns,
            c.payload,
            c.server,
            fmt(c.rps / 1000.0, 1),
            fmt(c.vs_floor, 2),
            fmt(c.vs_monoio, 2),
            fmt(c.vs_tokio, 2),
            fmt(c.cpu, 2),
            fmt(c.cpu_vs_floor, 2),
            fmt(c.util * 100.0, 0),
            fmt(c.p50, 0),
            fmt(c.p99, 0),
            fmt(c.p999, 0),
            fmt(c.foreign, 2),
            if c.server.starts_with("coring") && !c.server.ends_with("-2t") {
                format!("{} (sqes {})", fmt(c.enters, 3), fmt(c.sqes, 2))
            } else {
                String::new()
            },
        );
    }
    let events: Vec<String> = runs
        .iter()
        .find(|r| !r.perf.is_empty())
        .map(|r| r.perf.iter().map(|(e, _)| e.clone()).collect())
        .unwrap_or_default();
    if !events.is_empty() {
        let _ = write!(
            md,
            "\nServer-side `perf stat` counts per round trip (medians over rounds):\n\n\
             | conns | payload | server | {} |\n|---|---|---|{}\n",
            events.join(" | "),
            "---|".repeat(events.len())
        );
        for &(conns, payload) in grid {
            for s in servers {
                let _ = write!(md, "| {conns} | {payload} | {s} |");
                for e in &events {
                    let v: Vec<f64> = runs
                        .iter()
                        .filter(|r| &r.server == s && r.conns == conns && r.payload == payload)
                        .filter_map(|r| r.perf.iter().find(|(n, _)| n == e).map(|(_, v)| *v))
                        .collect();
                    let _ = write!(md, " {} |", fmt(median(&v), 3));
                }
                md.push('\n');
            }
        }
    }
    std::fs::write(out.join("echo.csv"), csv)?;
    std::fs::write(out.join("echo.md"), md)?;
    chart(&out.join("echo.svg"), cells, header, grid, servers)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(())
}

fn chart(
    path: &Path,
    cells: &[Cell],
    header: &str,
    grid: &[(usize, usize)],
    servers: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let color_of = |name: &str| match name {
        "floor-default" => RGBColor(200, 200, 200),
        "floor-tuned" => RGBColor(120, 120, 120),
        "floor-best" => RGBColor(30, 30, 30),
        "coring" => RGBColor(214, 39, 40),
        "coring-ms" => RGBColor(255, 152, 150),
        "coring-reg" => RGBColor(140, 20, 30),
        "monoio" => RGBColor(31, 119, 180),
        "glommio" => RGBColor(255, 127, 14),
        "tokio-uring" => RGBColor(44, 160, 44),
        "compio" => RGBColor(148, 103, 189),
        "tokio" => RGBColor(140, 86, 75),
        _ => RGBColor(227, 119, 194),
    };
    let root = SVGBackend::new(path, (1300, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = header.lines().next().unwrap_or("echo");
    let root = root.titled(title, ("sans-serif", 18))?;
    let (plots, legend) = root.split_horizontally(1150);
    let (top, bottom) = plots.split_vertically(430);
    for (i, s) in servers.iter().enumerate() {
        let y = 60 + i as i32 * 22;
        legend.draw(&Rectangle::new(
            [(10, y), (24, y + 14)],
            color_of(s).filled(),
        ))?;
        legend.draw(&Text::new(
            s.as_str(),
            (30, y + 1),
            ("sans-serif", 13).into_font(),
        ))?;
    }
    let ns = servers.len().max(1) as f64;
    let ng = grid.len().max(1);
    let label = |i: usize| -> String {
        grid.get(i)
            .map(|(c, p)| {
                if p % 1024 == 0 {
                    format!("{c} conns x {} KiB", p / 1024)
                } else {
                    format!("{c} conns x {p} B")
                }
            })
            .unwrap_or_default()
    };
    type Panel<'a, 'b> = (
        &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
        &'static str,
        fn(&Cell) -> f64,
    );
    let panels: [Panel; 2] = [
        (&top, "round trips/s (thousands, median)", |c| {
            c.rps / 1000.0
        }),
        (
            &bottom,
            "server CPU us per round trip (median, lower is better)",
            |c| c.cpu,
        ),
    ];
    for (area, caption, value) in panels {
        let ymax = cells
            .iter()
            .map(value)
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            * 1.15;
        let mut ch = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..ng as f64, 0f64..ymax.max(1.0))?;
        ch.configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(ng * 2 + 1)
            .x_label_formatter(&|x| {
                let f = x.fract();
                if (f - 0.5).abs() < 0.01 {
                    label(*x as usize)
                } else {
                    String::new()
                }
            })
            .draw()?;
        let w = 0.8 / ns;
        for (si, s) in servers.iter().enumerate() {
            let color = color_of(s);
            let bars: Vec<Rectangle<(f64, f64)>> = grid
                .iter()
                .enumerate()
                .filter_map(|(gi, &(cn, p))| {
                    let c = cells
                        .iter()
                        .find(|c| &c.server == s && c.conns == cn && c.payload == p)?;
                    let v = value(c);
                    if !v.is_finite() {
                        return None;
                    }
                    let x0 = gi as f64 + 0.1 + si as f64 * w;
                    Some(Rectangle::new(
                        [(x0, 0.0), (x0 + w * 0.9, v)],
                        color.filled(),
                    ))
                })
                .collect();
            ch.draw_series(bars)?;
        }
    }
    root.present()?;
    Ok(())
}

/// Rebuilds `echo.{csv,md,svg}` in `dir` from its `echo-raw.csv` (and the header of its
/// `echo.md`), without running anything.
fn replot(dir: &Path) {
    let raw = std::fs::read_to_string(dir.join("echo-raw.csv"))
        .unwrap_or_else(|e| die(&format!("{}: {e}", dir.join("echo-raw.csv").display())));
    let old_md = std::fs::read_to_string(dir.join("echo.md")).unwrap_or_default();
    let header: String = old_md
        .lines()
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let num = |v: Option<&str>| v.and_then(|x| x.parse::<f64>().ok()).unwrap_or(f64::NAN);
    let mut runs = Vec::new();
    let mut servers: Vec<String> = Vec::new();
    let mut grid: Vec<(usize, usize)> = Vec::new();
    for line in raw.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 14 {
            continue;
        }
        let r = Run {
            round: f[0].parse().unwrap_or(0),
            server: f[1].to_string(),
            conns: f[2].parse().unwrap_or(0),
            payload: f[3].parse().unwrap_or(0),
            rps: num(f.get(4).copied()),
            p50: num(f.get(5).copied()),
            p99: num(f.get(6).copied()),
            p999: num(f.get(7).copied()),
            srv_cpu_us_per_rt: num(f.get(8).copied()),
            srv_util: num(f.get(9).copied()),
            lg_cpu_us_per_rt: num(f.get(10).copied()),
            enters_per_rt: num(f.get(11).copied()),
            sqes_per_rt: num(f.get(12).copied()),
            foreign: num(f.get(13).copied()),
            perf: f
                .get(14)
                .map(|p| {
                    p.split(';')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(f64::NAN)))
                        .collect()
                })
                .unwrap_or_default(),
        };
        if !servers.contains(&r.server) {
            servers.push(r.server.clone());
        }
        if !grid.contains(&(r.conns, r.payload)) {
            grid.push((r.conns, r.payload));
        }
        runs.push(r);
    }
    let cells = aggregate(&runs, &servers, &grid);
    if let Err(e) = write_outputs(dir, &runs, &cells, &header, &grid, &servers) {
        die(&format!("writing {}: {e}", dir.display()));
    }
    eprintln!("rewrote {}/echo.{{csv,md,svg}}", dir.display());
}

fn main() {
    let args = Args::parse(&["quick", "help", "no-nice", "perf"]);
    if args.flag("help") {
        eprintln!(
            "usage: bench [--quick] [--rounds R] [--duration SECS] [--warmup SECS] \
             [--servers a,b,..] [--conns 16,64,1000] [--payload 128,1024] [--out DIR] \
             [--loadgen-args \"--spin\"] [--no-nice] [--retries 2] [--max-foreign 0.15] [--quiet-wait 300] [--note TEXT] [--perf [--perf-events a,b]] | bench --replot DIR\n  \
             servers: {}",
            ALL_SERVERS.join(",")
        );
        return;
    }
    if let Some(dir) = args.get("replot") {
        replot(Path::new(dir));
        return;
    }
    let quick = args.flag("quick");
    let rounds: usize = args.parse_or("rounds", if quick { 1 } else { 3 });
    let duration: f64 = args.parse_or("duration", if quick { 2.0 } else { 5.0 });
    let warmup: f64 = args.parse_or("warmup", if quick { 0.5 } else { 1.0 });
    let default_servers: Vec<String> = ALL_SERVERS.iter().map(|s| s.to_string()).collect();
    // Run only when named: the two-thread servers (they share CPU 0 with the load generator)
    // and the variants of the user loop.
    const NAMED_ONLY_SERVERS: &[&str] = &[
        "coring-2t",
        "monoio-2t",
        "tokio-2t",
        "coring-ms",
        "coring-ms-512",
        "coring-reg",
        "coring-sqpoll",
        "tokio-readable",
    ];
    let servers: Vec<String> = args.list_or("servers", &default_servers);
    for s in &servers {
        if !ALL_SERVERS.contains(&s.as_str()) && !NAMED_ONLY_SERVERS.contains(&s.as_str()) {
            die(&format!(
                "unknown server {s:?}; one of {},{}",
                ALL_SERVERS.join(","),
                NAMED_ONLY_SERVERS.join(",")
            ));
        }
    }
    let conns: Vec<usize> = args.list_or("conns", &[16, 64, 1000]);
    let payloads: Vec<usize> = args.list_or("payload", &[128, 1024]);
    let out = PathBuf::from(
        args.get("out")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/../docs/bench", env!("CARGO_MANIFEST_DIR"))),
    );
    let extra: Vec<String> = args
        .get("loadgen-args")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let nice = !args.flag("no-nice");
    let retries: usize = args.parse_or("retries", 2);
    // With --perf, `perf stat` counts these on the server during each window (tracepoints
    // cost ~30 ns per event: use it for counts, not for the headline figures).
    let perf_events = if args.flag("perf") {
        args.get("perf-events")
            .unwrap_or(
                "raw_syscalls:sys_enter,io_uring:io_uring_submit_req,\
                 io_uring:io_uring_poll_arm,io_uring:io_uring_task_add,\
                 io_uring:io_uring_complete",
            )
            .to_string()
    } else {
        String::new()
    };
    let max_foreign: f64 = args.parse_or("max-foreign", 0.15);
    let quiet_wait = args.secs_or("quiet-wait", 300.0);
    let grid: Vec<(usize, usize)> = conns
        .iter()
        .flat_map(|&c| payloads.iter().map(move |&p| (c, p)))
        .collect();

    let cmdline = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let note = args
        .get("note")
        .map(|n| format!("\n{n}"))
        .unwrap_or_else(|| {
            let rev = sh(&format!(
                "git -C {}/.. rev-parse --short HEAD 2>/dev/null",
                env!("CARGO_MANIFEST_DIR")
            ));
            if rev.is_empty() {
                String::new()
            } else {
                format!("\ncoring at commit {rev} (plus any uncommitted changes)")
            }
        });
    let header = format!(
        "echo grid, {} UTC, kernel {}, {}\n\
         command: bench {}\n\
         {} round(s), {warmup} s warm-up + {duration} s window per run; server on CPU 1, \
         loadgen on CPU 0{}; medians over rounds; ratios are medians of per-round ratios \
         (same round, same grid point){note}",
        sh("date -u '+%Y-%m-%d %H:%M'"),
        sh("uname -r"),
        machine_line(),
        cmdline,
        rounds,
        if nice { ", both at nice -20" } else { "" },
    );
    eprintln!("{header}");
    let total = rounds * grid.len() * servers.len();
    let started = Instant::now();
    let mut runs = Vec::new();
    let mut done = 0;
    for round in 0..rounds {
        for &(c, p) in &grid {
            for k in 0..servers.len() {
                let s = &servers[(k + round) % servers.len()];
                done += 1;
                wait_quiet(max_foreign, quiet_wait);
                let mut r = run_one(s, c, p, warmup, duration, &extra, nice, &perf_events);
                for _ in 0..retries {
                    match &r {
                        Ok(x) if x.foreign > max_foreign => {
                            eprintln!(
                                "    {s} conns={c} payload={p}: other processes used {:.2} CPUs \
                                 during the window; running it again",
                                x.foreign
                            );
                            wait_quiet(max_foreign, quiet_wait);
                            let again =
                                run_one(s, c, p, warmup, duration, &extra, nice, &perf_events);
                            if let (Ok(a), Ok(b)) = (&again, &r) {
                                if a.foreign < b.foreign {
                                    r = again;
                                }
                            }
                        }
                        _ => break,
                    }
                }
                match r {
                    Ok(mut r) => {
                        r.round = round;
                        eprintln!(
                            "[{done}/{total} {:.0}s] round {round} {s:14} conns={c:4} payload={p:4} \
                             rps={:8.0} srv_cpu_us/rt={:6.3} util={:3.0}% lg_us/rt={:5.3} p99={:7.1}us \
                             others={:.2}cpu{}",
                            started.elapsed().as_secs_f64(),
                            r.rps,
                            r.srv_cpu_us_per_rt,
                            r.srv_util * 100.0,
                            r.lg_cpu_us_per_rt,
                            r.p99,
                            r.foreign,
                            if r.enters_per_rt.is_finite() {
                                format!(" enters/rt={:.4}", r.enters_per_rt)
                            } else {
                                String::new()
                            }
                        );
                        if !r.perf.is_empty() {
                            let counts: Vec<String> =
                                r.perf.iter().map(|(e, v)| format!("{e}={v:.3}")).collect();
                            eprintln!("    per round trip: {}", counts.join(" "));
                        }
                        runs.push(r);
                    }
                    Err(e) => {
                        eprintln!(
                            "[{done}/{total}] round {round} {s} conns={c} payload={p}: FAILED: {e}"
                        );
                        runs.push(Run {
                            round,
                            server: s.clone(),
                            conns: c,
                            payload: p,
                            rps: f64::NAN,
                            p50: f64::NAN,
                            p99: f64::NAN,
                            p999: f64::NAN,
                            srv_cpu_us_per_rt: f64::NAN,
                            srv_util: f64::NAN,
                            lg_cpu_us_per_rt: f64::NAN,
                            enters_per_rt: f64::NAN,
                            sqes_per_rt: f64::NAN,
                            foreign: f64::NAN,
                            perf: Vec::new(),
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        // Results so far, so an interrupted grid still leaves its completed rounds.
        if round + 1 < rounds {
            let cells = aggregate(&runs, &servers, &grid);
            if let Err(e) = write_outputs(&out, &runs, &cells, &header, &grid, &servers) {
                eprintln!("writing {}: {e}", out.display());
            }
        }
    }
    let cells = aggregate(&runs, &servers, &grid);
    if let Err(e) = write_outputs(&out, &runs, &cells, &header, &grid, &servers) {
        die(&format!("writing {}: {e}", out.display()));
    }
    let md = std::fs::read_to_string(out.join("echo.md")).unwrap_or_default();
    println!("{md}");
    eprintln!(
        "wrote {}/echo.{{csv,md,svg}} and echo-raw.csv",
        out.display()
    );
}
