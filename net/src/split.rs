//! Owned halves of a stream, for a reader task and a writer task.
//!
//! [`TcpStream::into_split`](crate::TcpStream::into_split) and
//! [`UnixStream::into_split`](crate::UnixStream::into_split) give an [`OwnedReadHalf`] and an
//! [`OwnedWriteHalf`]. Both hold an `Arc` of the stream, so each half can move into its own
//! task (or, the stream being `Send`, to another worker). Coring's I/O methods take `&self`,
//! so the halves add no locking: they only narrow what each side may do.
//!
//! Dropping the write half shuts down the write direction (`shutdown(SHUT_WR)`), so the peer
//! reads end of stream while this side can still read, as with tokio's halves. The descriptor
//! closes when both halves are gone. [`OwnedReadHalf::reunite`] puts the stream back together
//! (without the shutdown).

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;

use coring_runtime::buf::{IoBuf, IoBufMut};
use coring_runtime::io::{
    AsyncReadRent, AsyncReadRentExt, AsyncWriteRent, AsyncWriteRentExt, BufResult,
};

use crate::ready::{ready, READABLE, WRITABLE};
use crate::{TcpStream, UnixStream};

/// A stream that [`OwnedReadHalf`] and [`OwnedWriteHalf`] can share: [`TcpStream`] and
/// [`UnixStream`]. Sealed.
pub trait SplitStream: sealed::Stream {}

pub(crate) mod sealed {
    use std::future::Future;
    use std::io;
    use std::os::fd::AsFd;

    use coring_runtime::buf::{IoBuf, IoBufMut};
    use coring_runtime::io::BufResult;

    /// The stream operations the halves forward to.
    pub trait Stream: AsFd + Sized + 'static {
        fn read_to<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>>;
        fn write_from<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>>;
        fn write_vectored<B: IoBuf>(
            &self,
            bufs: Vec<B>,
        ) -> impl Future<Output = BufResult<usize, Vec<B>>>;
        fn shutdown_write(&self) -> io::Result<()>;
    }
}

macro_rules! split_stream {
    ($ty:ty) => {
        impl SplitStream for $ty {}

        impl sealed::Stream for $ty {
            fn read_to<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
                <$ty>::read(self, buf)
            }

            fn write_from<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
                <$ty>::write(self, buf)
            }

            fn write_vectored<B: IoBuf>(
                &self,
                bufs: Vec<B>,
            ) -> impl Future<Output = BufResult<usize, Vec<B>>> {
                <$ty>::writev(self, bufs)
            }

            fn shutdown_write(&self) -> io::Result<()> {
                <$ty>::shutdown(self, std::net::Shutdown::Write)
            }
        }
    };
}

split_stream!(TcpStream);
split_stream!(UnixStream);

/// Splits `stream` into its two owned halves.
pub(crate) fn split<S: SplitStream>(stream: S) -> (OwnedReadHalf<S>, OwnedWriteHalf<S>) {
    let stream = Arc::new(stream);
    let read = OwnedReadHalf {
        stream: stream.clone(),
    };
    let write = OwnedWriteHalf {
        stream,
        shutdown_on_drop: true,
    };
    (read, write)
}

/// The reading half of a stream, from `into_split`.
///
/// ```
/// use coring::net::UnixStream;
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let (a, b) = UnixStream::pair()?;
/// let (read, write) = a.into_split();
/// // An echo: one task owns both halves here, but each could go to its own task.
/// let echo = coring::spawn(async move {
///     let (res, buf) = read.read_exact(vec![0u8; 4]).await;
///     res?;
///     write.write_all(buf).await.0
/// });
/// b.write_all(b"ping").await.0?;
/// echo.await.unwrap()?;
/// let (res, buf) = b.read_exact(vec![0u8; 4]).await;
/// res?;
/// assert_eq!(buf, b"ping");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct OwnedReadHalf<S: SplitStream> {
    stream: Arc<S>,
}

/// The writing half of a stream, from `into_split`. Dropping it shuts down the write
/// direction: the peer reads end of stream.
pub struct OwnedWriteHalf<S: SplitStream> {
    stream: Arc<S>,
    /// False once reunited: the stream lives on whole.
    shutdown_on_drop: bool,
}

