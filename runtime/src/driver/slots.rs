//! The table of in-flight ops.
//!
//! Every submitted op owns one slot until its terminal completion. `user_data` is the slot key
//! in the low 32 bits and a per-driver generation in the high 32 bits, so a stray or late
//! completion (for a slot that was freed and reused) never reaches the wrong task.

use std::collections::VecDeque;
use std::task::{Poll, Waker};

use slab::Slab;

use crate::op::Orphan;

/// `user_data` of entries whose completions carry no meaning (async-cancel requests).
pub(crate) const TOKEN_IGNORE: u64 = u64::MAX;
/// `user_data` of the driver's own wake-up read on its eventfd.
pub(crate) const TOKEN_WAKE: u64 = u64::MAX - 1;

/// A completion as the ring delivered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cqe {
    pub(crate) result: i32,
    pub(crate) flags: u32,
}

/// Identifies one in-flight op: a slot key and the generation it was submitted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpKey {
    index: u32,
    generation: u32,
}

impl OpKey {
    /// The slot index (dense: small integers, reused).
    pub(crate) fn index(self) -> usize {
        self.index as usize
    }

    pub(crate) fn user_data(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    pub(crate) fn from_user_data(user_data: u64) -> Self {
        OpKey {
            index: user_data as u32,
            generation: (user_data >> 32) as u32,
        }
    }
}

/// Where an op is in its life, as seen from user space.
pub(crate) enum Lifecycle {
    /// Submitted; nobody has polled it yet.
    Submitted,
    /// A task awaits the completion.
    Waiting(Waker),
    /// The future was dropped: the op's resources wait here for the terminal completion.
    Orphaned(Box<dyn Orphan>),
    /// The completion arrived; the future has not collected it yet.
    Completed(Cqe),
    /// A multishot op: its completions queue up until its stream takes them. Boxed: the
    /// queue would triple the size of every slot, and single-shot ops are the common case.
    Streaming(Box<Stream>),
}

/// The state of a multishot op's slot.
#[derive(Default)]
pub(crate) struct Stream {
    pub(crate) ready: VecDeque<Cqe>,
    pub(crate) waker: Option<Waker>,
    /// The last completion (without `IORING_CQE_F_MORE`) has arrived.
    pub(crate) finished: bool,
}

impl Lifecycle {
    /// Whether the kernel may still post completions (or touch memory) for this op.
    fn in_flight(&self) -> bool {
        match self {
            Lifecycle::Completed(_) => false,
            Lifecycle::Streaming(stream) => !stream.finished,
            _ => true,
        }
    }
}

struct Slot {
    generation: u32,
    lifecycle: Lifecycle,
}

/// The op table.
#[derive(Default)]
pub(crate) struct Slots {
    slab: Slab<Slot>,
    next_generation: u32,
}

impl Slots {
    pub(crate) fn insert(&mut self, lifecycle: Lifecycle) -> OpKey {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let index = self.slab.insert(Slot {
            generation,
            lifecycle,
        });
        // Slab keys grow only as far as the number of ops in flight at once; a ring cannot have
        // anywhere near 4 billion, and the two top values are reserved tokens.
        let index = u32::try_from(index)
            .ok()
            .filter(|&i| i < u32::MAX - 1)
            .expect("coring: more than 4 billion ops in flight");
        OpKey { index, generation }
    }

    pub(crate) fn get_mut(&mut self, key: OpKey) -> Option<&mut Lifecycle> {
        match self.slab.get_mut(key.index as usize) {
            Some(slot) if slot.generation == key.generation => Some(&mut slot.lifecycle),
            _ => None,
        }
    }

    /// Collects a single-shot op's completion, or leaves `waker` for it. Returns the waker
    /// this replaced, for the caller to drop once its borrow of the table is released.
    pub(crate) fn poll(&mut self, key: OpKey, waker: &Waker) -> (Poll<Cqe>, Option<Waker>) {
        let Some(lifecycle) = self.get_mut(key) else {
            // Only after a shutdown whose drain completed the op and dropped its result.
            let cancelled = Cqe {
                result: -libc::ECANCELED,
                flags: 0,
            };
            return (Poll::Ready(cancelled), None);
        };
        match lifecycle {
            Lifecycle::Completed(_) => match self.slab.remove(key.index()).lifecycle {
                Lifecycle::Completed(cqe) => (Poll::Ready(cqe), None),
                _ => unreachable!("slot was just seen completed"),
            },
            Lifecycle::Waiting(current) if current.will_wake(waker) => (Poll::Pending, None),
            Lifecycle::Waiting(current) => {
                let stale = std::mem::replace(current, waker.clone());
                (Poll::Pending, Some(stale))
            }
            Lifecycle::Submitted => {
                *lifecycle = Lifecycle::Waiting(waker.clone());
                (Poll::Pending, None)
            }
            Lifecycle::Orphaned(_) | Lifecycle::Streaming(_) => {
                unreachable!("only a single-shot op's future polls this way")
            }
        }
    }

    /// Completes a single-shot op; returns the waker to wake (after the borrow is released).
    pub(crate) fn complete(&mut self, key: OpKey, cqe: Cqe) -> Option<Waker> {
        let lifecycle = self.get_mut(key)?;
        match std::mem::replace(lifecycle, Lifecycle::Completed(cqe)) {
            Lifecycle::Waiting(waker) => Some(waker),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, key: OpKey) -> Option<Lifecycle> {
        self.get_mut(key)?;
        Some(self.slab.remove(key.index as usize).lifecycle)
    }

    /// Ops the kernel still owns (everything not yet completed).
    pub(crate) fn in_flight(&self) -> usize {
        self.slab
            .iter()
            .filter(|(_, s)| s.lifecycle.in_flight())
            .count()
    }

    /// Keys of every op the kernel still owns.
    pub(crate) fn in_flight_keys(&self) -> Vec<OpKey> {
        self.slab
            .iter()
            .filter(|(_, s)| s.lifecycle.in_flight())
            .map(|(index, s)| OpKey {
                index: index as u32,
                generation: s.generation,
            })
            .collect()
    }

    /// Drops every completed slot whose future never came back for it.
    pub(crate) fn retain_in_flight(&mut self) {
        self.slab.retain(|_, s| s.lifecycle.in_flight());
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }
}
