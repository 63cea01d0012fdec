//! Cross-thread wake-ups on coring: `wake-bench [--n 2000] [--work-us 0,1000] [--pings 20000]`.
//!
//! - **latency**: two runtimes, the waker on CPU 0 and the woken on CPU 1. Each round the waker
//!   lets the other park (a 1 ms sleep), reads the clock, sends it through a channel, then does
//!   `--work-us` of busy work before it awaits the reply. The woken runtime's task reads the
//!   clock when it resumes. Latency is the difference: with a wake that waits for the waker's
//!   next turn it grows by the busy work. Median and 99th percentile in microseconds.
//! - **ping-pong**: a runtime with two workers (pinned), a task on each, passing a counter back
//!   and forth `--pings` times over two channels: microseconds per round trip and the process's
//!   CPU per round trip (every wake crosses threads and usually finds the other worker parked).
//!
//! The channels are `coring::sync::mpsc` (tokio's), which wakes the receiver after releasing
//! its lock. (async-channel, coring's channel before, wakes with its listener list locked: with
//! a wake that lands at once, the woken side then waits for that lock, one futex wait per
//! message, which tripled the round trip here.)

use std::time::{Duration, Instant};

use coring::runtime::Runtime;
use coring::sync::mpsc;
use coring_bench::{cpu_time, pin_to};

fn spin(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn latency(n: usize, work: Duration) -> (f64, f64) {
    let (to_woken, mut from_waker) = mpsc::unbounded_channel::<Instant>();
    let (to_waker, mut from_woken) = mpsc::unbounded_channel::<Duration>();
    let woken = std::thread::spawn(move || {
        pin_to(1);
        let rt = Runtime::new().unwrap();
        rt.block_on(async move {
            while let Some(sent) = from_waker.recv().await {
                let _ = to_waker.send(sent.elapsed());
            }
        });
    });
    pin_to(0);
    let rt = Runtime::new().unwrap();
    let mut samples = rt.block_on(async move {
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            coring::time::sleep(Duration::from_millis(1)).await;
            to_woken.send(Instant::now()).unwrap();
            spin(work);
            samples.push(from_woken.recv().await.unwrap());
        }
        samples
    });
    woken.join().unwrap();
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(samples[n / 2]), us(samples[n * 99 / 100]))
}

fn ping_pong(pings: u64) -> (f64, f64) {
    let rt = Runtime::builder()
        .worker_threads(2)
        .pin_cores(true)
        .build()
        .unwrap();
    let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<u64>();
    let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<u64>();
    let (wall, cpu) = rt.block_on(async move {
        let echo = coring::runtime::spawn_on(1, async move {
            while let Some(i) = ping_rx.recv().await {
                let _ = pong_tx.send(i);
            }
        });
        let (start, cpu0) = (Instant::now(), cpu_time(libc::RUSAGE_SELF));
        for i in 0..pings {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().await, Some(i));
        }
        let out = (start.elapsed(), cpu_time(libc::RUSAGE_SELF) - cpu0);
        drop(ping_tx);
        echo.await.unwrap();
        out
    });
    let per = |d: Duration| d.as_secs_f64() * 1e6 / pings as f64;
    (per(wall), per(cpu))
}

fn main() {
    let args = coring_bench::Args::parse(&[]);
    let n: usize = args.parse_or("n", 2000);
    let works: Vec<u64> = args.list_or("work-us", &[0, 1000]);
    let pings: u64 = args.parse_or("pings", 20000);
    for work in works {
        let (p50, p99) = latency(n, Duration::from_micros(work));
        println!("latency work_us={work} p50_us={p50:.1} p99_us={p99:.1}");
    }
    let (wall, cpu) = ping_pong(pings);
    println!("ping-pong us_per_rt={wall:.2} cpu_us_per_rt={cpu:.2}");
}
