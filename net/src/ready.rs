//! Readiness through the ring: `readable()` / `writable()` on sockets are one-shot
//! `IORING_OP_POLL_ADD`s, so code that drives a descriptor itself (a non-blocking library, a
//! `try_*` loop) can wait without an epoll of its own.
//!
//! `POLLERR` and `POLLHUP` are always reported by the kernel, whatever was asked: such a
//! socket counts as ready, and the next operation on it reports the error or end of stream.

use std::io;
use std::os::fd::AsRawFd;

use coring_runtime::op::poll::PollAdd;
use coring_runtime::op::Op;

/// Data (or a connection, or end of stream) can be read.
pub(crate) const READABLE: libc::c_short = libc::POLLIN;
/// Data can be written.
pub(crate) const WRITABLE: libc::c_short = libc::POLLOUT;

/// Waits until `fd` has any of `events`.
pub(crate) async fn ready(fd: &impl AsRawFd, events: libc::c_short) -> io::Result<()> {
    Op::submit(PollAdd::new(fd.as_raw_fd(), events))
        .await
        .map(drop)
}
