//! The cooperative budget: a task that is always ready cannot starve the ring.
//!
//! Each task poll gets [`BUDGET`] units. Every op completion and every finished
//! [`JoinHandle`](super::JoinHandle) collected spends one; once the budget is spent, those
//! futures answer `Pending` (after waking their task), so the task goes to the back of the run
//! queue and the executor gets to reap completions for everyone else.

use std::cell::Cell;
use std::task::{Context, Poll};

/// Units a task may spend in one poll.
pub(crate) const BUDGET: u8 = 128;

thread_local! {
    static REMAINING: Cell<Option<u8>> = const { Cell::new(None) };
}

/// Runs `f` (one task poll) with a fresh budget.
pub(crate) fn with_budget<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<u8>);
    impl Drop for Restore {
        fn drop(&mut self) {
            REMAINING.with(|r| r.set(self.0));
        }
    }
    let _restore = Restore(REMAINING.with(|r| r.replace(Some(BUDGET))));
    f()
}

/// Spends one unit, or answers `Pending` (and reschedules the task) when none is left.
#[inline]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    REMAINING.with(|r| match r.get() {
        Some(0) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Some(n) => {
            r.set(Some(n - 1));
            Poll::Ready(())
        }
        None => Poll::Ready(()),
    })
}
