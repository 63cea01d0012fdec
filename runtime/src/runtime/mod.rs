//! The runtime: per thread, a driver (one ring), a local scheduler and a timer queue, run by
//! [`Runtime::block_on`]; optionally more worker threads, each with its own ring.
//!
//! # The loop
//! Each turn polls the `block_on` future if it was woken, then up to `TICK` (64) queued tasks,
//! fires expired timers, takes in work other threads sent, then parks the driver: one
//! `io_uring_enter` submits everything the tasks queued and reaps completions. When nothing is
//! ready the same call blocks until a completion, a wake-up from another thread, or the next
//! timer deadline. Bounding the tasks per turn keeps completions and timers flowing even when
//! tasks keep each other busy.
//!
//! # Shutdown
//! Dropping a [`Runtime`] stops the other workers, drops every task (their ops are cancelled
//! by their futures' drops), then cancels whatever is still in flight and waits for the kernel
//! to finish with it, so nothing the kernel does lands after `drop` returns.

mod bridge;
mod builder;
pub(crate) mod context;
mod handle;
mod worker;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

pub use builder::Builder;
pub use handle::Handle;
pub use worker::{spawn_on, spawn_on_with, worker_index, ShutdownHandle};

use crate::driver::{Driver, DriverKind, DriverPolicy, Metrics, RingConfig, RingFlags};
use crate::task::scheduler::Scheduler;
use crate::task::waker::{MainWaker, Remote};
use crate::task::{coop, JoinError};
use crate::time::timers::TimerQueue;
use worker::{WorkerThreads, Workers};

/// The backend of the runtime running on this thread, or `None` outside a runtime.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// println!("running on {}", coring::runtime::driver_kind().unwrap());
/// # });
/// ```
pub fn driver_kind() -> Option<DriverKind> {
    context::with_core(|core| core.driver.kind())
}

/// Tasks polled per turn before the ring is visited again.
const TICK: usize = 64;

/// One thread's share of a runtime.
pub(crate) struct Core {
    pub(crate) driver: Rc<Driver>,
    pub(crate) scheduler: Scheduler,
    pub(crate) timers: Rc<TimerQueue>,
    pub(crate) worker: usize,
    pub(crate) workers: Arc<Workers>,
    fallback_reason: Option<String>,
    /// Nanoseconds parked (see [`coarse_now`]).
    parked: std::cell::Cell<u64>,
}

impl Core {
    fn new(
        config: &RingConfig,
        policy: DriverPolicy,
        worker: usize,
        workers: Arc<Workers>,
    ) -> io::Result<Core> {
        let (driver, fallback_reason) = Driver::new(config, policy)?;
        let driver = Rc::new(driver);
        let remote = Arc::new(Remote::new(driver.unparker()));
        Ok(Core {
            driver,
            scheduler: Scheduler::new(remote),
            timers: Rc::default(),
            worker,
            workers,
            fallback_reason,
            parked: Default::default(),
        })
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        assert!(
            !context::is_entered(),
            "coring: cannot start a runtime from within a runtime (block_on inside an async context)"
        );
        let _enter = context::enter(self);
        #[allow(clippy::let_unit_value)] // a unit without the `tokio-bridge` feature
        let _bridge = self.workers.bridge.enter();
        // In an `Option` so the future can be dropped (closing what it owned) before the
        // final flush below.
        let mut future = pin!(Some(future));
        let main = MainWaker::new(self.scheduler.remote().clone());
        let waker = Waker::from(main.clone());
        let mut cx = Context::from_waker(&waker);
        let mut turns_unpublished = 0u32;
        let (mut in_flight, mut counted_at) = (0, 0u64);
        let output = loop {
            if main.is_queued() && main.take_queued() {
                let polled = coop::with_budget(|| {
                    let running = future.as_mut().as_pin_mut().expect("polled until ready");
                    running.poll(&mut cx)
                });
                if let Poll::Ready(output) = polled {
                    break output;
                }
            }
            self.scheduler.run_ready(TICK);
            self.fire_timers();
            self.scheduler.drain_remote();
            let idle = !self.scheduler.has_ready() && !main.is_queued();
            // Publish the counters for `Handle::metrics` before a park and every few turns.
            // Counting the ops in flight walks the op table: that count is redone at most
            // every `PUBLISH_INTERVAL_NS`.
            turns_unpublished += 1;
            if idle || turns_unpublished >= handle::PUBLISH_EVERY {
                let now = coarse_now();
                if now.saturating_sub(counted_at) >= handle::PUBLISH_INTERVAL_NS {
                    in_flight = self.driver.metrics().ops_in_flight;
                    counted_at = now;
                }
                let metrics = Metrics {
                    ops_in_flight: in_flight,
                    ..self.counters()
                };
                self.workers.publish_metrics(self.worker, metrics);
                turns_unpublished = 0;
            }
            let remote = self.scheduler.remote();
            let result = if idle && remote.begin_park() {
                let timeout = self
                    .timers
                    .next_deadline()
                    .map(|deadline| deadline.saturating_duration_since(Instant::now()));
                let parked_at = coarse_now();
                let result = self.driver.park(true, timeout);
                self.parked
                    .set(self.parked.get() + coarse_now().saturating_sub(parked_at));
                remote.end_park();
                result
            } else {
                // No park was announced (`begin_park` sets nothing when it refuses).
                self.driver.park(false, None)
            };
            if let Err(e) = result {
                panic!("coring: the io_uring driver failed: {e}");
            }
            self.fire_timers();
        };
        // Whatever the future still owned (sockets, files) is closed now, not at the next
        // `block_on`: submit those closes before returning.
        future.set(None);
        if let Err(e) = self.driver.park(false, None) {
            panic!("coring: the io_uring driver failed: {e}");
        }
        output
    }

