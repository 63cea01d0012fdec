//! [`Compat`]: coring streams and files behind the poll-based I/O traits of tokio
//! (`tokio::io::{AsyncRead, AsyncWrite, AsyncBufRead, AsyncSeek}`), futures-io
//! (`futures_io::{AsyncRead, AsyncWrite, AsyncBufRead, AsyncSeek}`) and hyper
//! (`hyper::rt::{Read, Write}`), so codecs (tokio-util), compression (async-compression), TLS
//! (tokio-rustls, futures-rustls) and HTTP (hyper) run on coring unchanged.
//!
//! The tokio and futures-io impls come with the `compat` feature, the hyper ones with `hyper`.
//!
//! # Why a wrapper, and what it costs
//! A poll-based `poll_read(&mut [u8])` lends the callee a slice only for the length of one
//! call. io_uring needs memory that stays valid until the kernel's completion, which may
//! come after the caller has dropped its future and freed the slice. So `Compat` owns two
//! buffers and runs coring's ordinary owned-buffer ops on them, keeping the op future in
//! itself between polls:
//!
//! - **Reads**: one `recv` (files: `read` at the tracked position) into the read buffer
//!   (16 KiB by default), then copies from it into the caller's slice. What does not fit
//!   stays buffered for the next call, so it also implements `AsyncBufRead`: use
//!   `poll_fill_buf`/`consume` (or `read_line`, codecs) instead of wrapping it in a
//!   `BufReader`, which would copy a second time.
//! - **Writes** are write-behind: `poll_write` copies into the write buffer (64 KiB by
//!   default), submits a `send` (files: `write` at the position) if none is in flight, and
//!   returns `Ready(Ok(n))` at once: like a socket's kernel buffer, the wrapper has taken
//!   the bytes. While a send is in flight further writes are gathered and go out together
//!   in the next send. On a socket `poll_flush` hands every accepted byte to the ring
//!   without waiting for the send's completion (tokio's `TcpStream::flush` does nothing at
//!   all); on a file it waits until the writes are done, so reads see them.
//!   `poll_shutdown` waits for every send to complete, then shuts down the write direction
//!   (`shutdown(SHUT_WR)`; files: flush only). A failed write is reported by the next
//!   `poll_write`, `poll_flush` or `poll_shutdown`.
//!
//! The cost is therefore **one `memcpy` per byte in each direction**, between the caller's
//! slice and the internal buffer, plus the buffers' memory (allocated on first use and then
//! reused: no allocation per op). The native owned-buffer API (`stream.read(buf)`) has
//! neither. `examples/compat_bench.rs` measures the difference on an echo server; README.md
//! has the figures.
//!
//! # Cancellation and drop
//! Dropping a future that was waiting on a `Compat` (a `select!` that lost, a timeout) loses
//! nothing: the op stays in the `Compat` and the next poll picks up its result. Dropping the
//! `Compat` cancels a read in flight (the kernel's final completion frees its buffer, as for
//! every coring op). Bytes that `poll_write` accepted are still written, as a closed socket's
//! kernel buffer still drains: if any are pending, a small task takes over the descriptor and
//! the write buffer, finishes the writes (giving up after [`LINGER`]), then closes the
//! descriptor. Outside a runtime, or while it shuts down, they are cancelled instead.
//!
//! # Files
//! A `Compat<File>` has a cursor: reads and writes go at the tracked position and advance
//! it, and `AsyncSeek` moves it (`SeekFrom::End` asks the kernel for the size with `statx`).
//! A read first flushes pending writes, and a write drops data read ahead, so the two never
//! see stale bytes.
//!
//! With tokio's traits, `tokio_util::codec::Framed::new(stream.compat(), LinesCodec::new())`
//! or `tokio::io::copy(&mut a.compat(), &mut b.compat())` work as on tokio's own streams.
//! Here futures-io's extension traits (from `futures-util`) drive a Unix socket pair:
//!
//! ```
//! # #[cfg(feature = "compat")]
//! # coring::runtime::Runtime::new().unwrap().block_on(async {
//! use coring::compat::CompatIo;
//! use futures_util::io::{AsyncBufReadExt, AsyncWriteExt};
//!
//! let (a, b) = coring::net::UnixStream::pair()?;
//! let (mut a, mut b) = (a.compat(), b.compat());
//! a.write_all(b"hello\nworld\n").await?;
//! a.flush().await?; // write-behind: flush to know the bytes went out
//! let mut line = String::new();
//! b.read_line(&mut line).await?; // straight from the wrapper's read buffer
//! assert_eq!(line, "hello\n");
//! # Ok::<(), std::io::Error>(())
//! # }).unwrap();
//! ```

