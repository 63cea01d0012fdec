//! Unix stream listeners.

use std::io;
use std::os::fd::FromRawFd;
use std::path::Path;

use coring_runtime::fd::Fd;
use coring_runtime::op::net::Accept;
use coring_runtime::op::Op;
use socket2::{Domain, SockRef, Socket, Type};

use super::{to_socket2, SocketAddr, UnixStream};

/// Backlog of listening sockets.
const LISTEN_BACKLOG: i32 = 1024;

/// A Unix stream socket listening for connections, on a filesystem path or an abstract name
/// (a path starting with NUL; see the [module docs](crate::unix#addresses)).
///
/// ```
/// use coring::net::{UnixListener, UnixStream};
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let name = format!("\0coring-doc-listener-{}", std::process::id());
/// let listener = UnixListener::bind(&name)?;
/// let client = UnixStream::connect(&name).await?;
/// let (server, _peer) = listener.accept().await?;
/// let (res, _) = client.write_all(b"hi").await;
/// res?;
/// let (res, buf) = server.read_exact(vec![0u8; 2]).await;
/// res?;
/// assert_eq!(buf, b"hi");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct UnixListener {
    fd: Fd,
}

impl UnixListener {
    /// Creates a socket bound to `path` and listens. A filesystem path must not exist yet
    /// (`AddrInUse` otherwise); it is not removed when the listener closes.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let addr = to_socket2(path.as_ref())?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.bind(&addr)?;
        socket.listen(LISTEN_BACKLOG)?;
        Ok(UnixListener {
            fd: Fd::from_owned(socket.into()),
        })
    }

    /// Accepts a connection (`IORING_OP_ACCEPT`): the stream and the peer's address (usually
    /// unnamed: clients seldom bind).
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (raw, _) = Op::submit(Accept::new(self.fd.file_ref())).await?;
        // SAFETY: the kernel just created `raw` for us; nothing else owns it.
        let stream = UnixStream::from_fd(unsafe { Fd::from_raw_fd(raw) });
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from_socket2(
            &SockRef::from(&self.fd).local_addr()?,
        ))
    }

    /// Takes over a `std` listener.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> UnixListener {
        UnixListener {
            fd: Fd::from_owned(listener.into()),
        }
    }

    /// Closes the listener and reports errors.
    pub async fn close(self) -> io::Result<()> {
        self.fd.close().await
    }
}

crate::socket_fd_traits!(UnixListener);
crate::registered_fd_methods!(UnixListener);
