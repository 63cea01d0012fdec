//! Opening and closing descriptors (`IORING_OP_OPENAT`, `IORING_OP_CLOSE`).

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use io_uring::{opcode, squeue, types};

use super::{Completion, Fallback, OpCode};

/// `IORING_OP_OPENAT` relative to the current directory; the new fd is `O_CLOEXEC`.
pub struct OpenAt {
    path: CString,
    flags: libc::c_int,
    mode: libc::mode_t,
}

impl OpenAt {
    /// Opens `path` with `open(2)` flags and creation mode. Fails on a path with a NUL byte.
    pub fn new(path: &Path, flags: libc::c_int, mode: libc::mode_t) -> io::Result<Self> {
        Ok(OpenAt {
            path: cstring(path)?,
            flags: flags | libc::O_CLOEXEC,
            mode,
        })
    }
}

/// `path` as a C string, or a clear error when it contains a NUL byte.
pub fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("coring: path {path:?} contains a NUL byte"),
        )
    })
}

// SAFETY: the entry points into the op's heap-allocated C string.
unsafe impl OpCode for OpenAt {
    type Output = io::Result<RawFd>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .mode(self.mode)
            .build()
    }

    fn fallback(&mut self) -> Fallback {
        // SAFETY: the path is the op's NUL-terminated C string.
        let ret = unsafe { libc::open(self.path.as_ptr(), self.flags, self.mode as libc::c_uint) };
        Fallback::done(ret as isize)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(|fd| fd as RawFd)
    }

    fn complete_orphan(self, completion: Completion) {
        // The opener is gone: close the file rather than leak it.
        if let Ok(fd) = completion.result {
            super::net::close_now(fd as RawFd);
        }
    }
}

/// `IORING_OP_CLOSE`.
pub struct Close {
    fd: RawFd,
}

impl Close {
    /// Closes `fd`, which the op now owns.
    pub fn new(fd: RawFd) -> Self {
        Close { fd }
    }

    /// Closes the fd right away with `close(2)`, for when no ring can take the op.
    pub fn close_now(self) -> io::Result<()> {
        // SAFETY: the op owns `fd`; it is closed once, here.
        if unsafe { libc::close(self.fd) } < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

// SAFETY: the entry carries no pointers.
unsafe impl OpCode for Close {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Close::new(types::Fd(self.fd)).build()
    }

    fn fallback(&mut self) -> Fallback {
        crate::driver::forget_fd(self.fd);
        // SAFETY: the op owns `fd`; closed once, here.
        Fallback::done(unsafe { libc::close(self.fd) } as isize)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        if !completion.from_kernel {
            // Never submitted (no running ring): the descriptor is still ours to close.
            return self.close_now();
        }
        completion.result.map(drop)
    }
}

/// Closes `fd` through the current ring if there is one running, else with `close(2)` now.
/// Used by the `Drop` of sockets and files: the close is submitted with the next batch.
pub fn close_on_drop(fd: RawFd) {
    if let Err(close) = super::Op::detach(Close::new(fd)) {
        crate::driver::forget_fd(fd);
        let _ = close.close_now();
    }
}
