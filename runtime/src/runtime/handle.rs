//! [`Handle`]: a `Send + Sync` reference to a runtime, for libraries, callbacks and other
//! threads that need to spawn onto it or read its metrics.
//!
//! The runtime's workers meet only through their inboxes ([`Remote`](crate::task::waker)),
//! and that is all a handle uses: a spawn from anywhere but the target worker is a job in the
//! target's inbox, which wakes it if it is parked (at once, see `driver/unpark.rs`). Each
//! worker publishes a snapshot of its [`Metrics`] when it is about to park and every
//! [`PUBLISH_EVERY`] turns, so a handle reads them from any thread without stopping it. The
//! count of ops in flight walks the op table, so it is redone at most every
//! [`PUBLISH_INTERVAL_NS`].

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::context;
use super::worker::{spawn_job_on, Workers};
use crate::driver::Metrics;
use crate::task::JoinHandle;

/// Turns between two metrics snapshots of a worker that never parks.
pub(crate) const PUBLISH_EVERY: u32 = 64;

/// The shortest time between two counts of a worker's ops in flight for its metrics
/// snapshots, in nanoseconds of the coarse clock (10 ms).
pub(crate) const PUBLISH_INTERVAL_NS: u64 = 10_000_000;

/// A handle to a running coring runtime: `Send + Sync + Clone`, usable from any thread.
///
/// Spawns `Send` futures onto the runtime's workers and reads every worker's metrics, from
/// inside the runtime or from threads that are not coring's (a callback of a C library, a
/// thread of another runtime). Get one with [`Handle::current`] inside the runtime or
/// [`Runtime::handle`](super::Runtime::handle).
///
/// ```
/// use coring::runtime::Runtime;
///
/// let rt = Runtime::builder().worker_threads(2).build()?;
/// let handle = rt.handle();
/// let (tx, rx) = coring::sync::oneshot::channel();
/// std::thread::spawn(move || {
///     // A thread that is not coring's spawns onto the runtime.
///     drop(handle.spawn(async move { tx.send(6 * 7).unwrap() }));
/// });
/// assert_eq!(rt.block_on(rx).unwrap(), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    workers: Arc<Workers>,
}

impl Handle {
    pub(crate) fn new(workers: Arc<Workers>) -> Self {
        Handle { workers }
    }

    /// The handle of the runtime running on this thread.
    ///
    /// # Panics
    /// Outside a coring runtime; [`try_current`](Handle::try_current) returns `None` instead.
    ///
    /// ```
    /// # coring::runtime::Runtime::new().unwrap().block_on(async {
    /// let handle = coring::runtime::Handle::current();
    /// assert_eq!(handle.spawn(async { 1 }).await.unwrap(), 1);
    /// # });
    /// ```
    #[track_caller]
    pub fn current() -> Handle {
        Handle::try_current().expect(
            "coring::runtime::Handle::current() called outside a coring runtime: call it inside \
             Runtime::block_on or #[coring::main], or pass a handle from Runtime::handle()",
        )
    }

    /// The handle of the runtime running on this thread, or `None` outside one.
    ///
    /// ```
    /// assert!(coring::runtime::Handle::try_current().is_none());
    /// ```
    pub fn try_current() -> Option<Handle> {
        context::with_core(|core| Handle::new(core.workers.clone()))
    }

    /// Spawns a `Send` future onto the runtime and returns its handle, from any thread.
    ///
    /// Called on one of the runtime's workers, the task runs on that worker (as
    /// [`coring::spawn`](crate::spawn) would). From anywhere else, workers 1.. take turns:
    /// worker 0 is the thread that calls `block_on` and runs tasks only inside it, so a
    /// single-worker runtime runs such a task at its next `block_on`, as tokio's
    /// current-thread runtime does. Spawning onto a runtime that has shut down gives a
    /// handle that reports the task as cancelled.
    ///
    /// ```
    /// let rt = coring::runtime::Runtime::new()?;
    /// let handle = rt.handle();
    /// let task = handle.spawn(async { "spawned" });
    /// assert_eq!(rt.block_on(task).unwrap(), "spawned");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let here = context::with_core(|core| {
            Arc::ptr_eq(&core.workers, &self.workers).then_some(core.worker)
        })
        .flatten();
        let worker = here.unwrap_or_else(|| self.workers.next_worker());
        self.spawn_on(worker, future)
    }

    /// Spawns a `Send` future on worker `worker` (0 is the thread that called `block_on`),
    /// from any thread.
    ///
    /// # Panics
    /// When `worker` is not below [`worker_threads`](Handle::worker_threads).
    ///
    /// ```
    /// let rt = coring::runtime::Runtime::builder().worker_threads(2).build()?;
    /// let task = rt.handle().spawn_on(1, async { coring::runtime::worker_index() });
    /// assert_eq!(rt.block_on(task).unwrap(), Some(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(&self, worker: usize, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn_job_on(&self.workers, worker, move || future)
    }

    /// The number of workers of the runtime.
    pub fn worker_threads(&self) -> usize {
        self.workers.len()
    }

    /// Every worker's counters, indexed by worker, as each last published them: before it
    /// parks (a worker parks whenever it has nothing to do) and every 64 turns of its loop.
    /// `ops_in_flight` is recounted at most every 10 ms (a count walks the op table), so it
    /// may lag the other counters by that much. Readable from any thread, for a `/metrics`
    /// route served by any worker.
    ///
    /// ```
    /// let rt = coring::runtime::Runtime::builder().worker_threads(2).build()?;
    /// let handle = rt.handle();
    /// rt.block_on(async { coring::time::sleep(std::time::Duration::from_millis(5)).await });
    /// let metrics = handle.metrics();
    /// assert_eq!(metrics.len(), 2);
    /// println!("worker 0 entered its ring {} times", metrics[0].enters);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metrics(&self) -> Vec<Metrics> {
        let io_wq_workers = crate::driver::io_wq_workers(); // process-wide
        let mut metrics = self.workers.published_metrics();
        for m in &mut metrics {
            m.io_wq_workers = io_wq_workers;
        }
        metrics
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.workers.len())
            .finish()
    }
}

/// Which worker a spawn from outside the runtime goes to: workers 1.. in turn (worker 0 runs
/// tasks only inside `block_on`), or worker 0 when it is the only one.
#[derive(Default)]
pub(crate) struct RoundRobin(AtomicUsize);

impl RoundRobin {
    pub(crate) fn next(&self, workers: usize) -> usize {
        if workers <= 1 {
            return 0;
        }
        1 + self.0.fetch_add(1, Ordering::Relaxed) % (workers - 1)
    }
}
