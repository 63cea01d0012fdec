//! Item 14: panics in the three places user code runs inside the runtime.
//! - In a task's `poll` (with ops in flight): `tests/tasks.rs` checks the `JoinError` and that
//!   other tasks go on; here the task's in-flight ops must also be cancelled and drained (their
//!   buffers released, no slot left) and its socket closed.
//! - In a buffer's `Drop`, run by the driver when an op completes: for an orphaned op (its
//!   task aborted mid-flight) the driver itself drops the buffer when the cancellation's
//!   completion arrives, outside any task.
//! - In a waker: a coring future polled by hand with a waker that panics on `wake`; the driver
//!   calls it when the op completes.
//!
//! For the last two the panic may surface from `block_on` (it is not a task's panic) or be
//! contained; either way the runtime must stay consistent: other tasks' I/O, in flight at the
//! time and started afterwards, completes; `shutdown() == 0`, no slot left, no descriptor
//! leaked.

use std::cell::Cell;
use std::future::Future;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::common::{assert_same_fds, open_fds, tcp_pair, watchdog, within};
use crate::{finish, serial, uring};
use coring::buf::{IoBuf, IoBufMut};
use coring::op::timeout::Timeout;
use coring::op::Op;
use coring::runtime::{Builder, DriverPolicy, Runtime};

/// A receive buffer whose `Drop` panics while `armed`, and records that it ran.
struct Grenade {
    data: Vec<u8>,
    armed: bool,
    dropped: Rc<Cell<bool>>,
}

impl Drop for Grenade {
    fn drop(&mut self) {
        self.dropped.set(true);
        if self.armed {
            panic!("grenade buffer dropped");
        }
    }
}

// SAFETY: the bytes live in the Vec's heap allocation, which never moves or reallocates while
// the buffer exists; all of them are initialized.
unsafe impl IoBuf for Grenade {
    fn stable_ptr(&self) -> *const u8 {
        self.data.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.data.len()
    }
    fn bytes_total(&self) -> usize {
        self.data.len()
    }
}

// SAFETY: same memory as `stable_ptr`, writable for its whole length.
unsafe impl IoBufMut for Grenade {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.data.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

/// A waker that panics when woken.
struct PanickingWaker(AtomicBool);

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
        panic!("waker panics on wake");
    }
}

/// Bystanders: tasks doing socket round trips and kernel timeouts, each `rounds` times, so
/// their completions arrive in the same batches as the panicking one.
fn spawn_bystanders(tasks: usize, rounds: usize) -> Vec<coring::task::JoinHandle<()>> {
    (0..tasks)
        .map(|i| {
            coring::spawn(async move {
                let (server, mut client) = tcp_pair().await.unwrap();
                for r in 0..rounds {
                    let msg = format!("bystander {i} round {r}");
                    client.write_all(msg.as_bytes()).unwrap();
                    let (res, buf) = server.read_exact(vec![0u8; msg.len()]).await;
                    res.unwrap();
                    assert_eq!(buf, msg.as_bytes());
                    Op::submit(Timeout::new(Duration::from_millis(1)))
                        .await
                        .unwrap();
                }
            })
        })
        .collect()
}

/// After the panic: the bystanders finish, and fresh I/O works.
fn assert_runtime_goes_on(rt: &Runtime, bystanders: Vec<coring::task::JoinHandle<()>>) {
    rt.block_on(async {
        for (i, b) in bystanders.into_iter().enumerate() {
            within(Duration::from_secs(5), &format!("bystander {i}"), b)
                .await
                .unwrap();
        }
        let (server, mut client) = tcp_pair().await.unwrap();
        client.write_all(b"after").unwrap();
        let (res, buf) = within(
            Duration::from_secs(2),
            "a fresh read after the panic",
            server.read_exact(vec![0u8; 5]),
        )
        .await;
        res.unwrap();
        assert_eq!(buf, b"after");
    });
}

