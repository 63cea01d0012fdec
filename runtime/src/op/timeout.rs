//! Timers (`IORING_OP_TIMEOUT`).

use std::io;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types};

use super::{Completion, Fallback, OpCode};

/// `IORING_OP_TIMEOUT` with no completion count: fires once `duration` has passed.
pub struct Timeout {
    timespec: Box<types::Timespec>,
    timespec_secs: u64,
    timespec_nanos: u32,
    /// Readiness fallback: when the timer fires.
    deadline: Option<Instant>,
}

impl Timeout {
    /// A relative timeout on the monotonic clock.
    pub fn new(duration: Duration) -> Self {
        Timeout {
            timespec: Box::new(types::Timespec::from(duration)),
            timespec_secs: duration.as_secs(),
            timespec_nanos: duration.subsec_nanos(),
            deadline: None,
        }
    }
}

// SAFETY: the entry points into the op's boxed timespec.
unsafe impl OpCode for Timeout {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Timeout::new(&*self.timespec).build()
    }

    fn fallback(&mut self) -> Fallback {
        let deadline = *self.deadline.get_or_insert_with(|| {
            Instant::now() + Duration::new(self.timespec_secs, self.timespec_nanos)
        });
        if Instant::now() >= deadline {
            return Fallback::Done(Err(io::Error::from_raw_os_error(libc::ETIME)), 0);
        }
        Fallback::Until(deadline)
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
