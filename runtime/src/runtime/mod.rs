//! The runtime: a driver (one ring) and a local scheduler, run by [`Runtime::block_on`].
//!
//! # The loop
//! Each turn polls the `block_on` future if it was woken, then up to [`TICK`] queued tasks,
//! then parks the driver: submitting everything the tasks queued and reaping completions in
//! one `io_uring_enter`. When nothing is ready the same call blocks until a completion (or a
//! wake-up from another thread) arrives. Bounding the tasks per turn keeps completions flowing
//! even when tasks keep each other busy.
//!
//! # Shutdown
//! Dropping a [`Runtime`] drops every task (their ops are cancelled by their futures' drops),
//! then cancels whatever is still in flight and waits for the kernel to finish with it, so
//! nothing the kernel does lands after `drop` returns.

pub(crate) mod context;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::driver::{Driver, Metrics, RingConfig, RingFlags};
use crate::task::coop;
use crate::task::scheduler::Scheduler;
use crate::task::waker::{Remote, TaskId, TaskWaker};
use crate::time::timers::TimerQueue;

/// Tasks polled per turn before the ring is visited again.
const TICK: usize = 64;

pub(crate) struct Core {
    pub(crate) driver: Rc<Driver>,
    pub(crate) scheduler: Scheduler,
    pub(crate) timers: Rc<TimerQueue>,
}

/// A single-threaded io_uring runtime.
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
}

impl Runtime {
    /// A runtime with default settings; see [`Builder`].
    ///
    /// Fails with an error naming the cause when io_uring is unavailable (see
    /// [`SetupError`](crate::driver::SetupError)).
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// A builder to choose ring sizes and SQPOLL.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Runs `future` to completion on this thread, together with every spawned task.
    ///
    /// # Panics
    /// When called from inside a runtime (including this one).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        assert!(
            !context::is_entered(),
            "coring: cannot start a runtime from within a runtime (block_on inside an async context)"
        );
        let core = &self.core;
        let _enter = context::enter(core);
        let mut future = pin!(future);
        let main = TaskWaker::new(TaskId::MAIN, core.scheduler.remote().clone());
        let waker = TaskWaker::into_waker(main.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            if main.take_queued() {
                if let Poll::Ready(output) = coop::with_budget(|| future.as_mut().poll(&mut cx)) {
                    return output;
                }
            }
            core.scheduler.run_ready(TICK);
            core.timers.fire(Instant::now());
            core.scheduler.drain_remote();
            let idle = !core.scheduler.has_ready()
                && !main.queued.load(std::sync::atomic::Ordering::Acquire);
            let result = if idle && core.scheduler.remote().begin_park() {
                let timeout = core
                    .timers
                    .next_deadline()
                    .map(|deadline| deadline.saturating_duration_since(Instant::now()));
                let result = core.driver.park(true, timeout);
                core.scheduler.remote().end_park();
                result
            } else {
                core.scheduler.remote().end_park();
                core.driver.park(false, None)
            };
            core.timers.fire(Instant::now());
            if let Err(e) = result {
                panic!("coring: the io_uring driver failed: {e}");
            }
        }
    }

    /// Counters of the ring's work so far.
    pub fn metrics(&self) -> Metrics {
        self.core.driver.metrics()
    }

    /// The setup flags the ring was created with.
    pub fn ring_flags(&self) -> RingFlags {
        self.core.driver.flags()
    }

    /// Timers (sleeps, timeouts, intervals) waiting to fire.
    pub fn timers(&self) -> usize {
        self.core.timers.len()
    }

    /// Spawned tasks not yet finished.
    pub fn tasks(&self) -> usize {
        self.core.scheduler.tasks_len()
    }

    /// Drops every task, cancels every op in flight and waits for the kernel to release them.
    /// Returns the number of ops the kernel did not finish within the grace period (their
    /// memory is leaked, never freed). Dropping the runtime does the same.
    pub fn shutdown(&self) -> usize {
        let _enter = context::enter(&self.core);
        self.core.scheduler.shutdown();
        self.core.driver.shutdown()
    }

    /// Slots still held in the op table (0 after a complete shutdown).
    pub fn op_slots(&self) -> usize {
        self.core.driver.slots_len()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Configures a [`Runtime`].
///
/// ```
/// let rt = coring::runtime::Runtime::builder().entries(64).build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    config: RingConfig,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Default settings: 1024 submission entries, a completion queue twice that size.
    pub fn new() -> Self {
        Builder {
            config: RingConfig {
                entries: 1024,
                cq_entries: None,
                sqpoll_idle: None,
                sqpoll_cpu: None,
            },
        }
    }

    /// Submission queue entries (rounded up to a power of two by the kernel).
    pub fn entries(mut self, entries: u32) -> Self {
        self.config.entries = entries;
        self
    }

    /// Completion queue entries; at least twice the submission entries.
    pub fn cq_entries(mut self, entries: u32) -> Self {
        self.config.cq_entries = Some(entries);
        self
    }

    /// Submits through a kernel thread (`IORING_SETUP_SQPOLL`) that sleeps after `idle`
    /// without work.
    pub fn sqpoll(mut self, idle: Duration) -> Self {
        self.config.sqpoll_idle = Some(idle);
        self
    }

    /// Pins the SQPOLL thread to `cpu` (with [`sqpoll`](Builder::sqpoll)).
    pub fn sqpoll_cpu(mut self, cpu: u32) -> Self {
        self.config.sqpoll_cpu = Some(cpu);
        self
    }

    /// Creates the runtime.
    pub fn build(self) -> io::Result<Runtime> {
        let driver = Rc::new(Driver::new(&self.config)?);
        let remote = std::sync::Arc::new(Remote::new(driver.unparker()));
        Ok(Runtime {
            core: Core {
                driver,
                scheduler: Scheduler::new(remote),
                timers: Rc::default(),
            },
        })
    }
}
