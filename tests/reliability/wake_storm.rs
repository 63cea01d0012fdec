//! Item 15: a million wakes from other threads, at random times, while the ring thread keeps
//! blocking in `io_uring_enter`. (`tests/tasks.rs` has a 2000-round cross-thread ping-pong;
//! this is the storm, with latency and idle-CPU figures.)
//!
//! Two sender threads each drive one task. A sender publishes an item (an atomic counter) and
//! wakes the task, in batches of random size with random gaps: none, a spin of a few
//! microseconds, or a sleep long enough for the runtime to park. After each batch the sender
//! waits for the task to acknowledge the batch's last item; a lost wake-up shows as an ack
//! that never comes (the wait is bounded, so it fails instead of hanging). The time from the
//! last wake to the ack is the wake latency. The runtime also runs a kernel timeout loop, so
//! it enters the kernel for reasons of its own meanwhile.
//!
//! Idle: the runtime thread's own CPU time over a second of doing nothing (blocked on a
//! sleep), before and after the storm: no spinning while idle.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{percentile, watchdog, Rng};
use crate::{finish, serial, thread_cpu, uring};
use coring::op::timeout::Timeout;
use coring::op::Op;
use coring::runtime::Runtime;

const WAKES_PER_SENDER: u64 = 500_000;
const SENDERS: usize = 2;

struct Channel {
    sent: AtomicU64,
    acked: AtomicU64,
    waker: Mutex<Option<Waker>>,
    sender: Mutex<Option<thread::Thread>>,
}

