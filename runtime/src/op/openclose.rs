//! Opening, closing and registering descriptors (`IORING_OP_OPENAT`, `IORING_OP_CLOSE`,
//! `IORING_OP_FILES_UPDATE`).

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use io_uring::{opcode, squeue, types};

use super::{Completion, Fallback, OpCode};
use crate::driver::FileTable;

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
/// Used by the `Drop` of sockets and files.
///
/// Through the ring the close enters the kernel at once (`Op::detach_now`), not with the
/// worker's next batch: a peer waits for end of stream, and the dropping thread may block
/// before its next park (std, tokio and the epoll backend close at once too). It goes
/// through the ring rather than `close(2)` so that it is ordered after every entry this
/// thread's ring has queued that still names the descriptor; a registered slot of this ring
/// is emptied in the same submission.
pub fn close_on_drop(fd: RawFd) {
    if let Err(close) = super::Op::detach_now(Close::new(fd)) {
        crate::driver::forget_fd(fd);
        let _ = close.close_now();
    }
}

/// `IORING_OP_FILES_UPDATE` into a slot the kernel picks (`IORING_FILE_INDEX_ALLOC`): puts a
/// descriptor in the ring's registered file table and yields its slot.
pub(crate) struct RegisterFile {
    /// In: the descriptor. Out: the slot the kernel chose, written back in place.
    fds: Box<[RawFd; 1]>,
    table: Arc<FileTable>,
}

impl RegisterFile {
    /// Registers `fd` (which stays open and owned by the caller) in `table`, this thread's
    /// ring's table.
    pub(crate) fn new(fd: RawFd, table: Arc<FileTable>) -> Self {
        RegisterFile {
            fds: Box::new([fd]),
            table,
        }
    }
}

const IORING_FILE_INDEX_ALLOC: i32 = -1;

// SAFETY: the entry points into the op's boxed one-element fd array, which the kernel reads
// and overwrites with the chosen slot.
unsafe impl OpCode for RegisterFile {
    type Output = io::Result<u32>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::FilesUpdate::new(self.fds.as_ptr(), 1)
            .offset(IORING_FILE_INDEX_ALLOC)
            .build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        match completion.result {
            Ok(1) => Ok(self.fds[0] as u32),
            Ok(_) => Err(io::Error::other(
                "coring: the kernel registered no descriptor (IORING_OP_FILES_UPDATE returned 0)",
            )),
            Err(e) if e.raw_os_error() == Some(libc::ENFILE) => Err(self.table.full()),
            Err(e) => Err(e),
        }
    }

    fn complete_orphan(self, completion: Completion) {
        // Nobody will use the slot: empty it again.
        if let Ok(1) = completion.result {
            self.table.release(self.fds[0] as u32);
        }
    }
}
