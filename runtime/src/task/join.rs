//! [`JoinHandle`] and [`JoinError`].
//!
//! A handle joins either a local task (the task's own allocation, no synchronisation) or
//! work running on another thread (a worker's task from `spawn_on`, or a `spawn_blocking`
//! closure), through a small mutex-protected [`Shared`] slot.

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::coop;
use super::raw::{Payload, RawJoin};

enum Target<T> {
    Local(RawJoin<T>),
    Shared(Arc<Shared<T>>),
}

/// An owned permission to await a task's output, or to abort it.
///
/// Awaiting gives `Ok(output)`, or a [`JoinError`] when the task panicked or was aborted.
/// Dropping the handle detaches the task.
pub struct JoinHandle<T> {
    target: Target<T>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: RawJoin<T>) -> Self {
        JoinHandle {
            target: Target::Local(task),
        }
    }

    pub(crate) fn shared(shared: Arc<Shared<T>>) -> Self {
        JoinHandle {
            target: Target::Shared(shared),
        }
    }

    /// Aborts the task: its future is dropped (cancelling its I/O) before it is polled again,
    /// and awaiting the handle gives a cancelled [`JoinError`]. No effect on a finished task.
    ///
    /// ```
    /// # coring::runtime::Runtime::new().unwrap().block_on(async {
    /// let handle = coring::spawn(std::future::pending::<()>());
    /// handle.abort();
    /// assert!(handle.await.unwrap_err().is_cancelled());
    /// # });
    /// ```
    ///
    /// A `spawn_blocking` closure that already started runs to its end; its result is then
    /// discarded.
    pub fn abort(&self) {
        match &self.target {
            Target::Local(task) => task.abort(),
            Target::Shared(shared) => shared.abort(),
        }
    }

    /// Whether the task has finished (returned, panicked or been aborted).
    pub fn is_finished(&self) -> bool {
        match &self.target {
            Target::Local(task) => task.is_finished(),
            Target::Shared(shared) => shared.lock().finished,
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        std::task::ready!(coop::poll_proceed(cx));
        match &self.target {
            Target::Local(task) => task.poll_join(cx),
            Target::Shared(shared) => shared.poll_join(cx),
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

enum Repr {
    Cancelled,
    Panic(Payload),
}

/// Why a task gave no output: it was aborted (or its runtime shut down), or it panicked.
pub struct JoinError {
    repr: Repr,
}

impl JoinError {
    pub(crate) fn cancelled() -> Self {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(payload: Payload) -> Self {
        JoinError {
            repr: Repr::Panic(payload),
        }
    }

    /// The task was aborted, or dropped by its runtime's shutdown.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic's payload.
    ///
    /// # Panics
    /// When the task was cancelled rather than panicking.
    pub fn into_panic(self) -> Payload {
        self.try_into_panic()
            .expect("coring: JoinError::into_panic on a cancelled task")
    }

    /// The panic's payload, or the error back when the task was cancelled.
    pub fn try_into_panic(self) -> Result<Payload, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload),
            Repr::Cancelled => Err(self),
        }
    }
}

fn panic_message(payload: &Payload) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string payload>")
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("task was cancelled"),
            Repr::Panic(p) => write!(f, "task panicked: {}", panic_message(p)),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Panic(p) => write!(f, "JoinError::Panic({:?})", panic_message(p)),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> Self {
        std::io::Error::other(e.to_string())
    }
}

struct SharedState<T> {
    result: Option<Result<T, JoinError>>,
    finished: bool,
    aborted: bool,
    join_waker: Option<Waker>,
    task_waker: Option<Waker>,
}

/// The result slot of work that runs on another thread.
pub(crate) struct Shared<T> {
    state: Mutex<SharedState<T>>,
}

impl<T> Shared<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Shared {
            state: Mutex::new(SharedState {
                result: None,
                finished: false,
                aborted: false,
                join_waker: None,
                task_waker: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SharedState<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores the result (the first one wins) and wakes the joiner.
    pub(crate) fn complete(&self, result: Result<T, JoinError>) {
        let mut state = self.lock();
        if state.finished {
            return;
        }
        state.finished = true;
        state.result = Some(result);
        state.task_waker = None;
        let waker = state.join_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.lock().aborted
    }

    fn abort(&self) {
        let mut state = self.lock();
        if state.finished {
            return;
        }
        state.aborted = true;
        let waker = state.task_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let mut state = self.lock();
        if let Some(result) = state.result.take() {
            return Poll::Ready(result);
        }
        assert!(
            !state.finished,
            "coring: JoinHandle polled after it returned its result"
        );
        state.join_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

pin_project_lite::pin_project! {
    /// Runs `future` on a worker and reports to a [`Shared`] slot; honours `abort`, and
    /// reports cancellation if dropped unfinished (its runtime shut down).
    pub(crate) struct Reporting<F: Future> {
        #[pin]
        future: F,
        shared: Arc<Shared<F::Output>>,
    }

    impl<F: Future> PinnedDrop for Reporting<F> {
        fn drop(this: Pin<&mut Self>) {
            this.shared.complete(Err(JoinError::cancelled()));
        }
    }
}

impl<F: Future> Reporting<F> {
    pub(crate) fn new(future: F, shared: Arc<Shared<F::Output>>) -> Self {
        Reporting { future, shared }
    }
}

impl<F: Future> Future for Reporting<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        {
            let mut state = this.shared.lock();
            if state.finished {
                return Poll::Ready(());
            }
            if state.aborted {
                drop(state);
                this.shared.complete(Err(JoinError::cancelled()));
                return Poll::Ready(());
            }
            if !state
                .task_waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                state.task_waker = Some(cx.waker().clone());
            }
        }
        let future = this.future;
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                this.shared.complete(Ok(output));
                Poll::Ready(())
            }
            Err(payload) => {
                this.shared.complete(Err(JoinError::panic(payload)));
                Poll::Ready(())
            }
        }
    }
}
