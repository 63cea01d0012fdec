//! Readiness (`IORING_OP_POLL_ADD`), so fd-based code can wait through the ring.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{Completion, OpCode};

/// One-shot `IORING_OP_POLL_ADD`: completes with the ready `poll(2)` events.
pub struct PollAdd {
    fd: RawFd,
    events: u32,
}

impl PollAdd {
    /// Waits until `fd` has any of `events` (`libc::POLLIN`, `POLLOUT`, ...).
    pub fn new(fd: RawFd, events: libc::c_short) -> Self {
        PollAdd {
            fd,
            events: events as u16 as u32,
        }
    }
}

// SAFETY: the entry carries no pointers.
unsafe impl OpCode for PollAdd {
    type Output = io::Result<u32>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd), self.events).build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result
    }
}
