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

use super::{Completion, Fallback, Orphan};
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

    /// The readiness fallback (epoll backend): produce the next completion without
    /// blocking, or say what to wait for. See [`OpCode::fallback`](super::OpCode::fallback).
    fn fallback(&mut self) -> Fallback {
        Fallback::unsupported(std::any::type_name::<Self>())
    }

    /// Readiness fallback only: whether the op has produced everything it will (the ring
    /// says so itself, with a completion lacking `IORING_CQE_F_MORE`).
    fn is_finished(&self) -> bool {
        false
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
    state: State,
    data: Option<T>,
}

enum State {
    /// io_uring: the op's slot.
    Ring(Rc<Driver>, OpKey),
    /// epoll: the op runs its syscall on each poll; the key of its current wait, if any.
    Readiness(Rc<Driver>, Option<OpKey>),
    /// Could not start: the error, yielded once.
    Failed(Option<io::Error>),
    /// The last completion was taken.
    Ended,
}

impl<T: MultishotCode> MultishotOp<T> {
    /// Submits `data` to the current thread's driver. If that is impossible, the stream
    /// yields the error as its one item.
    pub fn submit(mut data: T) -> Self {
        let state = match crate::runtime::context::driver() {
            Err(e) => State::Failed(Some(e)),
            Ok(driver) => match &*driver {
                Driver::Uring(ring) => match ring.submit_multishot(data.sqe()) {
                    Ok(key) => State::Ring(driver, key),
                    Err(e) => State::Failed(Some(e)),
                },
                Driver::Epoll(_) => State::Readiness(driver, None),
            },
        };
        MultishotOp {
            state,
            data: Some(data),
        }
    }
}

impl<T: MultishotCode> MultishotOp<T> {
    /// The op struct back, once the stream has ended (the kernel is done with it).
    pub fn into_data(mut self) -> Option<T> {
        match self.state {
            State::Ended | State::Failed(_) => self.data.take(),
            _ => None,
        }
    }
}

impl<T: MultishotCode> Unpin for MultishotOp<T> {}

impl<T: MultishotCode> Stream for MultishotOp<T> {
    type Item = Result<T::Item, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let data = this.data.as_mut().expect("data lives with the stream");
        match &mut this.state {
            State::Failed(e) => {
                let e = e.take();
                this.state = State::Ended;
                Poll::Ready(e.map(Err))
            }
            State::Ended => Poll::Ready(None),
            State::Ring(driver, key) => {
                let Driver::Uring(ring) = &**driver else {
                    unreachable!("a ring op lives on a ring")
                };
                std::task::ready!(coop::poll_proceed(cx));
                match std::task::ready!(ring.poll_stream(*key, cx)) {
                    Some(cqe) => {
                        if !io_uring::cqueue::more(cqe.flags) {
                            this.state = State::Ended; // the slot went with its last completion
                        }
                        Poll::Ready(Some(Ok(data.next(Completion::from(cqe)))))
                    }
                    None => {
                        this.state = State::Ended;
                        Poll::Ready(None)
                    }
                }
            }
            State::Readiness(driver, waiting) => {
                let Driver::Epoll(epoll) = &**driver else {
                    unreachable!("a readiness op lives on epoll")
                };
                std::task::ready!(coop::poll_proceed(cx));
                loop {
                    if let Some(key) = *waiting {
                        std::task::ready!(epoll.poll_op(key, cx));
                        *waiting = None;
                    }
                    match data.fallback() {
                        Fallback::Done(result, flags) => {
                            let completion = Completion {
                                result,
                                flags,
                                from_kernel: true,
                            };
                            let item = data.next(completion);
                            if data.is_finished() {
                                this.state = State::Ended;
                            }
                            return Poll::Ready(Some(Ok(item)));
                        }
                        Fallback::Wait(fd, interest) => {
                            match epoll.wait(Some((fd, interest)), None) {
                                Ok(key) => *waiting = Some(key),
                                Err(e) => return Poll::Ready(Some(Err(e))),
                            }
                        }
                        Fallback::Until(at) => match epoll.wait(None, Some((at, 0))) {
                            Ok(key) => *waiting = Some(key),
                            Err(e) => return Poll::Ready(Some(Err(e))),
                        },
                    }
                }
            }
        }
    }
}

impl<T: MultishotCode> Drop for MultishotOp<T> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Ring(driver, key) => {
                if let (Driver::Uring(ring), Some(data)) = (&*driver, self.data.take()) {
                    ring.drop_stream(key, Box::new(Discarding(data)));
                }
            }
            State::Readiness(driver, Some(key)) => {
                if let Driver::Epoll(epoll) = &*driver {
                    epoll.drop_op(key);
                }
            }
            _ => {}
        }
    }
}
