//! [`Builder`]: ring sizes, SQPOLL, worker threads.

use std::io;
use std::time::Duration;

use super::bridge::Bridge;
use super::worker::{start_workers, Workers};
use super::{Core, Runtime};
use crate::driver::{DriverPolicy, RingConfig};

/// Configures a [`Runtime`].
///
/// ```
/// let rt = coring::runtime::Runtime::builder().entries(64).build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) config: RingConfig,
    pub(crate) worker_threads: usize,
    pub(crate) pin_cores: bool,
    pub(crate) driver: DriverPolicy,
    pub(crate) tokio_bridge: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Default settings: one worker, 1024 submission entries, a completion queue twice that.
    pub fn new() -> Self {
        Builder {
            config: RingConfig {
                entries: 1024,
                cq_entries: None,
                sqpoll_idle: None,
                sqpoll_cpu: None,
                fixed_files: crate::driver::DEFAULT_FIXED_FILES,
                eager_submit: false,
                iowq_max_workers: [0, crate::driver::DEFAULT_IOWQ_UNBOUNDED],
            },
            worker_threads: 1,
            pin_cores: false,
            driver: DriverPolicy::from_env().unwrap_or_default(),
            tokio_bridge: false,
        }
    }

    /// Submission queue entries per ring (rounded up to a power of two by the kernel; at
    /// least 2, so that an op and its linked timeout fit in together).
    pub fn entries(mut self, entries: u32) -> Self {
        self.config.entries = entries;
        self
    }

    /// Slots in each ring's registered file table (default 4096, at most the `RLIMIT_NOFILE`
    /// soft limit), used by descriptors that call `register()` (for example
    /// `TcpStream::register`). The table is registered with the kernel the first time a
    /// descriptor asks for a slot; 0 turns registration off.
    ///
    /// ```
    /// let rt = coring::runtime::Runtime::builder().fixed_files(16_384).build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn fixed_files(mut self, slots: u32) -> Self {
        self.config.fixed_files = slots;
        self
    }

    /// Submits each op to the kernel as soon as it is created (one `io_uring_enter` per op)
    /// instead of batching the ops of a whole turn until the worker parks. Off by default:
    /// batching is what makes a busy network server cheap. It pays where the device works in
    /// parallel with the program and waiting for the batch leaves it idle: O_DIRECT storage at
    /// a moderate queue depth, where each read should reach the disk while the runtime polls
    /// the rest. Ignored with SQPOLL (the kernel thread submits anyway).
    ///
    /// ```
    /// let rt = coring::runtime::Runtime::builder().eager_submit(true).build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn eager_submit(mut self, eager: bool) -> Self {
        self.config.eager_submit = eager;
        self
    }

    /// The most kernel threads (io-wq workers, `iou-wrk-*`) each worker's ring may run
    /// blocking ops on (`IORING_REGISTER_IOWQ_MAX_WORKERS`): `bounded` for regular files and
    /// block devices, `unbounded` for everything else (sockets, pipes, character devices). 0
    /// keeps the kernel's limit.
    ///
    /// The kernel sends an op to io-wq when it cannot be done without blocking and cannot wait
    /// by polling: a buffered write that must wait for the disk, an `fsync`, any splice. Most
    /// socket and pipe ops never go there (they wait by polling, without a thread); a splice
    /// from an idle socket holds a thread for as long as the socket is idle. The default is
    /// the kernel's bounded limit (at most 4 per CPU) and 512 unbounded threads, tokio's limit
    /// on blocking threads; the kernel's own unbounded limit is `RLIMIT_NPROC`. Past the
    /// limit, work waits in the kernel's queue for a thread: ops that can only complete
    /// after each other (a splice waiting for data that a queued op would send) then wait
    /// for a thread to come free, as tokio's blocking tasks do.
    /// [`Runtime::ring_flags`](crate::runtime::Runtime::ring_flags) reports the limits in
    /// force; [`Metrics::io_wq_workers`](crate::driver::Metrics::io_wq_workers) counts the
    /// threads.
    ///
    /// ```
    /// let rt = coring::runtime::Runtime::builder().iowq_max_workers(0, 64).build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn iowq_max_workers(mut self, bounded: u32, unbounded: u32) -> Self {
        self.config.iowq_max_workers = [bounded, unbounded];
        self
    }

    /// Completion queue entries per ring; at least twice the submission entries.
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

    /// Number of workers, each a thread with its own ring and tasks; the thread that calls
    /// `block_on` is worker 0. At least 1 (the default).
    pub fn worker_threads(mut self, workers: usize) -> Self {
        self.worker_threads = workers.max(1);
        self
    }

    /// Pins worker `i` to CPU `i` (modulo the CPUs this process may use), the calling thread
    /// included.
    pub fn pin_cores(mut self, pin: bool) -> Self {
        self.pin_cores = pin;
        self
    }

    /// Which backend to run on: io_uring only, `Auto` (the default: io_uring when the kernel
    /// allows it, else the epoll fallback) or epoll forced. The default can be set with the
    /// `CORING_DRIVER` environment variable (`auto`, `io_uring`, `epoll`).
    ///
    /// ```
    /// use coring::runtime::{DriverKind, DriverPolicy, Runtime};
    ///
    /// let rt = Runtime::builder().driver(DriverPolicy::Epoll).build()?;
    /// assert_eq!(rt.driver_kind(), DriverKind::Epoll);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn driver(mut self, policy: DriverPolicy) -> Self {
        self.driver = policy;
        self
    }

    /// Runs a tokio runtime (I/O and time drivers on one worker thread of its own, plus
    /// tokio's blocking threads on demand) beside this one and enters it on every worker, so
    /// crates built on tokio's reactor work inside coring tasks: `tokio::time`, `tokio::net`,
    /// tower's timeout layers, and the database, Redis and HTTP clients built on them. `tokio::spawn` from a coring task runs on the bridge's
    /// thread. Off by default; needs the `tokio-bridge` cargo feature. The macros take
    /// `#[coring::main(tokio_bridge = true)]`.
    ///
    /// Each readiness event or timer of a tokio type then crosses from the bridge's thread to
    /// the worker as a wake-up; coring's own sockets, files and timers complete in the
    /// worker's ring and remain the fast path.
    ///
    /// ```
    /// let rt = coring::runtime::Runtime::builder().tokio_bridge(true).build()?;
    /// rt.block_on(async {
    ///     // tokio's timer, inside a coring task.
    ///     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "tokio-bridge")]
    pub fn tokio_bridge(mut self, enabled: bool) -> Self {
        self.tokio_bridge = enabled;
        self
    }

    /// Creates the runtime (and starts the other workers).
    pub fn build(self) -> io::Result<Runtime> {
        if self.config.entries == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "coring: ring entries must be at least 1",
            ));
        }
        let bridge = Bridge::start(self.tokio_bridge)?;
        let workers = Workers::new(self.worker_threads, bridge.handle());
        let core = Core::new(&self.config, self.driver, 0, workers.clone())?;
        let threads = start_workers(&self, &workers, core.scheduler.remote().clone())?;
        // Pin this thread only now: the workers, started from it, had to inherit the whole
        // CPU set to pick their own CPU from.
        if self.pin_cores {
            super::worker::pin_to_cpu(0);
        }
        Ok(Runtime {
            core,
            threads,
            _bridge: bridge,
        })
    }
}
