//! Ring construction: probe the kernel flag by flag, and explain a refusal.
//!
//! The cheapest ring mode on a modern kernel is `SINGLE_ISSUER | DEFER_TASKRUN` (6.1): the
//! kernel runs completion work only when this thread enters the ring asking for events, so no
//! inter-processor interrupt or task-work notification is spent on a thread that is running
//! anyway. `COOP_TASKRUN` (5.19) with `TASKRUN_FLAG` gives the same benefit without the defer
//! on SQPOLL rings. The flags are tried together and dropped one at a time, newest first, while
//! the kernel answers `EINVAL`: no kernel version number is ever consulted.
//!
//! When `io_uring_setup` itself is refused, [`diagnose`] turns the errno into a [`SetupError`]
//! that names the cause (`kernel.io_uring_disabled`, a seccomp filter, no kernel support, the
//! memlock limit) and what the user can do about it.

use std::fmt;
use std::io;
use std::time::Duration;

use io_uring::IoUring;

/// Ring parameters chosen by [`Builder`](crate::runtime::Builder).
#[derive(Debug, Clone)]
pub(crate) struct RingConfig {
    pub entries: u32,
    pub cq_entries: Option<u32>,
    pub sqpoll_idle: Option<Duration>,
    pub sqpoll_cpu: Option<u32>,
    /// Slots in the registered file table, registered on first use; 0 turns it off.
    pub fixed_files: u32,
    /// Hand each op to the kernel as soon as it is created, not when the worker parks.
    pub eager_submit: bool,
    /// Most io-wq threads per worker, `[bounded, unbounded]`; 0 keeps the kernel's limit.
    pub iowq_max_workers: [u32; 2],
}

/// The default limit on a worker's io-wq threads for unbounded work (ops on sockets and pipes
/// that the kernel runs in a thread of its own, such as a splice): tokio's limit on blocking
/// threads. The kernel's own is `RLIMIT_NPROC`, in practice none: a splice blocked on each of
/// 2,000 idle sockets made 4,000 threads. Bounded work (regular files, block devices) keeps
/// the kernel's limit, which is already small (at most 4 per CPU).
pub(crate) const DEFAULT_IOWQ_UNBOUNDED: u32 = 512;

/// Applies `limits` (`[bounded, unbounded]`, 0 keeps the kernel's) to the io-wq of the
/// calling thread, which owns `ring` (`IORING_REGISTER_IOWQ_MAX_WORKERS`, Linux 5.15+).
/// Returns the limits in force, or `None` where the kernel cannot tell (too old).
pub(crate) fn limit_io_wq(ring: &IoUring, limits: [u32; 2]) -> Option<[u32; 2]> {
    let mut values = limits;
    ring.submitter()
        .register_iowq_max_workers(&mut values)
        .ok()?;
    // The kernel answers with the limits that were in force before: where ours were 0 (keep),
    // those are the ones in force now.
    Some([0, 1].map(|i| if limits[i] == 0 { values[i] } else { limits[i] }))
}

/// Optional setup flags, newest kernel feature first: the first one is dropped first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tuning {
    DeferTaskrun,
    SingleIssuer,
    CoopTaskrun,
    SubmitAll,
}

/// The setup flags a ring ended up with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RingFlags {
    /// `IORING_SETUP_DEFER_TASKRUN`: completions are processed only when the ring is entered.
    pub defer_taskrun: bool,
    /// `IORING_SETUP_SINGLE_ISSUER`.
    pub single_issuer: bool,
    /// `IORING_SETUP_COOP_TASKRUN` with `IORING_SETUP_TASKRUN_FLAG`.
    pub coop_taskrun: bool,
    /// `IORING_SETUP_SUBMIT_ALL`.
    pub submit_all: bool,
    /// `IORING_SETUP_SQPOLL`.
    pub sqpoll: bool,
    /// The ring fd is registered (`IORING_REGISTER_RING_FDS`).
    pub registered_ring_fd: bool,
    /// The most io-wq threads this worker's ring may use, `[bounded, unbounded]`
    /// ([`Builder::iowq_max_workers`](crate::runtime::Builder::iowq_max_workers)); `None`
    /// where the kernel cannot set them.
    pub iowq_max_workers: Option<[u32; 2]>,
}

