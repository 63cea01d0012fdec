//! Unix stream sockets, with descriptor passing.

use std::io;
use std::net::Shutdown;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use coring_runtime::buf::{IoBuf, IoBufMut};
use coring_runtime::fd::Fd;
use coring_runtime::io::{AsyncReadRentExt, AsyncWriteRentExt, BufResult};
use coring_runtime::op::msg::{RecvMsg, SendMsg};
use coring_runtime::op::net::{Connect, Recv, Send, SendVectored, SockAddr};
use coring_runtime::op::Op;
use socket2::{Domain, SockRef, Socket, Type};

use super::{to_socket2, SocketAddr};
use crate::ready::{ready, READABLE, WRITABLE};
use crate::split::{split, OwnedReadHalf, OwnedWriteHalf};

/// A Unix stream connection; like [`TcpStream`](crate::TcpStream), plus descriptor passing.
///
/// ```
/// use std::os::fd::AsFd;
/// use coring::net::UnixStream;
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let (a, b) = UnixStream::pair()?;
/// // Pass a descriptor (here one end of a std socket pair) along with one byte of data.
/// let (mine, theirs) = std::os::unix::net::UnixStream::pair()?;
/// let (res, _) = a.send_with_fds(b"!", &[theirs.as_fd()]).await;
/// res?;
/// let (res, buf) = b.recv_with_fds(vec![0u8; 1], 4).await;
/// let (n, fds) = res?;
/// assert_eq!((&buf[..n], fds.len()), (&b"!"[..], 1));
/// # drop(mine);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct UnixStream {
    fd: Fd,
}

impl UnixStream {
    pub(crate) fn from_fd(fd: Fd) -> UnixStream {
        UnixStream { fd }
    }

