//! SQPOLL rings: echo works, the `sqpoll` option of `#[coring::test]`, and a burst of ops
//! after the kernel's submission thread went to sleep.

mod common;

use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{uring, watchdog, within, TempDir};
use coring::buf::IoBuf;
use coring::fs::OpenOptions;
use coring::net::{TcpListener, TcpStream, UnixStream};
use coring::op::timeout::Timeout;
use coring::op::Op;
use coring::runtime::Runtime;

async fn echo_roundtrips(clients: usize, rounds: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = coring::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            coring::spawn(async move {
                let mut buf = vec![0u8; 4096];
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
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            coring::spawn(async move {
                let s = TcpStream::connect(addr).await.unwrap();
                for r in 0..rounds {
                    let msg = format!("client {c} round {r}").repeat(50).into_bytes();
                    let (res, _) = s.write_all(msg.clone()).await;
                    res.unwrap();
                    let (res, back) = s.read_exact(vec![0u8; msg.len()]).await;
                    res.unwrap();
                    assert_eq!(back, msg);
                }
            })
        })
        .collect();
    for h in handles {
        within(Duration::from_secs(20), "sqpoll echo client", h)
            .await
            .unwrap();
    }
    server.abort();
}

#[test]
fn sqpoll_echo() {
    watchdog(30, || {
        let rt = uring().sqpoll(Duration::from_millis(10)).build().unwrap();
        assert!(rt.ring_flags().sqpoll, "flags: {}", rt.ring_flags());
        assert!(
            !rt.ring_flags().defer_taskrun,
            "DEFER_TASKRUN cannot go with SQPOLL"
        );
        rt.block_on(echo_roundtrips(50, 20));
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}

#[coring::test(sqpoll = 10)]
async fn sqpoll_via_test_macro() {
    within(Duration::from_secs(20), "echo", echo_roundtrips(10, 10)).await;
}

#[coring::test(sqpoll = 10, entries = 8)]
async fn sqpoll_tiny_ring_via_test_macro() {
    within(Duration::from_secs(20), "echo", echo_roundtrips(20, 5)).await;
}

/// A burst of `n` mixed ops (file writes/reads and kernel timeouts), all awaited.
async fn burst(file: Rc<coring::fs::File>, n: usize) {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let file = file.clone();
            coring::spawn(async move {
                if i % 2 == 0 {
                    Op::submit(Timeout::new(Duration::from_millis(1)))
                        .await
                        .unwrap();
                } else {
                    let data = vec![i as u8; 512];
                    let pos = i as u64 * 512;
                    let (res, _) = file.write_all_at(data.clone(), pos).await;
                    res.unwrap();
                    let (res, back) = file.read_exact_at(vec![0u8; 512], pos).await;
                    res.unwrap();
                    assert_eq!(back, data);
                }
            })
        })
        .collect();
    for h in handles {
        within(Duration::from_secs(20), "burst op", h)
            .await
            .unwrap();
    }
}

/// Reads queued ahead of the writes they wait for, more of them than the SQ holds, while the
/// SQ thread sleeps: the SQ (8 entries) takes the first reads, the rest and the writes wait in
/// the runtime's backlog. The park must keep feeding the backlog to the kernel as the SQ thread
/// frees room; a park that went to sleep waiting for a completion instead would wait forever,
/// since no read can complete before its write is submitted.
#[test]
fn sqpoll_backlog_reaches_the_kernel_while_the_runtime_waits() {
    watchdog(60, || {
        let rt = uring()
            .entries(8)
            .sqpoll(Duration::from_millis(10))
            .build()
            .unwrap();
        rt.block_on(async {
            for round in 0..3 {
                let pairs: Rc<Vec<_>> =
                    Rc::new((0..24).map(|_| UnixStream::pair().unwrap()).collect());
                // Far past the 10 ms idle time: the SQ thread is asleep when the burst comes.
                coring::time::sleep(Duration::from_millis(50)).await;
                let readers: Vec<_> = (0..pairs.len())
                    .map(|i| {
                        let pairs = pairs.clone();
                        coring::spawn(async move {
                            let (res, buf) = pairs[i].0.read(vec![0u8; 1]).await;
                            assert_eq!(res.unwrap(), 1);
                            assert_eq!(buf[0], i as u8);
                        })
                    })
                    .collect();
                let writer = {
                    let pairs = pairs.clone();
                    coring::spawn(async move {
                        for (i, (_, tx)) in pairs.iter().enumerate() {
                            let (res, _) = tx.write_all(vec![i as u8]).await;
                            res.unwrap();
                        }
                    })
                };
                within(Duration::from_secs(5), &format!("round {round}"), async {
                    writer.await.unwrap();
                    for reader in readers {
                        reader.await.unwrap();
                    }
                })
                .await;
            }
        });
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}

fn burst_after_idle(rt: Runtime) {
    let dir = TempDir::new();
    rt.block_on(async {
        let file = Rc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .open(dir.join("f"))
                .await
                .unwrap(),
        );
        for round in 0..3 {
            // Far past the 10 ms idle time: the kernel's SQ thread sleeps and must be woken.
            coring::time::sleep(Duration::from_millis(100)).await;
            let start = Instant::now();
            burst(file.clone(), 1500).await;
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "round {round} took {:?}",
                start.elapsed()
            );
            // A single op after idling, alone.
            coring::time::sleep(Duration::from_millis(50)).await;
            let (res, _) = within(
                Duration::from_secs(5),
                "single op after idle",
                file.read_at(vec![0u8; 8], 0),
            )
            .await;
            res.unwrap();
        }
    });
    assert_eq!(rt.shutdown(), 0);
    assert_eq!(rt.op_slots(), 0);
}

#[test]
fn sqpoll_burst_after_idle() {
    watchdog(60, || {
        burst_after_idle(uring().sqpoll(Duration::from_millis(10)).build().unwrap())
    });
}

#[test]
fn sqpoll_small_ring_burst_after_idle() {
    // A burst far larger than the SQ goes through the backlog while the SQ thread sleeps.
    watchdog(60, || {
        burst_after_idle(
            uring()
                .entries(8)
                .sqpoll(Duration::from_millis(10))
                .build()
                .unwrap(),
        )
    });
}

#[test]
fn sqpoll_pinned_to_cpu() {
    watchdog(30, || {
        let rt = uring()
            .sqpoll(Duration::from_millis(10))
            .sqpoll_cpu(0)
            .build()
            .unwrap();
        rt.block_on(echo_roundtrips(4, 4));
    });
}
