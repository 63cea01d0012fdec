//! Plumbing shared by the fs modules: choosing between a ring op and the blocking pool
//! ([`ring_or_blocking`]), running a syscall on the pool, and the `statx(2)` fallback for
//! kernels without `IORING_OP_STATX`.
//!
//! A job on the blocking pool may outlive the future that started it (dropping a
//! `JoinHandle` detaches the job, it does not stop it). So a job never borrows a caller's
//! descriptor: it gets its own duplicate ([`dup`]), and a path is moved into it by value. A
//! detached `ftruncate` therefore always hits the file it was meant for, even if the
//! caller's descriptor number was closed and reused meanwhile.

use std::ffi::{CStr, CString};
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::OnceLock;

use coring_runtime::op::openclose::cstring;
use coring_runtime::op::{Op, OpCode};
use coring_runtime::task::spawn_blocking;

/// Runs an op through the ring when `supported` (what the op's `is_supported()` says of this
/// kernel) and the fallbacks are not forced ([`forced_blocking`]), else the blocking-pool job
/// that `fallback` builds.
///
/// The pool is also used when the ring op comes back `Unsupported` with no OS error: that is
/// how a driver without io_uring (a readiness backend) refuses an op it cannot do, whereas
/// the kernel's own `EOPNOTSUPP` carries its errno and is returned as is. Both builders run
/// only if needed, so the common path allocates nothing for the fallback.
pub(crate) async fn ring_or_blocking<O, T, F>(
    supported: bool,
    op: impl FnOnce() -> io::Result<O>,
    fallback: impl FnOnce() -> io::Result<F>,
) -> io::Result<T>
where
    O: OpCode<Output = io::Result<T>>,
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    if supported && !forced_blocking() {
        match Op::submit(op()?).await {
            Err(e) if refused_by_driver(&e) => {}
            result => return result,
        }
    }
    blocking(fallback()?).await
}

/// Whether the environment variable `CORING_FS_BLOCKING` is `1`: then every op that has a
/// blocking-pool fallback takes it, as on a kernel without the op. Read once per process; for
/// testing the fallbacks on kernels that have every op.
pub(crate) fn forced_blocking() -> bool {
    static FORCED: OnceLock<bool> = OnceLock::new();
    *FORCED.get_or_init(|| std::env::var_os("CORING_FS_BLOCKING").is_some_and(|v| v == "1"))
}

/// Whether a ring op's error means this thread's driver cannot run the op at all (see
/// [`ring_or_blocking`]), rather than that the kernel ran it and it failed.
pub(crate) fn refused_by_driver(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Unsupported && err.raw_os_error().is_none()
}

/// Runs `f` on the blocking pool; a panic or abort of the job becomes an `io::Error`.
///
/// Like the ring path, it needs a coring runtime on this thread, so a file function behaves
/// the same whichever path the kernel makes it take.
pub(crate) async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    if coring_runtime::runtime::driver_kind().is_none() {
        return Err(io::Error::other(
            "coring: file I/O needs a coring runtime on this thread; \
             run it inside Runtime::block_on or #[coring::main]",
        ));
    }
    spawn_blocking(f).await.map_err(io::Error::from)?
}

/// A descriptor of its own for a blocking-pool job (`F_DUPFD_CLOEXEC`).
pub(crate) fn dup(fd: &impl AsFd) -> io::Result<OwnedFd> {
    fd.as_fd().try_clone_to_owned()
}

/// A libc return value: `-1` means "see `errno`".
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `statx(2)` of `path` with `flags` (`0` or `AT_SYMLINK_NOFOLLOW`), on the calling thread:
/// call it from the blocking pool.
pub(crate) fn statx_path(path: &Path, flags: libc::c_int) -> io::Result<libc::statx> {
    let path: CString = cstring(path)?;
    let mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
    statx(libc::AT_FDCWD, &path, flags, mask)
}

/// `statx(2)` of the fields in `mask` of the open descriptor `fd`, on the calling thread.
pub(crate) fn statx_fd(fd: &OwnedFd, mask: u32) -> io::Result<libc::statx> {
    statx(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH, mask)
}

fn statx(dirfd: RawFd, path: &CStr, flags: libc::c_int, mask: u32) -> io::Result<libc::statx> {
    // SAFETY: statx is plain data; all-zero is a valid value for the kernel to overwrite.
    let mut buf = unsafe { mem::zeroed::<libc::statx>() };
    // SAFETY: `path` is a NUL-terminated string and `buf` a writable statx, both alive for the
    // duration of the call; `dirfd` is AT_FDCWD or a descriptor the caller keeps open.
    cvt(unsafe { libc::statx(dirfd, path.as_ptr(), flags, mask, &mut buf) })?;
    Ok(buf)
}
