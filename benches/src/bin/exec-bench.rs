//! Executor microbenchmarks: coring vs tokio (current_thread) vs monoio, one thread each.
//!
//! `exec-bench [--n 1000000] [--reps 5] [--cpu 1] [--runtimes coring,tokio,monoio]
//!             [--benches spawn-join,yield,yield-generic,ping-pong] [--out DIR]`
//!
//! - `spawn-join`: spawn N empty tasks in batches of 1024 and await every handle of a batch
//!   before the next; ns per task.
//! - `yield`: one task awaits `yield_now` N times (coring's and tokio's own `yield_now`;
//!   monoio has none, so a future that wakes itself and returns `Pending` once, the way
//!   monoio's own code yields); ns per yield.
//! - `yield-generic`: the same with that self-waking future on every runtime.
//! - `ping-pong`: two tasks hand a token back and forth N times through a one-slot signal built
//!   from `Rc<Cell<..>>` and the task's `Waker` (no runtime primitive involved); ns per round
//!   trip (two wake-ups, two task switches).
//!
//! Every benchmark runs inside a spawned task (not the `block_on` future, which some runtimes
//! poll on a shortcut path). tokio runs on a current_thread runtime with a `LocalSet` and
//! `spawn_local` (the tasks hold `Rc`s, as thread-per-core code does).
//!
//! Each figure is the median of `reps` runs. For coring the `io_uring_enter` calls per op
//! (`Runtime::metrics()`) are printed too. Results: a table on stdout and
//! `DIR/executor.{csv,md}`.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use coring_bench::{median, pin_to, sh, Args};

const BATCH: usize = 1024;

/// Wakes itself once and returns `Pending`: the generic yield.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn yield_generic() -> YieldOnce {
    YieldOnce(false)
}

/// A one-slot, single-threaded signal: `notify` sets it and wakes the waiter.
#[derive(Default)]
struct Signal {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn wait(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.set.replace(false) {
                Poll::Ready(())
            } else {
                let mut slot = self.waker.borrow_mut();
                match slot.as_ref() {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        })
    }
}

/// The benchmarks, written once over a runtime's `spawn` (as a macro: the runtimes' spawn
/// functions and join handles have different types).
macro_rules! bench_body {
    ($which:expr, $n:expr, $spawn:path, $yield_own:expr) => {
        async move {
            let n: usize = $n;
            let start = Instant::now();
            match $which {
                "spawn-join" => {
                    let mut handles = Vec::with_capacity(BATCH);
                    let mut left = n;
                    while left > 0 {
                        let k = left.min(BATCH);
                        for _ in 0..k {
                            handles.push($spawn(async {}));
                        }
                        for h in handles.drain(..) {
                            let _ = h.await;
                        }
                        left -= k;
                    }
                }
                "yield" => {
                    for _ in 0..n {
                        $yield_own.await;
                    }
                }
                "yield-generic" => {
                    for _ in 0..n {
                        yield_generic().await;
                    }
                }
                "ping-pong" => {
                    let a = Rc::new(Signal::default());
                    let b = Rc::new(Signal::default());
                    let (a2, b2) = (a.clone(), b.clone());
                    let peer = $spawn(async move {
                        for _ in 0..n {
                            b2.wait().await;
                            a2.notify();
                        }
                    });
                    for _ in 0..n {
                        b.notify();
                        a.wait().await;
                    }
                    let _ = peer.await;
                }
                other => panic!("unknown bench {other}"),
            }
            start.elapsed().as_nanos() as f64 / n as f64
        }
    };
}

fn run_coring(which: &str, n: usize) -> (f64, f64) {
    let rt = coring::runtime::Runtime::new().expect("coring runtime");
    let m0 = rt.metrics();
    let which = which.to_string();
    let ns = rt.block_on(async move {
        coring::spawn(bench_body!(
            which.as_str(),
            n,
            coring::spawn,
            coring::task::yield_now()
        ))
        .await
        .expect("bench task")
    });
    let m1 = rt.metrics();
    (ns, (m1.enters - m0.enters) as f64 / n as f64)
}

