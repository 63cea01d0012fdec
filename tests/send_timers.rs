//! coring's timers are `Send`: `Sleep`, `Timeout` and `Interval` live in futures that must be
//! `Send` (spawned through a `Handle` or `spawn_on`, as an axum handler or a tower service
//! would be). A timer dropped on another thread leaves its worker's queue; one polled on
//! another thread than its worker's fails with a message that says why.

mod common;

use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{poll_once, watchdog, within};
use coring::runtime::Runtime;
use coring::time::{interval, sleep, timeout, Interval, Sleep, Timeout};

const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn timers_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Sleep>();
    check::<Interval>();
    check::<Timeout<Sleep>>();
}

#[test]
fn send_futures_with_timers_run_through_spawn_on_and_a_handle() {
    watchdog(30, || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let handle = rt.handle();
        rt.block_on(async move {
            // A Send future holding a Sleep across an await, spawned onto worker 1.
            let slept = coring::spawn_on(1, async {
                let start = Instant::now();
                sleep(Duration::from_millis(10)).await;
                let timed_out = timeout(Duration::from_millis(5), sleep(Duration::from_secs(5)))
                    .await
                    .is_err();
                let mut ticks = interval(Duration::from_millis(2));
                for _ in 0..3 {
                    ticks.tick().await;
                }
                (start.elapsed(), timed_out, coring::runtime::worker_index())
            });
            let (elapsed, timed_out, worker) = within(LIMIT, "spawn_on", slept).await.unwrap();
            assert!(elapsed >= Duration::from_millis(15), "{elapsed:?}");
            assert!(timed_out);
            assert_eq!(worker, Some(1));
            // The same through a Handle, from a plain thread.
            let (tx, rx) = coring::sync::oneshot::channel();
            thread::spawn(move || {
                drop(handle.spawn(async move {
                    sleep(Duration::from_millis(5)).await;
                    tx.send(coring::runtime::worker_index()).unwrap();
                }));
            });
            assert_eq!(within(LIMIT, "handle spawn", rx).await.unwrap(), Some(1));
        });
    });
}

#[test]
fn a_timer_dropped_on_another_thread_leaves_its_workers_queue() {
    watchdog(30, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let mut pending = Box::pin(sleep(Duration::from_secs(3600)));
            assert!(poll_once(pending.as_mut()).is_pending());
            assert_eq!(rt.timers(), 1, "registered on this worker");
            let (tx, rx) = std_mpsc::channel();
            thread::spawn(move || {
                drop(pending);
                tx.send(()).unwrap();
            });
            rx.recv().unwrap();
            // The removal reaches this worker as a message and runs on one of its next turns
            // (yielding, not sleeping: a timer of this loop would count too).
            let deadline = Instant::now() + LIMIT;
            while rt.timers() != 0 {
                assert!(
                    Instant::now() < deadline,
                    "the timer dropped on another thread stayed in its worker's queue"
                );
                coring::task::yield_now().await;
            }
        });
    });
}

#[test]
fn a_timer_polled_on_another_thread_than_its_worker_panics_with_the_reason() {
    watchdog(30, || {
        let rt = Runtime::new().unwrap();
        let mut pending = Box::pin(sleep(Duration::from_secs(3600)));
        rt.block_on(async { assert!(poll_once(pending.as_mut()).is_pending()) });
        let other = thread::spawn(move || {
            let rt = Runtime::new().unwrap();
            let mut pending = pending;
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.block_on(async { poll_once(pending.as_mut()) })
            }));
            drop(pending); // dropped here: its removal goes to the first worker
            let payload = caught.expect_err("polled away from its worker");
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|m| m.to_string()))
                .unwrap_or_default()
        });
        let message = other.join().unwrap();
        assert!(message.contains("polled on another thread"), "{message}");
        assert!(
            message.contains("spawn_on_with"),
            "says what to do: {message}"
        );
        // The first worker removes the timer when it next runs.
        rt.block_on(coring::time::sleep(Duration::from_millis(5)));
        assert_eq!(rt.timers(), 0);
    });
}

#[test]
fn a_timer_whose_runtime_is_gone_registers_with_the_runtime_that_polls_it() {
    watchdog(30, || {
        let first = Runtime::new().unwrap();
        let mut pending = Box::pin(sleep(Duration::from_millis(30)));
        first.block_on(async { assert!(poll_once(pending.as_mut()).is_pending()) });
        drop(first);
        let second = Runtime::new().unwrap();
        let start = Instant::now();
        second.block_on(within(LIMIT, "the moved sleep", pending));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(second.timers(), 0);
    });
}
