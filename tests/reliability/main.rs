//! The adversarial reliability suite: one module per way a runtime can be hurt.
//!
//! Each module states the hazard it provokes and the outcome it insists on. Items already
//! covered equivalently by another test binary are not repeated here; a module that extends
//! one says which.
//!
//! Ground rules, for every test:
//! - bounded in time by a [`watchdog`](common::watchdog) (a hang fails, it does not stall CI);
//! - run one at a time ([`serial`]): most count the process's descriptors, and the others
//!   measure time or CPU, which a neighbour would disturb;
//! - end with `shutdown() == 0` and `op_slots() == 0`, and, where they touch descriptors, the
//!   fd table as it was before ([`common::assert_same_fds`]);
//! - scenarios that change process-wide state (resource limits, signal dispositions,
//!   capabilities, interval timers) run in a child process: the binary re-executes itself for
//!   an ignored `*_child` test ([`common::run_child`]).
//!
//! Tests about io_uring itself build with [`uring`] (so they hold when CI runs the suite with
//! `CORING_DRIVER=epoll`); tests of user-visible behaviour run on the default backend.

#[path = "../common/mod.rs"]
mod common;

mod cancelled_fs_ops;
mod cq_overflow;
mod emfile;
mod fd_reuse;
mod file_edges;
mod forget;
mod kernel_timers;
mod many_connections;
mod memlock;
mod panics;
mod rst_write;
mod shutdown_pending;
mod signal_storm;
mod sqpoll_full;
mod wake_storm;
mod zero_length;

use std::sync::MutexGuard;
use std::time::Duration;

use coring::runtime::Runtime;

pub use common::uring;

/// Serialises the tests of this binary (the descriptor count is process-wide, and timing
/// and CPU measurements need the machine's two cores to themselves).
pub fn serial() -> MutexGuard<'static, ()> {
    common::fd_lock()
}

/// Shuts `rt` down and checks that nothing was left in flight.
pub fn finish(rt: &Runtime) {
    assert_eq!(
        rt.shutdown(),
        0,
        "ops the kernel did not finish at shutdown"
    );
    assert_eq!(rt.op_slots(), 0, "op slots left after shutdown");
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec; the clock ids used are always valid.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime({id})");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time the calling thread has used.
pub fn thread_cpu() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time the whole process has used (every thread).
pub fn process_cpu() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Raises the soft `RLIMIT_NOFILE` to at least `want` (bounded by the hard limit); returns
/// the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur < want {
        lim.rlim_cur = want.min(lim.rlim_max);
        // SAFETY: `lim` is a valid rlimit no higher than the hard limit.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
        assert_eq!(
            rc,
            0,
            "setrlimit(RLIMIT_NOFILE): {}",
            std::io::Error::last_os_error()
        );
    }
    lim.rlim_cur
}

/// Sets the soft limit of `resource` to `soft` (the hard limit is kept, or lowered to it).
pub fn set_soft_limit(resource: libc::__rlimit_resource_t, soft: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(resource, &mut lim) }, 0);
    lim.rlim_cur = soft.min(lim.rlim_max);
    // SAFETY: a valid rlimit no higher than the hard limit.
    let rc = unsafe { libc::setrlimit(resource, &lim) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// Asserts that a child process run by [`common::run_child`] succeeded and printed `marker`.
pub fn assert_child_ok(out: &std::process::Output, marker: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(marker),
        "child failed or did not report {marker:?}\n{}",
        common::describe(out)
    );
}
