//! Timers (`IORING_OP_TIMEOUT`).

use std::io;
use std::time::Duration;

use io_uring::{opcode, squeue, types};

use super::{Completion, OpCode};

/// `IORING_OP_TIMEOUT` with no completion count: fires once `duration` has passed.
pub struct Timeout {
    timespec: Box<types::Timespec>,
}

impl Timeout {
    /// A relative timeout on the monotonic clock.
    pub fn new(duration: Duration) -> Self {
        Timeout {
            timespec: Box::new(types::Timespec::from(duration)),
        }
    }
}

// SAFETY: the entry points into the op's boxed timespec.
unsafe impl OpCode for Timeout {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Timeout::new(&*self.timespec).build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        match completion.result {
            // Expiry is reported as -ETIME: that is the timer's success.
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
            other => other.map(drop),
        }
    }
}

/// `IORING_OP_LINK_TIMEOUT`: the deadline of the op it is linked behind.
pub(crate) struct LinkTimeout {
    timespec: Box<types::Timespec>,
}

impl LinkTimeout {
    pub(crate) fn new(duration: Duration) -> Self {
        LinkTimeout {
            timespec: Box::new(types::Timespec::from(duration)),
        }
    }
}

// SAFETY: the entry points into the op's boxed timespec.
unsafe impl OpCode for LinkTimeout {
    type Output = ();

    fn sqe(&mut self) -> squeue::Entry {
        opcode::LinkTimeout::new(&*self.timespec).build()
    }

    fn complete(self, _completion: Completion) {}
}