impl<S: SplitStream> OwnedReadHalf<S> {
    /// Reads up to `buf.bytes_total()` bytes; `Ok(0)` is end of stream (or an empty buffer).
    pub async fn read<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        self.stream.read_to(buf).await
    }

    /// Fills `buf` completely, or fails with `UnexpectedEof`.
    pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> BufResult<(), B> {
        let mut this = self;
        AsyncReadRentExt::read_exact(&mut this, buf).await
    }

    /// Waits until the stream is readable (data, end of stream or an error).
    pub async fn readable(&self) -> io::Result<()> {
        ready(&self.stream.as_fd(), READABLE).await
    }

    /// Puts the stream back together. Fails, handing both halves back, if they come from
    /// different streams.
    pub fn reunite(self, mut other: OwnedWriteHalf<S>) -> Result<S, ReuniteError<S>> {
        if !Arc::ptr_eq(&self.stream, &other.stream) {
            return Err(ReuniteError(self, other));
        }
        other.shutdown_on_drop = false;
        drop(other);
        match Arc::try_unwrap(self.stream) {
            Ok(stream) => Ok(stream),
            Err(_) => unreachable!("coring: only the two halves share a split stream"),
        }
    }
}

impl<S: SplitStream> OwnedWriteHalf<S> {
    /// Writes some of `buf`'s initialized bytes; returns how many.
    pub async fn write<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        self.stream.write_from(buf).await
    }

    /// Writes every initialized byte of `buf`.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        let mut this = self;
        AsyncWriteRentExt::write_all(&mut this, buf).await
    }

    /// Writes from several buffers in one `sendmsg`; returns how many bytes went out.
    pub async fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        self.stream.write_vectored(bufs).await
    }

    /// Waits until the stream is writable (or has an error).
    pub async fn writable(&self) -> io::Result<()> {
        ready(&self.stream.as_fd(), WRITABLE).await
    }

    /// Shuts down the write direction now: the peer reads end of stream.
    pub fn shutdown(&self) -> io::Result<()> {
        self.stream.shutdown_write()
    }

    /// Puts the stream back together; see [`OwnedReadHalf::reunite`].
    pub fn reunite(self, other: OwnedReadHalf<S>) -> Result<S, ReuniteError<S>> {
        other.reunite(self)
    }
}

impl<S: SplitStream> Drop for OwnedWriteHalf<S> {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // Best effort, as a close would be: the peer may be gone already.
            let _ = self.stream.shutdown_write();
        }
    }
}

/// The whole stream, for its addresses and options (its I/O methods work too, but then the
/// split no longer says who reads and who writes).
impl<S: SplitStream> AsRef<S> for OwnedReadHalf<S> {
    fn as_ref(&self) -> &S {
        &self.stream
    }
}

/// The whole stream, for its addresses and options.
impl<S: SplitStream> AsRef<S> for OwnedWriteHalf<S> {
    fn as_ref(&self) -> &S {
        &self.stream
    }
}

impl<S: SplitStream + fmt::Debug> fmt::Debug for OwnedReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OwnedReadHalf").field(&self.stream).finish()
    }
}

impl<S: SplitStream + fmt::Debug> fmt::Debug for OwnedWriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OwnedWriteHalf").field(&self.stream).finish()
    }
}

/// Halves of two different streams passed to `reunite`; both come back.
pub struct ReuniteError<S: SplitStream>(pub OwnedReadHalf<S>, pub OwnedWriteHalf<S>);

impl<S: SplitStream> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S: SplitStream> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("coring: tried to reunite halves of two different streams")
    }
}

impl<S: SplitStream> Error for ReuniteError<S> {}

impl<S: SplitStream> AsyncReadRent for OwnedReadHalf<S> {
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.stream.read_to(buf)
    }
}

impl<S: SplitStream> AsyncReadRent for &OwnedReadHalf<S> {
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.stream.read_to(buf)
    }
}

impl<S: SplitStream> AsyncWriteRent for OwnedWriteHalf<S> {
    fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.stream.write_from(buf)
    }

    fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> impl Future<Output = BufResult<usize, Vec<B>>> {
        self.stream.write_vectored(bufs)
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.stream.shutdown_write()
    }
}

impl<S: SplitStream> AsyncWriteRent for &OwnedWriteHalf<S> {
    fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.stream.write_from(buf)
    }

    fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> impl Future<Output = BufResult<usize, Vec<B>>> {
        self.stream.write_vectored(bufs)
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.stream.shutdown_write()
    }
}
