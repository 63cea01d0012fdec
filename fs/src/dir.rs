//! Directories: [`read_dir`] and its [`ReadDir`] / [`DirEntry`], [`DirBuilder`],
//! [`create_dir`], [`create_dir_all`], [`remove_dir`], [`remove_dir_all`].
//!
//! io_uring has no `getdents` op, so listing runs on the blocking pool: [`ReadDir`] moves a
//! `std::fs::ReadDir` to a pool thread, takes up to [`BATCH`] entries (with their types, which
//! `getdents` reports for free on most file systems) and hands them back, one pool round trip
//! per batch rather than per entry. Creating and removing a directory are ring ops
//! (`IORING_OP_MKDIRAT`, `IORING_OP_UNLINKAT` with `AT_REMOVEDIR`), with the blocking pool as
//! the fallback on kernels that lack them. [`remove_dir_all`] runs `std::fs::remove_dir_all`
//! on the pool; see there for why.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::future::{poll_fn, Future};
use std::io;
use std::os::unix::fs::{DirBuilderExt, DirEntryExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use coring_runtime::op::path::{MkDirAt, UnlinkAt};
use coring_runtime::task::{spawn_blocking, JoinHandle};
use futures_core::Stream;

use crate::sys::{blocking, ring_or_blocking};
use crate::{symlink_metadata, FileType, Metadata};

/// Entries fetched per trip to the blocking pool.
pub const BATCH: usize = 64;

/// The entries of a directory, as [`read_dir`] returns them. Not `.` and `..`; in the order
/// the file system gives them.
///
/// Take them with [`next_entry`](ReadDir::next_entry), or use the `ReadDir` as a
/// [`Stream`] of `io::Result<DirEntry>` (which ends when the directory has no more entries).
/// Either is cancel-safe: dropping the future loses no entry (a batch being fetched is kept
/// and handed out by the next call).
#[derive(Debug)]
pub struct ReadDir {
    state: State,
}

#[derive(Debug)]
enum State {
    /// Entries at hand, and the listing to take more from (`None` once it is exhausted).
    Idle(VecDeque<io::Result<DirEntry>>, Option<std::fs::ReadDir>),
    /// A batch being read on the blocking pool.
    Fetching(JoinHandle<Batch>),
    /// The listing failed for good (its pool job panicked).
    Done,
}

type Batch = (VecDeque<io::Result<DirEntry>>, Option<std::fs::ReadDir>);

/// Lists the directory `path`.
///
/// Opening and reading the directory run on the blocking pool (io_uring has no op for
/// either), [`BATCH`] entries at a time.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("coring-doc-read-dir-{}", std::process::id()));
/// coring::fs::create_dir_all(dir.join("sub")).await?;
/// coring::fs::write(dir.join("a.txt"), b"a").await?;
///
/// let mut names = Vec::new();
/// let mut entries = coring::fs::read_dir(&dir).await?;
/// while let Some(entry) = entries.next_entry().await? {
///     names.push(entry.file_name());
/// }
/// names.sort();
/// assert_eq!(names, ["a.txt", "sub"]);
/// coring::fs::remove_dir_all(&dir).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_owned();
    let listing = blocking(move || std::fs::read_dir(path)).await?;
    Ok(ReadDir {
        state: State::Idle(VecDeque::new(), Some(listing)),
    })
}

impl ReadDir {
    /// The next entry, or `None` when the directory has no more. An error for one entry (say,
    /// a file removed while listing) does not end the listing.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// Polls for the next entry: the poll form of [`next_entry`](ReadDir::next_entry), for
    /// hand-written futures and streams.
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        loop {
            match &mut self.state {
                State::Idle(entries, listing) => {
                    if let Some(entry) = entries.pop_front() {
                        return Poll::Ready(entry.map(Some));
                    }
                    let Some(mut listing) = listing.take() else {
                        return Poll::Ready(Ok(None));
                    };
                    let mut entries = std::mem::take(entries);
                    self.state = State::Fetching(spawn_blocking(move || {
                        let more = fill(&mut entries, &mut listing);
                        (entries, more.then_some(listing))
                    }));
                }
                State::Fetching(handle) => {
                    let fetched = ready!(Pin::new(handle).poll(cx));
                    match fetched {
                        Ok((entries, listing)) => self.state = State::Idle(entries, listing),
                        Err(e) => {
                            self.state = State::Done;
                            return Poll::Ready(Err(io::Error::from(e)));
                        }
                    }
                }
                State::Done => return Poll::Ready(Ok(None)),
            }
        }
    }
}

