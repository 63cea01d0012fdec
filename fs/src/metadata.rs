//! File metadata from `statx`.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

/// Metadata of an open file, read with `IORING_OP_STATX`.
#[derive(Clone)]
pub struct Metadata {
    statx: libc::statx,
}

impl Metadata {
    pub(crate) fn new(statx: libc::statx) -> Self {
        Metadata { statx }
    }

    fn file_type(&self) -> u32 {
        u32::from(self.statx.stx_mode) & libc::S_IFMT
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.statx.stx_size
    }

    /// Whether the size is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }

    /// The mode bits (type and permissions), as `st_mode`.
    pub fn mode(&self) -> u32 {
        u32::from(self.statx.stx_mode)
    }

    /// The permission bits.
    pub fn permissions(&self) -> Permissions {
        Permissions::from_mode(self.mode() & 0o7777)
    }

    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.statx.stx_ino
    }

    /// Hard link count.
    pub fn nlink(&self) -> u32 {
        self.statx.stx_nlink
    }

    /// Owner's user id.
    pub fn uid(&self) -> u32 {
        self.statx.stx_uid
    }

    /// Owner's group id.
    pub fn gid(&self) -> u32 {
        self.statx.stx_gid
    }

    /// Preferred I/O block size.
    pub fn blksize(&self) -> u32 {
        self.statx.stx_blksize
    }

    /// Last modification time.
    pub fn modified(&self) -> io::Result<SystemTime> {
        to_system_time(self.statx.stx_mtime)
    }

    /// Last access time.
    pub fn accessed(&self) -> io::Result<SystemTime> {
        to_system_time(self.statx.stx_atime)
    }

    /// Creation time, where the filesystem records it.
    pub fn created(&self) -> io::Result<SystemTime> {
        if self.statx.stx_mask & libc::STATX_BTIME == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "coring: this filesystem does not record creation time",
            ));
        }
        to_system_time(self.statx.stx_btime)
    }
}

fn to_system_time(ts: libc::statx_timestamp) -> io::Result<SystemTime> {
    let since = Duration::new(ts.tv_sec.unsigned_abs(), ts.tv_nsec);
    let time = if ts.tv_sec >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(since)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(since)
    };
    time.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "coring: timestamp out of range"))
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata")
            .field("len", &self.len())
            .field("mode", &format_args!("{:o}", self.mode()))
            .field("ino", &self.ino())
            .finish()
    }
}
