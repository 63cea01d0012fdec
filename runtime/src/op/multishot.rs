//! Multishot ops: one submission, a stream of completions (`IORING_CQE_F_MORE`).
//!
//! A [`MultishotOp`] is a `Stream`. Each completion becomes an item through
//! [`MultishotCode::next`]; the stream ends after the completion without `F_MORE` (the
//! kernel stopped the op: an error, or it ran out of something). Dropping the stream cancels
//! the op; completions nobody took, and any that arrive before the terminal one, go to
//! [`MultishotCode::discard`] so what they created (accepted sockets, say) is released.

use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_core::Stream;
use io_uring::squeue;

use super::{Completion, Orphan};
use crate::driver::{Cqe, Driver, OpKey};
use crate::task::coop;

/// A multishot io_uring operation.
///
/// # Safety
/// As for [`OpCode`](super::OpCode): the entry may only point into heap (or `'static`)
/// memory owned by `self`, valid while `self` lives.
pub unsafe trait MultishotCode: 'static {
    /// What each completion yields.
    type Item;

    /// Builds the submission entry (with its multishot flag).
    fn sqe(&mut self) -> squeue::Entry;

    /// Turns one completion into an item.
    fn next(&mut self, completion: Completion) -> Self::Item;

    /// Releases what an untaken completion created. The default does nothing.
    /// Called with the driver borrowed: must not call back into the runtime.
    fn discard(&mut self, completion: Completion) {
        let _ = completion;
    }
}

/// The op struct of a dropped stream, kept until the kernel's last completion.
struct Discarding<T: MultishotCode>(T);

impl<T: MultishotCode> Orphan for Discarding<T> {
    fn complete(mut self: Box<Self>, cqe: Cqe) {
        self.0.discard(Completion::from(cqe));
    }

    fn intermediate(&mut self, cqe: Cqe) {
        self.0.discard(Completion::from(cqe));
    }
}

/// A stream of a multishot op's completions.
#[must_use = "streams do nothing unless polled; dropping it cancels the op"]
pub struct MultishotOp<T: MultishotCode> {
    state: Option<(Rc<Driver>, OpKey)>,
    error: Option<io::Error>,
    data: Option<T>,
}

impl<T: MultishotCode> MultishotOp<T> {
    /// Submits `data` to the current thread's ring. If that is impossible, the stream yields
    /// the error as its one item.
    pub fn submit(mut data: T) -> Self {
        match crate::runtime::context::driver().and_then(|driver| {
            let key = driver.submit_multishot(data.sqe())?;
            Ok((driver, key))
        }) {
            Ok(submitted) => MultishotOp {
                state: Some(submitted),
                error: None,
                data: Some(data),
            },
            Err(e) => MultishotOp {
                state: None,
                error: Some(e),
                data: Some(data),
            },
        }
    }

    /// The submission error, if the op never reached a ring.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// The op struct back, once the stream has ended.
    pub fn into_inner(mut self) -> Option<T> {
        if self.state.is_some() {
            return None;
        }
        self.data.take()
    }
}

impl<T: MultishotCode> Unpin for MultishotOp<T> {}

impl<T: MultishotCode> Stream for MultishotOp<T> {
    type Item = Result<T::Item, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(e) = this.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        let Some((driver, key)) = &this.state else {
            return Poll::Ready(None);
        };
        std::task::ready!(coop::poll_proceed(cx));
        match std::task::ready!(driver.poll_stream(*key, cx)) {
            Some(cqe) => {
                if !io_uring::cqueue::more(cqe.flags) {
                    this.state = None; // the slot is gone with its last completion
                }
                let data = this.data.as_mut().expect("data lives with the stream");
                Poll::Ready(Some(Ok(data.next(Completion::from(cqe)))))
            }
            None => {
                this.state = None;
                Poll::Ready(None)
            }
        }
    }
}

impl<T: MultishotCode> Drop for MultishotOp<T> {
    fn drop(&mut self) {
        if let (Some((driver, key)), Some(data)) = (self.state.take(), self.data.take()) {
            driver.drop_stream(key, Box::new(Discarding(data)));
        }
    }
}
