//! Unix domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`], and their
//! [`SocketAddr`].
//!
//! # Addresses
//! Every method that takes an address takes a path (`impl AsRef<Path>`):
//! - a filesystem path names a socket file (`bind` creates it and fails with `AddrInUse` if it
//!   exists; nothing removes it on close, as with `std`);
//! - a path whose **first byte is NUL** names a socket in Linux's *abstract namespace*
//!   (`unix(7)`): `"\0my-service"` is the abstract name `my-service`. Such names are not files,
//!   vanish with the last socket bound to them, and are scoped to the network namespace.
//!
//! Paths must be shorter than `sun_path` (108 bytes, or 107 name bytes after the NUL), must not
//! be empty, and a filesystem path must not contain a NUL byte; otherwise the call fails with
//! `InvalidInput`.
//!
//! Addresses the kernel reports (`local_addr`, `peer_addr`, `recv_from`) come back as this
//! module's [`SocketAddr`]: a pathname, an abstract name, or unnamed (an unbound socket, or one
//! end of a `pair()`). `std::os::unix::net::SocketAddr` is not used because it cannot be built
//! for an unnamed sender, which is what most datagram clients are.
//!
//! # Descriptor passing
//! [`UnixStream::send_with_fds`] and [`UnixStream::recv_with_fds`] pass open descriptors with
//! `SCM_RIGHTS` (`IORING_OP_SENDMSG` / `IORING_OP_RECVMSG` with control data). Received
//! descriptors are close-on-exec, and are closed, never leaked, when the receiving future is
//! dropped after the kernel delivered them or when more arrived than there was room for.

mod datagram;
mod listener;
mod stream;

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use datagram::UnixDatagram;
pub use listener::UnixListener;
pub use stream::UnixStream;

/// The address of a Unix domain socket, as the kernel reports it.
///
/// ```
/// use coring::net::unix::SocketAddr;
///
/// let a = SocketAddr::from_pathname("/run/app.sock").unwrap();
/// assert_eq!(a.as_pathname(), Some(std::path::Path::new("/run/app.sock")));
/// let b = SocketAddr::from_abstract_name(b"app").unwrap();
/// assert_eq!(b.as_abstract_name(), Some(&b"app"[..]));
/// assert!(!b.is_unnamed());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SocketAddr {
    kind: Kind,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Kind {
    Unnamed,
    Pathname(PathBuf),
    Abstract(Vec<u8>),
}

impl SocketAddr {
    pub(crate) const UNNAMED: SocketAddr = SocketAddr {
        kind: Kind::Unnamed,
    };

    /// A filesystem path address. Fails with `InvalidInput` if the path is empty, too long or
    /// contains a NUL byte.
    pub fn from_pathname(path: impl AsRef<Path>) -> io::Result<SocketAddr> {
        let path = path.as_ref();
        if path.as_os_str().as_bytes().first() == Some(&0) {
            return Err(invalid(format!(
                "coring: {path:?} starts with NUL, which names the abstract namespace"
            )));
        }
        to_socket2(path)?;
        Ok(SocketAddr {
            kind: Kind::Pathname(path.to_path_buf()),
        })
    }

    /// An abstract-namespace address (Linux): `name` without the leading NUL. Fails with
    /// `InvalidInput` if the name is longer than 107 bytes.
    pub fn from_abstract_name(name: impl AsRef<[u8]>) -> io::Result<SocketAddr> {
        let name = name.as_ref();
        to_socket2(&abstract_path(name))?;
        Ok(SocketAddr {
            kind: Kind::Abstract(name.to_vec()),
        })
    }

    /// Whether the socket has no address (unbound, or made by `pair()`).
    pub fn is_unnamed(&self) -> bool {
        matches!(self.kind, Kind::Unnamed)
    }

    /// The filesystem path, if this is a pathname address.
    pub fn as_pathname(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Pathname(path) => Some(path),
            _ => None,
        }
    }

    /// The abstract name (without the leading NUL), if this is an abstract address.
    pub fn as_abstract_name(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Abstract(name) => Some(name),
            _ => None,
        }
    }

    /// Reads what the kernel reported. Anything that is not a named `AF_UNIX` address (an
    /// empty name, as `recvmsg` gives for an unbound sender) is unnamed.
    pub(crate) fn from_socket2(addr: &socket2::SockAddr) -> SocketAddr {
        let kind = if let Some(path) = addr.as_pathname() {
            Kind::Pathname(path.to_path_buf())
        } else if let Some(name) = addr.as_abstract_namespace() {
            Kind::Abstract(name.to_vec())
        } else {
            Kind::Unnamed
        };
        SocketAddr { kind }
    }

    /// The kernel's form, to send to; an unnamed address cannot be a destination.
    pub(crate) fn to_socket2(&self) -> io::Result<socket2::SockAddr> {
        match &self.kind {
            Kind::Pathname(path) => to_socket2(path),
            Kind::Abstract(name) => to_socket2(&abstract_path(name)),
            Kind::Unnamed => Err(invalid(
                "coring: an unnamed Unix socket address cannot be a destination".to_string(),
            )),
        }
    }
}

impl fmt::Debug for SocketAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Unnamed => f.write_str("(unnamed)"),
            Kind::Pathname(path) => write!(f, "{path:?} (pathname)"),
            Kind::Abstract(name) => write!(f, "\"{}\" (abstract)", name.escape_ascii()),
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// `name` in the leading-NUL path form.
fn abstract_path(name: &[u8]) -> PathBuf {
    let mut bytes = Vec::with_capacity(name.len() + 1);
    bytes.push(0);
    bytes.extend_from_slice(name);
    PathBuf::from(OsStr::from_bytes(&bytes))
}

/// The kernel address for `path`, following the module's rules (leading NUL: abstract).
pub(crate) fn to_socket2(path: &Path) -> io::Result<socket2::SockAddr> {
    let bytes = path.as_os_str().as_bytes();
    match bytes.split_first() {
        None => return Err(invalid("coring: empty Unix socket path".to_string())),
        // Abstract names may hold any bytes, NULs included.
        Some((0, _)) => {}
        Some(_) if bytes.contains(&0) => {
            return Err(invalid(format!(
                "coring: Unix socket path {path:?} contains a NUL byte"
            )))
        }
        Some(_) => {}
    }
    socket2::SockAddr::unix(path).map_err(|_| {
        invalid(format!(
            "coring: Unix socket path {path:?} is longer than sun_path allows"
        ))
    })
}
