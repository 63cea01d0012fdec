//! `coring::runtime::Handle`: `Send + Sync + Clone`; spawns `Send` futures from the runtime's
//! workers and from plain threads (onto a parked runtime, onto a chosen worker, after the
//! runtime is gone), and reads every worker's metrics from any thread.

mod common;

use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::Duration;

use common::{plain_block_on, watchdog, within};
use coring::runtime::{worker_index, Handle, Runtime};
use coring::sync::oneshot;

const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn a_handle_is_send_sync_and_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Handle>();
}

#[test]
fn current_inside_a_runtime_and_none_outside() {
    watchdog(30, || {
        assert!(Handle::try_current().is_none());
        let caught = std::panic::catch_unwind(Handle::current);
        let message = caught
            .err()
            .and_then(|p| p.downcast::<String>().ok().map(|s| *s));
        assert!(
            message
                .as_deref()
                .is_some_and(|m| m.contains("outside a coring runtime")),
            "{message:?}"
        );
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        rt.block_on(async {
            let handle = Handle::current();
            assert_eq!(handle.worker_threads(), 2);
            // From a worker, `spawn` runs the task on that worker.
            let here = handle.spawn(async { worker_index() });
            assert_eq!(within(LIMIT, "spawn here", here).await.unwrap(), Some(0));
            // Created on worker 1: a `JoinHandle` held across an await is not `Send` (yet).
            let there = coring::runtime::spawn_on_with(1, || async {
                Handle::current()
                    .spawn(async { worker_index() })
                    .await
                    .unwrap()
            });
            assert_eq!(within(LIMIT, "spawn on 1", there).await.unwrap(), Some(1));
        });
    });
}

#[test]
fn a_plain_thread_spawns_onto_a_parked_runtime_and_awaits_the_result() {
    watchdog(30, || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let handle = rt.handle();
        let (done_tx, done_rx) = oneshot::channel();
        let plain = thread::spawn(move || {
            thread::sleep(Duration::from_millis(30)); // both workers park
            let mut seen = Vec::new();
            for i in 0..20u32 {
                let task = handle.spawn(async move {
                    coring::task::yield_now().await;
                    (i * 2, worker_index())
                });
                let (v, worker) = plain_block_on(task, LIMIT).unwrap();
                assert_eq!(v, i * 2);
                seen.push(worker.expect("ran on a worker"));
            }
            let on_1 = plain_block_on(handle.spawn_on(1, async { worker_index() }), LIMIT);
            assert_eq!(on_1.unwrap(), Some(1));
            done_tx.send(seen).unwrap();
        });
        // The main thread's runtime waits in its ring for the plain thread's verdict.
        let seen = rt.block_on(async { within(LIMIT, "plain thread", done_rx).await.unwrap() });
        plain.join().unwrap();
        // Worker 0 runs tasks only inside `block_on`: spawns from outside go to workers 1..
        assert!(
            seen.iter().all(|&w| w == 1),
            "spawned from outside: {seen:?}"
        );
    });
}

#[test]
fn spawning_after_the_runtime_is_gone_reports_a_cancelled_task() {
    watchdog(30, || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let handle = rt.handle();
        drop(rt);
        for worker in 0..2 {
            let err = plain_block_on(handle.spawn_on(worker, async { 1 }), LIMIT).unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
        }
        let err = plain_block_on(handle.spawn(async { 1 }), LIMIT).unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
    });
}

#[test]
fn metrics_of_every_worker_from_another_thread() {
    watchdog(30, || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let handle = rt.handle();
        let (report_tx, report_rx) = std_mpsc::channel();
        rt.block_on(async move {
            // Some work on each worker: timers make each one park and publish.
            let work = coring::spawn_on(1, async {
                for _ in 0..5 {
                    coring::time::sleep(Duration::from_millis(1)).await;
                }
            });
            for _ in 0..5 {
                coring::time::sleep(Duration::from_millis(1)).await;
            }
            work.await.unwrap();
            coring::time::sleep(Duration::from_millis(5)).await;
            // Read from a thread that is not the runtime's while the runtime runs.
            let reader = thread::spawn(move || report_tx.send(handle.metrics()).unwrap());
            coring::time::sleep(Duration::from_millis(20)).await;
            reader.join().unwrap();
        });
        let metrics = report_rx.recv().unwrap();
        assert_eq!(metrics.len(), 2);
        for (w, m) in metrics.iter().enumerate() {
            assert!(m.enters > 0, "worker {w} published no ring entries: {m:?}");
            assert!(m.tasks_spawned > 0 || w == 0, "worker {w}: {m:?}");
        }
        assert!(metrics[1].tasks_spawned >= 1, "{:?}", metrics[1]);
    });
}
