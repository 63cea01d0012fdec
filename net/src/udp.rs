//! UDP sockets.
//!
//! Datagrams are sent with `IORING_OP_SEND` (connected) or `IORING_OP_SENDMSG` with a name
//! (`send_to`), and received with `IORING_OP_RECVMSG` carrying `MSG_TRUNC`, so the kernel
//! reports each datagram's real length. A datagram longer than the buffer is therefore never
//! cut silently: the receive fails with `ErrorKind::InvalidData`, naming both sizes, and the
//! buffer comes back holding the bytes that fit (the rest of that datagram is gone, as with
//! `recv(2)`).

use std::io;
use std::net::SocketAddr;

use coring_runtime::buf::{IoBuf, IoBufMut};
use coring_runtime::fd::Fd;
use coring_runtime::io::BufResult;
use coring_runtime::op::msg::{RecvMsg, SendMsg};
use coring_runtime::op::net::{Connect, Send, SockAddr};
use coring_runtime::op::FileRef;
use coring_runtime::op::Op;
use socket2::{Domain, SockRef, Socket, Type};

use crate::addr::{resolve, ToSocketAddrs};
use crate::ready::{ready, READABLE, WRITABLE};

/// A UDP socket.
///
/// Every receive reports a datagram longer than the buffer as an error (see
/// [`recv_from`](UdpSocket::recv_from)).
///
/// ```
/// use coring::net::UdpSocket;
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let a = UdpSocket::bind("127.0.0.1:0").await?;
/// let b = UdpSocket::bind("127.0.0.1:0").await?;
/// let (res, _) = a.send_to(b"hello", b.local_addr()?).await;
/// res?;
/// let (res, buf) = b.recv_from(vec![0u8; 64]).await;
/// let (n, from) = res?;
/// assert_eq!(&buf[..n], b"hello");
/// assert_eq!(from, a.local_addr()?);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    fd: Fd,
}

impl UdpSocket {
    /// Binds a socket to `addr`. Each resolved address is tried in turn; the last error is
    /// returned if none works. Port 0 picks a free port ([`local_addr`](Self::local_addr) tells
    /// which).
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let mut last_error = None;
        for addr in resolve(addr).await? {
            let bound = Socket::new(Domain::for_address(addr), Type::DGRAM, None)
                .and_then(|socket| socket.bind(&addr.into()).map(|()| socket));
            match bound {
                Ok(socket) => {
                    return Ok(UdpSocket {
                        fd: Fd::from_owned(socket.into()),
                    })
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("resolve returns at least one address"))
    }

    /// Sets the default peer (`IORING_OP_CONNECT`): [`send`](Self::send) goes there and only
    /// its datagrams are received. Each resolved address is tried in turn.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let mut last_error = None;
        for addr in resolve(addr).await? {
            match Op::submit(Connect::new(self.fd.file_ref(), addr)).await {
                Ok(()) => return Ok(()),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("resolve returns at least one address"))
    }

    /// Sends `buf`'s initialized bytes as one datagram to the connected peer.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        Op::submit(Send::new(self.fd.file_ref(), buf)).await
    }

