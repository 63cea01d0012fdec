//! Ops on paths: `IORING_OP_RENAMEAT`, `UNLINKAT` (5.11), `MKDIRAT`, `SYMLINKAT`, `LINKAT`
//! (5.15), and `IORING_OP_STATX` by name (5.6).
//!
//! Every path is relative to the current directory (`AT_FDCWD`) and is held as a `CString`,
//! whose bytes live on the heap: the entry points there, never into the op struct. None of
//! these ops creates a descriptor, so an orphaned one has nothing to release: a rename or
//! unlink the kernel already did stays done, exactly as with an interrupted syscall.
//!
//! Whether the kernel has an op: [`super::fs::kernel_supports`], also offered as
//! `is_supported()` on each op.

use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::path::Path;

use io_uring::{opcode, squeue, types};

use super::fs::kernel_supports;
use super::openclose::cstring;
use super::{Completion, OpCode};

/// `IORING_OP_RENAMEAT`: `renameat2(2)` of one path to another.
pub struct RenameAt {
    from: CString,
    to: CString,
    flags: u32,
}

impl RenameAt {
    /// Renames `from` to `to`, replacing `to` if it exists; `flags` are `RENAME_*`
    /// (`0` for plain `rename(2)`). Fails on a path with a NUL byte.
    pub fn new(from: &Path, to: &Path, flags: u32) -> io::Result<Self> {
        Ok(RenameAt {
            from: cstring(from)?,
            to: cstring(to)?,
            flags,
        })
    }

    /// Whether the running kernel has `IORING_OP_RENAMEAT`.
    pub fn is_supported() -> bool {
        kernel_supports(opcode::RenameAt::CODE)
    }
}

// SAFETY: the entry points into the op's two heap-allocated C strings.
unsafe impl OpCode for RenameAt {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        opcode::RenameAt::new(cwd, self.from.as_ptr(), cwd, self.to.as_ptr())
            .flags(self.flags)
            .build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(drop)
    }
}

/// `IORING_OP_UNLINKAT`: removes a name (`unlink(2)`) or an empty directory (`rmdir(2)`).
pub struct UnlinkAt {
    path: CString,
    flags: libc::c_int,
}

impl UnlinkAt {
    /// Removes the non-directory `path`. Fails on a path with a NUL byte.
    pub fn file(path: &Path) -> io::Result<Self> {
        Ok(UnlinkAt {
            path: cstring(path)?,
            flags: 0,
        })
    }

    /// Removes the empty directory `path` (`AT_REMOVEDIR`). Fails on a path with a NUL byte.
    pub fn dir(path: &Path) -> io::Result<Self> {
        Ok(UnlinkAt {
            path: cstring(path)?,
            flags: libc::AT_REMOVEDIR,
        })
    }

    /// Whether the running kernel has `IORING_OP_UNLINKAT`.
    pub fn is_supported() -> bool {
        kernel_supports(opcode::UnlinkAt::CODE)
    }
}

// SAFETY: the entry points into the op's heap-allocated C string.
unsafe impl OpCode for UnlinkAt {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(drop)
    }
}

/// `IORING_OP_MKDIRAT`: `mkdir(2)`.
pub struct MkDirAt {
    path: CString,
    mode: libc::mode_t,
}

impl MkDirAt {
    /// Creates the directory `path` with permission bits `mode` (before the umask). Fails on
    /// a path with a NUL byte.
    pub fn new(path: &Path, mode: libc::mode_t) -> io::Result<Self> {
        Ok(MkDirAt {
            path: cstring(path)?,
            mode,
        })
    }

    /// Whether the running kernel has `IORING_OP_MKDIRAT`.
    pub fn is_supported() -> bool {
        kernel_supports(opcode::MkDirAt::CODE)
    }
}

// SAFETY: the entry points into the op's heap-allocated C string.
unsafe impl OpCode for MkDirAt {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::MkDirAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .mode(self.mode)
            .build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(drop)
    }
}

/// `IORING_OP_SYMLINKAT`: `symlink(2)`.
pub struct SymlinkAt {
    target: CString,
    link: CString,
}