#[cfg(feature = "compat")]
mod futures_traits;
#[cfg(feature = "compat")]
mod tokio_traits;

use std::fmt;
use std::future::Future;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use coring_runtime::buf::{BufRing, IoBuf, ProvidedBuf, Slice};
use coring_runtime::op::fs::Statx;
use coring_runtime::op::net::MultishotRecv;
use coring_runtime::op::{FileRef, Op, OpCode};

/// The default size of the read buffer: the most one read op asks for.
pub const DEFAULT_READ_CAPACITY: usize = 16 * 1024;

/// The default size of the write buffer: the most written bytes held before `poll_write`
/// waits for the kernel.
pub const DEFAULT_WRITE_CAPACITY: usize = 64 * 1024;

/// How long a dropped [`Compat`] keeps trying to write the bytes it had accepted (a peer
/// that stops reading would otherwise hold the descriptor forever).
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(30);

/// What [`Compat`] can wrap: [`TcpStream`](crate::net::TcpStream),
/// [`UnixStream`](crate::net::UnixStream) and [`File`](crate::fs::File). Sealed.
pub trait CompatIo: sealed::Io {
    /// Wraps `self` in a [`Compat`] with the default buffer sizes.
    ///
    /// ```
    /// use coring::compat::CompatIo;
    /// # coring::runtime::Runtime::new().unwrap().block_on(async {
    /// let (a, _b) = coring::net::UnixStream::pair()?;
    /// let io = a.compat();
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    fn compat(self) -> Compat<Self>
    where
        Self: Sized,
    {
        Compat::new(self)
    }
}

mod sealed {
    use std::io;
    use std::os::fd::AsRawFd;

    use coring_runtime::buf::Slice;
    use coring_runtime::io::BufResult;
    use coring_runtime::op::OpCode;

    /// The ops a [`Compat`](super::Compat) runs on its buffers.
    pub trait Io: AsRawFd + Unpin + 'static {
        type ReadOp: OpCode<Output = BufResult<usize, Vec<u8>>>;
        type WriteOp: OpCode<Output = BufResult<usize, Slice<Vec<u8>>>>;
        /// Reads and writes go at an offset, which the wrapper tracks (files).
        const POSITIONED: bool;
        fn read_op(&self, buf: Vec<u8>, pos: u64) -> Self::ReadOp;
        fn write_op(&self, buf: Slice<Vec<u8>>, pos: u64) -> Self::WriteOp;
        fn shutdown_write(&self) -> io::Result<()>;
        /// What ops name: the registered slot (see `register`) or the descriptor.
        fn file_ref(&self) -> coring_runtime::op::FileRef;
    }
}

macro_rules! compat_socket {
    ($ty:ty) => {
        impl CompatIo for $ty {}

        impl sealed::Io for $ty {
            type ReadOp = coring_runtime::op::net::Recv<Vec<u8>>;
            type WriteOp = coring_runtime::op::net::Send<Slice<Vec<u8>>>;
            const POSITIONED: bool = false;

            fn read_op(&self, buf: Vec<u8>, _pos: u64) -> Self::ReadOp {
                coring_runtime::op::net::Recv::new(self.file_ref(), buf)
            }

            fn write_op(&self, buf: Slice<Vec<u8>>, _pos: u64) -> Self::WriteOp {
                coring_runtime::op::net::Send::new(self.file_ref(), buf)
            }

            fn file_ref(&self) -> coring_runtime::op::FileRef {
                <$ty>::file_ref(self)
            }

            fn shutdown_write(&self) -> io::Result<()> {
                match self.shutdown(std::net::Shutdown::Write) {
                    // The connection is gone (reset by the peer): nothing is left to shut.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                    result => result,
                }
            }
        }
    };
}

