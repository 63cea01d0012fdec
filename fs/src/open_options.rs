//! Options for opening files, as `std::fs::OpenOptions`.

use std::io;
use std::path::Path;

use coring_runtime::op::openclose::OpenAt;
use coring_runtime::op::Op;

use crate::File;

/// How to open a file; the same options and rules as [`std::fs::OpenOptions`].
///
/// ```no_run
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let file = coring::fs::OpenOptions::new()
///     .write(true)
///     .create(true)
///     .truncate(true)
///     .open("/tmp/coring-example.txt")
///     .await?;
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: libc::mode_t,
    custom_flags: libc::c_int,
    direct: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// All options off; mode `0o666` (before the umask).
    pub fn new() -> Self {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
            direct: false,
        }
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.read = read;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.write = write;
        self
    }

    /// Open for appending (implies write).
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.append = append;
        self
    }

    /// Truncate to length 0 (needs write).
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.truncate = truncate;
        self
    }

    /// Create the file if it does not exist (needs write or append).
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.create = create;
        self
    }

    /// Create the file, failing if it exists (needs write or append).
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.create_new = create_new;
        self
    }

    /// Permission bits for a created file.
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode as libc::mode_t;
        self
    }

    /// Extra `open(2)` flags, such as `libc::O_DIRECT`; the access mode bits are ignored.
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        self.custom_flags = flags & !libc::O_ACCMODE;
        self
    }

    /// Direct I/O (`O_DIRECT`): reads and writes bypass the page cache. Every buffer address,
    /// length and file offset must then be a multiple of the file's logical block size
    /// (usually 512 or 4096 bytes): use [`AlignedBuf`](crate::AlignedBuf). A misaligned op
    /// fails with an `InvalidInput` error that says so. The same as
    /// `custom_flags(libc::O_DIRECT)`.
    ///
    /// ```no_run
    /// use coring::fs::{AlignedBuf, OpenOptions};
    /// # coring::runtime::Runtime::new().unwrap().block_on(async {
    /// let path = std::env::temp_dir().join("coring-doc-direct.bin");
    /// let file = OpenOptions::new()
    ///     .read(true)
    ///     .write(true)
    ///     .create(true)
    ///     .direct(true)
    ///     .open(&path)
    ///     .await?;
    /// let (res, _) = file.write_all_at(AlignedBuf::new(4096, 4096), 0).await;
    /// res?;
    /// # coring::fs::remove_file(&path).await?;
    /// # Ok::<(), std::io::Error>(())
    /// # });
    /// ```
    pub fn direct(&mut self, direct: bool) -> &mut Self {
        self.direct = direct;
        self
    }

    /// Opens `path` with these options.
    ///
    /// When `O_DIRECT` was asked for and the kernel answers `EINVAL`, the error says that the
    /// file system probably does not support direct I/O (tmpfs before Linux 6.6, some FUSE
    /// and network file systems).
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let direct = if self.direct { libc::O_DIRECT } else { 0 };
        let flags = self.access_mode()? | self.creation_mode()? | self.custom_flags | direct;
        let path = path.as_ref();
        let op = OpenAt::new(path, flags, self.mode)?;
        match Op::submit(op).await {
            Ok(raw) => Ok(File::from_raw(raw, flags & libc::O_DIRECT != 0)),
            Err(e) if flags & libc::O_DIRECT != 0 && e.raw_os_error() == Some(libc::EINVAL) => {
                Err(io::Error::new(
                    e.kind(),
                    format!(
                        "coring: opening {path:?} with O_DIRECT failed with EINVAL: the file \
                         system probably does not support direct I/O ({e})"
                    ),
                ))
            }
            Err(e) => Err(e),
        }
    }

    fn access_mode(&self) -> io::Result<libc::c_int> {
        match (self.read, self.write, self.append) {
            (true, false, false) => Ok(libc::O_RDONLY),
            (false, true, false) => Ok(libc::O_WRONLY),
            (true, true, false) => Ok(libc::O_RDWR),
            (false, _, true) => Ok(libc::O_WRONLY | libc::O_APPEND),
            (true, _, true) => Ok(libc::O_RDWR | libc::O_APPEND),
            (false, false, false) => Err(invalid(
                "no access mode: set read, write or append on the OpenOptions",
            )),
        }
    }

    fn creation_mode(&self) -> io::Result<libc::c_int> {
        if !self.write && !self.append && (self.truncate || self.create || self.create_new) {
            return Err(invalid(
                "truncate, create and create_new need write or append",
            ));
        }
        if self.append && self.truncate && !self.create_new {
            return Err(invalid("append and truncate together make no sense"));
        }
        Ok(match (self.create, self.truncate, self.create_new) {
            (false, false, false) => 0,
            (true, false, false) => libc::O_CREAT,
            (false, true, false) => libc::O_TRUNC,
            (true, true, false) => libc::O_CREAT | libc::O_TRUNC,
            (_, _, true) => libc::O_CREAT | libc::O_EXCL,
        })
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("coring: {msg}"))
}
