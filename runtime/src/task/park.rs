//! The parking handshake between a runtime and the threads that send it work.
//!
//! The runtime announces it is about to block ([`begin_park`](ParkState::begin_park)) and
//! blocks only if no work is pending; a sender publishes its work, then marks it pending
//! ([`notify`](ParkState::notify)) and unparks the runtime only if it had announced a park.
//! Both flags live in one atomic word and every step is a single read-modify-write, so all
//! steps fall in one modification order: either the runtime's park comes first (and the
//! sender sees it and unparks), or the sender's mark comes first (and the park is refused).
//! When the runtime is running, senders make no system call at all, and of several senders
//! during one park only the first unparks.
//!
//! The protocol is checked with loom (`RUSTFLAGS="--cfg coring_loom" cargo test -p
//! coring-runtime --lib --release loom`).

#[cfg(coring_loom)]
use loom::sync::atomic::{AtomicU8, Ordering};
#[cfg(not(coring_loom))]
use std::sync::atomic::{AtomicU8, Ordering};

/// Work was sent and not yet taken.
const PENDING: u8 = 1;
/// The runtime is (about to be) blocked in the kernel.
const PARKED: u8 = 2;

#[derive(Debug, Default)]
pub(crate) struct ParkState {
    state: AtomicU8,
}

impl ParkState {
    /// Sender side, after publishing work: whether the runtime must be unparked.
    pub(crate) fn notify(&self) -> bool {
        let previous = self.state.fetch_or(PENDING, Ordering::AcqRel);
        if previous & PARKED == 0 {
            return false;
        }
        // Clear PARKED so later senders of this park skip the unpark; only the sender that
        // clears it unparks.
        self.state.fetch_and(!PARKED, Ordering::AcqRel) & PARKED != 0
    }

    /// Runtime side, before taking published work: whether there is any.
    ///
    /// A plain load first skips the read-modify-write when nothing is pending (the common case,
    /// once per turn of the loop). Reading a stale "nothing" only defers the work to the next
    /// turn: `begin_park` is a read-modify-write and refuses to block while PENDING is set.
    pub(crate) fn take_pending(&self) -> bool {
        if self.state.load(Ordering::Acquire) & PENDING == 0 {
            return false;
        }
        self.state.fetch_and(!PENDING, Ordering::AcqRel) & PENDING != 0
    }

    /// Runtime side, before blocking: false if work is pending (do not block).
    pub(crate) fn begin_park(&self) -> bool {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & PENDING == 0).then_some(s | PARKED)
            })
            .is_ok()
    }

    /// Runtime side, after blocking (or deciding not to).
    pub(crate) fn end_park(&self) {
        self.state.fetch_and(!PARKED, Ordering::AcqRel);
    }
}

#[cfg(all(test, coring_loom))]
mod loom_tests {
    use super::ParkState;
    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    /// Explores interleavings with up to three preemptions (loom's recommended bound: it
    /// finds the known bugs of this kind while keeping the run to seconds).
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    }

    /// No lost wake-up: if the runtime blocks, a sender that published work unparks it.
    #[test]
    fn loom_no_lost_wakeup() {
        model(|| {
            let state = Arc::new(ParkState::default());
            let work = Arc::new(AtomicBool::new(false));
            let unparks = Arc::new(AtomicUsize::new(0));
            let sender = {
                let (state, work, unparks) = (state.clone(), work.clone(), unparks.clone());
                thread::spawn(move || {
                    work.store(true, Ordering::SeqCst);
                    if state.notify() {
                        unparks.fetch_add(1, Ordering::SeqCst);
                    }
                })
            };
            let mut took_work = false;
            if state.take_pending() {
                took_work = work.load(Ordering::SeqCst);
            }
            let blocks = state.begin_park();
            sender.join().unwrap();
            if blocks {
                // Blocked: the sender must have woken us, or we already had its work.
                assert!(unparks.load(Ordering::SeqCst) == 1 || took_work);
            } else {
                // Not blocked: the work is there to take.
                assert!(took_work || (state.take_pending() && work.load(Ordering::SeqCst)));
            }
            state.end_park();
        });
    }

    /// Two senders and a runtime that parks twice: every published item is seen.
    #[test]
    fn loom_two_senders() {
        model(|| {
            let state = Arc::new(ParkState::default());
            let items = Arc::new(AtomicUsize::new(0));
            let unparks = Arc::new(AtomicUsize::new(0));
            let senders: Vec<_> = (0..2)
                .map(|_| {
                    let (state, items, unparks) = (state.clone(), items.clone(), unparks.clone());
                    thread::spawn(move || {
                        items.fetch_add(1, Ordering::SeqCst);
                        if state.notify() {
                            unparks.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            let mut seen = 0;
            for _ in 0..2 {
                if state.take_pending() {
                    seen = items.load(Ordering::SeqCst);
                }
                let blocks = state.begin_park();
                state.end_park();
                let _ = blocks;
            }
            for s in senders {
                s.join().unwrap();
            }
            // After the senders finish: anything not yet seen is still marked pending.
            if seen < 2 {
                assert!(state.take_pending());
            }
        });
    }
}
