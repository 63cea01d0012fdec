//! Plumbing shared by the fs modules: running a syscall on the blocking pool, and the
//! `statx(2)` fallback for kernels without `IORING_OP_STATX`.
//!
//! A job on the blocking pool may outlive the future that started it (dropping a
//! `JoinHandle` detaches the job, it does not stop it). So a job never borrows a caller's
//! descriptor: it gets its own duplicate ([`dup`]), and a path is moved into it by value. A
//! detached `ftruncate` therefore always hits the file it was meant for, even if the
//! caller's descriptor number was closed and reused meanwhile.

use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use coring_runtime::op::openclose::cstring;
use coring_runtime::task::spawn_blocking;

/// Runs `f` on the blocking pool; a panic or abort of the job becomes an `io::Error`.
pub(crate) async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
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
    // SAFETY: statx is plain data; all-zero is a valid value for the kernel to overwrite.
    let mut buf = unsafe { mem::zeroed::<libc::statx>() };
    // SAFETY: `path` is a NUL-terminated string and `buf` a writable statx, both alive for the
    // duration of the call.
    cvt(unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            &mut buf,
        )
    })?;
    Ok(buf)
}