fn run_tokio(which: &str, n: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let which = which.to_string();
    local.block_on(&rt, async move {
        tokio::task::spawn_local(bench_body!(
            which.as_str(),
            n,
            tokio::task::spawn_local,
            tokio::task::yield_now()
        ))
        .await
        .expect("bench task")
    })
}

fn run_monoio(which: &str, n: usize) -> f64 {
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .build()
        .expect("monoio runtime");
    let which = which.to_string();
    rt.block_on(async move {
        monoio::spawn(bench_body!(
            which.as_str(),
            n,
            monoio::spawn,
            yield_generic()
        ))
        .await
    })
}

fn main() {
    let args = Args::parse(&[]);
    let n: usize = args.parse_or("n", 1_000_000);
    let reps: usize = args.parse_or("reps", 5);
    let cpu: usize = args.parse_or("cpu", 1);
    let runtimes: Vec<String> = args.list_or(
        "runtimes",
        &[
            "coring".to_string(),
            "tokio".to_string(),
            "monoio".to_string(),
        ],
    );
    let out = PathBuf::from(
        args.get("out")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/../docs/bench", env!("CARGO_MANIFEST_DIR"))),
    );
    pin_to(cpu);
    let benches: Vec<String> = args.list_or(
        "benches",
        &[
            "spawn-join".to_string(),
            "yield".to_string(),
            "yield-generic".to_string(),
            "ping-pong".to_string(),
        ],
    );
    let mut csv = String::from("bench,runtime,ns_per_op,min_ns,max_ns,coring_enters_per_op\n");
    let mut md = format!(
        "executor microbenchmarks, {} UTC, kernel {}; N = {n}, median of {reps} runs, \
         pinned to CPU {cpu}; ns per op (lower is better)\n\n| bench | {} |\n|---|{}\n",
        sh("date -u '+%Y-%m-%d %H:%M'"),
        sh("uname -r"),
        runtimes.join(" | "),
        "---|".repeat(runtimes.len()),
    );
    let mut coring_enters = Vec::new();
    for b in &benches {
        let b = b.as_str();
        let mut row = format!("| {b} |");
        for r in &runtimes {
            let mut v = Vec::new();
            let mut enters = Vec::new();
            for _ in 0..reps {
                let ns = match r.as_str() {
                    "coring" => {
                        let (ns, e) = run_coring(b, n);
                        enters.push(e);
                        ns
                    }
                    "tokio" => run_tokio(b, n),
                    "monoio" => run_monoio(b, n),
                    other => coring_bench::die(&format!("unknown runtime {other}")),
                };
                v.push(ns);
            }
            let med = median(&v);
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(0.0, f64::max);
            let e = median(&enters);
            let _ = writeln!(
                csv,
                "{b},{r},{med:.1},{min:.1},{max:.1},{}",
                if e.is_finite() {
                    format!("{e:.4}")
                } else {
                    String::new()
                }
            );
            if e.is_finite() {
                coring_enters.push(format!("{b}: {e:.4}"));
            }
            let _ = write!(row, " {med:.1} |");
            eprintln!("{b:14} {r:8} {med:9.1} ns/op (min {min:.1}, max {max:.1})");
        }
        md.push_str(&row);
        md.push('\n');
    }
    if !coring_enters.is_empty() {
        let _ = writeln!(
            md,
            "\ncoring io_uring_enter calls per op: {}",
            coring_enters.join(", ")
        );
    }
    println!("{md}");
    if std::fs::create_dir_all(&out).is_ok() {
        let _ = std::fs::write(out.join("executor.csv"), csv);
        let _ = std::fs::write(out.join("executor.md"), &md);
        eprintln!("wrote {}/executor.{{csv,md}}", out.display());
    }
}
