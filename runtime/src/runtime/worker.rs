//! Workers: threads that each own a ring, a scheduler and timers.
//!
//! Nothing on the I/O path is shared between workers. They meet only through each other's
//! [`Remote`] inbox: [`spawn_on`] sends a job (which spawns the task on the target thread),
//! and wakers of a worker's tasks may be woken from anywhere. A wake that comes from another
//! worker reaches a parked target by `IORING_OP_MSG_RING`, from a plain thread by eventfd
//! (see `driver/unpark.rs`).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use super::bridge::BridgeHandle;
use super::handle::RoundRobin;
use super::{context, Builder, Core};
use crate::driver::Metrics;
use crate::task::join::{Reporting, Shared};
use crate::task::waker::Remote;
use crate::task::{JoinError, JoinHandle};

/// The workers of one runtime, as every worker sees them.
pub(crate) struct Workers {
    count: usize,
    remotes: OnceLock<Vec<Arc<Remote>>>,
    stopping: AtomicBool,
    /// Each worker's counters as it last published them (for `Handle::metrics`).
    metrics: Vec<Mutex<Metrics>>,
    /// The worker a spawn from outside the runtime goes to next.
    round_robin: RoundRobin,
    /// The tokio runtime each worker enters while it runs, if any (`Builder::tokio_bridge`).
    pub(crate) bridge: BridgeHandle,
}

impl Workers {
    pub(crate) fn new(count: usize, bridge: BridgeHandle) -> Arc<Self> {
        Arc::new(Workers {
            count,
            remotes: OnceLock::new(),
            stopping: AtomicBool::new(false),
            metrics: (0..count).map(|_| Mutex::default()).collect(),
            round_robin: RoundRobin::default(),
            bridge,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Records worker `worker`'s counters for readers on other threads.
    pub(crate) fn publish_metrics(&self, worker: usize, metrics: Metrics) {
        *self.metrics[worker]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = metrics;
    }

    /// Every worker's last published counters.
    pub(crate) fn published_metrics(&self) -> Vec<Metrics> {
        self.metrics
            .iter()
            .map(|m| *m.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
            .collect()
    }

    /// The worker that takes the next spawn from outside the runtime.
    pub(crate) fn next_worker(&self) -> usize {
        self.round_robin.next(self.count)
    }

    fn remotes(&self) -> &[Arc<Remote>] {
        self.remotes.get().map(Vec::as_slice).unwrap_or_default()
    }
}

/// A worker thread and the signal that stops it.
type WorkerThread = (thread::JoinHandle<()>, Arc<Shared<()>>);

/// The threads of workers 1.., and how to stop them.
pub(crate) struct WorkerThreads {
    threads: RefCell<Vec<WorkerThread>>,
    workers: Arc<Workers>,
}

impl WorkerThreads {
    /// Tells every worker thread to finish (each drains its own ring) and waits for them.
    pub(crate) fn stop_and_join(&self) {
        let threads = std::mem::take(&mut *self.threads.borrow_mut());
        for (_, stop) in &threads {
            stop.complete(Ok(()));
        }
        // The stop wake-ups may have gone out as ring messages from this thread's ring,
        // which is not entered while we block in `join`: make sure with the eventfds.
        for remote in self.workers.remotes().iter().skip(1) {
            remote.unpark_now();
        }
        for (thread, _) in threads {
            let _ = thread.join();
        }
    }
}

/// Starts workers 1.. and waits until each has its ring (or one failed).
pub(crate) fn start_workers(
    builder: &Builder,
    workers: &Arc<Workers>,
    local: Arc<Remote>,
) -> io::Result<WorkerThreads> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut threads = Vec::new();
    let mut spawn_error = None;
    for index in 1..workers.len() {
        let stop = Shared::<()>::new();
        let config = builder.config.clone();
        let policy = builder.driver;
        let pin = builder.pin_cores;
        let (workers, ready, stopped) = (workers.clone(), ready_tx.clone(), stop.clone());
        let spawned = thread::Builder::new()
            .name(format!("coring-worker-{index}"))
            .spawn(move || {
                if pin {
                    pin_to_cpu(index);
                }
                let core = match Core::new(&config, policy, index, workers) {
                    Ok(core) => core,
                    Err(e) => {
                        let _ = ready.send((index, Err(e)));
                        return;
                    }
                };
                let _ = ready.send((index, Ok(core.scheduler.remote().clone())));
                drop(ready);
                let _ = core.block_on(JoinHandle::shared(stopped));
                core.shutdown();
            });
        match spawned {
            Ok(thread) => threads.push((thread, stop)),
            Err(e) => {
                spawn_error = Some(e);
                break;
            }
        }
    }
    drop(ready_tx);
    let started = WorkerThreads {
        threads: RefCell::new(threads),
        workers: workers.clone(),
    };
    let mut remotes = vec![None; workers.len()];
    remotes[0] = Some(local);
    let mut error = spawn_error;
    for (index, result) in ready_rx.iter() {
        match result {
            Ok(remote) => remotes[index] = Some(remote),
            Err(e) => error = error.or(Some(e)),
        }
    }
    if let Some(e) = error {
        started.stop_and_join();
        return Err(e);
    }
    let remotes = remotes
        .into_iter()
        .map(|r| r.expect("every worker reported"))
        .collect();
    let _ = workers.remotes.set(remotes);
    Ok(started)
}

/// The index of the worker running the current thread (0 for the thread that called
/// `block_on`), or `None` outside a coring runtime.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// assert_eq!(coring::runtime::worker_index(), Some(0));
/// # });
/// ```
pub fn worker_index() -> Option<usize> {
    context::with_core(|core| core.worker)
}

/// Spawns a `Send` future on worker `worker`; the handle may be awaited from any worker.
/// Also at the crate root, as `coring::spawn_on`.
///
/// # Panics
/// Outside a coring runtime, or when `worker` is not below the number of workers.
///
/// ```
/// let rt = coring::runtime::Runtime::builder().worker_threads(2).build()?;
/// rt.block_on(async {
///     let handle = coring::spawn_on(1, async { coring::runtime::worker_index() });
///     assert_eq!(handle.await.unwrap(), Some(1));
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn spawn_on<F>(worker: usize, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_on_with(worker, move || future)
}

/// Spawns the future `make()` on worker `worker`, creating it there: the future need not be
/// `Send` (it may hold sockets, I/O futures or local handles across awaits); only `make` and the
/// output cross threads.
///
/// # Panics
/// Outside a coring runtime, or when `worker` is not below the number of workers.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let handle = coring::runtime::spawn_on_with(0, || async {
///     let local = std::rc::Rc::new(5); // not Send, held across an await
///     coring::task::yield_now().await;
///     *local
/// });
/// assert_eq!(handle.await.unwrap(), 5);
/// # });
/// ```
pub fn spawn_on_with<M, F>(worker: usize, make: M) -> JoinHandle<F::Output>
where
    M: FnOnce() -> F + Send + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    let workers = context::with_core(|core| core.workers.clone())
        .expect("coring::spawn_on must be called from inside a coring runtime");
    spawn_job_on(&workers, worker, make)
}

/// Spawns `make()` on worker `worker` of `workers`, from any thread: at once when this thread
/// is that worker, else as a job in its inbox. A job its worker never runs (the runtime shut
/// down) reports the task as cancelled.
#[track_caller]
pub(crate) fn spawn_job_on<M, F>(
    workers: &Arc<Workers>,
    worker: usize,
    make: M,
) -> JoinHandle<F::Output>
where
    M: FnOnce() -> F + Send + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    let count = workers.len();
    assert!(
        worker < count,
        "coring::spawn_on: there is no worker {worker} (the runtime has {count})"
    );
    let shared = Shared::new();
    let guard = CancelUnlessRun(Some(shared.clone()));
    let job = move || {
        let shared = guard.run();
        crate::task::spawn(Reporting::new(async move { make().await }, shared));
    };
    let here =
        context::with_core(|core| Arc::ptr_eq(&core.workers, workers) && core.worker == worker)
            .unwrap_or(false);
    if here {
        job();
    } else {
        workers.remotes()[worker].push_job(Box::new(job));
    }
    JoinHandle::shared(shared)
}

/// Reports a job that was dropped without running (its worker stopped) as cancelled.
struct CancelUnlessRun<T>(Option<Arc<Shared<T>>>);

impl<T> CancelUnlessRun<T> {
    fn run(mut self) -> Arc<Shared<T>> {
        self.0.take().expect("a job runs once")
    }
}

impl<T> Drop for CancelUnlessRun<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.complete(Err(JoinError::cancelled()));
        }
    }
}

