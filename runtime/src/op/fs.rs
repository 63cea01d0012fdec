//! File metadata, durability and size (`IORING_OP_STATX`, `IORING_OP_FSYNC`,
//! `IORING_OP_FTRUNCATE`, `IORING_OP_FALLOCATE`, `IORING_OP_SYNC_FILE_RANGE`), and
//! [`kernel_supports`], which says whether the running kernel has an op at all.
//!
//! Newer ops are missing on older kernels (`FTRUNCATE` came in Linux 6.9, the path ops of
//! [`super::path`] in 5.11 to 5.15). Asking the kernel with such an op fails with `EINVAL`,
//! which for most of them is also a legitimate answer (a negative length, a file not open
//! for writing), so callers that have another way to do the work ask [`kernel_supports`]
//! first rather than guess from the error.

use std::io;
use std::mem;
use std::sync::OnceLock;

use io_uring::{opcode, squeue, types};

use super::{Completion, Fallback, FileRef, OpCode};

/// `IORING_OP_STATX` on an open descriptor (`AT_EMPTY_PATH`).
pub struct Statx {
    fd: FileRef,
    statx: Box<libc::statx>,
}

impl Statx {
    /// Reads the metadata of `fd`.
    pub fn new(fd: impl Into<FileRef>) -> Self {
        let fd = fd.into();
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
        // statx has no registered-slot form (the kernel refuses IOSQE_FIXED_FILE): the fd.
        opcode::Statx::new(types::Fd(self.fd.raw()), EMPTY_PATH.as_ptr(), buf.cast())
            .flags(libc::AT_EMPTY_PATH)
            .mask(libc::STATX_BASIC_STATS | libc::STATX_BTIME)
            .build()
    }

    fn fallback(&mut self) -> Fallback {
        let buf: *mut libc::statx = &mut *self.statx;
        let mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
        // SAFETY: an empty path with AT_EMPTY_PATH, and the op's boxed statx buffer.
        let ret = unsafe {
            libc::statx(
                self.fd.raw(),
                EMPTY_PATH.as_ptr(),
                libc::AT_EMPTY_PATH,
                mask,
                buf,
            )
        };
        Fallback::done(ret as isize)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(|_| *self.statx)
    }
}

/// `IORING_OP_FSYNC`, optionally `fdatasync`.
pub struct Fsync {
    fd: FileRef,
    data_only: bool,
}

impl Fsync {
    /// Flushes `fd`'s data and (unless `data_only`) its metadata to storage.
    pub fn new(fd: impl Into<FileRef>, data_only: bool) -> Self {
        Fsync {
            fd: fd.into(),
            data_only,
        }
    }
}

// SAFETY: the entry carries no pointers.
unsafe impl OpCode for Fsync {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        let flags = if self.data_only {
            types::FsyncFlags::DATASYNC
        } else {
            types::FsyncFlags::empty()
        };
        on_file!(self.fd, |fd| opcode::Fsync::new(fd).flags(flags).build())
    }

    fn fallback(&mut self) -> Fallback {
        // SAFETY: no pointers.
        let ret = unsafe {
            if self.data_only {
                libc::fdatasync(self.fd.raw())
            } else {
                libc::fsync(self.fd.raw())
            }
        };
        Fallback::done(ret as isize)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(drop)
    }
}

/// `IORING_OP_FTRUNCATE` (Linux 6.9+): sets the size of a file open for writing.
pub struct Ftruncate {
    fd: FileRef,
    len: u64,
}

impl Ftruncate {
    /// Truncates or extends `fd` to `len` bytes, as `ftruncate(2)`.
    pub fn new(fd: impl Into<FileRef>, len: u64) -> Self {
        Ftruncate { fd: fd.into(), len }
    }

    /// Whether the running kernel has `IORING_OP_FTRUNCATE`.
    pub fn is_supported() -> bool {
        kernel_supports(opcode::Ftruncate::CODE)
    }
}

// SAFETY: the entry carries no pointers.
unsafe impl OpCode for Ftruncate {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        on_file!(self.fd, |fd| opcode::Ftruncate::new(fd, self.len).build())
    }

    fn fallback(&mut self) -> Fallback {
        // SAFETY: no pointers.
        Fallback::done(unsafe { libc::ftruncate(self.fd.raw(), self.len as libc::off_t) } as isize)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(drop)
    }
}