/// The entries one by one, as [`next_entry`](ReadDir::next_entry) gives them: `None` once the
/// directory has no more.
///
/// ```
/// use futures_util::TryStreamExt;
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("coring-doc-dir-stream-{}", std::process::id()));
/// coring::fs::create_dir_all(&dir).await?;
/// coring::fs::write(dir.join("a"), b"a").await?;
/// let entries: Vec<_> = coring::fs::read_dir(&dir).await?.try_collect().await?;
/// assert_eq!(entries.len(), 1);
/// coring::fs::remove_dir_all(&dir).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
impl Stream for ReadDir {
    type Item = io::Result<DirEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_entry(cx).map(Result::transpose)
    }
}

/// Moves up to [`BATCH`] entries from `listing` into `entries`; false once it is exhausted.
fn fill(entries: &mut VecDeque<io::Result<DirEntry>>, listing: &mut std::fs::ReadDir) -> bool {
    for _ in 0..BATCH {
        match listing.next() {
            None => return false,
            Some(entry) => entries.push_back(entry.map(|e| DirEntry {
                path: e.path(),
                name: e.file_name(),
                ino: e.ino(),
                // `d_type` from getdents; an lstat on file systems that do not report it.
                file_type: e.file_type().ok().map(FileType::from),
            })),
        }
    }
    true
}

/// One entry of a [`ReadDir`].
#[derive(Debug, Clone)]
pub struct DirEntry {
    path: PathBuf,
    name: OsString,
    ino: u64,
    file_type: Option<FileType>,
}

impl DirEntry {
    /// The entry's full path: the listed directory's path joined with
    /// [`file_name`](DirEntry::file_name).
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The entry's name within its directory.
    pub fn file_name(&self) -> OsString {
        self.name.clone()
    }

    /// The inode number the directory records for the entry.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The entry's metadata; a symbolic link is described itself, not followed (as
    /// [`symlink_metadata`]). `IORING_OP_STATX`.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        symlink_metadata(&self.path).await
    }

    /// The entry's type; a symbolic link is reported as one. Usually known from the listing
    /// itself, so this completes at once; else it asks `statx` (not following links).
    pub async fn file_type(&self) -> io::Result<FileType> {
        match self.file_type {
            Some(t) => Ok(t),
            None => Ok(self.metadata().await?.file_type()),
        }
    }
}

/// How to create directories: [`recursive`](DirBuilder::recursive) or not, and with what mode.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("coring-doc-builder-{}", std::process::id()));
/// coring::fs::DirBuilder::new()
///     .recursive(true)
///     .mode(0o750)
///     .create(dir.join("a/b/c"))
///     .await?;
/// assert!(coring::fs::metadata(dir.join("a/b/c")).await?.is_dir());
/// coring::fs::remove_dir_all(&dir).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct DirBuilder {
    recursive: bool,
    mode: u32,
}

impl Default for DirBuilder {
    fn default() -> Self {
        DirBuilder::new()
    }
}

impl DirBuilder {
    /// Not recursive; mode `0o777` (before the umask).
    pub fn new() -> DirBuilder {
        DirBuilder {
            recursive: false,
            mode: 0o777,
        }
    }

    /// Also create missing parents, and succeed when the directory already exists.
    pub fn recursive(&mut self, recursive: bool) -> &mut Self {
        self.recursive = recursive;
        self
    }