compat_socket!(coring_net::TcpStream);
compat_socket!(coring_net::UnixStream);

impl CompatIo for coring_fs::File {}

impl sealed::Io for coring_fs::File {
    type ReadOp = coring_runtime::op::rw::Read<Vec<u8>>;
    type WriteOp = coring_runtime::op::rw::Write<Slice<Vec<u8>>>;
    const POSITIONED: bool = true;

    fn read_op(&self, buf: Vec<u8>, pos: u64) -> Self::ReadOp {
        coring_runtime::op::rw::Read::new(self.file_ref(), buf, pos)
    }

    fn write_op(&self, buf: Slice<Vec<u8>>, pos: u64) -> Self::WriteOp {
        coring_runtime::op::rw::Write::new(self.file_ref(), buf, pos)
    }

    fn file_ref(&self) -> coring_runtime::op::FileRef {
        coring_fs::File::file_ref(self)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A coring stream or file as a poll-based reader and writer; see the [module docs](self)
/// for the design and its cost (one copy per byte, each way).
///
/// Made by [`Compat::new`], [`Compat::with_capacity`] or [`CompatIo::compat`].
pub struct Compat<S: CompatIo> {
    // The op fields come before `io`: they are dropped (their ops cancelled) before the
    // descriptor is closed.
    read: Reader<S::ReadOp>,
    write: Writer<S::WriteOp>,
    /// Files: the size lookup of a `SeekFrom::End` in progress.
    stat: Option<Op<Statx>>,
    /// Files: a seek started by tokio's `start_seek`, finished by `poll_complete`.
    #[cfg_attr(not(feature = "compat"), allow(dead_code))]
    seek: Option<SeekFrom>,
    /// Files: the cursor, as the user sees it (bytes consumed or accepted so far).
    pos: u64,
    /// Whether dropping hands pending writes to a task instead of cancelling them.
    linger: bool,
    /// `None` only after [`into_inner`](Compat::into_inner) or `Drop` took it.
    io: Option<S>,
}

struct Reader<R: OpCode> {
    op: Option<Op<R>>,
    /// Received bytes are `buf[consumed..]`. Empty (and unallocated) while an op has it.
    buf: Vec<u8>,
    consumed: usize,
    capacity: usize,
    /// Reads from a provided buffer ring instead ([`Compat::with_buf_ring`]).
    ring: Option<Box<RingReader>>,
}

/// The read side of [`Compat::with_buf_ring`]: one multishot receive, and the buffer the
/// kernel filled last, being consumed.
struct RingReader {
    recv: MultishotRecv,
    current: Option<ProvidedBuf>,
    consumed: usize,
    eof: bool,
}

struct Writer<W: OpCode> {
    /// The write in flight; its buffer is inside the op.
    op: Option<Op<W>>,
    /// Files: the offset of the in-flight op's first byte.
    op_pos: u64,
    /// Accepted bytes not yet handed to the kernel.
    stage: Vec<u8>,
    /// Files: the offset of `stage[0]`.
    stage_pos: u64,
    /// A buffer back from the kernel, kept for the next stage.
    spare: Vec<u8>,
    capacity: usize,
}

impl RingReader {
    /// The unconsumed part of the current buffer (empty at end of stream).
    fn available(&self) -> &[u8] {
        match &self.current {
            Some(buf) => &buf[self.consumed..],
            None => &[],
        }
    }

    /// Makes unconsumed bytes available, or reaches end of stream.
    fn poll_fill(&mut self, fd: FileRef, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.available().is_empty() && !self.eof {
            self.current = None; // back to the ring
            match ready!(self.recv.poll_next(fd, cx)) {
                Some(Ok(buf)) => {
                    self.current = Some(buf);
                    self.consumed = 0;
                }
                None => self.eof = true,
                Some(Err(e)) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: OpCode> Writer<W> {
    fn new(capacity: usize) -> Self {
        Writer {
            op: None,
            op_pos: 0,
            stage: Vec::new(),
            stage_pos: 0,
            spare: Vec::new(),
            capacity,
        }
    }
}

impl<S: CompatIo> Compat<S> {
    /// Wraps `io` with the default buffer sizes ([`DEFAULT_READ_CAPACITY`],
    /// [`DEFAULT_WRITE_CAPACITY`]). Nothing is allocated until the first read or write.
    pub fn new(io: S) -> Compat<S> {
        Compat::with_capacity(io, DEFAULT_READ_CAPACITY, DEFAULT_WRITE_CAPACITY)
    }

    /// Wraps `io` with a read buffer of `read` bytes (the most one read op asks for) and a
    /// write buffer of `write` bytes (the most held before `poll_write` waits).
    ///
    /// # Panics
    /// When either size is zero.
    pub fn with_capacity(io: S, read: usize, write: usize) -> Compat<S> {
        assert!(
            read > 0 && write > 0,
            "coring::compat: buffer sizes must be non-zero"
        );
        Compat {
            read: Reader {
                op: None,
                buf: Vec::new(),
                consumed: 0,
                capacity: read,
                ring: None,
            },
            write: Writer::new(write),
            stat: None,
            seek: None,
            pos: 0,
            linger: true,
            io: Some(io),
        }
    }

    /// Wraps a socket whose reads go through a multishot receive (`IORING_OP_RECV` with
    /// `IORING_RECV_MULTISHOT`, Linux 6.0+) into `ring`, a provided buffer ring that many
    /// connections of one worker can share: one submission serves every read, and a
    /// connection waiting for data holds no read buffer at all (a server with many idle
    /// keep-alive connections saves the 16 KiB each). Bytes are still copied once, from the
    /// ring's buffer into the caller's slice, and the buffer goes back to the ring once
    /// consumed.
    ///
    /// The kernel keeps receiving into the ring while the caller does not read, so one
    /// connection that is not read can hold many of the ring's buffers; when the ring runs
    /// dry the receive is re-armed after the buffers come back. Writes are as with
    /// [`Compat::new`].
    ///
    /// ```no_run
    /// use coring::compat::Compat;
    /// # coring::runtime::Runtime::new().unwrap().block_on(async {
    /// let ring = coring::buf::BufRing::new(256, 16 * 1024)?;
    /// let listener = coring::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// let (stream, _) = listener.accept().await?;
    /// let io = Compat::with_buf_ring(stream, &ring);
    /// # Ok::<(), std::io::Error>(())
    /// # });
    /// ```
    ///
    /// # Panics
    /// When `S` is a file: files have no multishot receive.
    pub fn with_buf_ring(io: S, ring: &BufRing) -> Compat<S> {
        assert!(
            !S::POSITIONED,
            "coring::compat: with_buf_ring needs a socket, not a file"
        );
        let mut compat = Compat::new(io);
        compat.read.ring = Some(Box::new(RingReader {
            recv: MultishotRecv::new(ring.clone()),
            current: None,
            consumed: 0,
            eof: false,
        }));
        compat
    }

    fn io(&self) -> &S {
        self.io
            .as_ref()
            .expect("coring::compat: the stream was taken")
    }

    /// The wrapped stream or file.
    pub fn get_ref(&self) -> &S {
        self.io()
    }

    /// The wrapped stream or file, mutably. Reading or writing it directly while the wrapper
    /// holds buffered bytes mixes up their order.
    pub fn get_mut(&mut self) -> &mut S {
        self.io
            .as_mut()
            .expect("coring::compat: the stream was taken")
    }

    /// Gives the stream or file back. Ops in flight are cancelled, and bytes read ahead or
    /// accepted but not yet written are dropped: call `poll_shutdown` (or, for a file,
    /// `poll_flush`) first.
    pub fn into_inner(mut self) -> S {
        self.read.op = None;
        self.read.ring = None;
        self.write.op = None;
        self.stat = None;
        self.io
            .take()
            .expect("coring::compat: the stream was taken")
    }

    /// Received bytes not yet consumed.
    pub fn read_buffer(&self) -> &[u8] {
        match &self.read.ring {
            Some(ring) => ring.available(),
            None => &self.read.buf[self.read.consumed..],
        }
    }

    /// Files: the cursor position.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Buffered received bytes, or a read op for more; an empty slice is end of stream
    /// (`AsyncBufRead::poll_fill_buf`).
    pub fn poll_fill_buf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        if S::POSITIONED {
            // A file's reads must see the bytes written before them.
            ready!(self.poll_flush(cx))?;
        }
        let io = self
            .io
            .as_ref()
            .expect("coring::compat: the stream was taken");
        let read = &mut self.read;
        if let Some(ring) = &mut read.ring {
            ready!(ring.poll_fill(sealed::Io::file_ref(io), cx))?;
            return Poll::Ready(Ok(ring.available()));
        }
        if read.consumed < read.buf.len() {
            return Poll::Ready(Ok(&read.buf[read.consumed..]));
        }
        let op = match &mut read.op {
            Some(op) => op,
            None => {
                let mut buf = std::mem::take(&mut read.buf);
                buf.clear();
                buf.reserve_exact(read.capacity);
                read.consumed = 0;
                read.op.insert(Op::submit(io.read_op(buf, self.pos)))
            }
        };
        let (result, buf) = ready!(Pin::new(op).poll(cx));
        read.op = None;
        read.buf = buf;
        read.consumed = 0;
        match result {
            Ok(_) => Poll::Ready(Ok(&read.buf[..])),
            Err(e) => {
                read.buf.clear();
                Poll::Ready(Err(e))
            }
        }
    }

    /// Marks `amt` buffered bytes as read (`AsyncBufRead::consume`).
    pub fn consume(&mut self, amt: usize) {
        let read = &mut self.read;
        if let Some(ring) = &mut read.ring {
            ring.consumed += amt.min(ring.available().len());
            return;
        }
        let amt = amt.min(read.buf.len() - read.consumed);
        read.consumed += amt;
        if S::POSITIONED {
            self.pos += amt as u64;
        }
    }

    /// Reads by copying into `dst`, which has room for `room` bytes: `put(bytes)` copies and
    /// returns how many bytes it took.
    pub(crate) fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        room: usize,
        put: impl FnOnce(&[u8]) -> usize,
    ) -> Poll<io::Result<usize>> {
        if room == 0 {
            return Poll::Ready(Ok(0));
        }
        let available = ready!(self.poll_fill_buf(cx))?;
        let n = put(&available[..available.len().min(room)]);
        self.consume(n);
        Poll::Ready(Ok(n))
    }

    /// Accepts up to `len` bytes into the write buffer: `copy(stage, room)` appends at most
    /// `room` bytes and returns how many. Submits a write if none is in flight.
    pub(crate) fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
        copy: impl FnOnce(&mut Vec<u8>, usize) -> usize,
    ) -> Poll<io::Result<usize>> {
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        if S::POSITIONED {
            self.discard_read_ahead();
        }
        // Reap a finished write (without waiting); wait only while the buffer is full.
        let room = loop {
            if let Poll::Ready(Err(e)) = self.poll_in_flight(cx) {
                return Poll::Ready(Err(e));
            }
            let room = self.write.capacity.saturating_sub(self.write.stage.len());
            if room > 0 {
                break room;
            }
            if self.write.op.is_some() {
                return Poll::Pending; // `poll_in_flight` registered the waker
            }
            self.submit_stage();
        };
        if self.write.stage.is_empty() {
            self.write.stage_pos = self.pos;
            if self.write.stage.capacity() == 0 {
                self.write.stage.reserve(len.min(self.write.capacity));
            }
        }
        let n = copy(&mut self.write.stage, room);
        if S::POSITIONED {
            self.pos += n as u64;
        }
        if self.write.op.is_none() {
            self.submit_stage();
        }
        Poll::Ready(Ok(n))
    }

    /// Writes `src` (write-behind: see the module docs).
    pub fn poll_write(&mut self, cx: &mut Context<'_>, src: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, src.len(), |stage, room| {
            let n = room.min(src.len());
            stage.extend_from_slice(&src[..n]);
            n
        })
    }

    /// Writes from several slices, gathered into one op.
    pub fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.poll_write_with(cx, len, |stage, mut room| {
            let mut n = 0;
            for buf in bufs {
                let take = room.min(buf.len());
                stage.extend_from_slice(&buf[..take]);
                n += take;
                room -= take;
                if room == 0 {
                    break;
                }
            }
            n
        })
    }