impl fmt::Display for RingFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.sqpoll, "SQPOLL"),
            (self.single_issuer, "SINGLE_ISSUER"),
            (self.defer_taskrun, "DEFER_TASKRUN"),
            (self.coop_taskrun, "COOP_TASKRUN|TASKRUN_FLAG"),
            (self.submit_all, "SUBMIT_ALL"),
            (self.registered_ring_fd, "registered ring fd"),
        ];
        let on: Vec<&str> = names.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
        if on.is_empty() {
            f.write_str("default")
        } else {
            f.write_str(&on.join(" | "))
        }
    }
}

/// The smallest SQ built: room for the largest group of linked entries the runtime submits
/// (an op and its `IORING_OP_LINK_TIMEOUT`).
const MIN_SQ_ENTRIES: u32 = 2;

/// Builds the ring, dropping optional flags the kernel rejects.
pub(crate) fn build_ring(config: &RingConfig) -> io::Result<(IoUring, RingFlags)> {
    if config.entries == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "coring: ring entries must be at least 1",
        ));
    }
    // An op with a timeout is two linked entries that must enter the SQ together (the
    // backlog keeps them whole), so the SQ holds at least two.
    let entries = config.entries.max(MIN_SQ_ENTRIES);
    let cq_entries = config
        .cq_entries
        .unwrap_or(entries.saturating_mul(2))
        .max(entries.saturating_mul(2));
    let mut tuning = vec![
        Tuning::DeferTaskrun,
        Tuning::SingleIssuer,
        Tuning::CoopTaskrun,
        Tuning::SubmitAll,
    ];
    if config.sqpoll_idle.is_some() {
        // DEFER_TASKRUN needs the submitting task to run completions; SQPOLL submits from a
        // kernel thread. The kernel rejects the pair.
        tuning.retain(|t| *t != Tuning::DeferTaskrun);
    }
    loop {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(cq_entries).setup_clamp();
        if let Some(idle) = config.sqpoll_idle {
            builder.setup_sqpoll(idle.as_millis().min(u32::MAX as u128) as u32);
            if let Some(cpu) = config.sqpoll_cpu {
                builder.setup_sqpoll_cpu(cpu);
            }
        }
        for t in &tuning {
            match t {
                Tuning::DeferTaskrun => builder.setup_defer_taskrun(),
                Tuning::SingleIssuer => builder.setup_single_issuer(),
                Tuning::CoopTaskrun => builder.setup_coop_taskrun().setup_taskrun_flag(),
                Tuning::SubmitAll => builder.setup_submit_all(),
            };
        }
        match builder.build(entries) {
            Ok(ring) => {
                let flags = RingFlags {
                    defer_taskrun: tuning.contains(&Tuning::DeferTaskrun),
                    single_issuer: tuning.contains(&Tuning::SingleIssuer),
                    coop_taskrun: tuning.contains(&Tuning::CoopTaskrun),
                    submit_all: tuning.contains(&Tuning::SubmitAll),
                    sqpoll: config.sqpoll_idle.is_some(),
                    registered_ring_fd: false,
                    iowq_max_workers: None,
                };
                return Ok((ring, flags));
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !tuning.is_empty() => {
                tuning.remove(0);
            }
            Err(e) => return Err(diagnose(e, config.sqpoll_idle.is_some())),
        }
    }
}

/// Why io_uring could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupErrorKind {
    /// `kernel.io_uring_disabled` is set to the given value (1: restricted, 2: disabled).
    DisabledBySysctl(u8),
    /// `EPERM` with the sysctl allowing io_uring: a seccomp filter or an LSM refused it.
    Forbidden,
    /// `ENOSYS`: the kernel (or sandbox) does not implement io_uring.
    Unsupported,
    /// `ENOMEM`: the ring could not be allocated (the memlock limit, on kernels before 5.12).
    OutOfMemory,
    /// The kernel rejected the ring's parameters (`EINVAL` with every optional flag dropped).
    InvalidParameters,
    /// Any other errno.
    Other,
}

