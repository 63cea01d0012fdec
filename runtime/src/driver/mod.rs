//! The driver: what a thread's ops are submitted to, and what its runtime parks in.
//!
//! Two backends run the same ops:
//! - `uring`: one io_uring per thread (the fast path, and the default whenever the kernel
//!   allows it);
//! - `epoll`: a readiness loop for where io_uring is refused (Docker's and containerd's
//!   default seccomp profiles, `kernel.io_uring_disabled`, gVisor). Each op tries its
//!   syscall without blocking and waits for readiness when told `EAGAIN`
//!   ([`OpCode::fallback`](crate::op::OpCode::fallback)).
//!
//! Which one runs is chosen by [`DriverPolicy`] (builder, macro option, or the
//! `CORING_DRIVER` environment variable) and reported by
//! [`Runtime::driver_kind`](crate::runtime::Runtime::driver_kind).
//!
//! Both keep in-flight ops in one table (`slots`): `user_data` (or the readiness key) is the
//! slot index plus a generation, so a late event never wakes the wrong task.

pub(crate) mod epoll;
#[cfg(feature = "test-util")]
pub mod fault;
pub(crate) mod files;
mod setup;
mod slots;
mod unpark;
pub(crate) mod uring;

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use files::{FileTable, DEFAULT_FIXED_FILES};
pub(crate) use setup::{RingConfig, DEFAULT_IOWQ_UNBOUNDED};
pub use setup::{RingFlags, SetupError, SetupErrorKind};
pub(crate) use slots::TOKEN_IGNORE as TOKEN_MESSAGE;
pub(crate) use slots::{Cqe, OpKey};
pub(crate) use unpark::Unparker;

use epoll::EpollDriver;
use uring::UringDriver;

/// How long a shutdown waits for the kernel to finish cancelled ops.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Counters of one worker's work, from [`Runtime::metrics`](crate::runtime::Runtime::metrics).
///
/// The counters only grow; take two snapshots and subtract to measure an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// `io_uring_enter` system calls made (`epoll_wait` calls on the epoll backend).
    pub enters: u64,
    /// Submission entries pushed to the ring (readiness registrations on epoll).
    pub sqes: u64,
    /// Completion entries reaped from the ring (readiness events on epoll).
    pub cqes: u64,
    /// Ops done by a plain non-blocking syscall instead of the ring, because the ring was
    /// idle ([`Op::inline_or_submit`](crate::op::Op::inline_or_submit): page-cache reads).
    pub ops_inline: u64,
    /// Cancellations requested (`IORING_OP_ASYNC_CANCEL` entries pushed).
    pub ops_cancelled: u64,
    /// Times the completion queue was found overflowed (`IORING_SQ_CQ_OVERFLOW`) and
    /// flushed. Completions are not lost, but a bigger CQ would save the extra work.
    pub cq_overflows: u64,
    /// Ops in flight right now (the kernel owns their resources).
    pub ops_in_flight: usize,
    /// Tasks spawned on this worker so far.
    pub tasks_spawned: u64,
    /// Tasks alive on this worker now.
    pub tasks_alive: usize,
    /// Time this worker spent blocked in the kernel waiting for work. Timed with the coarse
    /// monotonic clock: right on average over many parks, not to the microsecond for one.
    pub parked: std::time::Duration,
    /// The kernel's io-wq worker threads (`iou-wrk-*`) alive in this process now. Many of
    /// them mean ops block and are punted off the fast inline path: the first thing to look
    /// at when io_uring I/O is slow. Each worker's are capped by
    /// [`Builder::iowq_max_workers`](crate::runtime::Builder::iowq_max_workers).
    pub io_wq_workers: usize,
}

/// Counts this process's `iou-wrk-*` threads (io_uring's io-wq workers).
pub(crate) fn io_wq_workers() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.starts_with("iou-wrk"))
        })
        .count()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Running,
    ShuttingDown,
    Closed,
}

pub(crate) fn shutting_down() -> io::Error {
    io::Error::other("coring: the runtime is shutting down and accepts no new I/O")
}

/// Which backend a runtime runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// io_uring.
    IoUring,
    /// The readiness (epoll) fallback.
    Epoll,
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriverKind::IoUring => "io_uring",
            DriverKind::Epoll => "epoll",
        })
    }
}

/// Which backend a runtime may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverPolicy {
    /// io_uring when it works, else the epoll fallback; the reason is logged once to stderr
    /// and readable from [`Runtime::fallback_reason`](crate::runtime::Runtime::fallback_reason).
    #[default]
    Auto,
    /// io_uring only: a typed error ([`SetupError`]) when the kernel refuses it.
    IoUring,
    /// The epoll fallback, even where io_uring works.
    Epoll,
}

impl DriverPolicy {
    /// The policy named by `CORING_DRIVER` (`auto`, `io_uring`/`uring`, `epoll`), if set.
    pub fn from_env() -> Option<DriverPolicy> {
        let value = std::env::var("CORING_DRIVER").ok()?;
        value.parse().ok()
    }
}

impl std::str::FromStr for DriverPolicy {
    type Err = io::Error;