    /// Sockets: hands every accepted byte to the ring (it may wait for a send in flight to
    /// finish before submitting the rest). Files: waits until every accepted byte is written.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if S::POSITIONED {
            return self.poll_written(cx);
        }
        loop {
            if self.write.op.is_none() {
                self.submit_stage();
                return Poll::Ready(Ok(()));
            }
            if self.write.stage.is_empty() {
                // Submitted: the ring sends it. Not polling the op spares a wake-up when it
                // completes; its result is picked up by the next write.
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_in_flight(cx))?;
        }
    }

    /// Waits until every accepted byte is written, then shuts down the write direction
    /// (sockets; files only wait).
    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_written(cx))?;
        Poll::Ready(self.io().shutdown_write())
    }

    /// Waits until every accepted byte has been written (the kernel completed the writes).
    fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_in_flight(cx))?;
            if self.write.stage.is_empty() {
                return Poll::Ready(Ok(()));
            }
            self.submit_stage();
        }
    }

    /// Moves a file's cursor, after flushing pending writes and dropping data read ahead;
    /// returns the new position (`futures_io::AsyncSeek::poll_seek`). Meaningless for
    /// sockets, which ignore the cursor.
    pub fn poll_seek(&mut self, cx: &mut Context<'_>, target: SeekFrom) -> Poll<io::Result<u64>> {
        ready!(self.poll_written(cx))?;
        self.discard_read_ahead();
        let (base, offset) = match target {
            SeekFrom::Start(n) => {
                self.pos = n;
                return Poll::Ready(Ok(n));
            }
            SeekFrom::Current(offset) => (self.pos, offset),
            SeekFrom::End(offset) => {
                let fd = self.io().as_raw_fd();
                let op = self.stat.get_or_insert_with(|| Op::submit(Statx::new(fd)));
                let stat = ready!(Pin::new(op).poll(cx));
                self.stat = None;
                (stat?.stx_size, offset)
            }
        };
        match base.checked_add_signed(offset) {
            Some(pos) => {
                self.pos = pos;
                Poll::Ready(Ok(pos))
            }
            None => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "coring::compat: seek to a negative or overflowing position",
            ))),
        }
    }

    /// Drives the write in flight until all of it is written (re-submitting the rest after
    /// a short write). An error drops the bytes not yet written.
    fn poll_in_flight(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let io = self
            .io
            .as_ref()
            .expect("coring::compat: the stream was taken");
        let write = &mut self.write;
        while let Some(op) = &mut write.op {
            let (result, slice) = ready!(Pin::new(op).poll(cx));
            write.op = None;
            let (begin, end) = (slice.begin(), slice.end());
            let mut buf = slice.into_inner();
            let error = match result {
                Ok(n) if n > 0 && begin + n < end => {
                    write.op_pos += n as u64;
                    let rest = buf.slice(begin + n..end);
                    write.op = Some(Op::submit(io.write_op(rest, write.op_pos)));
                    continue;
                }
                Ok(0) if begin < end => Some(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "coring::compat: the kernel accepted no bytes of a write",
                )),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    let rest = buf.slice(begin..end);
                    write.op = Some(Op::submit(io.write_op(rest, write.op_pos)));
                    continue;
                }
                Ok(_) => None,
                Err(e) => Some(e),
            };
            buf.clear();
            write.spare = buf;
            if let Some(e) = error {
                // Later bytes must not go out after a gap.
                write.stage.clear();
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Hands the staged bytes to the kernel. Only when no write is in flight.
    fn submit_stage(&mut self) {
        let io = self
            .io
            .as_ref()
            .expect("coring::compat: the stream was taken");
        let write = &mut self.write;
        debug_assert!(write.op.is_none());
        if write.stage.is_empty() {
            return;
        }
        let buf = std::mem::replace(&mut write.stage, std::mem::take(&mut write.spare));
        let len = buf.len();
        write.op_pos = write.stage_pos;
        write.stage_pos += len as u64;
        write.op = Some(Op::submit(io.write_op(buf.slice(..len), write.op_pos)));
    }

    /// Files: forgets data read ahead of the cursor, cancelling a read in flight.
    fn discard_read_ahead(&mut self) {
        let read = &mut self.read;
        read.op = None;
        read.consumed = read.buf.len();
    }
}

