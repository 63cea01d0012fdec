//! `coring::task::JoinSet`: results in completion order, panics and aborts reported, drop
//! aborting what is left, detaching, and many tasks.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use common::watchdog;
use coring::runtime::Runtime;
use coring::task::JoinSet;

#[test]
fn results_come_in_completion_order() {
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let mut set = JoinSet::new();
            assert!(set.is_empty());
            assert!(
                set.join_next().await.is_none(),
                "an empty set gives None at once"
            );
            for delay in [30u64, 10, 20] {
                set.spawn(async move {
                    coring::time::sleep(Duration::from_millis(delay)).await;
                    delay
                });
            }
            assert_eq!(set.len(), 3);
            let mut order = Vec::new();
            while let Some(result) = set.join_next().await {
                order.push(result.unwrap());
                assert_eq!(set.len(), 3 - order.len());
            }
            assert_eq!(order, [10, 20, 30]);
            assert!(set.is_empty());
        })
    })
}

#[test]
fn panics_and_aborts_are_join_errors() {
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let mut set = JoinSet::new();
            set.spawn(async { panic!("boom") });
            let err = set.join_next().await.unwrap().unwrap_err();
            assert!(err.is_panic());

            for _ in 0..5 {
                set.spawn(std::future::pending::<()>());
            }
            set.spawn(async {});
            coring::task::yield_now().await;
            set.abort_all();
            assert_eq!(set.len(), 6, "aborted tasks stay until joined");
            let (mut ok, mut cancelled) = (0, 0);
            while let Some(result) = set.join_next().await {
                match result {
                    Ok(()) => ok += 1,
                    Err(e) if e.is_cancelled() => cancelled += 1,
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            assert_eq!((ok, cancelled), (1, 5));
        })
    })
}

#[test]
fn dropping_the_set_aborts_its_tasks() {
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let ran = Rc::new(Cell::new(0));
            let mut set = JoinSet::new();
            for _ in 0..10 {
                let ran = ran.clone();
                set.spawn(async move {
                    coring::time::sleep(Duration::from_millis(20)).await;
                    ran.set(ran.get() + 1);
                });
            }
            drop(set);
            coring::time::sleep(Duration::from_millis(60)).await;
            assert_eq!(ran.get(), 0, "no task of a dropped set runs on");
        })
    })
}

#[test]
fn detached_tasks_run_on_and_shutdown_waits() {
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let ran = Rc::new(Cell::new(0));
            let mut set = JoinSet::new();
            for _ in 0..3 {
                let ran = ran.clone();
                set.spawn(async move {
                    coring::time::sleep(Duration::from_millis(5)).await;
                    ran.set(ran.get() + 1);
                    0
                });
            }
            set.detach_all();
            assert!(set.is_empty());
            // New tasks reuse the slots; the detached ones must not be reported for them.
            set.spawn(async { 7 });
            assert_eq!(set.join_next().await.unwrap().unwrap(), 7);
            coring::time::sleep(Duration::from_millis(30)).await;
            assert_eq!(ran.get(), 3);
            assert!(set.join_next().await.is_none());

            set.spawn(std::future::pending::<u32>());
            set.shutdown().await;
            assert!(set.is_empty());
        })
    })
}

#[test]
fn ten_thousand_tasks() {
    watchdog(60, || {
        Runtime::new().unwrap().block_on(async {
            let mut set: JoinSet<u64> = (0..10_000u64)
                .map(|i| async move {
                    if i % 3 == 0 {
                        coring::task::yield_now().await;
                    }
                    i
                })
                .collect();
            let mut sum = 0;
            while let Some(result) = set.join_next().await {
                sum += result.unwrap();
            }
            assert_eq!(sum, (0..10_000u64).sum());
        })
    })
}
