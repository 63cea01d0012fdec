//! Open files.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;

use coring_runtime::buf::{IoBuf, IoBufMut};
use coring_runtime::fd::Fd;
use coring_runtime::io::BufResult;
use coring_runtime::op::fs::{Fsync, Statx};
use coring_runtime::op::rw::{Read, Readv, Write, Writev};
use coring_runtime::op::Op;

use crate::{Metadata, OpenOptions};

/// An open file. Reads and writes are positional; ops take `&self` and owned buffers.
///
/// ```no_run
/// use coring::fs::File;
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let file = File::create("/tmp/coring-doc.txt").await?;
/// let (res, _) = file.write_all_at(b"hello", 0).await;
/// res?;
/// let (res, buf) = file.read_at(vec![0u8; 5], 0).await;
/// file.close().await?;
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
#[derive(Debug)]
pub struct File {
    fd: Fd,
}

impl File {
    /// Opens `path` read-only.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens `path` write-only, creating it or truncating it.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Options for opening a file.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    pub(crate) fn from_raw(raw: RawFd) -> File {
        // SAFETY: `raw` was just opened for us and nothing else owns it.
        let fd = unsafe { Fd::from_raw_fd(raw) };
        File { fd }
    }

    /// Takes over a `std` file.
    pub fn from_std(file: std::fs::File) -> File {
        File {
            fd: Fd::from_owned(file.into()),
        }
    }

    /// Reads up to `buf.bytes_total()` bytes at `pos`. `Ok(0)` means `pos` is at or past the
    /// end of the file (or the buffer is empty); fewer bytes than asked is a short read.
    pub async fn read_at<B: IoBufMut>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        Op::submit(Read::new(self.fd.as_raw_fd(), buf, pos)).await
    }

    /// Reads into several buffers, in order, from `pos`.
    pub async fn readv_at<B: IoBufMut>(&self, bufs: Vec<B>, pos: u64) -> BufResult<usize, Vec<B>> {
        Op::submit(Readv::new(self.fd.as_raw_fd(), bufs, pos)).await
    }

    /// Writes some of `buf`'s initialized bytes at `pos`; returns how many.
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        Op::submit(Write::new(self.fd.as_raw_fd(), buf, pos)).await
    }

    /// Writes several buffers, in order, at `pos`.
    pub async fn writev_at<B: IoBuf>(&self, bufs: Vec<B>, pos: u64) -> BufResult<usize, Vec<B>> {
        Op::submit(Writev::new(self.fd.as_raw_fd(), bufs, pos)).await
    }

    /// Fills `buf` completely from `pos`, or fails with `UnexpectedEof` at the end of file.
    pub async fn read_exact_at<B: IoBufMut>(&self, mut buf: B, pos: u64) -> BufResult<(), B> {
        let total = buf.bytes_total();
        let mut filled = 0;
        while filled < total {
            let (result, slice) = self.read_at(buf.slice(filled..), pos + filled as u64).await;
            buf = slice.into_inner();
            match result {
                Ok(0) => {
                    let msg = format!("end of file after {filled} of {total} bytes");
                    return (Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg)), buf);
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Writes every initialized byte of `buf` at `pos`.
    pub async fn write_all_at<B: IoBuf>(&self, mut buf: B, pos: u64) -> BufResult<(), B> {
        let total = buf.bytes_init();
        let mut written = 0;
        while written < total {
            let (result, slice) = self
                .write_at(buf.slice(written..total), pos + written as u64)
                .await;
            buf = slice.into_inner();
            match result {
                Ok(0) => {
                    let msg = format!("write made no progress after {written} of {total} bytes");
                    return (Err(io::Error::new(io::ErrorKind::WriteZero, msg)), buf);
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Flushes data and metadata to storage (`fsync`).
    pub async fn sync_all(&self) -> io::Result<()> {
        Op::submit(Fsync::new(self.fd.as_raw_fd(), false)).await
    }

    /// Flushes data, and only the metadata needed to read it back (`fdatasync`).
    pub async fn sync_data(&self) -> io::Result<()> {
        Op::submit(Fsync::new(self.fd.as_raw_fd(), true)).await
    }

    /// The file's metadata (`statx`).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        Op::submit(Statx::new(self.fd.as_raw_fd()))
            .await
            .map(Metadata::new)
    }

    /// Closes the file and reports errors (`IORING_OP_CLOSE`). Dropping closes it too.
    pub async fn close(self) -> io::Result<()> {
        self.fd.close().await
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl IntoRawFd for File {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

impl From<File> for OwnedFd {
    fn from(file: File) -> OwnedFd {
        // SAFETY: `into_raw_fd` hands over sole ownership of an open descriptor.
        unsafe { OwnedFd::from_raw_fd(file.into_raw_fd()) }
    }
}
