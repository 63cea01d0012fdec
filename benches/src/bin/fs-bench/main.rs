//! File I/O on a 1 GiB file, one thread pinned to one CPU: coring against
//! `fio --ioengine=io_uring` and the runtime peers.
//!
//! ```text
//! fs-bench [--workloads randread4k,seqread1m,seqwrite1m] [--modes buffered,direct]
//!          [--qd 1,32] [--engines fio,coring,coring-fixed,coring-regfile,coring-eager,monoio,glommio,tokio]
//!          [--rounds 3] [--secs 3] [--warmup 1] [--cpu 1] [--size-mib 1024]
//!          [--file /var/tmp/coring-bench-1g.dat] [--wfile /var/tmp/coring-bench-1g-w.dat]
//!          [--retries 2] [--max-others 0.15] [--out DIR] [--note TEXT]
//! ```
//!
//! Workloads: `randread4k` (4 KiB reads at random aligned offsets), `seqread1m` and
//! `seqwrite1m` (1 MiB operations at consecutive offsets, wrapping at the end of the file; at
//! QD 32 the 32 in-flight operations take the next 32 offsets). Reads use `--file`, writes a
//! second file `--wfile` (both created full, so writes overwrite allocated blocks), without
//! fsync per operation.
//!
//! Before each run, so that no run inherits another's work: a buffered read run pre-reads its
//! file into the page cache; a write run first flushes the write file (`fdatasync`), then
//! pre-reads it (buffered) or drops its cached pages (`POSIX_FADV_DONTNEED`, direct).
//!
//! Engines (see `engines.rs` for the in-process ones): `fio` (the reference, `--ioengine=
//! io_uring` with the same block size, pattern, depth, file and time), `coring`,
//! `coring-fixed` (registered buffers), `coring-regfile` (registered file), `monoio`,
//! `glommio`, `tokio`. Each round runs every
//! grid point with every engine, the engine order rotating by one each round. The outputs
//! quote medians over rounds: throughput, and per-round ratios (to fio, coring to each peer).
//! `others CPUs` is CPU time used by other processes during the runs, from `/proc/stat`; a run
//! during which they used more than `--max-others` CPUs is run again (`--retries` times at
//! most, keeping the cleanest).
//!
//! Outputs in `DIR` (default `docs/bench`): `fs.md` (everything from a line
//! `<!-- analysis -->` on in an existing `fs.md` is kept), `fs.csv` (medians), `fs-raw.csv`
//! (every run, with the fewest and the most operations one of its QD tasks completed: how
//! evenly the engine served them).

mod engines;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use coring_bench::{die, machine_busy_us, median, pin_to, proc_cpu_us, sh, Args};
use engines::{CoringVariant, Job, Rng, Run, Workload};

const ENGINES: &[&str] = &[
    "fio",
    "coring",
    "coring-fixed",
    "coring-regfile",
    "coring-eager",
    "monoio",
    "glommio",
    "tokio",
];
const PEERS: &[&str] = &["monoio", "glommio", "tokio"];
const ANALYSIS_MARK: &str = "<!-- analysis -->";

