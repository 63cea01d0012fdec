//! Open files.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;

use coring_runtime::buf::{IoBuf, IoBufMut, Slice};
use coring_runtime::fd::Fd;
use coring_runtime::io::BufResult;
use coring_runtime::op::fs::{Fallocate, Fsync, Ftruncate, Statx, SyncFileRange};
use coring_runtime::op::rw::{Read, Readv, Write, Writev};
use coring_runtime::op::{Op, OpCode};

use crate::direct::{explain, is_direct, Direction, Span};
use crate::sys::{blocking, cvt, dup, forced_blocking, refused_by_driver, ring_or_blocking};
use crate::{Metadata, OpenOptions};

/// An open file. Reads and writes are positional; ops take `&self` and owned buffers.
///
/// With `O_DIRECT` ([`OpenOptions::direct`]) a read or write that fails with `EINVAL` gets
/// an error message stating the alignment rule and the address, length and offset it used.
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
    /// Opened with `O_DIRECT`: reads and writes go to the device (see [`File::data_op`]).
    direct: bool,
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

    /// Wraps `raw`, just opened with `O_DIRECT` when `direct`.
    pub(crate) fn from_raw(raw: RawFd, direct: bool) -> File {
        // SAFETY: `raw` was just opened for us and nothing else owns it.
        let fd = unsafe { Fd::from_raw_fd(raw) };
        File { fd, direct }
    }

    /// Takes over a `std` file.
    pub fn from_std(file: std::fs::File) -> File {
        let direct = is_direct(file.as_raw_fd());
        File {
            fd: Fd::from_owned(file.into()),
            direct,
        }
    }

    /// A second `File` for the same open file (`dup(2)` with close-on-exec): both see the
    /// same contents, status flags (`O_DIRECT`, `O_APPEND`) and locks, and each is closed on
    /// its own. The copy is not registered with the ring even when `self` is.
    ///
    /// ```
    /// # coring::runtime::Runtime::new().unwrap().block_on(async {
    /// let path = std::env::temp_dir().join(format!("coring-doc-clone-{}", std::process::id()));
    /// let file = coring::fs::File::create(&path).await?;
    /// let copy = file.try_clone().await?;
    /// drop(file);
    /// let (res, _) = copy.write_all_at(b"still open", 0).await;
    /// res?;
    /// assert_eq!(coring::fs::read(&path).await?, b"still open");
    /// coring::fs::remove_file(&path).await?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn try_clone(&self) -> io::Result<File> {
        Ok(File {
            fd: Fd::from_owned(dup(&self.fd)?),
            direct: self.direct,
        })
    }

    /// The `std` file for this descriptor (taken out of the ring's registered file table if
    /// it was there). Async like `tokio::fs::File::into_std`; nothing is awaited: an op whose
    /// future was dropped may still run, and the descriptor stays open for it.
    pub async fn into_std(self) -> std::fs::File {
        std::fs::File::from(OwnedFd::from(self))
    }

    /// Submits a read or write. On an `O_DIRECT` file the op enters the ring at once when
    /// other tasks are ready ([`Op::submit_eager`]): the device starts on it while the worker
    /// polls them, rather than when the worker parks. Page-cache I/O completes inline
    /// and is cheaper batched; a read the ring would run alone is done by `preadv2` with
    /// `RWF_NOWAIT` when the page cache has it ([`Op::inline_or_submit`]). Writes have no
    /// such form: ext4 refuses `RWF_NOWAIT` for buffered writes, and a plain `pwrite` can
    /// stall the worker in dirty-page throttling.
    fn data_op<T: OpCode>(&self, op: T) -> Op<T> {
        if self.direct {
            Op::submit_eager(op)
        } else {
            Op::inline_or_submit(op)
        }
    }

    /// Reads up to `buf.bytes_total()` bytes at `pos`. `Ok(0)` means `pos` is at or past the
    /// end of the file (or the buffer is empty); fewer bytes than asked is a short read.
    pub async fn read_at<B: IoBufMut>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let (result, buf) = self.data_op(Read::new(self.fd.file_ref(), buf, pos)).await;
        match result {
            Err(e) => {
                let spans = [span(&buf, buf.bytes_total())];
                let e = explain(e, self.fd.as_fd(), Direction::Read, &spans, pos).await;
                (Err(e), buf)
            }
            ok => (ok, buf),
        }
    }

    /// Reads into several buffers, in order, from `pos`.
    pub async fn readv_at<B: IoBufMut>(&self, bufs: Vec<B>, pos: u64) -> BufResult<usize, Vec<B>> {
        let (result, bufs) = self
            .data_op(Readv::new(self.fd.file_ref(), bufs, pos))
            .await;
        match result {
            Err(e) => {
                let spans: Vec<_> = bufs.iter().map(|b| span(b, b.bytes_total())).collect();
                let e = explain(e, self.fd.as_fd(), Direction::Read, &spans, pos).await;
                (Err(e), bufs)
            }
            ok => (ok, bufs),
        }
    }

    /// Writes some of `buf`'s initialized bytes at `pos`; returns how many.
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let write = Write::new(self.fd.file_ref(), buf, pos);
        // A buffered write copies the buffer into the page cache: by address, the copy is
        // faster (see `Write::by_address`); only O_DIRECT gains from a registered buffer.
        let write = if self.direct {
            write
        } else {
            write.by_address()
        };
        let (result, buf) = self.data_op(write).await;
        match result {
            Err(e) => {
                let spans = [span(&buf, buf.bytes_init())];
                let e = explain(e, self.fd.as_fd(), Direction::Write, &spans, pos).await;
                (Err(e), buf)
            }
            ok => (ok, buf),
        }
    }

    /// Writes several buffers, in order, at `pos`.
    pub async fn writev_at<B: IoBuf>(&self, bufs: Vec<B>, pos: u64) -> BufResult<usize, Vec<B>> {
        let (result, bufs) = self
            .data_op(Writev::new(self.fd.file_ref(), bufs, pos))
            .await;
        match result {
            Err(e) => {
                let spans: Vec<_> = bufs.iter().map(|b| span(b, b.bytes_init())).collect();
                let e = explain(e, self.fd.as_fd(), Direction::Write, &spans, pos).await;
                (Err(e), bufs)
            }
            ok => (ok, bufs),
        }
    }

    /// Fills every buffer completely, in order, from `pos`, or fails with `UnexpectedEof`.
    ///
    /// One `readv`; should it come back short (end of file, a signal), the rest is read
    /// buffer by buffer with [`read_exact_at`](File::read_exact_at).
    pub async fn readv_exact_at<B: IoBufMut>(
        &self,
        bufs: Vec<B>,
        pos: u64,
    ) -> BufResult<(), Vec<B>> {
        let total: usize = bufs.iter().map(|b| b.bytes_total()).sum();
        let (result, bufs) = self.readv_at(bufs, pos).await;
        let finish = |rest, at| self.read_exact_at(rest, at);
        finish_vectored(result, total, bufs, pos, B::bytes_total, finish).await
    }

    /// Writes every initialized byte of every buffer, in order, at `pos`.
    ///
    /// One `writev`; should it come back short, the rest is written buffer by buffer with
    /// [`write_all_at`](File::write_all_at).
    pub async fn writev_all_at<B: IoBuf>(&self, bufs: Vec<B>, pos: u64) -> BufResult<(), Vec<B>> {
        let total: usize = bufs.iter().map(|b| b.bytes_init()).sum();
        let (result, bufs) = self.writev_at(bufs, pos).await;
        let finish = |rest, at| self.write_all_at(rest, at);
        finish_vectored(result, total, bufs, pos, B::bytes_init, finish).await
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

    /// Registers the file in this worker's ring's file table, so the ring's ops on it name a
    /// slot instead of the descriptor: the kernel skips the per-op file lookup and reference
    /// count, which shows at high IOPS (small reads from the page cache, say).
    ///
    /// The file stays an ordinary descriptor too; it leaves the table when closed.
    /// Registering again does nothing; on the epoll backend this does nothing at all. Moved
    /// to another worker, the file is used by its descriptor there.
    ///
    /// ```
    /// # coring::runtime::Runtime::new()?.block_on(async {
    /// let file = coring::fs::File::open("Cargo.toml").await?;
    /// file.register().await?;
    /// let (n, _) = file.read_at(vec![0; 64], 0).await;
    /// assert!(n? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    /// The table is full (`Builder::fixed_files`, default 4096 slots) or turned off, or the
    /// file is registered with another worker's ring.
    pub async fn register(&self) -> io::Result<()> {
        self.fd.register().await
    }

    /// Whether the file is registered with this worker's ring.
    pub fn is_registered(&self) -> bool {
        self.fd.is_registered()
    }

    /// What an op on this file should name (for ops built by hand, see `coring::op`): its
    /// slot when registered with this worker's ring, else its descriptor.
    pub fn file_ref(&self) -> coring_runtime::op::FileRef {
        self.fd.file_ref()
    }

    /// Flushes data and metadata to storage (`fsync`).
    pub async fn sync_all(&self) -> io::Result<()> {
        Op::submit(Fsync::new(self.fd.file_ref(), false)).await
    }

    /// Flushes data, and only the metadata needed to read it back (`fdatasync`).
    pub async fn sync_data(&self) -> io::Result<()> {
        Op::submit(Fsync::new(self.fd.file_ref(), true)).await
    }

    /// The file's metadata (`statx`).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        Op::submit(Statx::new(self.fd.as_raw_fd()))
            .await
            .map(Metadata::new)
    }

    /// Truncates or extends the file to `size` bytes; an extension reads as zeros (and is
    /// sparse where the file system can). The file must be open for writing.
    ///
    /// `IORING_OP_FTRUNCATE` (Linux 6.9+); on older kernels `ftruncate(2)` on the blocking
    /// pool.
    ///
    /// ```
    /// # coring::runtime::Runtime::new().unwrap().block_on(async {
    /// let path = std::env::temp_dir().join(format!("coring-doc-set-len-{}", std::process::id()));
    /// let file = coring::fs::File::create(&path).await?;
    /// file.set_len(1 << 20).await?;
    /// assert_eq!(file.metadata().await?.len(), 1 << 20);
    /// coring::fs::remove_file(&path).await?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        let len = libc::off_t::try_from(size).map_err(|_| too_big("set_len size", size))?;
        ring_or_blocking(
            Ftruncate::is_supported(),
            || Ok(Ftruncate::new(self.fd.file_ref(), size)),
            || {
                let fd = dup(&self.fd)?;
                Ok(move || {
                    // SAFETY: `fd` is a descriptor this job owns; ftruncate takes no pointer.
                    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(drop)
                })
            },
        )
        .await
    }

    /// Allocates disk space for `len` bytes at `offset`, growing the file if the range ends
    /// past it, so later writes there cannot fail for lack of space. (`fallocate` mode 0.)
    ///
    /// ```
    /// # coring::runtime::Runtime::new().unwrap().block_on(async {
    /// let path = std::env::temp_dir().join(format!("coring-doc-allocate-{}", std::process::id()));
    /// let file = coring::fs::File::create(&path).await?;
    /// file.allocate(0, 8192).await?;
    /// assert_eq!(file.metadata().await?.len(), 8192);
    /// coring::fs::remove_file(&path).await?;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        self.fallocate(0, offset, len).await
    }

    /// `fallocate(2)` with a mode: `0` to allocate, or `libc::FALLOC_FL_*` flags such as
    /// `FALLOC_FL_KEEP_SIZE`, `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE` or
    /// `FALLOC_FL_ZERO_RANGE`. Unsupported modes fail with `EOPNOTSUPP`.
    ///
    /// `IORING_OP_FALLOCATE` (Linux 5.6+); otherwise on the blocking pool.
    pub async fn fallocate(&self, mode: i32, offset: u64, len: u64) -> io::Result<()> {
        let off = libc::off_t::try_from(offset).map_err(|_| too_big("fallocate offset", offset))?;
        let size = libc::off_t::try_from(len).map_err(|_| too_big("fallocate length", len))?;
        ring_or_blocking(
            Fallocate::is_supported(),
            || Ok(Fallocate::new(self.fd.file_ref(), offset, len, mode)),
            || {
                let fd = dup(&self.fd)?;
                Ok(move || {
                    // SAFETY: `fd` is a descriptor this job owns; fallocate takes no pointer.
                    cvt(unsafe { libc::fallocate(fd.as_raw_fd(), mode, off, size) }).map(drop)
                })
            },
        )
        .await
    }

    /// `sync_file_range(2)`: starts and/or waits for writeback of `len` bytes at `offset`
    /// (`len == 0`: through the end of the file). `flags` are `libc::SYNC_FILE_RANGE_WAIT_BEFORE
    /// | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER` in any combination.
    ///
    /// This flushes data pages only, never metadata, and gives no durability guarantee after a
    /// crash: use [`sync_data`](File::sync_data) or [`sync_all`](File::sync_all) for that.
    /// `IORING_OP_SYNC_FILE_RANGE` (Linux 5.2+; its length is 32 bits, so a longer range is
    /// sent in pieces); otherwise on the blocking pool.
    pub async fn sync_range(&self, offset: u64, len: u64, flags: u32) -> io::Result<()> {
        let off = libc::off_t::try_from(offset).map_err(|_| too_big("offset", offset))?;
        let size = libc::off_t::try_from(len).map_err(|_| too_big("length", len))?;
        if SyncFileRange::is_supported() && !forced_blocking() {
            match self.sync_range_ring(offset, len, flags).await {
                Err(e) if refused_by_driver(&e) => {}
                result => return result,
            }
        }
        let fd = dup(&self.fd)?;
        blocking(move || {
            // SAFETY: `fd` is a descriptor this job owns; sync_file_range takes no pointer.
            cvt(unsafe { libc::sync_file_range(fd.as_raw_fd(), off, size, flags) }).map(drop)
        })
        .await
    }

    /// `sync_range` through the ring, whose length field is 32 bits: a longer range goes in
    /// pieces of at most 4 GiB - 4 KiB, page-aligned so no page is flushed twice.
    async fn sync_range_ring(&self, offset: u64, len: u64, flags: u32) -> io::Result<()> {
        const PIECE: u64 = (u32::MAX as u64) & !4095;
        if len == 0 {
            return Op::submit(SyncFileRange::new(self.fd.file_ref(), offset, 0, flags)).await;
        }
        let end = offset.saturating_add(len);
        let mut at = offset;
        while at < end {
            let piece = (end - at).min(PIECE) as u32;
            Op::submit(SyncFileRange::new(self.fd.file_ref(), at, piece, flags)).await?;
            at += u64::from(piece);
        }
        Ok(())
    }

    /// Changes the file's permission bits (`fchmod(2)`, on the blocking pool: io_uring has no
    /// chmod op).
    pub async fn set_permissions(&self, perm: std::fs::Permissions) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let mode = perm.mode() as libc::mode_t;
        let fd = dup(&self.fd)?;
        blocking(move || {
            // SAFETY: `fd` is a descriptor this job owns; fchmod takes no pointer.
            cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
        })
        .await
    }

    /// Closes the file and reports errors (`IORING_OP_CLOSE`). Dropping closes it too.
    pub async fn close(self) -> io::Result<()> {
        self.fd.close().await
    }
}