    /// Permission bits of the directories created (before the umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Creates `path` (and, if recursive, its missing parents).
    pub async fn create(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        if !self.recursive {
            return self.mkdir(path).await;
        }
        // Walk up until a directory exists (or is made), then create the rest downwards; as
        // `std::fs::create_dir_all`, a directory someone else creates meanwhile is fine.
        let mut missing = Vec::new();
        let mut at = path;
        loop {
            if at.as_os_str().is_empty() {
                break; // the current directory
            }
            match self.mkdir(at).await {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => match at.parent() {
                    Some(parent) => {
                        missing.push(at);
                        at = parent;
                    }
                    None => return Err(e),
                },
                Err(_) if is_dir(at).await => break,
                Err(e) => return Err(e),
            }
        }
        for dir in missing.into_iter().rev() {
            match self.mkdir(dir).await {
                Ok(()) => {}
                Err(_) if is_dir(dir).await => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn mkdir(&self, path: &Path) -> io::Result<()> {
        let mode = self.mode;
        ring_or_blocking(
            MkDirAt::is_supported(),
            || MkDirAt::new(path, mode as libc::mode_t),
            || {
                let path = path.to_owned();
                Ok(move || std::fs::DirBuilder::new().mode(mode).create(path))
            },
        )
        .await
    }
}

async fn is_dir(path: &Path) -> bool {
    crate::metadata(path).await.is_ok_and(|m| m.is_dir())
}

/// Creates the directory `path`; its parent must exist. Fails with `AlreadyExists` if
/// `path` exists. `IORING_OP_MKDIRAT`.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("coring-doc-create-dir-{}", std::process::id()));
/// coring::fs::create_dir(&dir).await?;
/// let again = coring::fs::create_dir(&dir).await.unwrap_err();
/// assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
/// coring::fs::remove_dir(&dir).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    DirBuilder::new().create(path).await
}

/// Creates the directory `path` and any missing parents; succeeds if it already exists as a
/// directory. One `IORING_OP_MKDIRAT` per directory created (plus one per existing ancestor
/// tried on the way up).
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("coring-doc-create-all-{}", std::process::id()));
/// coring::fs::create_dir_all(dir.join("x/y/z")).await?;
/// coring::fs::create_dir_all(dir.join("x/y/z")).await?; // already there: fine
/// coring::fs::remove_dir_all(&dir).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    DirBuilder::new().recursive(true).create(path).await
}

/// Removes the empty directory `path`. A directory with entries fails with
/// `DirectoryNotEmpty`. `IORING_OP_UNLINKAT` with `AT_REMOVEDIR`.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("coring-doc-remove-dir-{}", std::process::id()));
/// coring::fs::create_dir(&dir).await?;
/// coring::fs::remove_dir(&dir).await?;
/// assert!(!coring::fs::try_exists(&dir).await?);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    ring_or_blocking(
        UnlinkAt::is_supported(),
        || UnlinkAt::dir(path),
        || {
            let path = path.to_owned();
            Ok(move || std::fs::remove_dir(path))
        },
    )
    .await
}

/// Removes the directory `path` and everything in it. A symbolic link inside is removed, not
/// followed; if `path` itself is a symbolic link, it fails (as `std::fs::remove_dir_all`).
///
/// Runs `std::fs::remove_dir_all` on the blocking pool: listing needs the pool anyway (no
/// `getdents` op), and std's walk works relative to directory descriptors opened with
/// `O_NOFOLLOW`, so swapping a subdirectory for a symbolic link while it runs cannot make it
/// delete outside the tree (CVE-2022-21658); a walk by path names through the ring's
/// `AT_FDCWD`-relative ops could not promise that.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("coring-doc-remove-all-{}", std::process::id()));
/// coring::fs::create_dir_all(dir.join("a/b")).await?;
/// coring::fs::write(dir.join("a/b/f"), b"x").await?;
/// coring::fs::remove_dir_all(&dir).await?;
/// assert!(!coring::fs::try_exists(&dir).await?);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    blocking(move || std::fs::remove_dir_all(path)).await
}
