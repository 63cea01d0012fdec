//! Dropping a read future mid-flight must never let the kernel write into memory the program
//! got back (the buffer lives on until the cancellation completes), must not lose the peer's
//! data, and `mem::forget` of an in-flight read is harmless.

mod common;

use std::io::Write;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{poll_once, tcp_pair, uring, watchdog};
use coring::buf::{IoBuf, IoBufMut};
use coring::runtime::Runtime;
use coring::time::timeout;

const LEN: usize = 64 * 1024;

/// A heap buffer that records when it is dropped.
struct Tracked {
    data: Vec<u8>,
    dropped: Arc<AtomicBool>,
}

impl Tracked {
    fn new(len: usize) -> (Tracked, Arc<AtomicBool>) {
        let dropped = Arc::new(AtomicBool::new(false));
        let buf = Tracked {
            data: vec![0u8; len],
            dropped: dropped.clone(),
        };
        (buf, dropped)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

// SAFETY: the bytes live in the Vec's heap allocation, which never moves or reallocates while
// the `Tracked` exists; all `len` bytes are initialized.
unsafe impl IoBuf for Tracked {
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
unsafe impl IoBufMut for Tracked {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.data.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

/// After a cancelled read: fill fresh buffers of the same size with a pattern, let the peer
/// send, run the runtime, and check that no pattern byte changed and that a new read gets
/// every byte the peer sent.
async fn reuse_memory_then_receive(
    server: &coring::net::TcpStream,
    client: &mut std::net::TcpStream,
) {
    let decoys: Vec<Vec<u8>> = (0..64).map(|_| vec![0xAAu8; LEN]).collect();
    let payload: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    client.write_all(&payload).unwrap();
    // Give the kernel every chance to (wrongly) complete the cancelled read.
    coring::time::sleep(Duration::from_millis(100)).await;
    for (i, d) in decoys.iter().enumerate() {
        assert!(
            d.iter().all(|&b| b == 0xAA),
            "decoy buffer {i} was written to after its memory was reused"
        );
    }
    let (res, got) = server.read_exact(Vec::with_capacity(LEN)).await;
    res.expect("the peer's data must still be there for the next read");
    assert!(got == payload, "data after a cancelled read differs");
}

#[test]
fn read_dropped_by_timeout_keeps_buffer_until_cancelled() {
    watchdog(20, || {
        let rt = uring().build().unwrap();
        rt.block_on(async {
            let (server, mut client) = tcp_pair().await.unwrap();
            let (buf, dropped) = Tracked::new(LEN);
            // The read is submitted and waits in the kernel; the sleep wins the race.
            let res = timeout(Duration::from_millis(50), server.read(buf)).await;
            assert!(res.is_err(), "nothing was sent, the read cannot complete");
            assert!(
                !dropped.load(Ordering::SeqCst),
                "the buffer was freed while the kernel still owned it"
            );
            assert_eq!(rt.op_slots(), 1, "the orphaned read keeps its slot");
            coring::time::sleep(Duration::from_millis(20)).await;
            assert!(
                dropped.load(Ordering::SeqCst),
                "the cancelled read's buffer was not released after its completion"
            );
            assert_eq!(rt.op_slots(), 0);
            reuse_memory_then_receive(&server, &mut client).await;
        });
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}

#[test]
fn read_polled_once_then_dropped() {
    watchdog(20, || {
        let rt = uring().build().unwrap();
        rt.block_on(async {
            let (server, mut client) = tcp_pair().await.unwrap();
            // Let the close of tcp_pair's listener go through the ring first.
            coring::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(rt.op_slots(), 0);
            let (buf, dropped) = Tracked::new(LEN);
            {
                let mut fut = pin!(server.read(buf));
                assert!(poll_once(fut.as_mut()).is_pending());
                assert_eq!(rt.op_slots(), 1);
            } // dropped before the ring even saw it
            assert!(!dropped.load(Ordering::SeqCst));
            coring::time::sleep(Duration::from_millis(20)).await;
            assert!(dropped.load(Ordering::SeqCst));
            assert_eq!(rt.op_slots(), 0);
            reuse_memory_then_receive(&server, &mut client).await;
        });
        assert_eq!(rt.shutdown(), 0);
    });
}

#[test]
fn read_dropped_after_kernel_armed_it_with_vec_buffers() {
    // Same with plain Vec buffers, many times, so freed allocations really get reused.
    watchdog(30, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let (server, mut client) = tcp_pair().await.unwrap();
            for _ in 0..50 {
                let res = timeout(Duration::from_millis(2), server.read(vec![0u8; LEN])).await;
                assert!(res.is_err(), "no data was sent, the read cannot complete");
            }
            coring::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(rt.op_slots(), 0);
            reuse_memory_then_receive(&server, &mut client).await;
        });
        assert_eq!(rt.shutdown(), 0);
    });
}

#[test]
fn forgotten_in_flight_read_is_harmless() {
    watchdog(20, || {
        let rt = Runtime::new().unwrap();
        let (server, mut client) = rt.block_on(async {
            let (server, client) = tcp_pair().await.unwrap();
            let mut fut = Box::pin(server.read(vec![0u8; LEN]));
            assert!(poll_once(fut.as_mut()).is_pending());
            coring::time::sleep(Duration::from_millis(10)).await;
            std::mem::forget(fut);
            (server, client)
        });
        assert_eq!(rt.op_slots(), 1, "the forgotten read is still in flight");
        // The kernel completes the forgotten read into its leaked buffer.
        client.write_all(b"into the void").unwrap();
        let start = Instant::now();
        assert_eq!(rt.shutdown(), 0, "shutdown must reap the forgotten op");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(rt.op_slots(), 0);
        drop(server);
        drop(rt);
        // The thread can run another runtime afterwards.
        let rt = Runtime::new().unwrap();
        rt.block_on(coring::time::sleep(Duration::from_millis(1)));
    });
}

#[test]
fn forgotten_in_flight_read_cancelled_by_runtime_drop() {
    watchdog(20, || {
        let rt = Runtime::new().unwrap();
        let client = rt.block_on(async {
            let (server, client) = tcp_pair().await.unwrap();
            let mut fut = Box::pin(server.read(vec![0u8; LEN]));
            assert!(poll_once(fut.as_mut()).is_pending());
            coring::time::sleep(Duration::from_millis(10)).await;
            std::mem::forget(fut);
            drop(server);
            client
        });
        let start = Instant::now();
        drop(rt);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        drop(client);
    });
}