/// Stops a runtime's work from any thread: cancels every task on every worker (their ops are
/// cancelled and drained by each worker's ring). `Runtime::block_on_each` then returns.
///
/// ```
/// let rt = coring::runtime::Runtime::new()?;
/// let handle = rt.shutdown_handle();
/// let results = rt.block_on_each(move |_| {
///     let handle = handle.clone();
///     async move {
///         handle.shutdown();
///         std::future::pending::<()>().await
///     }
/// });
/// assert!(results[0].as_ref().unwrap_err().is_cancelled());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct ShutdownHandle {
    workers: Arc<Workers>,
}

impl ShutdownHandle {
    pub(crate) fn new(workers: Arc<Workers>) -> Self {
        ShutdownHandle { workers }
    }

    /// Cancels every task on every worker. Returns at once; each worker drains in its loop.
    pub fn shutdown(&self) {
        self.workers.stopping.store(true, Ordering::SeqCst);
        for remote in self.workers.remotes() {
            remote.push_job(Box::new(|| {
                context::with_core(|core| core.scheduler.cancel_all());
            }));
        }
    }

    /// Whether [`shutdown`](ShutdownHandle::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.workers.stopping.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("workers", &self.workers.len())
            .field("shutdown", &self.is_shutdown())
            .finish()
    }
}

/// Pins the calling thread to the `index`-th CPU this process may run on.
pub(crate) fn pin_to_cpu(index: usize) {
    // SAFETY: cpu_set_t is plain data; the calls read and write only the set we pass, with
    // its real size.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &allowed))
            .collect();
        if cpus.is_empty() {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus[index % cpus.len()], &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