/// One run of one engine at one grid point.
struct Sample {
    round: usize,
    point: Point,
    engine: String,
    /// What the run measured (`ops_per_s` NaN on error).
    run: Run,
    /// CPUs used by other processes during the run.
    others: f64,
    error: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Point {
    workload: usize,
    direct: bool,
    qd: usize,
}

fn main() {
    let args = Args::parse(&[]);
    let rpath = PathBuf::from(args.get("file").unwrap_or("/var/tmp/coring-bench-1g.dat"));
    let wpath = PathBuf::from(
        args.get("wfile")
            .unwrap_or("/var/tmp/coring-bench-1g-w.dat"),
    );
    let size_mib: u64 = args.parse_or("size-mib", 1024);
    let secs = args.secs_or("secs", 3.0);
    let warm = args.secs_or("warmup", 1.0);
    let cpu: usize = args.parse_or("cpu", 1);
    let rounds: usize = args.parse_or("rounds", 3);
    let retries: usize = args.parse_or("retries", 2);
    let max_others: f64 = args.parse_or("max-others", 0.15);
    let qds: Vec<usize> = args.list_or("qd", &[1, 32]);
    let modes: Vec<String> = args.list_or("modes", &["buffered".into(), "direct".into()]);
    let workloads: Vec<Workload> = args
        .list_or::<String>("workloads", &[])
        .iter()
        .map(|w| Workload::from_name(w).unwrap_or_else(|| die(&format!("unknown workload {w}"))))
        .collect();
    let workloads = if workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        workloads
    };
    let defaults: Vec<String> = ENGINES.iter().map(|s| s.to_string()).collect();
    let engines: Vec<String> = args.list_or("engines", &defaults);
    for e in &engines {
        if !ENGINES.contains(&e.as_str()) {
            die(&format!("unknown engine {e}; one of {}", ENGINES.join(",")));
        }
    }
    let out = PathBuf::from(
        args.get("out")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/../docs/bench", env!("CARGO_MANIFEST_DIR"))),
    );
    let memlock = raise_memlock();
    let size = size_mib << 20;
    ensure_file(&rpath, size);
    if workloads.iter().any(|w| w.writes()) {
        ensure_file(&wpath, size);
    }
    pin_to(cpu);
    let load_before = sh("cat /proc/loadavg");
    let started = Instant::now();

    let mut points = Vec::new();
    for wi in 0..workloads.len() {
        for mode in &modes {
            let direct = match mode.as_str() {
                "buffered" => false,
                "direct" => true,
                other => die(&format!("unknown mode {other}")),
            };
            for &qd in &qds {
                points.push(Point {
                    workload: wi,
                    direct,
                    qd,
                });
            }
        }
    }
    let mut samples = Vec::new();
    for round in 0..rounds {
        for &point in &points {
            let workload = workloads[point.workload];
            let job = Job {
                workload,
                path: if workload.writes() {
                    wpath.clone()
                } else {
                    rpath.clone()
                },
                size,
                direct: point.direct,
                qd: point.qd,
                warm,
                secs,
                cpu,
            };
            let n = engines.len();
            for i in 0..n {
                let engine = &engines[(i + round) % n];
                // Run again (at most `retries` times) while other processes were busy.
                let (mut run, mut others, mut error) = run_one(&job, engine);
                for _ in 0..retries {
                    if others <= max_others || error.is_some() {
                        break;
                    }
                    eprintln!("  others used {others:.2} CPUs: again");
                    let again = run_one(&job, engine);
                    if again.1 < others {
                        (run, others, error) = again;
                    }
                }
                eprintln!(
                    "round {round} {:10} {:8} qd={:2} {engine:12} {:>9} others {others:.2}{}{}",
                    workload.name(),
                    mode_name(point.direct),
                    point.qd,
                    format_rate(workload, run.ops_per_s),
                    run.task_ops
                        .filter(|_| point.qd > 1)
                        .map(|(min, max)| format!(", ops per task {min}-{max}"))
                        .unwrap_or_default(),
                    error
                        .as_deref()
                        .map(|e| format!(" ERROR {e}"))
                        .unwrap_or_default(),
                );
                samples.push(Sample {
                    round,
                    point,
                    engine: engine.clone(),
                    run,
                    others,
                    error,
                });
            }
        }
    }

