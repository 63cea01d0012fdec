//! Readiness (`IORING_OP_POLL_ADD`), so fd-based code can wait through the ring.

use std::io;

use io_uring::{opcode, squeue};

use super::{Completion, Fallback, FileRef, Interest, OpCode};

/// One-shot `IORING_OP_POLL_ADD`: completes with the ready `poll(2)` events.
pub struct PollAdd {
    fd: FileRef,
    events: u32,
}

impl PollAdd {
    /// Waits until `fd` has any of `events` (`libc::POLLIN`, `POLLOUT`, ...).
    pub fn new(fd: impl Into<FileRef>, events: libc::c_short) -> Self {
        PollAdd {
            fd: fd.into(),
            events: events as u16 as u32,
        }
    }
}

// SAFETY: the entry carries no pointers.
unsafe impl OpCode for PollAdd {
    type Output = io::Result<u32>;

    fn sqe(&mut self) -> squeue::Entry {
        on_file!(self.fd, |fd| opcode::PollAdd::new(fd, self.events).build())
    }

    fn fallback(&mut self) -> Fallback {
        let mut pfd = libc::pollfd {
            fd: self.fd.raw(),
            events: self.events as libc::c_short,
            revents: 0,
        };
        // SAFETY: one pollfd on our stack, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        if n > 0 {
            return Fallback::Done(Ok(pfd.revents as u16 as u32), 0);
        }
        let interest = if self.events & libc::POLLOUT as u32 != 0 {
            Interest::Writable
        } else {
            Interest::Readable
        };
        Fallback::Wait(self.fd.raw(), interest)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result
    }
}
