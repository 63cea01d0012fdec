//! Tasks: [`spawn`], [`JoinHandle`], [`JoinError`], [`yield_now`].
//!
//! Tasks run on the thread that spawned them and need not be `Send`. A task's panic is caught
//! and handed to its [`JoinHandle`]; the runtime and the other tasks go on.

mod blocking;
#[cfg(all(test, coring_loom))]
mod blocking_loom;
mod cache;
pub(crate) mod coop;
pub(crate) mod join;
mod join_set;
mod park;
mod raw;
#[cfg(all(test, coring_loom))]
mod raw_loom;
#[cfg(all(test, not(coring_loom)))]
mod raw_tests;
pub(crate) mod scheduler;
pub(crate) mod waker;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use blocking::spawn_blocking;
pub use join::{JoinError, JoinHandle};
pub use join_set::JoinSet;

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
