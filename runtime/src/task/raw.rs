//! One spawned task: its future, then its output, in a single `Rc` allocation.
//!
//! The scheduler's slab holds the task as `Rc<dyn Runnable>`; the [`JoinHandle`] holds the
//! same allocation as `Rc<dyn JoinTarget<T>>`. The future is pinned inside the `Rc` and is
//! dropped in place, on the owning thread: when it finishes, panics, is aborted, or when the
//! runtime shuts down.
//!
//! [`JoinHandle`]: super::JoinHandle

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::coop;
use super::waker::TaskWaker;
use super::JoinError;

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

/// The scheduler's view of a task.
pub(crate) trait Runnable {
    /// Polls the task once; true when it is finished and its slot can be freed.
    fn run(&self) -> bool;
    /// Drops the future without polling it again (runtime shutdown).
    fn shutdown(&self);
}

/// The [`JoinHandle`](super::JoinHandle)'s view of a task.
pub(crate) trait JoinTarget<T> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    fn abort(&self);
    fn is_finished(&self) -> bool;
}

pub(crate) struct Task<F: Future> {
    header: Arc<TaskWaker>,
    waker: Waker,
    stage: RefCell<Stage<F>>,
    /// Mirrors "stage is no longer `Running`", readable while the future is being polled
    /// (the task may ask about, or abort, itself).
    finished: Cell<bool>,
    join_waker: Cell<Option<Waker>>,
    aborted: Cell<bool>,
}

impl<F: Future> Task<F> {
    pub(crate) fn new(future: F, header: Arc<TaskWaker>) -> Self {
        let waker = TaskWaker::into_waker(header.clone());
        Task {
            header,
            waker,
            stage: RefCell::new(Stage::Running(future)),
            finished: Cell::new(false),
            join_waker: Cell::new(None),
            aborted: Cell::new(false),
        }
    }

    /// Stores the result, drops the future (outside the `RefCell` borrow, catching a panic
    /// from its `Drop`), and wakes the joiner.
    fn finish(&self, result: Result<F::Output, JoinError>) {
        self.finished.set(true);
        let previous = mem::replace(&mut *self.stage.borrow_mut(), Stage::Finished(result));
        let _ = catch_unwind(AssertUnwindSafe(move || drop(previous)));
        if let Some(waker) = self.join_waker.take() {
            waker.wake();
        }
    }
}

impl<F: Future> Runnable for Task<F> {
    fn run(&self) -> bool {
        self.header.take_queued();
        if self.aborted.get() {
            self.finish(Err(JoinError::cancelled()));
            return true;
        }
        let polled = {
            let mut stage = self.stage.borrow_mut();
            let Stage::Running(future) = &mut *stage else {
                return true;
            };
            // SAFETY: the future lives inside this task's `Rc` allocation and is never moved
            // out of it: it is only dropped in place (through `finish`).
            let future = unsafe { Pin::new_unchecked(future) };
            let mut cx = Context::from_waker(&self.waker);
            catch_unwind(AssertUnwindSafe(|| {
                coop::with_budget(|| future.poll(&mut cx))
            }))
        };
        match polled {
            Ok(Poll::Pending) if self.aborted.get() => {
                self.finish(Err(JoinError::cancelled()));
                true
            }
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(output)) => {
                self.finish(Ok(output));
                true
            }
            Err(payload) => {
                self.finish(Err(JoinError::panic(payload)));
                true
            }
        }
    }

    fn shutdown(&self) {
        if !self.finished.get() {
            self.finish(Err(JoinError::cancelled()));
        }
    }
}

impl<F: Future> JoinTarget<F::Output> for Task<F> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        if !self.finished.get() {
            self.join_waker.set(Some(cx.waker().clone()));
            return Poll::Pending;
        }
        let mut stage = self.stage.borrow_mut();
        match mem::replace(&mut *stage, Stage::Consumed) {
            Stage::Finished(result) => Poll::Ready(result),
            Stage::Consumed => panic!("coring: JoinHandle polled after it returned its result"),
            running => {
                *stage = running;
                self.join_waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }

    fn abort(&self) {
        if !self.finished.get() && !self.aborted.replace(true) {
            self.header.wake();
        }
    }

    fn is_finished(&self) -> bool {
        self.finished.get()
    }
}

/// A panic payload, kept for [`JoinError::into_panic`](super::JoinError::into_panic).
pub(crate) type Payload = Box<dyn Any + Send + 'static>;
