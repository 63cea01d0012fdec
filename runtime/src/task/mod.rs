//! Tasks: [`spawn`], [`JoinHandle`], [`JoinError`], [`yield_now`].
//!
//! Tasks run on the thread that spawned them and need not be `Send`. A task's panic is caught
//! and handed to its [`JoinHandle`]; the runtime and the other tasks go on.

pub(crate) mod coop;
mod raw;
pub(crate) mod scheduler;
pub(crate) mod waker;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use raw::{JoinTarget, Payload};

/// Spawns a task on the current thread's runtime.
///
/// The future need not be `Send`. The returned [`JoinHandle`] resolves to its output; dropping
/// the handle detaches the task, which keeps running.
///
/// # Panics
/// When called outside a coring runtime.
///
/// # Example
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let handle = coring::spawn(async { 6 * 7 });
/// assert_eq!(handle.await.unwrap(), 42);
/// # });
/// ```
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    crate::runtime::context::with_core(|core| core.scheduler.spawn(future)).expect(
        "coring::spawn must be called from inside a coring runtime (block_on or #[coring::main])",
    )
}

/// An owned permission to await a task's output, or to abort it.
///
/// Awaiting gives `Ok(output)`, or a [`JoinError`] when the task panicked or was aborted.
/// Dropping the handle detaches the task.
pub struct JoinHandle<T> {
    task: Rc<dyn JoinTarget<T>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: Rc<dyn JoinTarget<T>>) -> Self {
        JoinHandle { task }
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
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Whether the task has finished (returned, panicked or been aborted).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        std::task::ready!(coop::poll_proceed(cx));
        self.task.poll_join(cx)
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

/// Lets the other ready tasks, and the ring, run before this task continues.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// coring::task::yield_now().await;
/// # });
/// ```
pub async fn yield_now() {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false).await
}
