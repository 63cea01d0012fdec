//! `coring::sync` (tokio's `sync`, which needs no tokio runtime) on coring: every primitive
//! within one worker, across workers, and with plain threads. Each wait here can only end
//! through a coring task being woken, so a lost or late wake hangs the test (bounded by the
//! watchdog and `within`).

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{watchdog, within};
use coring::runtime::{worker_index, Runtime};
use coring::spawn_on;
use coring::sync::{
    broadcast, mpsc, oneshot, watch, Barrier, Mutex, Notify, OnceCell, RwLock, Semaphore,
};

const LIMIT: Duration = Duration::from_secs(10);

fn workers(n: usize) -> Runtime {
    Runtime::builder().worker_threads(n).build().unwrap()
}

#[test]
fn a_mutex_serializes_tasks_on_every_worker() {
    watchdog(60, || {
        let rt = workers(2);
        rt.block_on(async {
            const TASKS: usize = 8;
            const ROUNDS: usize = 500;
            // Held across an await: a lost wake-up of a waiter would stall the count.
            let total = Arc::new(Mutex::new(0usize));
            let handles: Vec<_> = (0..TASKS)
                .map(|i| {
                    let total = total.clone();
                    spawn_on(i % 2, async move {
                        for _ in 0..ROUNDS {
                            let mut guard = total.lock().await;
                            let seen = *guard;
                            coring::task::yield_now().await;
                            *guard = seen + 1;
                        }
                    })
                })
                .collect();
            for h in handles {
                within(LIMIT, "mutex task", h).await.unwrap();
            }
            assert_eq!(*total.lock().await, TASKS * ROUNDS);
        });
    });
}

#[test]
fn a_rwlock_lets_readers_share_and_writers_exclude() {
    watchdog(60, || {
        let rt = workers(2);
        rt.block_on(async {
            let lock = Arc::new(RwLock::new(0u32));
            // Readers share: two read guards at once.
            let first = lock.read().await;
            let second = lock.read().await;
            assert_eq!((*first, *second), (0, 0));
            let writer = spawn_on(1, {
                let lock = lock.clone();
                async move {
                    *lock.write().await += 1;
                }
            });
            // The writer waits for both guards. (tokio's lock is fair: a read asked for now
            // would queue behind the writer, so none is.)
            coring::time::sleep(Duration::from_millis(20)).await;
            assert!(!writer.is_finished(), "the writer got in under read guards");
            drop(first);
            coring::time::sleep(Duration::from_millis(5)).await;
            assert!(
                !writer.is_finished(),
                "the writer got in under a read guard"
            );
            drop(second);
            within(LIMIT, "writer", writer).await.unwrap();
            assert_eq!(*lock.read().await, 1);
        });
    });
}

#[test]
fn a_semaphore_bounds_tasks_across_workers_with_owned_permits() {
    watchdog(60, || {
        let rt = workers(2);
        rt.block_on(async {
            const PERMITS: usize = 3;
            let sem = Arc::new(Semaphore::new(PERMITS));
            let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let handles: Vec<_> = (0..12)
                .map(|i| {
                    let (sem, inside, most) = (sem.clone(), inside.clone(), most.clone());
                    spawn_on(i % 2, async move {
                        let permit = sem.acquire_owned().await.unwrap();
                        let now = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                        coring::time::sleep(Duration::from_millis(2)).await;
                        inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        drop(permit);
                    })
                })
                .collect();
            for h in handles {
                within(LIMIT, "semaphore task", h).await.unwrap();
            }
            let most = most.load(std::sync::atomic::Ordering::SeqCst);
            assert!(
                (1..=PERMITS).contains(&most),
                "{most} tasks held permits at once"
            );
            assert_eq!(sem.available_permits(), PERMITS);
        });
    });
}

#[test]
fn notify_from_a_plain_thread_wakes_a_parked_task() {
    watchdog(30, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let notify = Arc::new(Notify::new());
            for _ in 0..20 {
                let n = notify.clone();
                let notifier = thread::spawn(move || {
                    thread::sleep(Duration::from_millis(2));
                    n.notify_one();
                });
                within(LIMIT, "notified", notify.notified()).await;
                notifier.join().unwrap();
            }
        });
    });
}