    fn from_str(s: &str) -> io::Result<DriverPolicy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DriverPolicy::Auto),
            "io_uring" | "iouring" | "uring" => Ok(DriverPolicy::IoUring),
            "epoll" => Ok(DriverPolicy::Epoll),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("coring: unknown driver {other:?}; expected auto, io_uring or epoll"),
            )),
        }
    }
}

/// One thread's driver.
// One per thread, behind an `Rc`: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Driver {
    Uring(UringDriver),
    Epoll(EpollDriver),
}

impl Driver {
    /// Builds the backend `policy` asks for; with `Auto`, also the reason io_uring was not
    /// used, if it was not.
    pub(crate) fn new(
        config: &RingConfig,
        policy: DriverPolicy,
    ) -> io::Result<(Driver, Option<String>)> {
        match policy {
            DriverPolicy::IoUring => Ok((Driver::Uring(UringDriver::new(config)?), None)),
            DriverPolicy::Epoll => Ok((Driver::Epoll(EpollDriver::new()?), None)),
            DriverPolicy::Auto => match UringDriver::new(config) {
                Ok(driver) => Ok((Driver::Uring(driver), None)),
                Err(e) if e.get_ref().is_some_and(|inner| inner.is::<SetupError>()) => {
                    let reason = e.to_string();
                    log_fallback_once(&reason);
                    Ok((Driver::Epoll(EpollDriver::new()?), Some(reason)))
                }
                Err(e) => Err(e),
            },
        }
    }

    pub(crate) fn kind(&self) -> DriverKind {
        match self {
            Driver::Uring(_) => DriverKind::IoUring,
            Driver::Epoll(_) => DriverKind::Epoll,
        }
    }

    pub(crate) fn uring(&self) -> Option<&UringDriver> {
        match self {
            Driver::Uring(d) => Some(d),
            Driver::Epoll(_) => None,
        }
    }

    pub(crate) fn unparker(&self) -> Arc<Unparker> {
        match self {
            Driver::Uring(d) => d.unparker(),
            Driver::Epoll(d) => d.unparker(),
        }
    }

    /// The ring's fd (io_uring backend only).
    pub(crate) fn ring_fd(&self) -> Option<RawFd> {
        self.uring().map(UringDriver::ring_fd)
    }

    pub(crate) fn flags(&self) -> RingFlags {
        self.uring().map(UringDriver::flags).unwrap_or_default()
    }

    pub(crate) fn metrics(&self) -> Metrics {
        match self {
            Driver::Uring(d) => d.metrics(),
            Driver::Epoll(d) => d.metrics(),
        }
    }

    /// [`metrics`](Driver::metrics) without `ops_in_flight` (0), which walks the op table.
    pub(crate) fn counters(&self) -> Metrics {
        match self {
            Driver::Uring(d) => d.counters(),
            Driver::Epoll(d) => d.counters(),
        }
    }

    pub(crate) fn slots_len(&self) -> usize {
        match self {
            Driver::Uring(d) => d.slots_len(),
            Driver::Epoll(d) => d.slots_len(),
        }
    }

    pub(crate) fn accepts_ops(&self) -> bool {
        match self {
            Driver::Uring(d) => d.accepts_ops(),
            Driver::Epoll(d) => d.accepts_ops(),
        }
    }

    #[inline]
    pub(crate) fn poll_op(
        &self,
        key: OpKey,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Cqe> {
        match self {
            Driver::Uring(d) => d.poll_op(key, cx),
            Driver::Epoll(d) => d.poll_op(key, cx),
        }
    }

    /// Submits pending work and delivers completions (readiness), blocking for one when
    /// `wait` is set, at most `timeout`.
    pub(crate) fn park(&self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Driver::Uring(d) => d.park(wait, timeout),
            Driver::Epoll(d) => d.park(wait, timeout),
        }
    }

    /// Cancels what is in flight and waits for the kernel to let go of it; returns the
    /// number of ops that did not finish in time (their memory is leaked).
    pub(crate) fn shutdown(&self) -> usize {
        match self {
            Driver::Uring(d) => d.shutdown(),
            Driver::Epoll(d) => d.shutdown(),
        }
    }
}

/// Tells the thread's epoll backend, if that is what runs here, that `fd` is about to be
/// closed or handed away, so a later descriptor with the same number is registered afresh.
pub(crate) fn forget_fd(fd: RawFd) {
    crate::runtime::context::with_core(|core| {
        if let Driver::Epoll(epoll) = &*core.driver {
            epoll.forget_fd(fd);
        }
    });
}

/// Runs `f`, keeping the first panic of a batch in `first` instead of unwinding.
pub(crate) fn catch_first_panic(
    first: &mut Option<Box<dyn std::any::Any + Send>>,
    f: impl FnOnce(),
) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        first.get_or_insert(payload);
    }
}

fn log_fallback_once(reason: &str) {
    static LOGGED: std::sync::Once = std::sync::Once::new();
    LOGGED.call_once(|| eprintln!("{reason}; using the epoll fallback driver instead"));
}
