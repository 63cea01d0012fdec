//! [`ToSocketAddrs`]: addresses that may need a name lookup, resolved without blocking the
//! ring.
//!
//! Literal addresses (`"127.0.0.1:80"`, `SocketAddr`, `(IpAddr, u16)`) are parsed in place.
//! Host names (`"localhost:80"`) are resolved by `getaddrinfo` on the blocking pool
//! ([`spawn_blocking`](coring_runtime::task::spawn_blocking)), since io_uring has no op for it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Something that names one or more socket addresses, like `std::net::ToSocketAddrs` but
/// resolved asynchronously. Implemented for the same types; sealed.
pub trait ToSocketAddrs: sealed::Sealed {}

pub(crate) mod sealed {
    use std::net::SocketAddr;

    /// What resolving needs.
    pub enum Lookup {
        /// Already known.
        Done(Vec<SocketAddr>),
        /// A `host:port` string for `getaddrinfo`.
        Host(String),
    }

    pub trait Sealed {
        fn lookup(&self) -> Lookup;
    }
}

use sealed::{Lookup, Sealed};

/// Resolves `addr`, on the blocking pool when it names a host.
pub(crate) async fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs = match addr.lookup() {
        Lookup::Done(addrs) => addrs,
        Lookup::Host(host) => {
            coring_runtime::task::spawn_blocking(move || {
                std::net::ToSocketAddrs::to_socket_addrs(host.as_str()).map(Iterator::collect)
            })
            .await??
        }
    };
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "coring: the address resolved to no socket addresses",
        ));
    }
    Ok(addrs)
}

macro_rules! literal {
    ($($ty:ty),*) => {$(
        impl ToSocketAddrs for $ty {}
        impl Sealed for $ty {
            fn lookup(&self) -> Lookup {
                Lookup::Done(vec![SocketAddr::from(*self)])
            }
        }
    )*};
}

literal!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl ToSocketAddrs for str {}
impl Sealed for str {
    fn lookup(&self) -> Lookup {
        match self.parse::<SocketAddr>() {
            Ok(addr) => Lookup::Done(vec![addr]),
            Err(_) => Lookup::Host(self.to_string()),
        }
    }
}

impl ToSocketAddrs for String {}
impl Sealed for String {
    fn lookup(&self) -> Lookup {
        self.as_str().lookup()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl Sealed for (&str, u16) {
    fn lookup(&self) -> Lookup {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Lookup::Done(vec![SocketAddr::new(ip, self.1)]),
            Err(_) => Lookup::Host(format!("{}:{}", self.0, self.1)),
        }
    }
}

impl ToSocketAddrs for (String, u16) {}
impl Sealed for (String, u16) {
    fn lookup(&self) -> Lookup {
        (self.0.as_str(), self.1).lookup()
    }
}

impl ToSocketAddrs for [SocketAddr] {}
impl Sealed for [SocketAddr] {
    fn lookup(&self) -> Lookup {
        Lookup::Done(self.to_vec())
    }
}

impl ToSocketAddrs for Vec<SocketAddr> {}
impl Sealed for Vec<SocketAddr> {
    fn lookup(&self) -> Lookup {
        Lookup::Done(self.clone())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: Sealed + ?Sized> Sealed for &T {
    fn lookup(&self) -> Lookup {
        (**self).lookup()
    }
}
