//! File metadata and durability (`IORING_OP_STATX`, `IORING_OP_FSYNC`).

use std::io;
use std::mem;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{Completion, OpCode};

/// `IORING_OP_STATX` on an open descriptor (`AT_EMPTY_PATH`).
pub struct Statx {
    fd: RawFd,
    statx: Box<libc::statx>,
}

impl Statx {
    /// Reads the metadata of `fd`.
    pub fn new(fd: RawFd) -> Self {
        // SAFETY: statx is plain data; all-zero is a valid value for the kernel to overwrite.
        let statx = Box::new(unsafe { mem::zeroed::<libc::statx>() });
        Statx { fd, statx }
    }
}

static EMPTY_PATH: &std::ffi::CStr = c"";

// SAFETY: the entry points into the op's boxed statx buffer and a `'static` empty path.
unsafe impl OpCode for Statx {
    type Output = io::Result<libc::statx>;

    fn sqe(&mut self) -> squeue::Entry {
        let buf: *mut libc::statx = &mut *self.statx;
        opcode::Statx::new(types::Fd(self.fd), EMPTY_PATH.as_ptr(), buf.cast())
            .flags(libc::AT_EMPTY_PATH)
            .mask(libc::STATX_BASIC_STATS | libc::STATX_BTIME)
            .build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(|_| *self.statx)
    }
}

/// `IORING_OP_FSYNC`, optionally `fdatasync`.
pub struct Fsync {
    fd: RawFd,
    data_only: bool,
}

impl Fsync {
    /// Flushes `fd`'s data and (unless `data_only`) its metadata to storage.
    pub fn new(fd: RawFd, data_only: bool) -> Self {
        Fsync { fd, data_only }
    }
}

// SAFETY: the entry carries no pointers.
unsafe impl OpCode for Fsync {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        let mut op = opcode::Fsync::new(types::Fd(self.fd));
        if self.data_only {
            op = op.flags(types::FsyncFlags::DATASYNC);
        }
        op.build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(drop)
    }
}
