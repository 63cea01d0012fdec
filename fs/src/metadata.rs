//! File metadata from `statx`, and [`FileType`].

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::{Duration, SystemTime};

/// Metadata of a file, read with `IORING_OP_STATX` (from [`File::metadata`](crate::File::metadata),
/// [`metadata`](crate::metadata) or [`symlink_metadata`](crate::symlink_metadata)).
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let meta = coring::fs::metadata(std::env::temp_dir()).await?;
/// assert!(meta.is_dir() && meta.file_type().is_dir());
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Metadata {
    statx: libc::statx,
}

impl Metadata {
    pub(crate) fn new(statx: libc::statx) -> Self {
        Metadata { statx }
    }

    fn type_bits(&self) -> u32 {
        u32::from(self.statx.stx_mode) & libc::S_IFMT
    }

    /// The file's type.
    pub fn file_type(&self) -> FileType {
        FileType {
            bits: self.type_bits(),
        }
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
        self.type_bits() == libc::S_IFREG
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.type_bits() == libc::S_IFDIR
    }

    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.type_bits() == libc::S_IFLNK
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

    /// Id of the device holding the file (`makedev(stx_dev_major, stx_dev_minor)`).
    pub fn dev(&self) -> u64 {
        libc::makedev(self.statx.stx_dev_major, self.statx.stx_dev_minor)
    }

    /// 512-byte blocks allocated to the file (fewer than `len / 512` for a sparse file).
    pub fn blocks(&self) -> u64 {
        self.statx.stx_blocks
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

/// A file's type: regular file, directory, symbolic link, or a special file.
///
/// From [`Metadata::file_type`] or [`DirEntry::file_type`](crate::DirEntry::file_type).
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let meta = coring::fs::symlink_metadata("/").await?;
/// assert!(meta.file_type().is_dir());
/// assert!(!meta.file_type().is_symlink());
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileType {
    /// The `S_IFMT` bits of the mode.
    bits: u32,
}

impl FileType {
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.bits == libc::S_IFREG
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.bits == libc::S_IFDIR
    }

    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.bits == libc::S_IFLNK
    }

    /// A block device.
    pub fn is_block_device(&self) -> bool {
        self.bits == libc::S_IFBLK
    }

    /// A character device.
    pub fn is_char_device(&self) -> bool {
        self.bits == libc::S_IFCHR
    }

    /// A FIFO (named pipe).
    pub fn is_fifo(&self) -> bool {
        self.bits == libc::S_IFIFO
    }

    /// A Unix domain socket.
    pub fn is_socket(&self) -> bool {
        self.bits == libc::S_IFSOCK
    }
}

impl From<std::fs::FileType> for FileType {
    fn from(t: std::fs::FileType) -> FileType {
        let bits = if t.is_file() {
            libc::S_IFREG
        } else if t.is_dir() {
            libc::S_IFDIR
        } else if t.is_symlink() {
            libc::S_IFLNK
        } else if t.is_block_device() {
            libc::S_IFBLK
        } else if t.is_char_device() {
            libc::S_IFCHR
        } else if t.is_fifo() {
            libc::S_IFIFO
        } else if t.is_socket() {
            libc::S_IFSOCK
        } else {
            0
        };
        FileType { bits }
    }
}

impl std::fmt::Debug for FileType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.bits {
            libc::S_IFREG => "file",
            libc::S_IFDIR => "dir",
            libc::S_IFLNK => "symlink",
            libc::S_IFBLK => "block device",
            libc::S_IFCHR => "char device",
            libc::S_IFIFO => "fifo",
            libc::S_IFSOCK => "socket",
            _ => "unknown",
        };
        f.debug_tuple("FileType").field(&name).finish()
    }
}