    /// Wakes the expired timers. The clock is read only when a timer is pending: on a VM a
    /// clock read can cost more than a task switch.
    fn fire_timers(&self) {
        if self.timers.next_deadline().is_some() {
            self.timers.fire(Instant::now());
        }
    }

    fn shutdown(&self) -> usize {
        let _enter = context::enter(self);
        #[allow(clippy::let_unit_value)] // a unit without the `tokio-bridge` feature
        let _bridge = self.workers.bridge.enter();
        self.scheduler.shutdown();
        let stuck = self.driver.shutdown();
        self.workers.publish_metrics(self.worker, self.metrics());
        stuck
    }

    /// This worker's counters: its ring, its tasks, its time parked. The process-wide io-wq
    /// thread count, which reads `/proc`, is left at 0 for the reader to fill in.
    fn metrics(&self) -> Metrics {
        Metrics {
            ops_in_flight: self.driver.metrics().ops_in_flight,
            ..self.counters()
        }
    }

    /// [`metrics`](Core::metrics) without `ops_in_flight` (0), which walks the op table:
    /// cheap enough for every turn.
    fn counters(&self) -> Metrics {
        Metrics {
            tasks_spawned: self.scheduler.spawned(),
            tasks_alive: self.scheduler.tasks_len(),
            parked: Duration::from_nanos(self.parked.get()),
            ..self.driver.counters()
        }
    }
}

/// An io_uring runtime: the calling thread (worker 0) plus, optionally, more worker threads,
/// each with its own ring.
///
/// ```
/// use coring::runtime::Runtime;
///
/// let rt = Runtime::new()?;
/// let answer = rt.block_on(async { coring::spawn(async { 42 }).await.unwrap() });
/// assert_eq!(answer, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Runtime {
    core: Core,
    threads: WorkerThreads,
    /// Dropped last, once the workers are gone (`Builder::tokio_bridge`).
    _bridge: bridge::Bridge,
}

