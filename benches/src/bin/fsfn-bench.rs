//! The whole-file functions (`fs::write`, `fs::read`, `fs::metadata`, `fs::remove_file`,
//! `fs::copy`): coring against `tokio::fs` and, as the reference, blocking `std::fs`.
//!
//! ```text
//! fsfn-bench [--files 2000] [--size 4096] [--conc 1,32] [--copy-mib 256] [--rounds 5]
//!            [--cpu 1] [--dir /var/tmp/coring-fsfn-bench] [--out DIR]
//! ```
//!
//! One thread pinned to `--cpu` (tokio's blocking threads inherit the pinning), so every
//! engine has one CPU. A pass over `--files` files of `--size` bytes: write each
//! (`fs::write`, creating it), read each (`fs::read`), stat each (`fs::metadata`), copy each
//! to a second name (`fs::copy`), remove both (`fs::remove_file`); the async engines run it
//! from `--conc` tasks, each taking every `conc`-th file. Then one `fs::copy` of a
//! `--copy-mib` file in the page cache. Each round runs every engine once, the order rotating;
//! the outputs are medians over rounds of microseconds per file (per copy for the big file),
//! and of per-round ratios `tokio / coring` and `std / coring` (above 1: coring is faster).
//!
//! Writes `fs-functions.md` in `DIR` (default: stdout only).

use std::path::{Path, PathBuf};
use std::time::Instant;

use coring_bench::{die, median, pin_to, Args};

/// The phases of one pass, in order.
const PHASES: [&str; 5] = ["write", "read", "metadata", "copy", "remove"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Std,
    Coring,
    Tokio,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Std => "std",
            Engine::Coring => "coring",
            Engine::Tokio => "tokio",
        }
    }
}

/// One engine's files: `a` is written, read, stat'ed and copied to `b`.
struct Files {
    a: Vec<PathBuf>,
    b: Vec<PathBuf>,
}

impl Files {
    fn new(dir: &Path, n: usize) -> Files {
        Files {
            a: (0..n).map(|i| dir.join(format!("a{i:05}"))).collect(),
            b: (0..n).map(|i| dir.join(format!("b{i:05}"))).collect(),
        }
    }
}