    let header =
        format!(
        "file I/O on a {size_mib} MiB file, {} UTC, kernel {}{}; one thread pinned to CPU {cpu}; {} s per run after {} s warm-up; {rounds} rounds (engine order rotating), \
         medians; {} min in all. Load average before: {load_before}; after: {}. RLIMIT_MEMLOCK: \
         {memlock}.{}",
        sh("date -u '+%Y-%m-%d %H:%M'"),
        sh("uname -r"),
        match sh(concat!("git -C ", env!("CARGO_MANIFEST_DIR"), " rev-parse --short HEAD")) {
            sha if sha.is_empty() => String::new(),
            sha => format!(", coring at {sha}"),
        },
        secs.as_secs_f64(),
        warm.as_secs_f64(),
        (started.elapsed().as_secs_f64() / 60.0).round(),
        sh("cat /proc/loadavg"),
        args.get("note").map(|n| format!(" {n}")).unwrap_or_default(),
    );
    let (md, csv) = report(&header, &workloads, &points, &engines, &samples);
    println!("{md}");
    let raw = raw_csv(&workloads, &samples);
    if std::fs::create_dir_all(&out).is_ok() {
        let kept = std::fs::read_to_string(out.join("fs.md"))
            .ok()
            .and_then(|old| old.find(ANALYSIS_MARK).map(|i| old[i..].to_string()))
            .unwrap_or_default();
        let md = if kept.is_empty() {
            md
        } else {
            format!("{md}\n{kept}")
        };
        let _ = std::fs::write(out.join("fs.md"), md);
        let _ = std::fs::write(out.join("fs.csv"), csv);
        let _ = std::fs::write(out.join("fs-raw.csv"), raw);
        eprintln!("wrote {}/fs{{.md,.csv,-raw.csv}}", out.display());
    }
}

fn mode_name(direct: bool) -> &'static str {
    if direct {
        "direct"
    } else {
        "buffered"
    }
}

/// Throughput in the workload's unit: thousands of IOPS for 4 KiB, MB/s (10^6) for 1 MiB.
fn value(w: Workload, ops: f64) -> f64 {
    if w.bs() == 4096 {
        ops / 1000.0
    } else {
        ops * w.bs() as f64 / 1e6
    }
}

fn unit(w: Workload) -> &'static str {
    if w.bs() == 4096 {
        "kIOPS"
    } else {
        "MB/s"
    }
}

fn format_rate(w: Workload, ops: f64) -> String {
    format!("{:.1} {}", value(w, ops), unit(w))
}

/// Prepares the files for `job`, runs `engine` and measures what other processes used.
fn run_one(job: &Job, engine: &str) -> (Run, f64, Option<String>) {
    prepare(job);
    let pid = std::process::id();
    let t0 = Instant::now();
    let (busy0, self0, child0) = (
        machine_busy_us().unwrap_or(0),
        proc_cpu_us(pid).unwrap_or(0),
        children_cpu_us(),
    );
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match engine {
        "fio" => run_fio(job),
        "coring" => engines::run_coring(job, CoringVariant::Plain),
        "coring-fixed" => engines::run_coring(job, CoringVariant::Fixed),
        "coring-regfile" => engines::run_coring(job, CoringVariant::RegFile),
        "coring-eager" => engines::run_coring(job, CoringVariant::Eager),
        "monoio" => engines::run_monoio(job),
        "glommio" => engines::run_glommio(job),
        "tokio" => engines::run_tokio(job),
        other => Err(format!("unknown engine {other}")),
    }))
    .unwrap_or_else(|p| {
        Err(p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into()))
    });
    let wall = t0.elapsed().as_secs_f64() * 1e6;
    let busy = machine_busy_us().unwrap_or(0).saturating_sub(busy0);
    let mine = proc_cpu_us(pid).unwrap_or(0).saturating_sub(self0)
        + children_cpu_us().saturating_sub(child0);
    let others = busy.saturating_sub(mine) as f64 / wall;
    match res {
        Ok(run) => (run, others, None),
        Err(e) => {
            let failed = Run {
                ops_per_s: f64::NAN,
                task_ops: None,
            };
            (failed, others, Some(e.replace('\n', " ")))
        }
    }
}

/// utime + stime of the waited-for children (fio) in microseconds.
fn children_cpu_us() -> u64 {
    // SAFETY: a zeroed rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid rusage to write into.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

/// Leaves the page cache as the run expects it (see the module docs).
fn prepare(job: &Job) {
    if job.workload.writes() {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&job.path)
            .unwrap_or_else(|e| die(&format!("open {}: {e}", job.path.display())));
        f.sync_data().expect("fdatasync");
        if job.direct {
            // SAFETY: fadvise on an open descriptor; no pointers.
            unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        } else {
            preread(&job.path);
        }
    } else if !job.direct {
        preread(&job.path);
    }
}