#[test]
fn a_barrier_releases_a_task_on_each_of_three_workers_together() {
    watchdog(60, || {
        let rt = workers(3);
        rt.block_on(async {
            let barrier = Arc::new(Barrier::new(3));
            let handles: Vec<_> = (0..3)
                .map(|w| {
                    let barrier = barrier.clone();
                    spawn_on(w, async move {
                        let mut leaders = 0;
                        for _ in 0..50 {
                            leaders += usize::from(barrier.wait().await.is_leader());
                        }
                        (worker_index(), leaders)
                    })
                })
                .collect();
            let mut leaders = 0;
            for (w, h) in handles.into_iter().enumerate() {
                let (index, led) = within(LIMIT, "barrier task", h).await.unwrap();
                assert_eq!(index, Some(w));
                leaders += led;
            }
            assert_eq!(leaders, 50, "one leader per generation");
        });
    });
}

#[test]
fn watch_and_broadcast_deliver_across_workers() {
    watchdog(60, || {
        let rt = workers(2);
        rt.block_on(async {
            let (tx, mut rx) = watch::channel(0u32);
            let watcher = spawn_on(1, async move {
                rx.wait_for(|v| *v == 100).await.map(|v| *v).unwrap()
            });
            for v in 1..=100 {
                tx.send(v).unwrap();
                coring::task::yield_now().await;
            }
            assert_eq!(within(LIMIT, "watcher", watcher).await.unwrap(), 100);

            let (tx, _) = broadcast::channel(128);
            let listeners: Vec<_> = (0..2)
                .map(|w| {
                    let mut rx = tx.subscribe();
                    spawn_on(w, async move {
                        let mut sum = 0u64;
                        while let Ok(v) = rx.recv().await {
                            sum += v;
                        }
                        sum
                    })
                })
                .collect();
            for v in 1..=100u64 {
                tx.send(v).unwrap();
            }
            drop(tx);
            for l in listeners {
                assert_eq!(within(LIMIT, "broadcast listener", l).await.unwrap(), 5050);
            }
        });
    });
}

#[test]
fn mpsc_bounded_applies_back_pressure_across_workers_and_unbounded_takes_plain_threads() {
    watchdog(60, || {
        let rt = workers(2);
        rt.block_on(async {
            let (tx, mut rx) = mpsc::channel::<u32>(4);
            let producer = spawn_on(1, async move {
                for v in 0..1000 {
                    tx.send(v).await.unwrap();
                }
            });
            let mut expected = 0;
            while let Some(v) = within(LIMIT, "bounded recv", rx.recv()).await {
                assert_eq!(v, expected, "in order");
                expected += 1;
                if expected % 100 == 0 {
                    // The producer is held back by the bound meanwhile.
                    coring::time::sleep(Duration::from_millis(1)).await;
                    assert!(rx.len() <= 4);
                }
            }
            assert_eq!(expected, 1000);
            producer.await.unwrap();

            let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
            let senders: Vec<_> = (0..4)
                .map(|t| {
                    let tx = tx.clone();
                    thread::spawn(move || {
                        for v in 0..250 {
                            tx.send(t * 1000 + v).unwrap();
                            if v % 50 == 0 {
                                thread::sleep(Duration::from_millis(1));
                            }
                        }
                    })
                })
                .collect();
            drop(tx);
            let mut got = 0;
            while within(LIMIT, "unbounded recv", rx.recv()).await.is_some() {
                got += 1;
            }
            assert_eq!(got, 1000);
            for s in senders {
                s.join().unwrap();
            }
        });
    });
}

#[test]
fn oneshot_and_once_cell_across_workers() {
    watchdog(60, || {
        let rt = workers(2);
        rt.block_on(async {
            let (tx, rx) = oneshot::channel();
            let receiver = spawn_on(1, async move { rx.await.unwrap() });
            coring::time::sleep(Duration::from_millis(10)).await; // worker 1 parks
            tx.send("across").unwrap();
            assert_eq!(within(LIMIT, "oneshot", receiver).await.unwrap(), "across");

            let (tx, rx) = oneshot::channel::<u8>();
            drop(tx);
            assert!(rx.await.is_err(), "a dropped sender closes the channel");

            let cell = Arc::new(OnceCell::new());
            let inits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let (cell, inits) = (cell.clone(), inits.clone());
                    spawn_on(i % 2, async move {
                        *cell
                            .get_or_init(|| async {
                                inits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                coring::time::sleep(Duration::from_millis(5)).await;
                                42
                            })
                            .await
                    })
                })
                .collect();
            for h in handles {
                assert_eq!(within(LIMIT, "once cell", h).await.unwrap(), 42);
            }
            assert_eq!(inits.load(std::sync::atomic::Ordering::SeqCst), 1);
        });
    });
}
