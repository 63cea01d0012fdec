//! Tasks: spawn and JoinHandle (output, abort, panic, is_finished, detach), yield_now,
//! runtimes one after another, wakes from other threads, the cooperative budget, and nested
//! block_on.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io::Write;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use common::{tcp_pair, watchdog, within};
use coring::runtime::Runtime;
use coring::task::{yield_now, JoinHandle};

fn rt() -> Runtime {
    Runtime::new().unwrap()
}

#[test]
fn join_handle_gives_output() {
    watchdog(10, || {
        let rt = rt();
        let out = rt.block_on(async {
            let a = coring::spawn(async { 40 });
            let b = coring::spawn(async {
                coring::time::sleep(Duration::from_millis(5)).await;
                String::from("two")
            });
            let nested = coring::spawn(async { coring::spawn(async { 1u8 }).await.unwrap() });
            (a.await.unwrap(), b.await.unwrap(), nested.await.unwrap())
        });
        assert_eq!(out, (40, "two".to_string(), 1));
        assert_eq!(rt.tasks(), 0);
    });
}

#[test]
fn non_send_futures_and_outputs() {
    watchdog(10, || {
        let rt = rt();
        rt.block_on(async {
            let shared = Rc::new(RefCell::new(Vec::new()));
            let s = shared.clone();
            let h = coring::spawn(async move {
                s.borrow_mut().push(1);
                Rc::new(5)
            });
            assert_eq!(*h.await.unwrap(), 5);
            assert_eq!(*shared.borrow(), [1]);
        });
    });
}

#[test]
fn abort_pending_task() {
    watchdog(10, || {
        let rt = rt();
        rt.block_on(async {
            let reached = Rc::new(Cell::new(false));
            let r = reached.clone();
            let h = coring::spawn(async move {
                coring::time::sleep(Duration::from_secs(60)).await;
                r.set(true);
            });
            yield_now().await;
            assert!(!h.is_finished());
            h.abort();
            h.abort(); // twice is harmless
            let err = h.await.unwrap_err();
            assert!(err.is_cancelled() && !err.is_panic(), "{err:?}");
            assert_eq!(err.to_string(), "task was cancelled");
            assert!(!reached.get());
            assert!(err.try_into_panic().is_err());
        });
        assert_eq!(rt.tasks(), 0);
        assert_eq!(rt.timers(), 0, "the aborted task's timer was dropped");
    });
}

#[test]
fn abort_before_first_poll_never_runs_the_task() {
    watchdog(10, || {
        let rt = rt();
        rt.block_on(async {
            let ran = Rc::new(Cell::new(false));
            let r = ran.clone();
            let h = coring::spawn(async move { r.set(true) });
            h.abort();
            assert!(h.await.unwrap_err().is_cancelled());
            assert!(!ran.get());
        });
    });
}

#[test]
fn abort_finished_task_keeps_output() {
    watchdog(10, || {
        let rt = rt();
        rt.block_on(async {
            let h = coring::spawn(async { 9 });
            while !h.is_finished() {
                yield_now().await;
            }
            h.abort();
            assert_eq!(h.await.unwrap(), 9);
        });
    });
}

#[test]
fn abort_task_with_io_in_flight_cancels_the_io() {
    watchdog(10, || {
        let rt = rt();
        rt.block_on(async {
            let (server, _client) = tcp_pair().await.unwrap();
            coring::time::sleep(Duration::from_millis(5)).await;
            let base = rt.op_slots();
            let h = coring::spawn(async move { server.read(vec![0u8; 16]).await.0 });
            coring::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(rt.op_slots(), base + 1);
            h.abort();
            assert!(h.await.unwrap_err().is_cancelled());
            coring::time::sleep(Duration::from_millis(10)).await;
            // The read was cancelled and the socket closed.
            assert_eq!(rt.op_slots(), base);
        });
    });
}

