//! Owned-buffer I/O traits, so code can be generic over streams.
//!
//! [`AsyncReadRent`] and [`AsyncWriteRent`] take buffers by value and hand them back with the
//! result, as every coring I/O method does. [`AsyncReadRentExt::read_exact`] and
//! [`AsyncWriteRentExt::write_all`] loop over short transfers.
//!
//! ```no_run
//! use coring::io::{AsyncReadRent, AsyncWriteRentExt};
//!
//! async fn echo_once<S: AsyncReadRent + coring::io::AsyncWriteRent>(s: &mut S) -> std::io::Result<()> {
//!     use coring::buf::IoBuf;
//!     let (res, buf) = s.read(vec![0u8; 1024]).await;
//!     let n = res?;
//!     let (res, _) = s.write_all(buf.slice(..n)).await;
//!     res
//! }
//! ```

use std::future::Future;
use std::io;

use crate::buf::{IoBuf, IoBufMut};
pub use crate::op::BufResult;

/// Reads into owned buffers.
pub trait AsyncReadRent {
    /// Reads up to `buf.bytes_total()` bytes into `buf`; `Ok(0)` means end of stream (or an
    /// empty buffer).
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>>;
}

/// Writes from owned buffers.
pub trait AsyncWriteRent {
    /// Writes some of `buf`'s initialized bytes; returns how many.
    fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>>;

    /// Writes some bytes from several buffers, in order; returns how many.
    fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> impl Future<Output = BufResult<usize, Vec<B>>>;

    /// Shuts down the write half (streams), so the peer reads end of stream.
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>>;
}

/// `read_exact` for every [`AsyncReadRent`].
pub trait AsyncReadRentExt: AsyncReadRent {
    /// Fills `buf` completely (`bytes_total` bytes); end of stream first gives
    /// `ErrorKind::UnexpectedEof`.
    fn read_exact<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<(), B>> {
        read_exact(self, buf)
    }
}

impl<T: AsyncReadRent + ?Sized> AsyncReadRentExt for T {}

/// `write_all` for every [`AsyncWriteRent`].
pub trait AsyncWriteRentExt: AsyncWriteRent {
    /// Writes every initialized byte of `buf`. A write that makes no progress gives
    /// `ErrorKind::WriteZero`; an empty buffer completes at once.
    fn write_all<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<(), B>> {
        write_all(self, buf)
    }
}

impl<T: AsyncWriteRent + ?Sized> AsyncWriteRentExt for T {}

async fn read_exact<R, B>(reader: &mut R, mut buf: B) -> BufResult<(), B>
where
    R: AsyncReadRent + ?Sized,
    B: IoBufMut,
{
    let total = buf.bytes_total();
    let mut filled = 0;
    while filled < total {
        let (result, slice) = reader.read(buf.slice(filled..)).await;
        buf = slice.into_inner();
        match result {
            Ok(0) => {
                let msg = format!("end of stream after {filled} of {total} bytes");
                return (Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg)), buf);
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}

async fn write_all<W, B>(writer: &mut W, mut buf: B) -> BufResult<(), B>
where
    W: AsyncWriteRent + ?Sized,
    B: IoBuf,
{
    let total = buf.bytes_init();
    let mut written = 0;
    while written < total {
        let (result, slice) = writer.write(buf.slice(written..total)).await;
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
