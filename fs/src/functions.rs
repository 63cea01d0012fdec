//! Whole-file and path functions, as `std::fs` and `tokio::fs` have them: [`read`],
//! [`read_to_string`], [`write`](fn@write), [`copy`], [`rename`], [`remove_file`], [`hard_link`],
//! [`symlink`], [`metadata`], [`symlink_metadata`], [`try_exists`], [`canonicalize`],
//! [`read_link`], [`set_permissions`].
//!
//! Each uses the ring where the kernel has an op (`OPENAT`, `READ`, `WRITE`, `STATX`,
//! `RENAMEAT`, `UNLINKAT`, `LINKAT`, `SYMLINKAT`) and the blocking pool where it has none
//! (`realpath`, `readlink`, `chmod`, `copy_file_range`) or where [`kernel_supports`] says this
//! kernel lacks the op. The probe runs once per process; see there.
//!
//! [`kernel_supports`]: coring_runtime::op::fs::kernel_supports

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::sys::{blocking, dup, ring_or_blocking, statx_path};
use crate::{File, Metadata, OpenOptions};
use coring_runtime::buf::IoBuf;
use coring_runtime::op::path::{LinkAt, RenameAt, StatxAt, SymlinkAt, UnlinkAt};

/// Bytes moved per read/write pair in [`copy`], where the kernel cannot copy by itself.
const COPY_CHUNK: usize = 512 * 1024;

/// Bytes the kernel copies per trip to the blocking pool in [`copy`] (a few milliseconds of
/// page-cache copying: how long a dropped `copy` future may still copy).
const COPY_RANGE_CHUNK: usize = 8 * 1024 * 1024;

/// What [`read`] reads before it asks the file's size.
const READ_PROBE: usize = 8 * 1024;

/// Reads the whole file at `path`.
///
/// Reads into a small buffer first, and asks the file's size (one `statx`) only when that
/// buffer fills, to size the rest; then reads until end of file, so files whose size the kernel
/// does not know in advance (`/proc`) are read whole too. Most files fit in the first read, and
/// skip the `statx`, which io_uring always hands to an io-wq worker (a thread switch each way).
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let path = std::env::temp_dir().join(format!("coring-doc-read-{}", std::process::id()));
/// coring::fs::write(&path, b"hello").await?;
/// assert_eq!(coring::fs::read(&path).await?, b"hello");
/// coring::fs::remove_file(&path).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let file = File::open(path).await?;
    let mut buf = Vec::with_capacity(READ_PROBE);
    let mut sized = false;
    let mut pos = 0u64;
    loop {
        if buf.len() == buf.capacity() {
            if sized {
                buf.reserve(buf.capacity());
            } else {
                sized = true;
                reserve_for_size(&file, &mut buf).await?;
            }
        }
        let len = buf.len();
        let (result, slice) = file.read_at(buf.slice(len..), pos).await;
        buf = slice.into_inner();
        match result {
            Ok(0) => return Ok(buf),
            Ok(n) => pos += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Grows `buf`, full with the start of `file`, to hold the whole file (its size from one
/// `statx`) and one byte more, so the read that finds the end needs no reallocation.
async fn reserve_for_size(file: &File, buf: &mut Vec<u8>) -> io::Result<()> {
    let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let wanted = usize::try_from(size)
        .unwrap_or(usize::MAX)
        .saturating_add(1)
        .max(2 * buf.capacity());
    buf.try_reserve_exact(wanted - buf.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("coring: no memory to read a file of {size} bytes"),
        )
    })
}

/// Reads the whole file at `path` as UTF-8; invalid UTF-8 fails with `InvalidData`.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let path = std::env::temp_dir().join(format!("coring-doc-read-str-{}", std::process::id()));
/// coring::fs::write(&path, "héllo").await?;
/// assert_eq!(coring::fs::read_to_string(&path).await?, "héllo");
/// coring::fs::remove_file(&path).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let bytes = read(path).await?;
    String::from_utf8(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("coring: file is not valid UTF-8: {e}"),
        )
    })
}

/// Writes `contents` as the whole file at `path`, creating it or truncating it first.
///
/// The bytes are copied into a buffer the write op owns (the kernel may still be reading it
/// if this future is dropped).
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let path = std::env::temp_dir().join(format!("coring-doc-write-{}", std::process::id()));
/// coring::fs::write(&path, "hello").await?;
/// assert_eq!(coring::fs::metadata(&path).await?.len(), 5);
/// coring::fs::remove_file(&path).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let contents = contents.as_ref().to_vec();
    let file = File::create(path).await?;
    let (result, _) = file.write_all_at(contents, 0).await;
    result
}