impl<S: CompatIo> Drop for Compat<S> {
    fn drop(&mut self) {
        // A read in flight is cancelled before the descriptor can close.
        self.read.op = None;
        self.read.ring = None;
        self.stat = None;
        let pending = self.write.op.is_some() || !self.write.stage.is_empty();
        if !(self.linger && pending && crate::runtime::driver_kind().is_some()) {
            return; // the fields drop in order: ops cancelled, then the descriptor closed
        }
        // Usually the last send has completed already: check without a task's waker.
        let waker = std::task::Waker::from(std::sync::Arc::new(NoopWaker));
        let mut cx = Context::from_waker(&waker);
        if self.poll_written(&mut cx).is_ready() {
            return;
        }
        let Some(io) = self.io.take() else { return };
        let write = std::mem::replace(&mut self.write, Writer::new(1));
        let mut rest = Compat::with_capacity(io, 1, 1);
        rest.write = write;
        rest.linger = false; // dropped after this, it cancels and closes
        drop(crate::spawn(async move {
            let written = std::future::poll_fn(|cx| rest.poll_written(cx));
            let _ = crate::time::timeout(LINGER, written).await;
        }));
    }
}

struct NoopWaker;

impl std::task::Wake for NoopWaker {
    fn wake(self: std::sync::Arc<Self>) {}
}