impl Runtime {
    /// A single-threaded runtime with default settings; see [`Builder`].
    ///
    /// Fails with an error naming the cause when io_uring is unavailable (see
    /// [`SetupError`](crate::driver::SetupError)).
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// A builder to choose ring sizes, SQPOLL and worker threads.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Runs `future` to completion on this thread (worker 0), together with the tasks
    /// spawned here. Other workers run their own tasks meanwhile.
    ///
    /// # Panics
    /// When called from inside a runtime (including this one).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.core.block_on(future)
    }

    /// Runs the future `make(worker)` on every worker (this thread is worker 0) and waits for
    /// all of them: the thread-per-core server shape. Each future is created on its own
    /// worker, so it need not be `Send`. A worker's result is an error if its future panicked
    /// or was cancelled by [`ShutdownHandle::shutdown`].
    ///
    /// ```no_run
    /// use coring::runtime::Runtime;
    ///
    /// let rt = Runtime::builder().worker_threads(2).build()?;
    /// rt.block_on_each(|worker| async move {
    ///     let listener = coring::net::TcpListener::bind_reuseport("127.0.0.1:8080").await?;
    ///     loop {
    ///         let (stream, _) = listener.accept().await?;
    ///         coring::spawn(async move { drop(stream) });
    ///     }
    ///     #[allow(unreachable_code)]
    ///     Ok::<(), std::io::Error>(())
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn block_on_each<M, F>(&self, make: M) -> Vec<Result<F::Output, JoinError>>
    where
        M: Fn(usize) -> F + Send + Sync + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let make = Arc::new(make);
        let workers = self.core.workers.len();
        self.block_on(async move {
            let handles: Vec<_> = (0..workers)
                .map(|worker| {
                    let make = make.clone();
                    worker::spawn_on_with(worker, move || make(worker))
                })
                .collect();
            let mut results = Vec::with_capacity(handles.len());
            for handle in handles {
                results.push(handle.await);
            }
            results
        })
    }

    /// Number of workers (threads with a ring), this one included.
    pub fn worker_threads(&self) -> usize {
        self.core.workers.len()
    }

    /// A handle that cancels every task on every worker, from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle::new(self.core.workers.clone())
    }

    /// The backend this runtime runs on.
    pub fn driver_kind(&self) -> DriverKind {
        self.core.driver.kind()
    }

    /// Why io_uring was not used, when the `Auto` policy fell back to epoll.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.core.fallback_reason.as_deref()
    }

    /// Counters of this thread's worker: its ring, its tasks, its time parked.
    ///
    /// ```
    /// let rt = coring::runtime::Runtime::new()?;
    /// rt.block_on(async { coring::time::sleep(std::time::Duration::from_millis(1)).await });
    /// let m = rt.metrics();
    /// println!("{} enters, {:?} parked", m.enters, m.parked);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metrics(&self) -> Metrics {
        Metrics {
            io_wq_workers: crate::driver::io_wq_workers(),
            ..self.core.metrics()
        }
    }

    /// A `Send + Sync` handle to this runtime, to spawn onto it and read every worker's
    /// metrics from any thread.
    ///
    /// ```
    /// let rt = coring::runtime::Runtime::new()?;
    /// let handle = rt.handle();
    /// std::thread::spawn(move || drop(handle.spawn(async { println!("hello") })));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handle(&self) -> Handle {
        Handle::new(self.core.workers.clone())
    }

    /// The setup flags this thread's ring was created with.
    pub fn ring_flags(&self) -> RingFlags {
        self.core.driver.flags()
    }

    /// Spawned tasks not yet finished on this thread.
    pub fn tasks(&self) -> usize {
        self.core.scheduler.tasks_len()
    }

    /// Timers (sleeps, timeouts, intervals) waiting to fire on this thread.
    pub fn timers(&self) -> usize {
        self.core.timers.len()
    }

    /// Stops the other workers, drops every task, cancels every op in flight and waits for
    /// the kernel to release them. Returns the number of ops on this thread that the kernel
    /// did not finish within the grace period (their memory is leaked, never freed).
    /// Dropping the runtime does the same.
    pub fn shutdown(&self) -> usize {
        self.threads.stop_and_join();
        self.core.shutdown()
    }

    /// Slots still held in this thread's op table (0 after a complete shutdown).
    pub fn op_slots(&self) -> usize {
        self.core.driver.slots_len()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The kernel's coarse monotonic clock (`CLOCK_MONOTONIC_COARSE`): the time of the last timer
/// tick, read from the vDSO without reading the TSC. It times the parks for
/// [`Metrics::parked`]: each reading is off by up to a tick
/// (1-4 ms), but parks start at no particular point of a tick, so the sum over many parks is
/// right on average. A precise pair of reads per park cost 2% of the throughput of 4 KiB
/// page-cache reads at queue depth 1, where every op parks. In nanoseconds, which add up
/// without the carries of a `Duration`.
fn coarse_now() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the call; the clock id is a constant
    // every Linux since 2.6.32 knows.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    (now.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(now.tv_nsec as u64)
}