/// Copies the contents and permission bits of the regular file `from` to `to` (created or
/// truncated); returns the number of bytes copied.
///
/// The kernel copies the data (`copy_file_range(2)`, as `std::fs::copy` does: one copy
/// between page caches, or a reflink or a server-side copy where the file system has them),
/// on the blocking pool because io_uring has no op for it, 8 MiB per trip so that a dropped
/// future stops the copy within one chunk. Where the kernel will not (across file systems
/// on old kernels), ring reads and writes of 512 KiB copy the rest; they copy files of up to
/// 512 KiB by themselves, which one read and one write move. The permission bits are set
/// with `fchmod` on the blocking pool. As with `std::fs::copy`, copying a file onto itself
/// truncates it.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let pid = std::process::id();
/// let a = std::env::temp_dir().join(format!("coring-doc-copy-a-{pid}"));
/// let b = std::env::temp_dir().join(format!("coring-doc-copy-b-{pid}"));
/// coring::fs::write(&a, b"data").await?;
/// assert_eq!(coring::fs::copy(&a, &b).await?, 4);
/// assert_eq!(coring::fs::read(&b).await?, b"data");
/// # coring::fs::remove_file(&a).await?;
/// # coring::fs::remove_file(&b).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref(), to.as_ref());
    let src = File::open(from).await?;
    let meta = src.metadata().await?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("coring: copy source {from:?} is not a regular file"),
        ));
    }
    let perm = meta.permissions();
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(perm.mode())
        .open(to)
        .await?;
    // A file that one read and one write move is not worth the trips to the pool (and a
    // `/proc` file, whose size reads as 0, must be read to its end).
    let copied = if meta.len() > COPY_CHUNK as u64 {
        copy_in_kernel(&src, &dst, meta.len()).await?
    } else {
        0
    };
    let copied = copy_through_buffer(&src, &dst, copied).await?;
    dst.set_permissions(perm).await?;
    Ok(copied)
}

/// Copies `src` (of `size` bytes, as its `statx` said) to `dst` from their start with
/// `copy_file_range(2)` on the blocking pool, a chunk per trip, and returns how far it got:
/// to `size` or the end of the file (sooner if the file was truncated meanwhile), or to where
/// the kernel declined (an error that means "not between these files"), for
/// [`copy_through_buffer`] to go on from.
async fn copy_in_kernel(src: &File, dst: &File, size: u64) -> io::Result<u64> {
    // The jobs get their own descriptors: a job outlives a dropped `copy` future.
    let mut fds = (dup(src)?, dup(dst)?);
    let mut pos = 0u64;
    loop {
        let (back, result) = blocking(move || {
            let mut off_in = pos as libc::loff_t;
            let mut off_out = off_in;
            // SAFETY: both descriptors are open and owned by this job; the offsets are locals
            // the kernel reads and advances.
            let n = unsafe {
                libc::copy_file_range(
                    fds.0.as_raw_fd(),
                    &mut off_in,
                    fds.1.as_raw_fd(),
                    &mut off_out,
                    COPY_RANGE_CHUNK,
                    0,
                )
            };
            let result = if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as u64)
            };
            Ok((fds, result))
        })
        .await?;
        fds = back;
        match result {
            Ok(0) => return Ok(pos),
            Ok(n) => {
                pos += n;
                if pos >= size {
                    // Whatever was appended since the `statx` is the buffered copy's.
                    return Ok(pos);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if declined(&e) => return Ok(pos),
            Err(e) => return Err(e),
        }
    }
}

/// Errors of `copy_file_range(2)` that say it cannot copy between these two files (or not
/// here at all: seccomp, an old kernel), not that the copy failed.
fn declined(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENOSYS
                | libc::EXDEV
                | libc::EINVAL
                | libc::EOPNOTSUPP
                | libc::EPERM
                | libc::EBADF
        )
    )
}

/// Copies `src` to `dst` from `pos` to the end of `src` with ring reads and writes; returns
/// the end.
async fn copy_through_buffer(src: &File, dst: &File, mut pos: u64) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(COPY_CHUNK);
    loop {
        buf.clear();
        let (result, b) = src.read_at(buf, pos).await;
        buf = b;
        match result {
            Ok(0) => return Ok(pos),
            Ok(n) => {
                let (result, b) = dst.write_all_at(buf, pos).await;
                buf = b;
                result?;
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Renames `from` to `to`, replacing `to` if it exists (and, for directories, is empty).
/// Both must be on the same file system. `IORING_OP_RENAMEAT`.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let pid = std::process::id();
/// let a = std::env::temp_dir().join(format!("coring-doc-mv-a-{pid}"));
/// let b = std::env::temp_dir().join(format!("coring-doc-mv-b-{pid}"));
/// coring::fs::write(&a, b"x").await?;
/// coring::fs::rename(&a, &b).await?;
/// assert!(!coring::fs::try_exists(&a).await? && coring::fs::try_exists(&b).await?);
/// coring::fs::remove_file(&b).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    ring_or_blocking(
        RenameAt::is_supported(),
        || RenameAt::new(from, to, 0),
        || {
            let (from, to) = (from.to_owned(), to.to_owned());
            Ok(move || std::fs::rename(from, to))
        },
    )
    .await
}

/// Removes the file (or symbolic link) `path`; a directory fails (`IsADirectory`).
/// `IORING_OP_UNLINKAT`.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let path = std::env::temp_dir().join(format!("coring-doc-rm-{}", std::process::id()));
/// coring::fs::write(&path, b"x").await?;
/// coring::fs::remove_file(&path).await?;
/// let again = coring::fs::remove_file(&path).await.unwrap_err();
/// assert_eq!(again.kind(), std::io::ErrorKind::NotFound);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    ring_or_blocking(
        UnlinkAt::is_supported(),
        || UnlinkAt::file(path),
        || {
            let path = path.to_owned();
            Ok(move || std::fs::remove_file(path))
        },
    )
    .await
}

