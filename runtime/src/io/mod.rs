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

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::buf::{IoBuf, IoBufMut};
use crate::fd::Fd;
use crate::op::splice::Splice;
pub use crate::op::BufResult;
use crate::op::Op;

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

/// Splices up to `len` bytes from `from` to `to` inside the kernel (`IORING_OP_SPLICE`); one
/// of them must be a pipe. `None` offsets use the descriptor's current position. Returns the
/// bytes moved; `Ok(0)` at end of input.
pub async fn splice(
    from: &impl AsRawFd,
    from_offset: Option<u64>,
    to: &impl AsRawFd,
    to_offset: Option<u64>,
    len: u32,
) -> io::Result<usize> {
    let op = Splice::new(
        from.as_raw_fd(),
        from_offset,
        to.as_raw_fd(),
        to_offset,
        len,
    );
    Op::submit(op).await
}

/// Copies everything from `from` (read from its current position to end of input) to `to`,
/// inside the kernel: through a pipe with `IORING_OP_SPLICE`, so the bytes never enter user
/// space. Works between files, pipes and sockets. Returns the bytes copied.
///
/// ```no_run
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let file = coring::fs::File::open("/etc/hostname").await?;
/// let peer = coring::net::TcpStream::connect("127.0.0.1:8080").await?;
/// let sent = coring::io::copy(&file, &peer).await?;
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
pub async fn copy(from: &impl AsRawFd, to: &impl AsRawFd) -> io::Result<u64> {
    const CHUNK: u32 = 1 << 16;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (pipe_read, pipe_write) = unsafe {
        (
            Fd::from_owned(OwnedFd::from_raw_fd(fds[0])),
            Fd::from_owned(OwnedFd::from_raw_fd(fds[1])),
        )
    };
    let mut total = 0u64;
    loop {
        let n = splice(from, None, &pipe_write, None, CHUNK).await?;
        if n == 0 {
            return Ok(total);
        }
        let mut left = n;
        while left > 0 {
            let moved = splice(&pipe_read, None, to, None, left as u32).await?;
            if moved == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "coring: the destination accepted no more bytes",
                ));
            }
            left -= moved;
        }
        total += n as u64;
    }
}