impl<S: CompatIo> From<S> for Compat<S> {
    fn from(io: S) -> Compat<S> {
        Compat::new(io)
    }
}

impl<S: CompatIo + fmt::Debug> fmt::Debug for Compat<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compat")
            .field("io", &self.io)
            .field("read_buffered", &(self.read.buf.len() - self.read.consumed))
            .field("reading", &self.read.op.is_some())
            .field("write_staged", &self.write.stage.len())
            .field("writing", &self.write.op.is_some())
            .finish()
    }
}

#[cfg(feature = "hyper")]
mod hyper_io {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::{Compat, CompatIo};

    impl<S: CompatIo> ::hyper::rt::Read for Compat<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            mut buf: ::hyper::rt::ReadBufCursor<'_>,
        ) -> Poll<io::Result<()>> {
            let room = buf.remaining();
            self.get_mut()
                .poll_read_with(cx, room, |bytes| {
                    buf.put_slice(bytes);
                    bytes.len()
                })
                .map_ok(drop)
        }
    }

    impl<S: CompatIo> ::hyper::rt::Write for Compat<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Compat::poll_write(self.get_mut(), cx, buf)
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Compat::poll_write_vectored(self.get_mut(), cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            true // slices are gathered into one op
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Compat::poll_flush(self.get_mut(), cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Compat::poll_shutdown(self.get_mut(), cx)
        }
    }
}