impl SymlinkAt {
    /// Creates `link`, a symbolic link whose contents are `target` (which need not exist).
    /// Fails on a path with a NUL byte.
    pub fn new(target: &Path, link: &Path) -> io::Result<Self> {
        Ok(SymlinkAt {
            target: cstring(target)?,
            link: cstring(link)?,
        })
    }

    /// Whether the running kernel has `IORING_OP_SYMLINKAT`.
    pub fn is_supported() -> bool {
        kernel_supports(opcode::SymlinkAt::CODE)
    }
}

// SAFETY: the entry points into the op's two heap-allocated C strings.
unsafe impl OpCode for SymlinkAt {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        opcode::SymlinkAt::new(cwd, self.target.as_ptr(), self.link.as_ptr()).build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(drop)
    }
}

/// `IORING_OP_LINKAT`: `link(2)`, a second name for an existing file.
pub struct LinkAt {
    from: CString,
    to: CString,
    flags: libc::c_int,
}

impl LinkAt {
    /// Makes `to` a hard link to `from`. A symbolic link `from` is linked itself, not
    /// followed (`flags == 0`, as `link(2)` on Linux); `AT_SYMLINK_FOLLOW` follows it.
    /// Fails on a path with a NUL byte.
    pub fn new(from: &Path, to: &Path, flags: libc::c_int) -> io::Result<Self> {
        Ok(LinkAt {
            from: cstring(from)?,
            to: cstring(to)?,
            flags,
        })
    }

    /// Whether the running kernel has `IORING_OP_LINKAT`.
    pub fn is_supported() -> bool {
        kernel_supports(opcode::LinkAt::CODE)
    }
}

// SAFETY: the entry points into the op's two heap-allocated C strings.
unsafe impl OpCode for LinkAt {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        opcode::LinkAt::new(cwd, self.from.as_ptr(), cwd, self.to.as_ptr())
            .flags(self.flags)
            .build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(drop)
    }
}

/// `IORING_OP_STATX` by path, or on a descriptor with a chosen field mask.
///
/// ([`super::fs::Statx`] is the fixed-mask form on a descriptor.)
pub struct StatxAt {
    dirfd: RawFd,
    path: CString,
    flags: libc::c_int,
    mask: u32,
    statx: Box<libc::statx>,
}

impl StatxAt {
    /// The basic fields and birth time of `path`; a final symbolic link is followed when
    /// `follow` is true (`stat(2)`), else described itself (`lstat(2)`,
    /// `AT_SYMLINK_NOFOLLOW`). Fails on a path with a NUL byte.
    pub fn path(path: &Path, follow: bool) -> io::Result<Self> {
        let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
        Ok(StatxAt::new(libc::AT_FDCWD, cstring(path)?, flags))
    }

    /// The fields in `mask` (`STATX_*`) of the open descriptor `fd` (`AT_EMPTY_PATH`).
    pub fn fd(fd: RawFd, mask: u32) -> Self {
        let mut op = StatxAt::new(fd, CString::default(), libc::AT_EMPTY_PATH);
        op.mask = mask;
        op
    }

    fn new(dirfd: RawFd, path: CString, flags: libc::c_int) -> Self {
        StatxAt {
            dirfd,
            path,
            flags,
            mask: libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            // SAFETY: statx is plain data; all-zero is a valid value for the kernel to
            // overwrite.
            statx: Box::new(unsafe { mem::zeroed::<libc::statx>() }),
        }
    }

    /// Whether the running kernel has `IORING_OP_STATX`.
    pub fn is_supported() -> bool {
        kernel_supports(opcode::Statx::CODE)
    }
}

// SAFETY: the entry points into the op's heap-allocated C string and boxed statx buffer.
unsafe impl OpCode for StatxAt {
    type Output = io::Result<libc::statx>;

    fn sqe(&mut self) -> squeue::Entry {
        let buf: *mut libc::statx = &mut *self.statx;
        opcode::Statx::new(types::Fd(self.dirfd), self.path.as_ptr(), buf.cast())
            .flags(self.flags)
            .mask(self.mask)
            .build()
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(|_| *self.statx)
    }
}