fn main() {
    let args = Args::parse(&[]);
    let n: usize = args.parse_or("files", 2000);
    let size: usize = args.parse_or("size", 4096);
    let concs: Vec<usize> = args.list_or("conc", &[1, 32]);
    let copy_mib: usize = args.parse_or("copy-mib", 256);
    let rounds: usize = args.parse_or("rounds", 5);
    let cpu: usize = args.parse_or("cpu", 1);
    let dir = PathBuf::from(args.get("dir").unwrap_or("/var/tmp/coring-fsfn-bench"));
    pin_to(cpu);

    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| die(&format!("{dir:?}: {e}")));
    let big = dir.join("big-src");
    std::fs::write(&big, vec![0x5au8; copy_mib << 20]).unwrap_or_else(|e| die(&e.to_string()));
    let data = vec![0xa5u8; size];

    // (engine, conc) -> phase -> per-round microseconds per file.
    let mut runs: Vec<(Engine, usize)> = vec![(Engine::Std, 1)];
    for &c in &concs {
        runs.push((Engine::Coring, c));
        runs.push((Engine::Tokio, c));
    }
    let mut small: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); PHASES.len()]; runs.len()];
    let mut big_copy: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let engines = [Engine::Std, Engine::Coring, Engine::Tokio];

    let started = Instant::now();
    for round in 0..rounds {
        for k in 0..runs.len() {
            let i = (k + round) % runs.len();
            let (engine, conc) = runs[i];
            let sub = dir.join(format!("{}-{conc}", engine.name()));
            std::fs::create_dir_all(&sub).expect("create the run's directory");
            let files = Files::new(&sub, n);
            let times = run_small(engine, conc, &files, &data);
            std::fs::remove_dir_all(&sub).expect("remove the run's directory");
            for (p, t) in times.iter().enumerate() {
                small[i][p].push(t * 1e6 / n as f64);
            }
            eprintln!(
                "round {round} {:6} conc {conc:2}: {}",
                engine.name(),
                PHASES
                    .iter()
                    .zip(&times)
                    .map(|(p, t)| format!("{p} {:.1} us", t * 1e6 / n as f64))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for k in 0..engines.len() {
            let e = (k + round) % engines.len();
            let to = dir.join(format!("big-{}", engines[e].name()));
            preread(&big);
            let secs = run_big_copy(engines[e], &big, &to);
            std::fs::remove_file(&to).expect("remove the copy");
            big_copy[e].push(secs);
            eprintln!(
                "round {round} {:6} copy of {copy_mib} MiB: {:.1} ms",
                engines[e].name(),
                secs * 1e3
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let mut md = format!(
        "# Whole-file functions\n\n`fsfn-bench --files {n} --size {size} --conc {} --copy-mib {copy_mib} --rounds {rounds}`, \
         kernel {}, one thread pinned to CPU {cpu}, files in `{}`, {:.0} s. Medians over rounds; \
         ratios are medians of per-round time ratios (above 1: coring is faster).\n\n",
        concs.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
        kernel(),
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    md.push_str(&format!(
        "## {n} files of {size} bytes (microseconds per file)\n\n| phase | std |"
    ));
    for &c in &concs {
        md.push_str(&format!(
            " coring x{c} | tokio x{c} | tokio / coring x{c} |"
        ));
    }
    md.push_str(" std / coring x1 |\n|---|---|");
    for _ in &concs {
        md.push_str("---|---|---|");
    }
    md.push_str("---|\n");
    let find = |e: Engine, c: usize| runs.iter().position(|&r| r == (e, c)).expect("a run");
    let std_i = find(Engine::Std, 1);
    for (p, phase) in PHASES.iter().enumerate() {
        md.push_str(&format!("| {phase} | {:.1} |", median(&small[std_i][p])));
        for &c in &concs {
            let (ci, ti) = (find(Engine::Coring, c), find(Engine::Tokio, c));
            md.push_str(&format!(
                " {:.1} | {:.1} | {:.2} |",
                median(&small[ci][p]),
                median(&small[ti][p]),
                median_ratio(&small[ti][p], &small[ci][p])
            ));
        }
        let c1 = concs.contains(&1).then(|| find(Engine::Coring, 1));
        match c1 {
            Some(ci) => md.push_str(&format!(
                " {:.2} |\n",
                median_ratio(&small[std_i][p], &small[ci][p])
            )),
            None => md.push_str(" - |\n"),
        }
    }
    md.push_str(&format!(
        "\n## `fs::copy` of a {copy_mib} MiB file in the page cache (ms)\n\n\
         | std | coring | tokio | tokio / coring | std / coring |\n|---|---|---|---|---|\n\
         | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |\n",
        median(&big_copy[0]) * 1e3,
        median(&big_copy[1]) * 1e3,
        median(&big_copy[2]) * 1e3,
        median_ratio(&big_copy[2], &big_copy[1]),
        median_ratio(&big_copy[0], &big_copy[1]),
    ));
    print!("{md}");
    if let Some(out) = args.get("out") {
        let path = Path::new(out).join("fs-functions.md");
        std::fs::write(&path, &md).unwrap_or_else(|e| die(&format!("{path:?}: {e}")));
        eprintln!("wrote {}", path.display());
    }
}

/// The median of `num[i] / den[i]` over rounds.
fn median_ratio(num: &[f64], den: &[f64]) -> f64 {
    let ratios: Vec<f64> = num.iter().zip(den).map(|(a, b)| a / b).collect();
    median(&ratios)
}

/// Runs the phases; returns the seconds each took.
fn run_small(engine: Engine, conc: usize, files: &Files, data: &[u8]) -> Vec<f64> {
    match engine {
        Engine::Std => {
            let mut times = Vec::new();
            let t = Instant::now();
            for a in &files.a {
                std::fs::write(a, data).expect("std write");
            }
            times.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            for a in &files.a {
                check(std::fs::read(a).expect("std read").len(), data.len());
            }
            times.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            for a in &files.a {
                check(
                    std::fs::metadata(a).expect("std metadata").len() as usize,
                    data.len(),
                );
            }
            times.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            for (a, b) in files.a.iter().zip(&files.b) {
                check(std::fs::copy(a, b).expect("std copy") as usize, data.len());
            }
            times.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            for (a, b) in files.a.iter().zip(&files.b) {
                std::fs::remove_file(a).expect("std remove");
                std::fs::remove_file(b).expect("std remove");
            }
            times.push(t.elapsed().as_secs_f64());
            times
        }
        Engine::Coring => {
            let rt = coring::runtime::Runtime::new().unwrap_or_else(|e| die(&e.to_string()));
            rt.block_on(phases_async(conc, files, data, coring_spawn, CoringFs))
        }
        Engine::Tokio => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| die(&e.to_string()));
            // A `LocalSet`, like coring's thread-local tasks: the tasks need not be `Send`.
            let local = tokio::task::LocalSet::new();
            rt.block_on(local.run_until(phases_async(conc, files, data, tokio_spawn, TokioFs)))
        }
    }
}

/// The async engines' file functions, so one pass serves both.
trait AsyncFs: Copy + 'static {
    async fn write(self, path: PathBuf, data: Vec<u8>);
    async fn read(self, path: PathBuf) -> usize;
    async fn metadata(self, path: PathBuf) -> usize;
    async fn copy(self, from: PathBuf, to: PathBuf) -> usize;
    async fn remove(self, path: PathBuf);
}

/// An [`AsyncFs`] on the free functions of `$fs`: `coring::fs` and `tokio::fs` name and shape
/// them alike, so one body serves both.
macro_rules! async_fs {
    ($engine:ident, $($fs:ident)::+, $name:literal) => {
        #[derive(Clone, Copy)]
        struct $engine;

        impl AsyncFs for $engine {
            async fn write(self, path: PathBuf, data: Vec<u8>) {
                $($fs)::+::write(path, data).await.expect(concat!($name, " write"))
            }
            async fn read(self, path: PathBuf) -> usize {
                $($fs)::+::read(path).await.expect(concat!($name, " read")).len()
            }
            async fn metadata(self, path: PathBuf) -> usize {
                $($fs)::+::metadata(path)
                    .await
                    .expect(concat!($name, " metadata"))
                    .len() as usize
            }
            async fn copy(self, from: PathBuf, to: PathBuf) -> usize {
                $($fs)::+::copy(from, to).await.expect(concat!($name, " copy")) as usize
            }
            async fn remove(self, path: PathBuf) {
                $($fs)::+::remove_file(path).await.expect(concat!($name, " remove"))
            }
        }
    };
}

async_fs!(CoringFs, coring::fs, "coring");
async_fs!(TokioFs, tokio::fs, "tokio");

/// Spawns a task on the runtime running on this thread and waits for it.
type Spawn = fn(std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>) -> Joined;
type Joined = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

fn coring_spawn(f: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>) -> Joined {
    let handle = coring::spawn(f);
    Box::pin(async move { handle.await.expect("coring task") })
}

fn tokio_spawn(f: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>) -> Joined {
    let handle = tokio::task::spawn_local(f);
    Box::pin(async move { handle.await.expect("tokio task") })
}

/// One pass from `conc` tasks; the seconds each phase took.
async fn phases_async<F: AsyncFs>(
    conc: usize,
    files: &Files,
    data: &[u8],
    spawn: Spawn,
    fs: F,
) -> Vec<f64> {
    let mut times = Vec::new();
    for phase in 0..PHASES.len() {
        let t = Instant::now();
        let mut joins = Vec::new();
        for first in 0..conc {
            let a: Vec<PathBuf> = files.a.iter().skip(first).step_by(conc).cloned().collect();
            let b: Vec<PathBuf> = files.b.iter().skip(first).step_by(conc).cloned().collect();
            let data = data.to_vec();
            joins.push(spawn(Box::pin(async move {
                for (a, b) in a.into_iter().zip(b) {
                    match phase {
                        0 => fs.write(a, data.clone()).await,
                        1 => check(fs.read(a).await, data.len()),
                        2 => check(fs.metadata(a).await, data.len()),
                        3 => check(fs.copy(a, b).await, data.len()),
                        _ => {
                            fs.remove(a).await;
                            fs.remove(b).await;
                        }
                    }
                }
            })));
        }
        for j in joins {
            j.await;
        }
        times.push(t.elapsed().as_secs_f64());
    }
    times
}

/// Copies `from` to `to` once; the seconds it took.
fn run_big_copy(engine: Engine, from: &Path, to: &Path) -> f64 {
    let len = std::fs::metadata(from).expect("source").len();
    let t = Instant::now();
    let copied = match engine {
        Engine::Std => std::fs::copy(from, to).expect("std copy"),
        Engine::Coring => coring::runtime::Runtime::new()
            .unwrap_or_else(|e| die(&e.to_string()))
            .block_on(coring::fs::copy(from, to))
            .expect("coring copy"),
        Engine::Tokio => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| die(&e.to_string()))
            .block_on(tokio::fs::copy(from, to))
            .expect("tokio copy"),
    };
    let secs = t.elapsed().as_secs_f64();
    check(copied as usize, len as usize);
    secs
}

fn check(got: usize, want: usize) {
    if got != want {
        die(&format!("got {got} bytes, expected {want}"));
    }
}

fn preread(path: &Path) {
    std::fs::read(path).expect("pre-read");
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