#[test]
fn task_aborting_itself() {
    // tokio allows a task to abort itself: it stops at its next await point.
    watchdog(10, || {
        let rt = rt();
        rt.block_on(async {
            let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::new(RefCell::new(None));
            let after = Rc::new(Cell::new(false));
            let (s, a) = (slot.clone(), after.clone());
            let h = coring::spawn(async move {
                yield_now().await;
                s.borrow().as_ref().expect("handle stored").abort();
                yield_now().await;
                a.set(true);
            });
            *slot.borrow_mut() = Some(h);
            within(Duration::from_secs(5), "self-abort", async {
                while !slot.borrow().as_ref().unwrap().is_finished() {
                    yield_now().await;
                }
            })
            .await;
            let h = slot.borrow_mut().take().unwrap();
            let err = h.await.unwrap_err();
            assert!(
                err.is_cancelled(),
                "self-abort must cancel the task, got {err:?}"
            );
            assert!(!after.get(), "the task ran past its abort");
        });
    });
}

#[test]
fn task_checking_its_own_handle() {
    watchdog(10, || {
        let rt = rt();
        rt.block_on(async {
            let slot: Rc<RefCell<Option<JoinHandle<bool>>>> = Rc::new(RefCell::new(None));
            let s = slot.clone();
            let h = coring::spawn(async move {
                yield_now().await;
                s.borrow().as_ref().expect("handle stored").is_finished()
            });
            *slot.borrow_mut() = Some(h);
            while !slot.borrow().as_ref().unwrap().is_finished() {
                yield_now().await;
            }
            let h = slot.borrow_mut().take().unwrap();
            let res = h.await;
            assert_eq!(
                res.as_ref().ok(),
                Some(&false),
                "a running task is not finished: {res:?}"
            );
        });
    });
}

#[test]
fn panicking_task_does_not_stop_the_runtime() {
    watchdog(10, || {
        let rt = rt();
        rt.block_on(async {
            let counter = Rc::new(Cell::new(0));
            let workers: Vec<_> = (0..10)
                .map(|_| {
                    let c = counter.clone();
                    coring::spawn(async move {
                        for _ in 0..5 {
                            coring::time::sleep(Duration::from_millis(2)).await;
                            c.set(c.get() + 1);
                        }
                    })
                })
                .collect();
            let bad = coring::spawn(async {
                coring::time::sleep(Duration::from_millis(3)).await;
                panic!("task exploded on purpose");
            });
            let bad2 = coring::spawn(async { std::panic::panic_any(42u32) });
            let err = bad.await.unwrap_err();
            assert!(err.is_panic() && !err.is_cancelled());
            assert!(
                err.to_string().contains("task exploded on purpose"),
                "{err}"
            );
            let io: std::io::Error = coring::spawn(async { panic!("again") })
                .await
                .unwrap_err()
                .into();
            assert!(io.to_string().contains("again"));
            let payload = err.into_panic();
            assert_eq!(
                payload.downcast_ref::<&str>(),
                Some(&"task exploded on purpose")
            );
            let payload = bad2.await.unwrap_err().into_panic();
            assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
            for w in workers {
                w.await.unwrap();
            }
            assert_eq!(counter.get(), 50);
        });
        // The runtime is still usable.
        assert_eq!(
            rt.block_on(async { coring::spawn(async { 3 }).await.unwrap() }),
            3
        );
    });
}

#[test]
fn panic_in_drop_of_an_aborted_task_is_contained() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("drop panics");
        }
    }
    watchdog(10, || {
        let rt = rt();
        rt.block_on(async {
            let h = coring::spawn(async {
                let _guard = PanicOnDrop;
                std::future::pending::<()>().await;
            });
            yield_now().await;
            h.abort();
            assert!(h.await.unwrap_err().is_cancelled());
            assert_eq!(coring::spawn(async { 1 }).await.unwrap(), 1);
        });
    });
}

#[test]
fn is_finished_tracks_completion() {
    watchdog(10, || {
        let rt = rt();
        rt.block_on(async {
            let h = coring::spawn(async {
                coring::time::sleep(Duration::from_millis(20)).await;
                7
            });
            assert!(!h.is_finished());
            let start = Instant::now();
            while !h.is_finished() {
                coring::time::sleep(Duration::from_millis(1)).await;
                assert!(start.elapsed() < Duration::from_secs(5));
            }
            assert!(start.elapsed() >= Duration::from_millis(15));
            assert_eq!(h.await.unwrap(), 7);
        });
    });
}