fn backends() -> Vec<(&'static str, Builder)> {
    vec![
        ("io_uring", uring()),
        ("epoll", Runtime::builder().driver(DriverPolicy::Epoll)),
    ]
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[test]
fn panic_in_poll_cancels_and_drains_the_tasks_ops() {
    let _serial = serial();
    watchdog(30, || {
        for (what, builder) in backends() {
            let before = open_fds();
            let rt = builder.build().unwrap();
            rt.block_on(async {
                let bystanders = spawn_bystanders(4, 20);
                let dropped = Rc::new(Cell::new(false));
                let d = dropped.clone();
                let (server, client) = tcp_pair().await.unwrap();
                let bad = coring::spawn(async move {
                    let buf = Grenade {
                        data: vec![0u8; 4096],
                        armed: false,
                        dropped: d,
                    };
                    let read = server.read(buf);
                    let timer = Op::submit(Timeout::new(Duration::from_secs(3600)));
                    let mut both = pin!(async move { (read.await, timer.await) });
                    std::future::poll_fn(|cx| {
                        let _ = both.as_mut().poll(cx);
                        Poll::Ready(())
                    })
                    .await;
                    coring::task::yield_now().await;
                    panic!("task panics with a recv and a timeout in flight");
                });
                let err = bad.await.unwrap_err();
                assert!(err.is_panic(), "{what}: {err}");
                within(Duration::from_secs(2), "the recv's cancellation", async {
                    while !dropped.get() {
                        coring::time::sleep(Duration::from_millis(1)).await;
                    }
                })
                .await;
                assert!(dropped.get(), "{what}: the recv's buffer was not released");
                for b in bystanders {
                    within(Duration::from_secs(5), "bystander", b)
                        .await
                        .unwrap();
                }
                // The task's socket was closed with it: the peer sees end of stream.
                client
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut byte = [0u8; 1];
                let n = std::io::Read::read(&mut &client, &mut byte);
                assert!(
                    matches!(n, Ok(0)) || n.is_err(),
                    "{what}: the panicked task's socket is still open: {n:?}"
                );
                coring::time::sleep(Duration::from_millis(10)).await;
                assert_eq!(rt.op_slots(), 0, "{what}: slots left after the panic");
            });
            finish(&rt);
            drop(rt);
            assert_same_fds(&before, what);
        }
    });
}

fn buffer_drop_panic(what: &'static str, builder: Builder) {
    let _serial = serial();
    watchdog(60, move || {
        {
            let before = open_fds();
            let rt = builder.build().unwrap();
            let dropped = Rc::new(Cell::new(false));
            let (bystanders, client) = rt.block_on(async {
                let bystanders = spawn_bystanders(8, 50);
                let (server, client) = tcp_pair().await.unwrap();
                let d = dropped.clone();
                let victim = coring::spawn(async move {
                    let buf = Grenade {
                        data: vec![0u8; 4096],
                        armed: true,
                        dropped: d,
                    };
                    let _ = server.read(buf).await;
                    unreachable!("nothing is sent to the victim");
                });
                coring::time::sleep(Duration::from_millis(5)).await;
                // Abort: the recv is orphaned; its cancellation completes in the driver,
                // which then drops the grenade.
                victim.abort();
                (bystanders, client)
            });
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(async {
                    coring::time::sleep(Duration::from_millis(50)).await;
                })
            }));
            match &outcome {
                Ok(()) => eprintln!("{what}: the buffer's panic was contained"),
                Err(p) => eprintln!(
                    "{what}: the buffer's panic surfaced from block_on: {}",
                    panic_message(p.as_ref())
                ),
            }
            assert!(
                dropped.get(),
                "{what}: the orphan's buffer was never dropped"
            );
            let idle = rt.block_on(async {
                let before = crate::thread_cpu();
                coring::time::sleep(Duration::from_millis(200)).await;
                crate::thread_cpu() - before
            });
            eprintln!("{what}: runtime-thread CPU over a 200 ms sleep after the panic: {idle:?}");
            assert_runtime_goes_on(&rt, bystanders);
            drop(client);
            finish(&rt);
            drop(rt);
            assert_same_fds(&before, what);
        }
    });
}

fn waker_panic(what: &'static str, builder: Builder) {
    let _serial = serial();
    watchdog(60, move || {
        {
            let before = open_fds();
            let rt = builder.build().unwrap();
            let fired = Arc::new(PanickingWaker(AtomicBool::new(false)));
            let (bystanders, server, client) = rt.block_on(async {
                let bystanders = spawn_bystanders(8, 50);
                let (server, client) = tcp_pair().await.unwrap();
                (bystanders, server, client)
            });
            let server = Rc::new(server);
            let mut client = client;
            let s = server.clone();
            let waker = Waker::from(fired.clone());
            let mut read = Box::pin(async move { s.read(vec![0u8; 16]).await });
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(async {
                    // Polled by hand with the panicking waker: the op waits in the driver.
                    let mut cx = Context::from_waker(&waker);
                    assert!(read.as_mut().poll(&mut cx).is_pending());
                    client.write_all(b"wake!").unwrap();
                    // The driver wakes the waker when the recv completes, in this sleep.
                    coring::time::sleep(Duration::from_millis(50)).await;
                })
            }));
            assert!(
                fired.0.load(Ordering::SeqCst),
                "{what}: the driver never woke the hand-polled future"
            );
            match &outcome {
                Ok(()) => eprintln!("{what}: the waker's panic was contained"),
                Err(p) => eprintln!(
                    "{what}: the waker's panic surfaced from block_on: {}",
                    panic_message(p.as_ref())
                ),
            }
            // The hand-polled read got its data: polled again (with a sane waker) it is ready.
            rt.block_on(async {
                let (res, buf) = within(Duration::from_secs(2), "the hand-polled read", read).await;
                assert_eq!(res.unwrap(), 5);
                assert_eq!(&buf[..5], b"wake!");
            });
            assert_runtime_goes_on(&rt, bystanders);
            drop((server, client));
            finish(&rt);
            drop(rt);
            assert_same_fds(&before, what);
        }
    });
}