/// `fio --ioengine=io_uring` with the job's parameters; operations per second.
fn run_fio(job: &Job) -> Result<Run, String> {
    let rw = match job.workload {
        Workload::RandRead4k => "randread",
        Workload::SeqRead1m => "read",
        Workload::SeqWrite1m => "write",
    };
    let mut args = vec![
        format!("--name={rw}"),
        format!("--filename={}", job.path.display()),
        format!("--rw={rw}"),
        format!("--bs={}", job.workload.bs()),
        "--ioengine=io_uring".into(),
        format!("--iodepth={}", job.qd),
        format!("--direct={}", u8::from(job.direct)),
        "--invalidate=0".into(),
        "--time_based".into(),
        format!("--ramp_time={}", job.warm.as_secs_f64().ceil() as u64),
        format!("--runtime={}", job.secs.as_secs_f64().ceil() as u64),
        format!("--cpus_allowed={}", job.cpu),
        "--output-format=terse".into(),
    ];
    if job.workload.random() {
        args.extend(["--norandommap".into(), "--randrepeat=0".into()]);
    }
    let out = std::process::Command::new("fio")
        .args(&args)
        .output()
        .map_err(|e| format!("fio not runnable ({e}); apt-get install fio"))?;
    if !out.status.success() {
        return Err(format!("fio: {}", String::from_utf8_lossy(&out.stderr)));
    }
    // Terse v3 (1-based fields): 8 is the read IOPS, 49 the write IOPS.
    let field = if job.workload.writes() { 48 } else { 7 };
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("3;"))
        .and_then(|l| l.split(';').nth(field))
        .and_then(|v| v.parse().ok())
        .map(|ops_per_s| Run {
            ops_per_s,
            task_ops: None,
        })
        .ok_or_else(|| format!("fio: no IOPS in {text:?}"))
}

fn ensure_file(path: &Path, size: u64) {
    if std::fs::metadata(path)
        .map(|m| m.len() == size)
        .unwrap_or(false)
    {
        return;
    }
    eprintln!("creating {} ({} MiB)", path.display(), size >> 20);
    let mut f = std::fs::File::create(path)
        .unwrap_or_else(|e| die(&format!("create {}: {e}", path.display())));
    let mut chunk = vec![0u8; 1 << 20];
    let mut rng = Rng(12345);
    for b in chunk.iter_mut() {
        *b = rng.below(256) as u8;
    }
    for _ in 0..size >> 20 {
        f.write_all(&chunk).expect("write");
    }
    f.sync_all().expect("fsync");
}

fn preread(path: &Path) {
    let mut f = std::fs::File::open(path).expect("open");
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf).expect("read") > 0 {}
}

/// Raises RLIMIT_MEMLOCK to unlimited (glommio and fixed buffers register memory); returns
/// what the limit is now, for the report.
fn raise_memlock() -> String {
    let inf = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `inf` is a valid rlimit.
    let raised = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &inf) } == 0;
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `now` is a valid rlimit to write into.
    unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut now) };
    let show = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            "unlimited".to_string()
        } else {
            format!("{} KiB", v / 1024)
        }
    };
    if raised {
        format!("raised to {}", show(now.rlim_cur))
    } else {
        format!(
            "{} (raising it failed: {})",
            show(now.rlim_cur),
            std::io::Error::last_os_error()
        )
    }
}

