//! A wake takes effect when `wake()` is called, from whatever thread calls it: a parked
//! runtime runs the woken task even if the waking thread then blocks (joins the woken thread,
//! waits on a `std::sync` channel) or computes. On io_uring a wake from another coring thread
//! travels as an `IORING_OP_MSG_RING` entry in the waker's ring; these tests fail if that entry
//! waits for the waking thread's next park instead of reaching the kernel at once.
//!
//! Every runtime here follows `CORING_DRIVER`, so the epoll run of the suite checks the same
//! promise on the readiness backend.

mod common;

use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::watchdog;
use coring::runtime::Runtime;
use coring::spawn_on; // the crate root's, as the README teaches
use coring::sync::oneshot;

/// Long enough for a runtime with nothing to do to be parked in the kernel.
const SETTLE: Duration = Duration::from_millis(50);
/// How long a woken runtime may take to run its task while the waker is busy or blocked: far
/// above a wake-up's real latency (tens of microseconds, a few milliseconds on a loaded VM),
/// far below the waker's work in [`the_latency_of_a_wake_excludes_the_wakers_later_work`].
const PROMPT: Duration = Duration::from_millis(100);

/// Starts a runtime on its own thread that waits for `rx`, then reports (through the returned
/// channel) the instant its task resumed. Returns once that runtime is about to park.
fn parked_runtime(
    rx: oneshot::Receiver<()>,
) -> (thread::JoinHandle<()>, std_mpsc::Receiver<Instant>) {
    let (started_tx, started_rx) = std_mpsc::channel();
    let (woken_tx, woken_rx) = std_mpsc::channel();
    let thread = thread::spawn(move || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async move {
            started_tx.send(()).unwrap();
            rx.await.expect("the waking side dropped the sender");
            woken_tx.send(Instant::now()).unwrap();
        });
    });
    started_rx.recv().unwrap();
    thread::sleep(SETTLE);
    (thread, woken_rx)
}

#[test]
fn a_wake_from_another_runtimes_thread_lands_while_that_thread_waits_for_the_woken_one() {
    watchdog(30, || {
        let (tx, rx) = oneshot::channel::<()>();
        let (woken, woken_at) = parked_runtime(rx);
        let rt = Runtime::new().unwrap();
        rt.block_on(async move {
            tx.send(()).unwrap();
            // This thread now blocks until the woken runtime has run its task: the wake must
            // not depend on anything this thread does later.
            woken_at.recv_timeout(Duration::from_secs(5)).expect(
                "the woken runtime did not run its task while the waking thread was blocked",
            );
            woken.join().unwrap();
        });
    });
}

#[test]
fn worker_0_wakes_a_task_on_worker_1_and_waits_synchronously_for_its_reply() {
    watchdog(30, || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        rt.block_on(async {
            for round in 0..3 {
                let (tx, rx) = oneshot::channel::<u32>();
                let (started_tx, started_rx) = std_mpsc::channel();
                let (reply_tx, reply_rx) = std_mpsc::channel();
                let task = spawn_on(1, async move {
                    started_tx.send(()).unwrap();
                    let n = rx.await.expect("worker 0 dropped the sender");
                    reply_tx.send(n + 1).unwrap();
                });
                started_rx.recv().unwrap();
                thread::sleep(SETTLE); // worker 1 parks
                tx.send(round).unwrap();
                // Worker 0 waits without returning to its loop.
                let reply = reply_rx
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_else(|e| {
                        panic!("round {round}: worker 1 never ran the task worker 0 woke: {e}")
                    });
                assert_eq!(reply, round + 1);
                task.await.unwrap();
            }
        });
    });
}

#[test]
fn spawn_on_from_a_worker_that_then_blocks_reaches_the_parked_target() {
    watchdog(30, || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        rt.block_on(async {
            thread::sleep(SETTLE); // worker 1 parks
            let (ran_tx, ran_rx) = std_mpsc::channel();
            let task = spawn_on(1, async move { ran_tx.send(()).unwrap() });
            ran_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("worker 1 did not run a task spawned on it while worker 0 was blocked");
            task.await.unwrap();
        });
    });
}

#[test]
fn the_latency_of_a_wake_excludes_the_wakers_later_work() {
    const LATER_WORK: Duration = Duration::from_millis(250);
    watchdog(60, || {
        let mut latencies = Vec::new();
        for _ in 0..3 {
            let (tx, rx) = oneshot::channel::<()>();
            let (woken, woken_at) = parked_runtime(rx);
            let rt = Runtime::new().unwrap();
            let sent_at = rt.block_on(async move {
                let sent_at = Instant::now();
                tx.send(()).unwrap();
                // The waker's later work: the thread is busy, not in its runtime's loop.
                thread::sleep(LATER_WORK);
                sent_at
            });
            let woken_at = woken_at.recv_timeout(Duration::from_secs(5)).unwrap();
            woken.join().unwrap();
            latencies.push(woken_at.saturating_duration_since(sent_at));
        }
        latencies.sort();
        eprintln!("wake latency with {LATER_WORK:?} of later work by the waker: {latencies:?}");
        assert!(
            latencies[0] < PROMPT,
            "a wake waited for the waking thread's later work: {latencies:?}"
        );
    });
}