/// Completes a vectored read or write at `pos` of `total` bytes, whose op ended with
/// `result`. All bytes moved: done. Fewer (or `Interrupted`, counted as none): each buffer
/// left unfinished is finished alone, `finish(rest of the buffer, its offset)`, until one
/// fails. Any other error comes back as it is. `len` is how many bytes of a buffer the op
/// covers (all of it for a read, its initialized bytes for a write). Every buffer comes
/// back, in order.
async fn finish_vectored<B, F, Fut>(
    result: io::Result<usize>,
    total: usize,
    bufs: Vec<B>,
    pos: u64,
    len: impl Fn(&B) -> usize,
    mut finish: F,
) -> BufResult<(), Vec<B>>
where
    B: IoBuf,
    F: FnMut(Slice<B>, u64) -> Fut,
    Fut: Future<Output = BufResult<(), Slice<B>>>,
{
    let mut done = match result {
        Ok(n) if n == total => return (Ok(()), bufs),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
        Err(e) => return (Err(e), bufs),
    };
    let mut out = Vec::with_capacity(bufs.len());
    let mut start = pos;
    let mut failed = None;
    for buf in bufs {
        let (len, at) = (len(&buf), start);
        start += len as u64;
        let moved = done.min(len);
        done -= moved;
        if moved == len || failed.is_some() {
            out.push(buf);
            continue;
        }
        let (result, rest) = finish(buf.slice(moved..len), at + moved as u64).await;
        out.push(rest.into_inner());
        failed = result.err();
    }
    (failed.map_or(Ok(()), Err), out)
}

/// The address and op length of `buf`, for an error message.
fn span<B: IoBuf>(buf: &B, len: usize) -> Span {
    Span {
        addr: buf.stable_ptr() as usize,
        len,
    }
}

fn too_big(what: &str, value: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("coring: {what} {value} is beyond the largest file offset (i64::MAX)"),
    )
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