#[test]
fn dropped_handle_detaches_the_task() {
    watchdog(10, || {
        let rt = rt();
        let flag = Rc::new(Cell::new(0));
        rt.block_on(async {
            let f = flag.clone();
            drop(coring::spawn(async move {
                coring::time::sleep(Duration::from_millis(10)).await;
                f.set(1);
                coring::time::sleep(Duration::from_millis(30)).await;
                f.set(2);
            }));
            coring::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(flag.get(), 1, "the detached task keeps running");
        });
        // It lives on between block_on calls and finishes in the next one.
        assert_eq!(rt.tasks(), 1);
        rt.block_on(async {
            within(Duration::from_secs(5), "detached task", async {
                while flag.get() != 2 {
                    coring::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await;
        });
        assert_eq!(rt.tasks(), 0);
    });
}

#[test]
fn yield_now_interleaves_ready_tasks() {
    watchdog(10, || {
        let rt = rt();
        let log = rt.block_on(async {
            let log = Rc::new(RefCell::new(Vec::new()));
            let handles: Vec<_> = ['a', 'b', 'c']
                .into_iter()
                .map(|name| {
                    let log = log.clone();
                    coring::spawn(async move {
                        for _ in 0..5 {
                            log.borrow_mut().push(name);
                            yield_now().await;
                        }
                    })
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
            let log = log.borrow().clone();
            log
        });
        let s: String = log.into_iter().collect();
        assert_eq!(
            s, "abcabcabcabcabc",
            "yield_now must let the other ready tasks run"
        );
    });
}

#[test]
fn runtimes_one_after_another_on_one_thread() {
    watchdog(30, || {
        for i in 0..20 {
            let rt = Runtime::builder().entries(32).build().unwrap();
            let out = rt.block_on(async move {
                let h = coring::spawn(async move {
                    coring::time::sleep(Duration::from_millis(1)).await;
                    yield_now().await;
                    i * 2
                });
                // A task left pending is dropped with the runtime.
                coring::spawn(std::future::pending::<()>());
                h.await.unwrap()
            });
            assert_eq!(out, i * 2);
            assert_eq!(rt.tasks(), 1);
            drop(rt);
        }
    });
}

#[test]
fn two_runtimes_alive_on_one_thread() {
    // A task of runtime A woken while runtime B runs on the same thread resumes in A.
    watchdog(10, || {
        let (a, b) = (rt(), rt());
        let gate = Rc::new(Gate::default());
        let g = gate.clone();
        // The handle is returned out of A's block_on and awaited in a later one.
        #[allow(clippy::async_yields_async)]
        let h = a.block_on(async {
            let h = coring::spawn(async move { g.wait().await + 1 });
            yield_now().await;
            yield_now().await;
            h
        });
        assert!(!h.is_finished());
        b.block_on(async {
            gate.open(41);
            yield_now().await;
        });
        assert!(!h.is_finished(), "A's task ran inside B's block_on");
        assert_eq!(a.block_on(h).unwrap(), 42);
    });
}

/// A one-shot gate for local tests.
#[derive(Default)]
struct Gate {
    value: Cell<Option<u32>>,
    waker: RefCell<Option<Waker>>,
}

impl Gate {
    fn open(&self, v: u32) {
        self.value.set(Some(v));
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    async fn wait(&self) -> u32 {
        poll_fn(|cx| match self.value.get() {
            Some(v) => Poll::Ready(v),
            None => {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// A flag set by another thread, which wakes the waiting task.
#[derive(Default)]
struct RemoteFlag {
    set: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl RemoteFlag {
    fn set_and_wake(&self, by_ref: bool) {
        self.set.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap().take() {
            if by_ref {
                w.wake_by_ref();
            } else {
                w.wake();
            }
        }
    }
}

impl RemoteFlag {
    /// Waits until another thread sets the flag, and clears it.
    async fn wait(&self) {
        poll_fn(|cx| {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.set.swap(false, Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

#[test]
fn wake_from_another_thread_unblocks_the_parked_runtime() {
    watchdog(10, || {
        let rt = rt();
        for (by_ref, in_task) in [(false, false), (true, false), (false, true), (true, true)] {
            let flag = Arc::new(RemoteFlag::default());
            let f = flag.clone();
            let waker_thread = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                f.set_and_wake(by_ref);
            });
            let start = Instant::now();
            rt.block_on(async {
                // Nothing else to do: the runtime blocks in io_uring_enter.
                if in_task {
                    let f = flag.clone();
                    coring::spawn(async move { f.wait().await }).await.unwrap();
                } else {
                    flag.wait().await;
                }
            });
            let took = start.elapsed();
            waker_thread.join().unwrap();
            assert!(
                took >= Duration::from_millis(90),
                "woke too early: {took:?}"
            );
            assert!(
                took < Duration::from_secs(2),
                "remote wake (by_ref={by_ref}, in_task={in_task}) took {took:?}"
            );
        }
    });
}

#[test]
fn cross_thread_ping_pong_loses_no_wakeup() {
    // 4 std threads x 500 round trips with tasks of one runtime: a lost wake-up hangs.
    watchdog(30, || {
        let rt = rt();
        let total = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            let mut threads = Vec::new();
            let mut tasks = Vec::new();
            for _ in 0..4 {
                let flag = Arc::new(RemoteFlag::default());
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                let f = flag.clone();
                threads.push(std::thread::spawn(move || {
                    for _ in 0..500 {
                        rx.recv().unwrap();
                        f.set_and_wake(false);
                    }
                }));
                let total = total.clone();
                tasks.push(coring::spawn(async move {
                    for _ in 0..500 {
                        tx.send(()).unwrap();
                        flag.wait().await;
                        total.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for t in tasks {
                within(Duration::from_secs(20), "ping-pong", t)
                    .await
                    .unwrap();
            }
            for t in threads {
                t.join().unwrap();
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 2000);
    });
}

#[test]
fn waker_outliving_its_runtime_is_harmless() {
    watchdog(10, || {
        let flag = Arc::new(RemoteFlag::default());
        let rt = rt();
        let f = flag.clone();
        rt.block_on(async move {
            let h = coring::spawn(async move { f.wait().await });
            yield_now().await;
            drop(h);
        });
        drop(rt);
        // The stored waker belongs to a dropped runtime: waking it from anywhere is a no-op.
        let f = flag.clone();
        std::thread::spawn(move || f.set_and_wake(false))
            .join()
            .unwrap();
        flag.set_and_wake(true);
    });
}

/// Spawns an I/O task (a TCP read of data a std thread sends after 30 ms) that sets `done`.
fn spawn_io_task(done: Rc<Cell<bool>>) -> JoinHandle<Duration> {
    coring::spawn(async move {
        let (server, mut client) = tcp_pair().await.unwrap();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            client.write_all(b"wake up").unwrap();
            client
        });
        let start = Instant::now();
        let (res, buf) = server.read(Vec::with_capacity(16)).await;
        assert_eq!(res.unwrap(), 7);
        assert_eq!(buf, b"wake up");
        done.set(true);
        drop(sender.join().unwrap());
        start.elapsed()
    })
}

#[test]
fn yield_loop_does_not_starve_io() {
    watchdog(20, || {
        let rt = rt();
        rt.block_on(async {
            let done = Rc::new(Cell::new(false));
            let d = done.clone();
            let spinner = coring::spawn(async move {
                let mut spins = 0u64;
                let start = Instant::now();
                while !d.get() {
                    yield_now().await;
                    spins += 1;
                    assert!(start.elapsed() < Duration::from_secs(10), "I/O starved");
                }
                spins
            });
            let io = spawn_io_task(done.clone());
            let took = io.await.unwrap();
            assert!(
                took < Duration::from_secs(2),
                "read took {took:?} under a yield loop"
            );
            assert!(spinner.await.unwrap() > 0);
        });
    });
}

#[test]
fn yield_loop_in_block_on_future_does_not_starve_io() {
    watchdog(20, || {
        let rt = rt();
        rt.block_on(async {
            let done = Rc::new(Cell::new(false));
            let io = spawn_io_task(done.clone());
            let start = Instant::now();
            while !done.get() {
                yield_now().await;
                assert!(start.elapsed() < Duration::from_secs(10), "I/O starved");
            }
            io.await.unwrap();
        });
    });
}

#[test]
fn loop_on_ready_join_handles_does_not_starve_io() {
    watchdog(20, || {
        let rt = rt();
        rt.block_on(async {
            let done = Rc::new(Cell::new(false));
            let d = done.clone();
            let spinner = coring::spawn(async move {
                let mut queue: VecDeque<JoinHandle<u32>> =
                    (0..256).map(|i| coring::spawn(async move { i })).collect();
                let start = Instant::now();
                let mut joined = 0u64;
                while !d.get() {
                    let h = queue.pop_front().unwrap();
                    h.await.unwrap();
                    joined += 1;
                    queue.push_back(coring::spawn(async { 0 }));
                    assert!(start.elapsed() < Duration::from_secs(10), "I/O starved");
                }
                joined
            });
            let io = spawn_io_task(done.clone());
            io.await.unwrap();
            assert!(spinner.await.unwrap() > 0);
        });
    });
}

#[test]
fn budget_forces_a_yield_on_a_run_of_ready_handles() {
    // 1000 finished tasks awaited back to back from one task: the budget makes the awaiting
    // task return Pending after a bounded number of ready handles per poll.
    watchdog(20, || {
        let rt = rt();
        let per_poll = rt.block_on(async {
            let handles: Vec<JoinHandle<usize>> =
                (0..1000).map(|i| coring::spawn(async move { i })).collect();
            while !handles.iter().all(|h| h.is_finished()) {
                yield_now().await;
            }
            coring::spawn(async move {
                let mut iter = handles.into_iter().enumerate();
                let mut current = iter.next();
                let mut per_poll = Vec::new();
                poll_fn(|cx| {
                    let mut n = 0;
                    loop {
                        let Some((i, h)) = current.as_mut() else {
                            per_poll.push(n);
                            return Poll::Ready(());
                        };
                        match Pin::new(h).poll(cx) {
                            Poll::Ready(v) => {
                                assert_eq!(v.unwrap(), *i);
                                n += 1;
                                current = iter.next();
                            }
                            Poll::Pending => {
                                per_poll.push(n);
                                return Poll::Pending;
                            }
                        }
                    }
                })
                .await;
                per_poll
            })
            .await
            .unwrap()
        });
        assert_eq!(per_poll.iter().sum::<usize>(), 1000);
        assert!(
            per_poll.len() > 1 && per_poll.iter().all(|&n| n < 1000),
            "a task collected every ready handle in one poll: {per_poll:?}"
        );
    });
}

#[test]
fn nested_block_on_panics() {
    watchdog(10, || {
        let outer = rt();
        let other = rt();
        let rt = &outer;
        rt.block_on(async {
            for target in [rt, &other] {
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    target.block_on(async { 1 })
                }));
                let payload = res.expect_err("nested block_on must panic");
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                assert!(msg.contains("within a runtime"), "message: {msg}");
            }
            // The outer runtime is unharmed.
            coring::time::sleep(Duration::from_millis(1)).await;
            // Inside a task the panic becomes the task's JoinError.
            let other = Runtime::new().unwrap();
            let err = coring::spawn(async move { other.block_on(async {}) })
                .await
                .unwrap_err();
            assert!(err.is_panic());
            assert!(err.to_string().contains("within a runtime"), "{err}");
        });
    });
}

#[test]
fn many_tasks_spawned_from_tasks() {
    watchdog(20, || {
        let rt = rt();
        let count = rt.block_on(async {
            let count = Rc::new(Cell::new(0usize));
            fn fan_out(depth: u32, count: Rc<Cell<usize>>) -> JoinHandle<()> {
                coring::spawn(async move {
                    count.set(count.get() + 1);
                    if depth > 0 {
                        let a = fan_out(depth - 1, count.clone());
                        let b = fan_out(depth - 1, count.clone());
                        a.await.unwrap();
                        b.await.unwrap();
                    }
                })
            }
            fan_out(13, count.clone()).await.unwrap();
            count.get()
        });
        assert_eq!(count, (1 << 14) - 1);
        assert_eq!(rt.tasks(), 0);
    });
}
