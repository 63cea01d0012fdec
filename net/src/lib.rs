//! Sockets on io_uring: TCP ([`TcpListener`], [`TcpStream`]), UDP ([`UdpSocket`]) and Unix
//! domain sockets ([`UnixListener`], [`UnixStream`], [`UnixDatagram`]); streams split into
//! [`OwnedReadHalf`] and [`OwnedWriteHalf`].
//!
//! Sockets are created with socket2 (`SOCK_CLOEXEC`); accept, connect, recv and send are ring
//! ops. I/O methods take `&self` and owned buffers, so one task may read and write the same
//! stream at once.

/// `AsRawFd`, `AsFd`, `IntoRawFd` and `From<_> for OwnedFd` for a socket type with an `fd: Fd`.
macro_rules! socket_fd_traits {
    ($ty:ty) => {
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.fd)
            }
        }

        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.fd)
            }
        }

        impl std::os::fd::IntoRawFd for $ty {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.fd)
            }
        }

        impl From<$ty> for std::os::fd::OwnedFd {
            fn from(value: $ty) -> std::os::fd::OwnedFd {
                let raw = std::os::fd::IntoRawFd::into_raw_fd(value);
                // SAFETY: `into_raw_fd` hands over sole ownership of an open descriptor.
                unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) }
            }
        }
    };
}
pub(crate) use socket_fd_traits;

mod addr;
mod ready;
mod split;
mod tcp;
mod udp;
pub mod unix;

pub use addr::ToSocketAddrs;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError, SplitStream};
pub use tcp::{Incoming, RecvStream, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};
