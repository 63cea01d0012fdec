//! Waking a driver that may be blocked in `io_uring_enter`, from any thread.
//!
//! From another coring thread the wake travels ring to ring: an `IORING_OP_MSG_RING` entry in
//! the waker's ring posts a completion into the target's ring, which ends its wait. Nothing
//! is done on the woken side. The waker enters its ring with the entry at once (one
//! `io_uring_enter`, which also submits whatever else it had queued): a wake must land when
//! `wake()` is called, even if the waking thread then blocks (joins the woken thread, waits on
//! a `std::sync` primitive) or computes before its next park. From a plain thread (or if the
//! message could not be sent or fails) the waker writes an eventfd whose read the driver keeps
//! armed in its ring. Either way the waker makes one system call, and only when the target is
//! parked ([`crate::task::park`] decides).

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::op::msg_ring::MsgRing;
use crate::op::Op;

#[derive(Debug)]
pub(crate) struct Unparker {
    eventfd: OwnedFd,
    /// The target's ring, when it has one (the epoll backend has none).
    ring_fd: Option<RawFd>,
}

impl Unparker {
    pub(super) fn new(ring_fd: Option<RawFd>) -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd we now own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Unparker { eventfd, ring_fd })
    }

    pub(super) fn eventfd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// The target ring's fd, for `IORING_OP_MSG_RING`.
    pub(crate) fn ring_fd(&self) -> Option<RawFd> {
        self.ring_fd
    }

    /// Makes the target driver's pending `io_uring_enter` return.
    pub(crate) fn unpark(self: &Arc<Self>) {
        let by_message = crate::runtime::context::with_core(|core| {
            let (Some(target), Some(own)) = (self.ring_fd, core.driver.ring_fd()) else {
                return false; // a readiness backend on either side: no ring to message
            };
            // Sent at once: the waking thread may block or compute before its next park.
            target != own && matches!(Op::detach_now(MsgRing::new(self.clone())), Ok(true))
        });
        if by_message != Some(true) {
            self.write_eventfd();
        }
    }

    /// Wakes the target through its eventfd (one syscall).
    pub(crate) fn write_eventfd(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live local into an eventfd we own. A full counter
        // (EAGAIN) means a wake-up is already pending, which is all we want.
        unsafe {
            libc::write(
                self.eventfd.as_raw_fd(),
                (&one as *const u64).cast(),
                mem::size_of::<u64>(),
            );
        }
    }
}
