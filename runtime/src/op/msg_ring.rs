//! Ring-to-ring messages (`IORING_OP_MSG_RING`), used to wake another worker.

use std::sync::Arc;

use io_uring::{opcode, squeue, types};

use super::{Completion, OpCode};
use crate::driver::{Unparker, TOKEN_MESSAGE};

/// Posts a completion (carrying no data) into another ring, ending its wait.
pub(crate) struct MsgRing {
    target: Arc<Unparker>,
}

impl MsgRing {
    pub(crate) fn new(target: Arc<Unparker>) -> Self {
        MsgRing { target }
    }
}

// SAFETY: the entry carries no pointers.
unsafe impl OpCode for MsgRing {
    type Output = ();

    fn sqe(&mut self) -> squeue::Entry {
        opcode::MsgRingData::new(
            types::Fd(self.target.ring_fd().unwrap_or(-1)),
            0,
            TOKEN_MESSAGE,
            None,
        )
        .build()
    }

    fn complete(self, _completion: Completion) {}

    fn complete_orphan(self, completion: Completion) {
        if completion.result.is_err() {
            // The message did not arrive (the target's queue was full, or it is gone): fall
            // back to the eventfd so the wake-up is not lost.
            self.target.write_eventfd();
        }
    }
}