/// The task side: acknowledges what was sent each time it is polled; done at the total.
async fn receive(ch: Arc<Channel>) -> u64 {
    let mut polls = 0u64;
    poll_fn(|cx| {
        polls += 1;
        {
            let mut slot = ch.waker.lock().unwrap();
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
        }
        let sent = ch.sent.load(Ordering::SeqCst);
        if sent > ch.acked.load(Ordering::SeqCst) {
            ch.acked.store(sent, Ordering::SeqCst);
            if let Some(t) = ch.sender.lock().unwrap().as_ref() {
                t.unpark();
            }
        }
        if sent == WAKES_PER_SENDER {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    polls
}

fn spin(micros: u64) {
    let until = Instant::now() + Duration::from_micros(micros);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// The sender side; returns the wake-to-ack latency of every batch.
fn send(ch: Arc<Channel>, seed: u64) -> Vec<Duration> {
    *ch.sender.lock().unwrap() = Some(thread::current());
    let waker = loop {
        if let Some(w) = ch.waker.lock().unwrap().clone() {
            break w;
        }
        thread::yield_now();
    };
    let mut rng = Rng::new(seed);
    let mut latencies = Vec::new();
    let mut sent = 0;
    while sent < WAKES_PER_SENDER {
        let batch = (rng.range(1, 64) as u64).min(WAKES_PER_SENDER - sent);
        for _ in 0..batch {
            sent += 1;
            ch.sent.store(sent, Ordering::SeqCst);
            match rng.next_u64() % 16 {
                0 => spin(rng.range(1, 5) as u64),
                1 if rng.next_u64() % 8 == 0 => thread::sleep(Duration::from_micros(50)),
                _ => {}
            }
            if rng.next_u64() % 2 == 0 {
                waker.wake_by_ref();
            } else {
                // Waking by value (a clone consumed), the other path through the vtable.
                let owned = waker.clone();
                owned.wake();
            }
        }
        let woke = Instant::now();
        let deadline = woke + Duration::from_secs(5);
        while ch.acked.load(Ordering::SeqCst) < sent {
            let now = Instant::now();
            assert!(
                now < deadline,
                "lost wake-up: item {sent} not acknowledged after 5 s"
            );
            if now - woke < Duration::from_micros(20) {
                std::hint::spin_loop();
            } else {
                thread::park_timeout(Duration::from_millis(1));
            }
        }
        latencies.push(woke.elapsed());
        // Now and then, leave the runtime idle long enough to park in the kernel.
        if rng.next_u64() % 4 == 0 {
            thread::sleep(Duration::from_micros(rng.range(20, 200) as u64));
        }
    }
    latencies
}

/// CPU time the runtime thread spends over `idle` with nothing to do.
fn idle_cpu(rt: &Runtime, idle: Duration) -> Duration {
    rt.block_on(async {
        let before = thread_cpu();
        coring::time::sleep(idle).await;
        thread_cpu() - before
    })
}

#[test]
fn a_million_cross_thread_wakes_lose_nothing() {
    let _serial = serial();
    watchdog(110, || {
        let rt = uring().build().unwrap();
        let idle_before = idle_cpu(&rt, Duration::from_secs(1));
        let start = Instant::now();
        let channels: Vec<Arc<Channel>> = (0..SENDERS)
            .map(|_| {
                Arc::new(Channel {
                    sent: AtomicU64::new(0),
                    acked: AtomicU64::new(0),
                    waker: Mutex::new(None),
                    sender: Mutex::new(None),
                })
            })
            .collect();
        let senders: Vec<_> = channels
            .iter()
            .enumerate()
            .map(|(i, ch)| {
                let ch = ch.clone();
                thread::spawn(move || send(ch, 77 + i as u64))
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let polls = rt.block_on(async {
            let ticker_stop = stop.clone();
            let ticker = coring::spawn(async move {
                let mut ticks = 0u64;
                while !ticker_stop.load(Ordering::SeqCst) {
                    Op::submit(Timeout::new(Duration::from_micros(700)))
                        .await
                        .unwrap();
                    ticks += 1;
                }
                ticks
            });
            let tasks: Vec<_> = channels
                .iter()
                .map(|ch| coring::spawn(receive(ch.clone())))
                .collect();
            let mut polls = 0;
            for t in tasks {
                polls += t.await.unwrap();
            }
            stop.store(true, Ordering::SeqCst);
            let ticks = ticker.await.unwrap();
            eprintln!("kernel timeouts completed meanwhile: {ticks}");
            polls
        });
        let mut latencies: Vec<Duration> = senders
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect();
        let took = start.elapsed();
        latencies.sort();
        let (p50, p99, max) = (
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            *latencies.last().unwrap(),
        );
        let idle_after = idle_cpu(&rt, Duration::from_secs(1));
        let m = rt.metrics();
        eprintln!(
            "{} wakes from {SENDERS} threads in {took:?}: {} batches, {polls} task polls; \
             wake-to-ack latency p50 {p50:?} p99 {p99:?} max {max:?}; runtime-thread CPU over \
             1 s idle: {idle_before:?} before, {idle_after:?} after; {} enters",
            WAKES_PER_SENDER * SENDERS as u64,
            latencies.len(),
            m.enters
        );
        assert!(p99 < Duration::from_millis(20), "p99 wake latency {p99:?}");
        assert!(max < Duration::from_millis(500), "max wake latency {max:?}");
        for idle in [idle_before, idle_after] {
            assert!(
                idle < Duration::from_millis(20),
                "the runtime thread used {idle:?} of CPU while idle for 1 s"
            );
        }
        finish(&rt);
    });
}

#[test]
fn idle_runtime_does_not_spin_on_the_default_backend() {
    let _serial = serial();
    watchdog(30, || {
        let rt = Runtime::new().unwrap();
        // Something pending in the kernel, and a remote waker that never fires.
        let (tx, rx) = std::sync::mpsc::channel::<Waker>();
        let cpu = rt.block_on(async {
            let parked = coring::spawn(poll_fn(move |cx| {
                let _ = tx.send(cx.waker().clone());
                Poll::<()>::Pending
            }));
            coring::task::yield_now().await;
            let before = thread_cpu();
            coring::time::sleep(Duration::from_secs(1)).await;
            let cpu = thread_cpu() - before;
            parked.abort();
            cpu
        });
        drop(rx);
        eprintln!(
            "{}: runtime thread CPU over 1 s idle: {cpu:?}",
            rt.driver_kind()
        );
        assert!(cpu < Duration::from_millis(20), "idle CPU {cpu:?}");
        finish(&rt);
    });
}