/// The error [`Runtime::new`](crate::runtime::Runtime::new) returns when io_uring is refused.
///
/// It travels inside an [`io::Error`]; get it back with `err.get_ref()` and `downcast_ref`.
#[derive(Debug)]
pub struct SetupError {
    kind: SetupErrorKind,
    source: io::Error,
    advice: String,
}

impl SetupError {
    /// The cause.
    pub fn kind(&self) -> &SetupErrorKind {
        &self.kind
    }

    /// The errno `io_uring_setup` returned.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "coring: io_uring is unavailable: {} ({})",
            self.advice, self.source
        )
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn read_sysctl_disabled() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Turns an `io_uring_setup` failure into an error that says what and why.
pub(crate) fn diagnose(source: io::Error, sqpoll: bool) -> io::Error {
    let errno = source.raw_os_error().unwrap_or(0);
    let (kind, advice) = match errno {
        libc::EPERM => match read_sysctl_disabled() {
            Some(2) => (
                SetupErrorKind::DisabledBySysctl(2),
                "io_uring is disabled system-wide by kernel.io_uring_disabled=2; \
                 an administrator can allow it with `sysctl kernel.io_uring_disabled=0`"
                    .to_string(),
            ),
            Some(1) => (
                SetupErrorKind::DisabledBySysctl(1),
                "io_uring is restricted by kernel.io_uring_disabled=1 to processes with \
                 CAP_SYS_ADMIN or in the group named by kernel.io_uring_group; add this user \
                 to that group or set the sysctl to 0"
                    .to_string(),
            ),
            _ if sqpoll => (
                SetupErrorKind::Forbidden,
                "the kernel refused an SQPOLL ring (kernels before 5.11 need CAP_SYS_NICE for \
                 it), or a seccomp filter forbids io_uring_setup; run without sqpoll"
                    .to_string(),
            ),
            _ => (
                SetupErrorKind::Forbidden,
                "io_uring_setup was refused with EPERM although kernel.io_uring_disabled allows \
                 it: a seccomp filter (Docker's default profile since Engine 25, containerd 2) \
                 or a security module forbids io_uring; run with a seccomp profile that allows \
                 io_uring_setup, io_uring_enter and io_uring_register"
                    .to_string(),
            ),
        },
        libc::ENOSYS => (
            SetupErrorKind::Unsupported,
            "this kernel or sandbox does not implement io_uring (it needs Linux 5.10 or later \
             built with CONFIG_IO_URING; gVisor and some seccomp profiles answer ENOSYS); \
             run on a newer kernel or outside the sandbox"
                .to_string(),
        ),
        libc::ENOMEM => (
            SetupErrorKind::OutOfMemory,
            "the ring could not be allocated; on kernels before 5.12 its memory counts \
             against RLIMIT_MEMLOCK: raise `ulimit -l` or ask for fewer entries"
                .to_string(),
        ),
        libc::EINVAL => (
            SetupErrorKind::InvalidParameters,
            "the kernel rejected the ring parameters even without optional flags; \
             check the entry counts (at most 32768 SQ entries)"
                .to_string(),
        ),
        _ => (SetupErrorKind::Other, "io_uring_setup failed".to_string()),
    };
    let io_kind = match kind {
        SetupErrorKind::Unsupported => io::ErrorKind::Unsupported,
        SetupErrorKind::InvalidParameters => io::ErrorKind::InvalidInput,
        SetupErrorKind::OutOfMemory => io::ErrorKind::OutOfMemory,
        SetupErrorKind::Other => source.kind(),
        _ => io::ErrorKind::PermissionDenied,
    };
    io::Error::new(
        io_kind,
        SetupError {
            kind,
            source,
            advice,
        },
    )
}