    /// Connects to the socket at `path` (`IORING_OP_CONNECT`); a path starting with NUL is an
    /// abstract name. A missing path fails with `NotFound`, a path nobody listens on with
    /// `ConnectionRefused`.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = SockAddr::from_socket2(&to_socket2(path.as_ref())?);
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        let stream = UnixStream {
            fd: Fd::from_owned(socket.into()),
        };
        Op::submit(Connect::with_addr(stream.fd.file_ref(), addr)).await?;
        Ok(stream)
    }

    /// Two connected, unnamed streams (`socketpair(2)`).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        Ok((
            UnixStream::from_fd(Fd::from_owned(a.into())),
            UnixStream::from_fd(Fd::from_owned(b.into())),
        ))
    }

    /// Reads up to `buf.bytes_total()` bytes; `Ok(0)` is end of stream (or an empty buffer).
    /// Descriptors that came with the bytes are discarded by the kernel: use
    /// [`recv_with_fds`](Self::recv_with_fds) when the peer sends some.
    pub async fn read<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        Op::submit(Recv::new(self.fd.file_ref(), buf)).await
    }

    /// Writes some of `buf`'s initialized bytes; returns how many.
    pub async fn write<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        Op::submit(Send::new(self.fd.file_ref(), buf)).await
    }

    /// Writes from several buffers in one `sendmsg`; returns how many bytes went out.
    pub async fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        Op::submit(SendVectored::new(self.fd.file_ref(), bufs)).await
    }

    /// Fills `buf` completely, or fails with `UnexpectedEof`.
    pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> BufResult<(), B> {
        let mut this = self;
        AsyncReadRentExt::read_exact(&mut this, buf).await
    }

    /// Writes every initialized byte of `buf`.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        let mut this = self;
        AsyncWriteRentExt::write_all(&mut this, buf).await
    }

    /// Sends `buf`'s bytes together with open descriptors (`SCM_RIGHTS`, `IORING_OP_SENDMSG`);
    /// returns how many bytes went out (the descriptors go with the first of them).
    ///
    /// The peer gets its own copies of the descriptors; the caller's stay open. They are
    /// duplicated into the op first, because the kernel looks them up only when it issues the
    /// send, which may be after this future was dropped. `buf` must hold at least one byte:
    /// a stream cannot carry descriptors without data (`InvalidInput` otherwise). At most 253
    /// descriptors fit in one message (`SCM_MAX_FD`; the kernel answers `EINVAL`).
    pub async fn send_with_fds<B: IoBuf>(
        &self,
        buf: B,
        fds: &[BorrowedFd<'_>],
    ) -> BufResult<usize, B> {
        if buf.bytes_init() == 0 && !fds.is_empty() {
            let msg = "coring: descriptors need at least one byte of data to travel with";
            return (Err(io::Error::new(io::ErrorKind::InvalidInput, msg)), buf);
        }
        let owned: io::Result<Vec<OwnedFd>> =
            fds.iter().map(|fd| fd.try_clone_to_owned()).collect();
        let owned = match owned {
            Ok(owned) => owned,
            Err(e) => return (Err(e), buf),
        };
        Op::submit(SendMsg::new(self.fd.file_ref(), buf).with_fds(owned)).await
    }

    /// Reads bytes and up to `max_fds` descriptors sent with them (`IORING_OP_RECVMSG`):
    /// `(bytes read, descriptors)`. Descriptors arrive close-on-exec.
    ///
    /// If the peer sent more descriptors than `max_fds`, the kernel closes the extra ones and
    /// reports `MSG_CTRUNC`; this is an `InvalidData` error, the descriptors that did arrive
    /// are closed too, and the bytes that came with them are in the buffer. If this future is
    /// dropped after the kernel delivered descriptors, they are closed, not leaked.
    pub async fn recv_with_fds<B: IoBufMut>(
        &self,
        buf: B,
        max_fds: usize,
    ) -> BufResult<(usize, Vec<OwnedFd>), B> {
        recv_with_fds(self, buf, max_fds).await
    }

    /// Shuts down the read half, the write half, or both (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        SockRef::from(&self.fd).shutdown(how)
    }

    /// Waits until the stream is readable (data, end of stream or an error), through the ring
    /// (`IORING_OP_POLL_ADD`).
    pub async fn readable(&self) -> io::Result<()> {
        ready(&self.fd, READABLE).await
    }

    /// Waits until the stream is writable (or has an error).
    pub async fn writable(&self) -> io::Result<()> {
        ready(&self.fd, WRITABLE).await
    }

    /// This end's address (unnamed unless the socket was bound).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from_socket2(
            &SockRef::from(&self.fd).local_addr()?,
        ))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from_socket2(
            &SockRef::from(&self.fd).peer_addr()?,
        ))
    }

    /// Splits the stream into halves that can live in different tasks; see
    /// [`OwnedReadHalf`].
    pub fn into_split(self) -> (OwnedReadHalf<UnixStream>, OwnedWriteHalf<UnixStream>) {
        split(self)
    }

    /// Takes over a connected `std` stream.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> UnixStream {
        UnixStream::from_fd(Fd::from_owned(stream.into()))
    }

    /// Closes the connection and reports errors.
    pub async fn close(self) -> io::Result<()> {
        self.fd.close().await
    }
}

async fn recv_with_fds<B: IoBufMut>(
    stream: &UnixStream,
    buf: B,
    max_fds: usize,
) -> BufResult<(usize, Vec<OwnedFd>), B> {
    let op = RecvMsg::new(stream.fd.file_ref(), buf).with_fds(max_fds);
    let (res, buf) = Op::submit(op).await;
    let res = res.and_then(|received| {
        if received.is_control_truncated() {
            let msg = format!(
                "coring: more descriptors arrived than the {max_fds} there was room for; \
                 all were closed ({} bytes received)",
                received.len
            );
            drop(received.fds);
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        }
        Ok((received.len, received.fds))
    });
    (res, buf)
}

impl OwnedReadHalf<UnixStream> {
    /// [`UnixStream::recv_with_fds`] on the read half.
    pub async fn recv_with_fds<B: IoBufMut>(
        &self,
        buf: B,
        max_fds: usize,
    ) -> BufResult<(usize, Vec<OwnedFd>), B> {
        recv_with_fds(self.as_ref(), buf, max_fds).await
    }
}

impl OwnedWriteHalf<UnixStream> {
    /// [`UnixStream::send_with_fds`] on the write half.
    pub async fn send_with_fds<B: IoBuf>(
        &self,
        buf: B,
        fds: &[BorrowedFd<'_>],
    ) -> BufResult<usize, B> {
        self.as_ref().send_with_fds(buf, fds).await
    }
}

crate::stream_rent_traits!(UnixStream);
crate::socket_fd_traits!(UnixStream);
crate::registered_fd_methods!(UnixStream);