/// `IORING_OP_FALLOCATE` (Linux 5.6+): allocates, or with a mode punches or zeroes, a range.
pub struct Fallocate {
    fd: FileRef,
    offset: u64,
    len: u64,
    mode: libc::c_int,
}

impl Fallocate {
    /// `fallocate(2)` of `len` bytes at `offset`; `mode` is `0` (allocate, growing the file
    /// if needed) or `FALLOC_FL_*` flags.
    pub fn new(fd: impl Into<FileRef>, offset: u64, len: u64, mode: libc::c_int) -> Self {
        Fallocate {
            fd: fd.into(),
            offset,
            len,
            mode,
        }
    }

    /// Whether the running kernel has `IORING_OP_FALLOCATE`.
    pub fn is_supported() -> bool {
        kernel_supports(opcode::Fallocate::CODE)
    }
}

// SAFETY: the entry carries no pointers.
unsafe impl OpCode for Fallocate {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        on_file!(self.fd, |fd| opcode::Fallocate::new(fd, self.len)
            .offset(self.offset)
            .mode(self.mode)
            .build())
    }

    fn fallback(&mut self) -> Fallback {
        let (offset, len) = (self.offset as libc::off_t, self.len as libc::off_t);
        // SAFETY: no pointers.
        Fallback::done(unsafe { libc::fallocate(self.fd.raw(), self.mode, offset, len) } as isize)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(drop)
    }
}

/// `IORING_OP_SYNC_FILE_RANGE` (Linux 5.2+): starts or waits for writeback of a range.
///
/// The kernel's length field is 32 bits here; `0` means "to the end of the file".
pub struct SyncFileRange {
    fd: FileRef,
    offset: u64,
    len: u32,
    flags: u32,
}

impl SyncFileRange {
    /// `sync_file_range(2)` of `len` bytes at `offset` (`len == 0`: through end of file) with
    /// `SYNC_FILE_RANGE_*` flags.
    pub fn new(fd: impl Into<FileRef>, offset: u64, len: u32, flags: u32) -> Self {
        SyncFileRange {
            fd: fd.into(),
            offset,
            len,
            flags,
        }
    }

    /// Whether the running kernel has `IORING_OP_SYNC_FILE_RANGE`.
    pub fn is_supported() -> bool {
        kernel_supports(opcode::SyncFileRange::CODE)
    }
}

// SAFETY: the entry carries no pointers.
unsafe impl OpCode for SyncFileRange {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        on_file!(self.fd, |fd| opcode::SyncFileRange::new(fd, self.len)
            .offset(self.offset)
            .flags(self.flags)
            .build())
    }

    fn fallback(&mut self) -> Fallback {
        let (offset, len) = (self.offset as libc::off64_t, libc::off64_t::from(self.len));
        // SAFETY: no pointers.
        Fallback::done(
            unsafe { libc::sync_file_range(self.fd.raw(), offset, len, self.flags) } as isize,
        )
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(drop)
    }
}

/// Whether the running kernel implements io_uring opcode `code` (`opcode::*::CODE`).
///
/// Asked once per process with `IORING_REGISTER_PROBE` (Linux 5.6+) on a small throwaway
/// ring, then answered from a cache. When that probe cannot run (no io_uring at all, or a
/// kernel older than the probe) every op counts as unsupported, so callers take their
/// fallback path, which works without the ring.
pub fn kernel_supports(code: u8) -> bool {
    static SUPPORTED: OnceLock<[u64; 4]> = OnceLock::new();
    let bits = SUPPORTED.get_or_init(|| {
        let mut bits = [0u64; 4];
        let Ok(ring) = io_uring::IoUring::new(2) else {
            return bits;
        };
        let mut probe = io_uring::Probe::new();
        if ring.submitter().register_probe(&mut probe).is_err() {
            return bits;
        }
        for op in 0..=u8::MAX {
            if probe.is_supported(op) {
                bits[usize::from(op / 64)] |= 1 << (op % 64);
            }
        }
        bits
    });
    bits[usize::from(code / 64)] & (1 << (code % 64)) != 0
}
