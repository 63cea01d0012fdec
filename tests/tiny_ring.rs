//! A tiny ring (8 SQ entries, 16 CQ entries) with thousands of concurrent ops: submissions
//! overflow into the backlog and completions into the kernel's overflow list; every op must
//! still complete exactly once.

mod common;

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use common::{uring, watchdog, within, TempDir};
use coring::buf::IoBuf;
use coring::fs::OpenOptions;
use coring::net::{TcpListener, TcpStream};
use coring::op::timeout::Timeout;
use coring::op::Op;
use coring::runtime::Runtime;

const TASKS: usize = 2000;

fn run_mixed_load(rt: &Runtime, tasks: usize) {
    let dir = TempDir::new();
    let path = dir.join("data");
    let completed = rt.block_on(async {
        let file = Rc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = coring::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                coring::spawn(async move {
                    let mut buf = vec![0u8; 64];
                    loop {
                        let (res, b) = stream.read(buf).await;
                        let n = match res {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let (res, b) = stream.write_all(b.slice(..n)).await;
                        buf = b.into_inner();
                        if res.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let completed = Rc::new(Cell::new(0usize));
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let file = file.clone();
                let completed = completed.clone();
                coring::spawn(async move {
                    match i % 4 {
                        // Kernel timeouts that all expire together: a burst of CQEs.
                        0 => Op::submit(Timeout::new(Duration::from_millis(20)))
                            .await
                            .unwrap(),
                        // A file write then read of the task's own block.
                        1 => {
                            let pos = i as u64 * 16;
                            let data = format!("{i:015}\n").into_bytes();
                            let (res, _) = file.write_all_at(data.clone(), pos).await;
                            res.unwrap();
                            let (res, back) = file.read_exact_at(vec![0u8; 16], pos).await;
                            res.unwrap();
                            assert_eq!(back, data, "task {i}");
                        }
                        // A TCP round trip through the echo server on the same ring.
                        2 => {
                            let s = TcpStream::connect(addr).await.unwrap();
                            let msg = format!("hello from {i:8}").into_bytes();
                            let (res, _) = s.write_all(msg.clone()).await;
                            res.unwrap();
                            let (res, back) = s.read_exact(vec![0u8; msg.len()]).await;
                            res.unwrap();
                            assert_eq!(back, msg, "task {i}");
                        }
                        // A user-space timer plus a yield.
                        _ => {
                            coring::time::sleep(Duration::from_millis(5)).await;
                            coring::task::yield_now().await;
                        }
                    }
                    completed.set(completed.get() + 1);
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            within(Duration::from_secs(60), &format!("task {i}"), h)
                .await
                .unwrap_or_else(|e| panic!("task {i}: {e}"));
        }
        server.abort();
        completed.get()
    });
    assert_eq!(completed, tasks);
    let m = rt.metrics();
    assert!(
        m.cqes as usize >= tasks,
        "fewer completions than ops: {m:?}"
    );
    assert_eq!(rt.shutdown(), 0);
    assert_eq!(rt.op_slots(), 0);
}

#[test]
fn tiny_ring_thousands_of_ops() {
    watchdog(60, || {
        let rt = uring().entries(8).cq_entries(16).build().unwrap();
        run_mixed_load(&rt, TASKS);
    });
}

/// The smallest ring a user can ask for: `entries(1)` (built with the 2-entry minimum).
#[test]
fn one_entry_ring() {
    watchdog(60, || {
        let rt = uring().entries(1).cq_entries(2).build().unwrap();
        run_mixed_load(&rt, 400);
    });
}

/// An op with a timeout is two linked entries that must reach the SQ together; a ring asked
/// for one entry still takes them.
#[test]
fn one_entry_ring_takes_an_op_with_a_timeout() {
    watchdog(30, || {
        let rt = uring().entries(1).cq_entries(2).build().unwrap();
        rt.block_on(async {
            let (rx, _tx) = coring::net::UnixStream::pair().unwrap();
            let read = coring::op::rw::Read::new(
                rx.as_raw_fd(),
                vec![0u8; 8],
                coring::op::rw::CURRENT_POSITION,
            );
            let (res, _) = within(
                Duration::from_secs(5),
                "a read with a 50 ms timeout",
                Op::submit_with_timeout(read, Duration::from_millis(50)),
            )
            .await;
            let err = res.expect_err("nothing was sent: the timeout ends the read");
            assert_eq!(err.raw_os_error(), Some(libc::ECANCELED), "{err}");
        });
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}

#[test]
fn completion_burst_far_beyond_cq() {
    // 3000 kernel timeouts expiring at the same instant into a 16-entry CQ.
    watchdog(60, || {
        let rt = uring().entries(8).cq_entries(16).build().unwrap();
        let done = rt.block_on(async {
            let done = Rc::new(Cell::new(0usize));
            let handles: Vec<_> = (0..3000)
                .map(|_| {
                    let done = done.clone();
                    coring::spawn(async move {
                        Op::submit(Timeout::new(Duration::from_millis(30)))
                            .await
                            .unwrap();
                        done.set(done.get() + 1);
                    })
                })
                .collect();
            for h in handles {
                within(Duration::from_secs(30), "timeout op", h)
                    .await
                    .unwrap();
            }
            done.get()
        });
        assert_eq!(done, 3000);
        assert_eq!(rt.op_slots(), 0);
    });
}

#[test]
fn zero_entries_is_rejected() {
    let err = uring()
        .entries(0)
        .build()
        .err()
        .expect("entries(0) must fail");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
}