/// The markdown report and the medians CSV.
fn report(
    header: &str,
    workloads: &[Workload],
    points: &[Point],
    engines: &[String],
    samples: &[Sample],
) -> (String, String) {
    // (point, engine) -> per-round ops; (point, round, engine) -> ops.
    let mut by_round: BTreeMap<(Point, usize, &str), f64> = BTreeMap::new();
    let mut others: BTreeMap<Point, Vec<f64>> = BTreeMap::new();
    let mut errors: BTreeMap<(&str, String), Vec<String>> = BTreeMap::new();
    for s in samples {
        by_round.insert((s.point, s.round, &s.engine), s.run.ops_per_s);
        others.entry(s.point).or_default().push(s.others);
        if let Some(e) = &s.error {
            let w = workloads[s.point.workload];
            let at = format!(
                "{} {} QD{}",
                w.name(),
                mode_name(s.point.direct),
                s.point.qd
            );
            errors.entry((&s.engine, e.clone())).or_default().push(at);
        }
    }
    let rounds = samples.iter().map(|s| s.round + 1).max().unwrap_or(0);
    let ops = |p: Point, e: &str| -> Vec<f64> {
        (0..rounds)
            .map(|r| by_round.get(&(p, r, e)).copied().unwrap_or(f64::NAN))
            .collect()
    };
    // Median over rounds of a / b, both measured in the same round.
    let ratio = |p: Point, a: &str, b: &str| -> f64 {
        let (a, b) = (ops(p, a), ops(p, b));
        median(&a.iter().zip(&b).map(|(x, y)| x / y).collect::<Vec<_>>())
    };
    let corings: Vec<&str> = engines
        .iter()
        .map(String::as_str)
        .filter(|e| e.starts_with("coring"))
        .collect();
    let peers: Vec<&str> = PEERS
        .iter()
        .copied()
        .filter(|p| engines.iter().any(|e| e == p))
        .collect();
    let has_fio = engines.iter().any(|e| e == "fio");

    let mut md = format!("# File I/O benchmark\n\n{header}\n\n");
    md.push_str(WHAT_IS_MEASURED);
    let mut csv = String::from(
        "workload,mode,qd,engine,ops_per_s,mb_per_s,vs_fio,vs_monoio,vs_glommio,vs_tokio,others_cpus\n",
    );
    for (wi, &w) in workloads.iter().enumerate() {
        let _ = write!(
            md,
            "\n## {} ({}; in parentheses: median per-round ratio to fio)\n\n| mode | QD |",
            w.name(),
            unit(w)
        );
        for e in engines {
            let _ = write!(md, " {e} |");
        }
        for p in &peers {
            let _ = write!(md, " {} vs {p} |", corings.join(" / "));
        }
        md.push_str(" others CPUs |\n|---|---|");
        md.push_str(&"---|".repeat(engines.len() + peers.len() + 1));
        md.push('\n');
        for &p in points.iter().filter(|p| p.workload == wi) {
            let _ = write!(md, "| {} | {} |", mode_name(p.direct), p.qd);
            for e in engines {
                let v = median(&ops(p, e));
                let vs_fio = if has_fio {
                    ratio(p, e, "fio")
                } else {
                    f64::NAN
                };
                if e == "fio" || !has_fio {
                    let _ = write!(md, " {:.1} |", value(w, v));
                } else {
                    let _ = write!(md, " {:.1} ({vs_fio:.2}) |", value(w, v));
                }
                let vs = |peer: &str| {
                    if engines.iter().any(|e| e == peer) {
                        format!("{:.3}", ratio(p, e, peer))
                    } else {
                        String::new()
                    }
                };
                let _ = writeln!(
                    csv,
                    "{},{},{},{e},{v:.0},{:.1},{},{},{},{},{:.3}",
                    w.name(),
                    mode_name(p.direct),
                    p.qd,
                    v * w.bs() as f64 / 1e6,
                    if has_fio {
                        format!("{vs_fio:.3}")
                    } else {
                        String::new()
                    },
                    vs("monoio"),
                    vs("glommio"),
                    vs("tokio"),
                    median(&others[&p]),
                );
            }
            for peer in &peers {
                let cells: Vec<String> = corings
                    .iter()
                    .map(|c| format!("{:.2}", ratio(p, c, peer)))
                    .collect();
                let _ = write!(md, " {} |", cells.join(" / "));
            }
            let _ = writeln!(md, " {:.2} |", median(&others[&p]));
        }
    }
    if !errors.is_empty() {
        md.push_str("\n## Errors\n\n");
        for ((engine, e), at) in &errors {
            let _ = writeln!(md, "- `{engine}` ({}): `{e}`", at.join(", "));
        }
    }
    (md, csv)
}

