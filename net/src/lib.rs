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

/// `register`, `is_registered` and `file_ref` for a socket type with an `fd: Fd`.
macro_rules! registered_fd_methods {
    ($ty:ty) => {
        impl $ty {
            /// Registers the socket in this worker's ring's file table, so the ring's ops on
            /// it name a slot instead of the descriptor: the kernel skips the per-op file
            /// lookup and reference count. Worth it for long-lived, busy sockets.
            ///
            /// The socket stays an ordinary descriptor too (socket options, `AsRawFd`). It
            /// leaves the table when closed. Registering again does nothing; on the epoll
            /// backend this does nothing at all. Moved to another worker, the socket is used
            /// by its descriptor there.
            ///
            /// # Errors
            /// The table is full (`Builder::fixed_files`, default 4096 slots) or turned off,
            /// or the socket is registered with another worker's ring.
            pub async fn register(&self) -> std::io::Result<()> {
                self.fd.register().await
            }

            /// Whether the socket is registered with this worker's ring.
            pub fn is_registered(&self) -> bool {
                self.fd.is_registered()
            }

            /// What an op on this socket should name (for ops built by hand, see
            /// `coring::op`): its slot when registered with this worker's ring, else its
            /// descriptor.
            pub fn file_ref(&self) -> coring_runtime::op::FileRef {
                self.fd.file_ref()
            }
        }
    };
}
pub(crate) use registered_fd_methods;

/// `AsyncReadRent` and `AsyncWriteRent` for a stream type and for a shared reference to it,
/// by its inherent `read`, `write` and `writev`; `shutdown` shuts down the writing side.
macro_rules! stream_rent_traits {
    ($ty:ty) => {
        crate::stream_rent_traits!(@impl $ty, $ty);
        crate::stream_rent_traits!(@impl $ty, &$ty);
    };
    // `<$ty>::read` and the others resolve to the inherent `&self` methods: in a path, an
    // inherent associated function takes precedence over a trait method, so these never
    // call back into the trait.
    (@impl $ty:ty, $self_ty:ty) => {
        impl coring_runtime::io::AsyncReadRent for $self_ty {
            fn read<B: coring_runtime::buf::IoBufMut>(
                &mut self,
                buf: B,
            ) -> impl std::future::Future<Output = coring_runtime::io::BufResult<usize, B>> {
                <$ty>::read(self, buf)
            }
        }

        impl coring_runtime::io::AsyncWriteRent for $self_ty {
            fn write<B: coring_runtime::buf::IoBuf>(
                &mut self,
                buf: B,
            ) -> impl std::future::Future<Output = coring_runtime::io::BufResult<usize, B>> {
                <$ty>::write(self, buf)
            }

            fn writev<B: coring_runtime::buf::IoBuf>(
                &mut self,
                bufs: Vec<B>,
            ) -> impl std::future::Future<Output = coring_runtime::io::BufResult<usize, Vec<B>>>
            {
                <$ty>::writev(self, bufs)
            }

            async fn shutdown(&mut self) -> std::io::Result<()> {
                <$ty>::shutdown(self, std::net::Shutdown::Write)
            }
        }
    };
}
pub(crate) use stream_rent_traits;

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