/// Makes `link` a new name for the existing file `original` (a hard link; directories cannot
/// be linked: `PermissionDenied`). A symbolic link `original` is linked itself, not
/// followed, as `std::fs::hard_link` does on Linux. `IORING_OP_LINKAT`.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let pid = std::process::id();
/// let a = std::env::temp_dir().join(format!("coring-doc-ln-a-{pid}"));
/// let b = std::env::temp_dir().join(format!("coring-doc-ln-b-{pid}"));
/// coring::fs::write(&a, b"x").await?;
/// coring::fs::hard_link(&a, &b).await?;
/// assert_eq!(coring::fs::metadata(&a).await?.nlink(), 2);
/// # coring::fs::remove_file(&a).await?;
/// # coring::fs::remove_file(&b).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    ring_or_blocking(
        LinkAt::is_supported(),
        || LinkAt::new(original, link, 0),
        || {
            let (original, link) = (original.to_owned(), link.to_owned());
            Ok(move || std::fs::hard_link(original, link))
        },
    )
    .await
}

/// Makes `link` a symbolic link to `original` (which need not exist; a relative `original` is
/// resolved from the link's directory). `IORING_OP_SYMLINKAT`.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let link = std::env::temp_dir().join(format!("coring-doc-symlink-{}", std::process::id()));
/// coring::fs::symlink("/", &link).await?;
/// assert!(coring::fs::symlink_metadata(&link).await?.is_symlink());
/// assert!(coring::fs::metadata(&link).await?.is_dir());
/// coring::fs::remove_file(&link).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    ring_or_blocking(
        SymlinkAt::is_supported(),
        || SymlinkAt::new(original, link),
        || {
            let (original, link) = (original.to_owned(), link.to_owned());
            Ok(move || std::os::unix::fs::symlink(original, link))
        },
    )
    .await
}

/// The metadata of `path`, following symbolic links. `IORING_OP_STATX`.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let meta = coring::fs::metadata("/").await?;
/// assert!(meta.is_dir());
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    statx(path.as_ref(), true).await
}

/// The metadata of `path` itself: a symbolic link is described, not followed
/// (`AT_SYMLINK_NOFOLLOW`). `IORING_OP_STATX`.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let meta = coring::fs::symlink_metadata("/").await?;
/// assert!(!meta.is_symlink());
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    statx(path.as_ref(), false).await
}

async fn statx(path: &Path, follow: bool) -> io::Result<Metadata> {
    ring_or_blocking(
        StatxAt::is_supported(),
        || StatxAt::path(path, follow),
        || {
            let path = path.to_owned();
            let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
            Ok(move || statx_path(&path, flags))
        },
    )
    .await
    .map(Metadata::new)
}

/// Whether `path` exists (following symbolic links: a dangling link does not). `Ok(false)`
/// only when the kernel says it is not there; any other failure (such as a permission error
/// on a parent) is returned. `IORING_OP_STATX`.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// assert!(coring::fs::try_exists("/").await?);
/// assert!(!coring::fs::try_exists("/no/such/path/here").await?);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    match metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The absolute path of `path` with every symbolic link, `.` and `..` resolved; `path` must
/// exist. `realpath(3)` on the blocking pool (no ring op).
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// assert_eq!(coring::fs::canonicalize("/.././").await?, std::path::Path::new("/"));
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    blocking(move || std::fs::canonicalize(path)).await
}

/// The target of the symbolic link `path`. `readlink(2)` on the blocking pool (no ring op).
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let link = std::env::temp_dir().join(format!("coring-doc-readlink-{}", std::process::id()));
/// coring::fs::symlink("target", &link).await?;
/// assert_eq!(coring::fs::read_link(&link).await?, std::path::Path::new("target"));
/// coring::fs::remove_file(&link).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    blocking(move || std::fs::read_link(path)).await
}

/// Sets the permission bits of `path` (following symbolic links). `chmod(2)` on the blocking
/// pool (no ring op).
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let path = std::env::temp_dir().join(format!("coring-doc-chmod-{}", std::process::id()));
/// coring::fs::write(&path, b"x").await?;
/// coring::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).await?;
/// assert_eq!(coring::fs::metadata(&path).await?.permissions().mode(), 0o600);
/// coring::fs::remove_file(&path).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn set_permissions(path: impl AsRef<Path>, perm: std::fs::Permissions) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    blocking(move || std::fs::set_permissions(path, perm)).await
}