#[test]
fn panic_in_a_buffer_drop_run_by_an_orphaned_ops_completion_io_uring() {
    buffer_drop_panic("io_uring", uring());
}

#[test]
fn panic_in_a_buffer_drop_run_by_an_orphaned_ops_completion_epoll() {
    buffer_drop_panic("epoll", Runtime::builder().driver(DriverPolicy::Epoll));
}

#[test]
fn panic_in_a_waker_woken_by_the_driver_io_uring() {
    waker_panic("io_uring", uring());
}

#[test]
fn panic_in_a_waker_woken_by_the_driver_epoll() {
    waker_panic("epoll", Runtime::builder().driver(DriverPolicy::Epoll));
}

/// A panicking waker woken in the same batch of completions as other tasks' wakers: the
/// others must still be woken (their completions are already recorded, so a dropped wake-up
/// leaves them waiting forever).
fn waker_panic_in_a_batch(what: &'static str, builder: Builder) {
    let _serial = serial();
    watchdog(60, move || {
        let rt = builder.build().unwrap();
        let (victim, victim_client, readers, clients) = rt.block_on(async {
            let (victim, victim_client) = tcp_pair().await.unwrap();
            let mut readers = Vec::new();
            let mut clients = Vec::new();
            for _ in 0..16 {
                let (server, client) = tcp_pair().await.unwrap();
                readers.push(coring::spawn(async move {
                    let (res, buf) = server.read(vec![0u8; 8]).await;
                    assert_eq!(res.unwrap(), 4);
                    assert_eq!(&buf[..4], b"data");
                }));
                clients.push(client);
            }
            // Let every reader's recv reach the kernel (or the epoll wait list).
            coring::time::sleep(Duration::from_millis(10)).await;
            (victim, victim_client, readers, clients)
        });
        let fired = Arc::new(PanickingWaker(AtomicBool::new(false)));
        let waker = Waker::from(fired.clone());
        let victim = Rc::new(victim);
        let v = victim.clone();
        let mut read = Box::pin(async move { v.read(vec![0u8; 8]).await });
        let (mut victim_client, mut clients) = (victim_client, clients);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async {
                let mut cx = Context::from_waker(&waker);
                assert!(read.as_mut().poll(&mut cx).is_pending());
                coring::time::sleep(Duration::from_millis(5)).await;
                // All the data at once, the victim's first: one batch of completions.
                victim_client.write_all(b"data").unwrap();
                for c in &mut clients {
                    c.write_all(b"data").unwrap();
                }
                coring::time::sleep(Duration::from_millis(50)).await;
            })
        }));
        assert!(
            fired.0.load(Ordering::SeqCst),
            "{what}: the waker was never woken"
        );
        if let Err(p) = &outcome {
            eprintln!(
                "{what}: the waker's panic surfaced from block_on: {}",
                panic_message(p.as_ref())
            );
        }
        rt.block_on(async {
            for (i, r) in readers.into_iter().enumerate() {
                within(
                    Duration::from_secs(2),
                    &format!("{what}: reader {i}, woken in the panicking batch"),
                    r,
                )
                .await
                .unwrap();
            }
        });
        drop((read, victim, victim_client, clients));
        finish(&rt);
    });
}

#[test]
fn a_panicking_waker_loses_no_other_wake_ups_io_uring() {
    waker_panic_in_a_batch("io_uring", uring());
}

#[test]
fn a_panicking_waker_loses_no_other_wake_ups_epoll() {
    waker_panic_in_a_batch("epoll", Runtime::builder().driver(DriverPolicy::Epoll));
}