fn raw_csv(workloads: &[Workload], samples: &[Sample]) -> String {
    let mut csv = String::from(
        "round,workload,mode,qd,engine,ops_per_s,others_cpus,error,task_ops_min,task_ops_max\n",
    );
    for s in samples {
        let (min, max) = s
            .run
            .task_ops
            .map(|(min, max)| (min.to_string(), max.to_string()))
            .unwrap_or_default();
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{:.0},{:.3},{},{min},{max}",
            s.round,
            workloads[s.point.workload].name(),
            mode_name(s.point.direct),
            s.point.qd,
            s.engine,
            s.run.ops_per_s,
            s.others,
            s.error.as_deref().unwrap_or("").replace(',', ";"),
        );
    }
    csv
}

const WHAT_IS_MEASURED: &str = "\
What is measured (command and engines: `benches/src/bin/fs-bench/`):
- `randread4k`: 4 KiB reads at random 4 KiB-aligned offsets; `seqread1m`, `seqwrite1m`: 1 MiB
  operations at consecutive offsets, wrapping at the end of the file (at QD 32, 32 operations
  in flight at the next 32 offsets). Reads use one 1 GiB file, writes a second one (both
  fully allocated, so writes overwrite), with no fsync per operation.
- `buffered` reads come from the page cache (the file is pre-read before each run; fio runs
  with `--invalidate=0`): they measure the cost of an operation plus a copy from the cache.
  `buffered` writes measure copying into the page cache (the write file is flushed before each
  run and 1 GiB of dirty pages stays under the writeback threshold, so the disk is not
  involved). `direct` (O_DIRECT) operations measure the virtual disk.
- `fio`: `fio --ioengine=io_uring --rw=randread|read|write --bs=4k|1M --iodepth=QD
  --direct=0|1 --invalidate=0 --time_based --ramp_time=WARMUP --runtime=SECS
  --cpus_allowed=CPU` on the same file (`--norandommap --randrepeat=0` for random reads).
- `coring`: `coring::fs::OpenOptions` (`direct` for O_DIRECT), QD tasks each looping over
  `File::read_at`/`write_at` with its own `coring::fs::AlignedBuf`. `coring-fixed`: the same
  with buffers from a `coring::buf::FixedBufPool` (`READ_FIXED`, and `WRITE_FIXED` for
  direct writes: `File` sends buffered writes by address);
  `coring-regfile`: plain buffers, the file registered (`File::register`, `IOSQE_FIXED_FILE`);
  `coring-eager`: plain buffers, each op submitted at once (`Builder::eager_submit`).
- `monoio`: `monoio::fs::File::read_at`/`write_at` (io_uring driver), same task loop.
- `glommio`: `DmaFile::read_at_aligned`/`write_at` (`DmaBuffer` from `alloc_dma_buffer`,
  registered `io_memory`) for direct, `BufferedFile::read_at`/`write_at` (a `Vec<u8>` per
  write: the API consumes it) for buffered, on a `LocalExecutor` pinned to the same CPU.
- `tokio`: `tokio::fs` has no positional I/O; each operation is `spawn_blocking(pread|pwrite)`
  (what `tokio::fs` runs inside) from QD tasks on a current_thread runtime.
- `fs-raw.csv` also gives, for every run, the fewest and the most operations one of its QD
  tasks completed (`task_ops_min`, `task_ops_max`; not for fio): how evenly the engine served
  them.
- Ratios are medians of per-round ratios (both engines measured in the same round); `A vs B`
  above 1 means A is faster. `others CPUs`: CPU used by other processes during the point's
  runs (median); above ~0.1 the point is contaminated.
";
