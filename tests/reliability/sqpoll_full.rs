//! Item 11: a full submission queue under SQPOLL. With SQPOLL the driver never enters the
//! kernel to make room (the kernel thread consumes the SQ at its own pace, or sleeps), so
//! thousands of submissions into a 4-entry SQ pile up in the driver's backlog. Required: no
//! panic, every op completes, and cancels and closes issued while the backlog is full still
//! get through: pending pipe reads dropped mid-flood are cancelled (their buffers released),
//! and their files, dropped too, end up closed.
//! (`tests/sqpoll.rs` covers bursts after the SQ thread fell asleep, with plain ops only.)

use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::common::{fd_is_open, poll_once, watchdog, TempDir};
use crate::{finish, serial, uring};
use coring::fs::{File, OpenOptions};
use coring::op::timeout::Timeout;
use coring::op::Op;

const PIPES: usize = 100;
const FLOOD: usize = 3000;

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just created both descriptors; nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[test]
fn full_sq_under_sqpoll_still_cancels_and_closes() {
    let _serial = serial();
    watchdog(60, || {
        let rt = uring()
            .entries(4)
            .sqpoll(Duration::from_millis(20))
            .build()
            .unwrap();
        assert!(rt.ring_flags().sqpoll, "SQPOLL was not granted");
        let dir = TempDir::new();
        rt.block_on(async {
            let file = Rc::new(
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .open(dir.join("flood"))
                    .await
                    .unwrap(),
            );
            for round in 0..3 {
                // Reads that can only end by cancellation.
                let pipes: Vec<(Rc<File>, OwnedFd)> = (0..PIPES)
                    .map(|_| {
                        let (r, w) = pipe();
                        (Rc::new(File::from_std(std::fs::File::from(r))), w)
                    })
                    .collect();
                let numbers: Vec<i32> = pipes.iter().map(|(f, _)| f.as_raw_fd()).collect();
                let released = Rc::new(RefCell::new(0usize));
                let mut reads: Vec<Pin<Box<dyn std::future::Future<Output = ()>>>> = Vec::new();
                for (f, _) in &pipes {
                    let released = released.clone();
                    let f = f.clone();
                    let mut read = Box::pin(async move {
                        let guard = Released(released);
                        let (res, _) = f.read_at(vec![0u8; 16], 0).await;
                        drop(guard);
                        panic!("a read on an idle pipe completed: {res:?}");
                    });
                    let _ = poll_once(read.as_mut());
                    reads.push(read);
                }
                // The flood: kernel timeouts and file writes, far more than the SQ holds.
                let start = Instant::now();
                let flood: Vec<_> = (0..FLOOD)
                    .map(|i| {
                        let file = file.clone();
                        coring::spawn(async move {
                            if i % 2 == 0 {
                                Op::submit(Timeout::new(Duration::from_millis(5)))
                                    .await
                                    .unwrap();
                            } else {
                                let data = (i as u64).to_le_bytes().to_vec();
                                let (res, _) = file.write_all_at(data, i as u64 * 8).await;
                                res.unwrap();
                            }
                        })
                    })
                    .collect();
                coring::task::yield_now().await;
                // Mid-flood: cancel every pipe read and close every pipe.
                drop(reads);
                drop(pipes);
                for (i, h) in flood.into_iter().enumerate() {
                    coring::time::timeout(Duration::from_secs(20), h)
                        .await
                        .unwrap_or_else(|_| panic!("round {round}: op {i} never completed"))
                        .unwrap();
                }
                let flooded = start.elapsed();
                // Cancels and closes got through the same backlog.
                let deadline = Instant::now() + Duration::from_secs(5);
                while *released.borrow() < PIPES
                    || numbers.iter().any(|&fd| fd_is_open(fd))
                    || rt.op_slots() > 0
                {
                    assert!(
                        Instant::now() < deadline,
                        "round {round}: {} of {PIPES} reads released, {} pipes open, {} slots",
                        released.borrow(),
                        numbers.iter().filter(|&&fd| fd_is_open(fd)).count(),
                        rt.op_slots()
                    );
                    coring::time::sleep(Duration::from_millis(2)).await;
                }
                eprintln!(
                    "round {round}: {FLOOD} ops through a 4-entry SQPOLL ring in {flooded:?}; \
                     {PIPES} cancels and closes done {:?} later",
                    start.elapsed() - flooded
                );
                // Idle long enough for the SQ thread to sleep before the next round.
                coring::time::sleep(Duration::from_millis(50)).await;
            }
            // Every write landed.
            for i in (1..FLOOD).step_by(2) {
                let (res, back) = file.read_exact_at(vec![0u8; 8], i as u64 * 8).await;
                res.unwrap();
                assert_eq!(u64::from_le_bytes(back[..].try_into().unwrap()), i as u64);
            }
        });
        finish(&rt);
    });
}

/// Counts a read future dropped (its op cancelled) on drop.
struct Released(Rc<RefCell<usize>>);

impl Drop for Released {
    fn drop(&mut self) {
        *self.0.borrow_mut() += 1;
    }
}
