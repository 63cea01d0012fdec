//! TCP on io_uring: [`TcpListener`] and [`TcpStream`].
//!
//! Sockets are created with socket2 (`SOCK_CLOEXEC`); accept, connect, recv and send are ring
//! ops. I/O methods take `&self` and owned buffers, so one task may read and write the same
//! stream at once.

mod addr;
mod tcp;

pub use addr::ToSocketAddrs;
pub use tcp::{Incoming, RecvStream, TcpListener, TcpStream};