    /// Receives one datagram from the connected peer. A datagram longer than the buffer is an
    /// `InvalidData` error, as in [`recv_from`](Self::recv_from).
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        let (res, buf) = recv_datagram(self.fd.file_ref(), buf, false).await;
        (res.map(|(n, _)| n), buf)
    }

    /// Sends `buf`'s initialized bytes as one datagram to `addr` (its first resolved address),
    /// with `IORING_OP_SENDMSG`. An address the socket cannot send to (port 0, another address
    /// family) is the kernel's error.
    pub async fn send_to<B: IoBuf>(&self, buf: B, addr: impl ToSocketAddrs) -> BufResult<usize, B> {
        let addr = match resolve(addr).await {
            Ok(addrs) => addrs[0],
            Err(e) => return (Err(e), buf),
        };
        let op = SendMsg::new(self.fd.file_ref(), buf).to(SockAddr::from_std(addr));
        Op::submit(op).await
    }

    /// Receives one datagram and its sender's address (`IORING_OP_RECVMSG`).
    ///
    /// A datagram longer than the buffer is reported, not cut silently: the result is an
    /// `ErrorKind::InvalidData` error whose message gives the datagram's and the buffer's
    /// sizes, and the buffer holds the bytes that fit. The rest of the datagram is discarded
    /// by the kernel.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let (res, buf) = recv_datagram(self.fd.file_ref(), buf, true).await;
        let res = res.and_then(|(n, addr)| {
            let addr = addr.and_then(|a| a.to_std()).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "coring: the kernel reported no IP sender address",
                )
            })?;
            Ok((n, addr))
        });
        (res, buf)
    }

    /// Waits until a datagram can be received (`IORING_OP_POLL_ADD` with `POLLIN`). An error
    /// condition on the socket also counts as ready: the next receive reports it.
    pub async fn readable(&self) -> io::Result<()> {
        ready(&self.fd, READABLE).await
    }

    /// Waits until a datagram can be sent (`POLLOUT`).
    pub async fn writable(&self) -> io::Result<()> {
        ready(&self.fd, WRITABLE).await
    }

    /// This socket's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        ip_addr(SockRef::from(&self.fd).local_addr()?)
    }

    /// The connected peer's address; `NotConnected` if [`connect`](Self::connect) was not
    /// called.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        ip_addr(SockRef::from(&self.fd).peer_addr()?)
    }

    /// Takes over a `std` socket (blocking or not: the ring handles both).
    pub fn from_std(socket: std::net::UdpSocket) -> UdpSocket {
        UdpSocket {
            fd: Fd::from_owned(socket.into()),
        }
    }

    /// Sets `SO_BROADCAST`: whether datagrams may go to a broadcast address.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        SockRef::from(&self.fd).set_broadcast(on)
    }

    /// Whether `SO_BROADCAST` is set.
    pub fn broadcast(&self) -> io::Result<bool> {
        SockRef::from(&self.fd).broadcast()
    }

    /// Sets the IPv4 time-to-live (`IP_TTL`) of outgoing datagrams.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        SockRef::from(&self.fd).set_ttl(ttl)
    }

    /// The IPv4 time-to-live (`IP_TTL`).
    pub fn ttl(&self) -> io::Result<u32> {
        SockRef::from(&self.fd).ttl()
    }

    /// Sets `SO_SNDBUF`. Linux doubles the value (for bookkeeping) and clamps it to
    /// `net.core.wmem_max`; [`send_buffer_size`](Self::send_buffer_size) reports the result.
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        SockRef::from(&self.fd).set_send_buffer_size(size)
    }

    /// `SO_SNDBUF`, as the kernel reports it.
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        SockRef::from(&self.fd).send_buffer_size()
    }

    /// Sets `SO_RCVBUF` (doubled and clamped to `net.core.rmem_max` by Linux).
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        SockRef::from(&self.fd).set_recv_buffer_size(size)
    }

    /// `SO_RCVBUF`, as the kernel reports it.
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        SockRef::from(&self.fd).recv_buffer_size()
    }

    /// Closes the socket and reports errors.
    pub async fn close(self) -> io::Result<()> {
        self.fd.close().await
    }
}

fn ip_addr(addr: socket2::SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "coring: not an IP socket address",
        )
    })
}

/// Receives one datagram on `fd` (with the sender's address if `with_addr`), turning a
/// truncated datagram into an `InvalidData` error. Shared by UDP and Unix datagram sockets.
pub(crate) async fn recv_datagram<B: IoBufMut>(
    fd: FileRef,
    buf: B,
    with_addr: bool,
) -> BufResult<(usize, Option<SockAddr>), B> {
    let mut op = RecvMsg::new(fd, buf).flags(libc::MSG_TRUNC);
    if with_addr {
        op = op.with_addr();
    }
    let (res, buf) = Op::submit(op).await;
    let res = res.and_then(|received| {
        if received.is_truncated() {
            let msg = format!(
                "coring: a datagram of {} bytes was truncated to the {}-byte buffer",
                received.len,
                buf.bytes_total()
            );
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        }
        Ok((received.len, received.addr))
    });
    (res, buf)
}

crate::socket_fd_traits!(UdpSocket);
crate::registered_fd_methods!(UdpSocket);
