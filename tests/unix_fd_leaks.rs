//! Descriptor passing must never leak: descriptors delivered to a receive whose future was
//! dropped are closed by the orphaned op, `MSG_CTRUNC` closes the ones that did arrive, and a
//! cancelled send releases its duplicates.
//!
//! Every test here counts the process's descriptors, so they run one at a time (`fd_lock`) in
//! their own test binary.

mod common;

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::pin::pin;
use std::time::{Duration, Instant};

use common::{assert_same_fds, fd_lock, open_fds, poll_once, uring, watchdog};
use coring::net::UnixStream;
use coring::runtime::Runtime;
use coring::time::sleep;

/// A pipe: (read end, write end), close-on-exec.
fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 succeeded: both descriptors are open and ours alone.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// Runs `f` with the fd lock held on a fresh runtime, and checks that the process holds the
/// same descriptors afterwards.
fn counted<F, Fut>(what: &'static str, f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    counted_on(Runtime::builder(), what, f)
}

/// For what only the io_uring backend does: the kernel completing a receive nobody polls.
fn counted_on_uring<F, Fut>(what: &'static str, f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    counted_on(uring(), what, f)
}

fn counted_on<F, Fut>(builder: coring::runtime::Builder, what: &'static str, f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    watchdog(20, move || {
        let _lock = fd_lock();
        let before = open_fds();
        let rt = builder.build().unwrap();
        rt.block_on(f());
        assert_eq!(rt.op_slots(), 0, "{what}: every op completed");
        drop(rt);
        assert_same_fds(&before, what);
    })
}

/// Waits (running the runtime) until the process holds `n` descriptors; panics after 2 s.
async fn fd_count_becomes(n: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = open_fds().len();
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {now} descriptors, expected {n}"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn receive_dropped_after_the_kernel_delivered_fds_closes_them() {
    counted_on_uring("dropped recv_with_fds after delivery", || async {
        let (a, b) = UnixStream::pair().unwrap();
        let (pipe_read, pipe_write) = pipe();
        let baseline = open_fds().len();
        {
            let mut recv = pin!(b.recv_with_fds(vec![0u8; 8], 4));
            assert!(poll_once(recv.as_mut()).is_pending(), "nothing sent yet");
            let (res, _) = a
                .send_with_fds(b"xy", &[pipe_write.as_fd(), pipe_read.as_fd()])
                .await;
            assert_eq!(res.unwrap(), 2);
            // The driver reaps the receive's completion; nobody polls it.
            fd_count_becomes(baseline + 2, "the kernel installs the passed descriptors").await;
            sleep(Duration::from_millis(20)).await;
        } // dropped unpolled: the orphaned op owns, and closes, them
        assert_eq!(
            open_fds().len(),
            baseline,
            "the orphan closed the descriptors"
        );
        // The message was consumed by the dropped receive, not left for the next one.
        drop(a);
        let (res, _) = b.recv_with_fds(vec![0u8; 8], 4).await;
        assert_eq!(res.unwrap().0, 0, "end of stream: nothing left");
    });
}

#[test]
fn receive_cancelled_before_delivery_leaves_the_message_queued() {
    counted("recv_with_fds cancelled before delivery", || async {
        let (a, b) = UnixStream::pair().unwrap();
        let (_pipe_read, pipe_write) = pipe();
        {
            let mut recv = pin!(b.recv_with_fds(vec![0u8; 8], 4));
            assert!(poll_once(recv.as_mut()).is_pending());
            sleep(Duration::from_millis(20)).await; // in the kernel, waiting
        } // dropped: cancelled
        sleep(Duration::from_millis(20)).await;
        let baseline = open_fds().len();
        let (res, _) = a.send_with_fds(b"z", &[pipe_write.as_fd()]).await;
        res.unwrap();
        let (res, _) = b.recv_with_fds(vec![0u8; 8], 4).await;
        let (n, fds) = res.unwrap();
        assert_eq!((n, fds.len()), (1, 1), "the cancelled receive took nothing");
        assert_eq!(open_fds().len(), baseline + 1);
        drop(fds);
        assert_eq!(open_fds().len(), baseline);
    });
}

#[test]
fn control_truncation_closes_the_fds_that_arrived() {
    counted("MSG_CTRUNC", || async {
        let (a, b) = UnixStream::pair().unwrap();
        let pipes: Vec<(File, File)> = (0..4).map(|_| pipe()).collect();
        let ends: Vec<_> = pipes.iter().map(|(_, w)| w.as_fd()).collect();
        let baseline = open_fds().len();
        let (res, _) = a.send_with_fds(b"4", &ends).await;
        res.unwrap();
        let (res, _) = b.recv_with_fds(vec![0u8; 1], 2).await;
        assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(
            open_fds().len(),
            baseline,
            "no passed descriptor stayed open"
        );
    });
}

#[test]
fn send_cancelled_while_the_socket_is_full_releases_its_duplicates() {
    counted("cancelled send_with_fds", || async {
        let (a, b) = UnixStream::pair().unwrap();
        let (_pipe_read, pipe_write) = pipe();
        // Fill `a`'s send path so the next send has to wait.
        let chunk = [0u8; 4096];
        loop {
            // SAFETY: `chunk` is valid for its length; MSG_DONTWAIT makes this non-blocking.
            let n = unsafe {
                libc::send(
                    a.as_raw_fd(),
                    chunk.as_ptr().cast(),
                    chunk.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                assert_eq!(
                    std::io::Error::last_os_error().raw_os_error(),
                    Some(libc::EAGAIN)
                );
                break;
            }
        }
        let baseline = open_fds().len();
        {
            let fds = [pipe_write.as_fd()];
            let mut send = pin!(a.send_with_fds(b"f", &fds));
            assert!(poll_once(send.as_mut()).is_pending(), "the socket is full");
            assert_eq!(open_fds().len(), baseline + 1, "the op holds a duplicate");
            sleep(Duration::from_millis(20)).await;
        } // dropped: cancelled; the duplicate goes with the op
        fd_count_becomes(baseline, "the cancelled send closes its duplicate").await;
        drop(b);
    });
}

#[test]
fn round_trip_leaves_the_table_as_it_was() {
    counted("SCM_RIGHTS round trip", || async {
        let (a, b) = UnixStream::pair().unwrap();
        let (a_read, a_write) = a.into_split();
        let (b_read, b_write) = b.into_split();
        for i in 0..50u8 {
            let (_r, w) = pipe();
            let (res, _) = a_write.send_with_fds(vec![i], &[w.as_fd()]).await;
            res.unwrap();
            let (res, buf) = b_read.recv_with_fds(vec![0u8; 1], 1).await;
            let (n, fds) = res.unwrap();
            assert_eq!((n, buf[0], fds.len()), (1, i, 1));
            // And back the other way.
            let (res, _) = b_write.send_with_fds(vec![i], &[fds[0].as_fd()]).await;
            res.unwrap();
            let (res, _) = a_read.recv_with_fds(vec![0u8; 1], 1).await;
            assert_eq!(res.unwrap().1.len(), 1);
        }
    });
}
