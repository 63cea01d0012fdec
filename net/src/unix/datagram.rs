//! Unix datagram sockets.

use std::io;
use std::net::Shutdown;
use std::path::Path;

use coring_runtime::buf::{IoBuf, IoBufMut};
use coring_runtime::fd::Fd;
use coring_runtime::io::BufResult;
use coring_runtime::op::msg::SendMsg;
use coring_runtime::op::net::{Send, SockAddr};
use coring_runtime::op::Op;
use socket2::{Domain, SockRef, Socket, Type};

use super::{to_socket2, SocketAddr};
use crate::ready::{ready, READABLE, WRITABLE};
use crate::udp::recv_datagram;

/// A Unix datagram socket. Like [`UdpSocket`](crate::UdpSocket), a datagram longer than the
/// receive buffer is an `InvalidData` error, never silently cut.
///
/// ```
/// use coring::net::UnixDatagram;
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let name = format!("\0coring-doc-dgram-{}", std::process::id());
/// let server = UnixDatagram::bind(&name)?;
/// let client = UnixDatagram::unbound()?;
/// let (res, _) = client.send_to(b"ping", &name).await;
/// res?;
/// let (res, buf) = server.recv_from(vec![0u8; 16]).await;
/// let (n, from) = res?;
/// assert_eq!(&buf[..n], b"ping");
/// assert!(from.is_unnamed());
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct UnixDatagram {
    fd: Fd,
}

impl UnixDatagram {
    fn new_socket() -> io::Result<Socket> {
        Socket::new(Domain::UNIX, Type::DGRAM, None)
    }

    fn from_socket(socket: Socket) -> UnixDatagram {
        UnixDatagram {
            fd: Fd::from_owned(socket.into()),
        }
    }

    /// A socket bound to `path` (a path starting with NUL is an abstract name). A filesystem
    /// path must not exist yet (`AddrInUse` otherwise).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        let addr = to_socket2(path.as_ref())?;
        let socket = Self::new_socket()?;
        socket.bind(&addr)?;
        Ok(Self::from_socket(socket))
    }

    /// A socket with no address: it can send, and receive replies only from a peer it
    /// [`connect`](Self::connect)s to or that sends to it through a pair.
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(Self::from_socket(Self::new_socket()?))
    }

    /// Two connected, unnamed sockets (`socketpair(2)`).
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = Socket::pair(Domain::UNIX, Type::DGRAM, None)?;
        Ok((Self::from_socket(a), Self::from_socket(b)))
    }

    /// Sets the default peer: [`send`](Self::send) goes there, and only its datagrams are
    /// received. Synchronous: connecting a datagram socket never waits. A missing path fails
    /// with `NotFound`.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        SockRef::from(&self.fd).connect(&to_socket2(path.as_ref())?)
    }

    /// Sends `buf`'s initialized bytes as one datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        Op::submit(Send::new(self.fd.file_ref(), buf)).await
    }

    /// Receives one datagram. One longer than the buffer is an `InvalidData` error naming both
    /// sizes, with the bytes that fit in the buffer.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        let (res, buf) = recv_datagram(self.fd.file_ref(), buf, false).await;
        (res.map(|(n, _)| n), buf)
    }

    /// Sends `buf`'s initialized bytes as one datagram to the socket at `path`
    /// (`IORING_OP_SENDMSG`; a path starting with NUL is an abstract name).
    pub async fn send_to<B: IoBuf>(&self, buf: B, path: impl AsRef<Path>) -> BufResult<usize, B> {
        match to_socket2(path.as_ref()) {
            Ok(addr) => self.send_to_socket2(buf, &addr).await,
            Err(e) => (Err(e), buf),
        }
    }

    /// Sends one datagram to `addr`, say the sender of a datagram from
    /// [`recv_from`](Self::recv_from). An unnamed address is an `InvalidInput` error.
    pub async fn send_to_addr<B: IoBuf>(&self, buf: B, addr: &SocketAddr) -> BufResult<usize, B> {
        match addr.to_socket2() {
            Ok(addr) => self.send_to_socket2(buf, &addr).await,
            Err(e) => (Err(e), buf),
        }
    }

    async fn send_to_socket2<B: IoBuf>(
        &self,
        buf: B,
        addr: &socket2::SockAddr,
    ) -> BufResult<usize, B> {
        let op = SendMsg::new(self.fd.file_ref(), buf).to(SockAddr::from_socket2(addr));
        Op::submit(op).await
    }

    /// Receives one datagram and its sender's address (unnamed if the sender is not bound).
    /// One longer than the buffer is an `InvalidData` error, as in [`recv`](Self::recv).
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let (res, buf) = recv_datagram(self.fd.file_ref(), buf, true).await;
        let res = res.map(|(n, addr)| {
            let addr = addr.map(|a| SocketAddr::from_socket2(&a.to_socket2()));
            (n, addr.unwrap_or(SocketAddr::UNNAMED))
        });
        (res, buf)
    }

    /// Waits until a datagram can be received (`IORING_OP_POLL_ADD`).
    pub async fn readable(&self) -> io::Result<()> {
        ready(&self.fd, READABLE).await
    }

    /// Waits until a datagram can be sent.
    pub async fn writable(&self) -> io::Result<()> {
        ready(&self.fd, WRITABLE).await
    }

    /// Shuts down receiving, sending, or both (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        SockRef::from(&self.fd).shutdown(how)
    }

    /// This socket's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from_socket2(
            &SockRef::from(&self.fd).local_addr()?,
        ))
    }

    /// The connected peer's address; `NotConnected` if there is none.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from_socket2(
            &SockRef::from(&self.fd).peer_addr()?,
        ))
    }

    /// Sets `SO_SNDBUF` (doubled and clamped by Linux).
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        SockRef::from(&self.fd).set_send_buffer_size(size)
    }

    /// `SO_SNDBUF`, as the kernel reports it.
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        SockRef::from(&self.fd).send_buffer_size()
    }

    /// Sets `SO_RCVBUF` (doubled and clamped by Linux).
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        SockRef::from(&self.fd).set_recv_buffer_size(size)
    }

    /// `SO_RCVBUF`, as the kernel reports it.
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        SockRef::from(&self.fd).recv_buffer_size()
    }

    /// Takes over a `std` socket.
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> UnixDatagram {
        UnixDatagram {
            fd: Fd::from_owned(socket.into()),
        }
    }

    /// Closes the socket and reports errors.
    pub async fn close(self) -> io::Result<()> {
        self.fd.close().await
    }
}

crate::socket_fd_traits!(UnixDatagram);
crate::registered_fd_methods!(UnixDatagram);
