//! Explaining `EINVAL` from direct (`O_DIRECT`) I/O.
//!
//! A direct read or write whose buffer address, length or file offset is not a multiple of
//! the file's logical block size fails with a bare `EINVAL` ("Invalid argument"), which says
//! nothing about alignment. When a read or write on a [`File`](crate::File) fails with
//! `EINVAL` and the descriptor has `O_DIRECT` (asked with `fcntl(F_GETFL)`, which does no
//! I/O), the error is replaced by one that states the rule, the values the op used, and, when
//! the kernel reports them (`STATX_DIOALIGN`, Linux 6.1+), the file's own alignments and which
//! value broke them. The error keeps the kind (`InvalidInput`); the original OS error is its
//! [`source`](std::error::Error::source).

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;

use coring_runtime::op::path::StatxAt;

use crate::sys::{dup, ring_or_blocking, statx_fd};

/// Which way the data went, for the message.
#[derive(Clone, Copy)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// A buffer the failed op used: its address and the length the kernel was asked for.
pub(crate) struct Span {
    pub addr: usize,
    pub len: usize,
}

/// An error message with the OS error it explains as its source.
#[derive(Debug)]
struct Explained {
    message: String,
    cause: io::Error,
}

impl fmt::Display for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Explained {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.cause)
    }
}

/// Whether `fd` was opened with `O_DIRECT`.
pub(crate) fn is_direct(fd: RawFd) -> bool {
    // SAFETY: F_GETFL takes no pointer and only reads the descriptor's status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags != -1 && flags & libc::O_DIRECT != 0
}

/// `err` itself, or, when it is an `EINVAL` from direct I/O on `fd`, an error that explains
/// the alignment rule.
///
/// Boxed: every read and write future holds the error path's state, and unboxed it (a
/// `statx` op, perhaps on the blocking pool) would triple their size, copied on every call.
pub(crate) fn explain<'a>(
    err: io::Error,
    fd: BorrowedFd<'a>,
    direction: Direction,
    spans: &'a [Span],
    offset: u64,
) -> Pin<Box<impl Future<Output = io::Error> + 'a>> {
    Box::pin(explain_einval(err, fd, direction, spans, offset))
}

async fn explain_einval(
    err: io::Error,
    fd: BorrowedFd<'_>,
    direction: Direction,
    spans: &[Span],
    offset: u64,
) -> io::Error {
    if err.raw_os_error() != Some(libc::EINVAL) || !is_direct(fd.as_raw_fd()) {
        return err;
    }
    // The file's own rules, where the kernel tells them (a ring op, or `statx` on the pool
    // where the driver has no such op).
    let mask = libc::STATX_DIOALIGN;
    let stx = ring_or_blocking(
        StatxAt::is_supported(),
        || Ok(StatxAt::fd(fd.as_raw_fd(), mask)),
        || {
            let fd = dup(&fd)?;
            Ok(move || statx_fd(&fd, mask))
        },
    )
    .await;
    let align = match stx {
        Ok(stx) if stx.stx_mask & libc::STATX_DIOALIGN != 0 && stx.stx_dio_offset_align != 0 => {
            Some((
                u64::from(stx.stx_dio_mem_align),
                u64::from(stx.stx_dio_offset_align),
            ))
        }
        _ => None,
    };
    let message = message(direction, spans, offset, align);
    io::Error::new(
        err.kind(),
        Explained {
            message,
            cause: err,
        },
    )
}

fn message(direction: Direction, spans: &[Span], offset: u64, align: Option<(u64, u64)>) -> String {
    let what = match direction {
        Direction::Read => "read",
        Direction::Write => "write",
    };
    let mut msg = format!(
        "coring: O_DIRECT {what} failed with EINVAL: with O_DIRECT the buffer address, the \
         length and the file offset must each be a multiple of the logical block size of the \
         file's device (usually 512 or 4096 bytes; coring::fs::AlignedBuf gives aligned \
         memory). This {what} used "
    );
    for (i, span) in spans.iter().enumerate() {
        if i > 0 {
            msg.push_str(", ");
        }
        msg.push_str(&format!(
            "buffer address {:#x} length {}",
            span.addr, span.len
        ));
    }
    msg.push_str(&format!(" at file offset {offset}"));
    let Some((mem_align, off_align)) = align else {
        msg.push('.');
        return msg;
    };
    msg.push_str(&format!(
        "; this file needs memory aligned to {mem_align} and offsets and lengths to \
         {off_align} bytes"
    ));
    let mut wrong = Vec::new();
    if spans
        .iter()
        .any(|s| mem_align > 1 && s.addr as u64 % mem_align != 0)
    {
        wrong.push("the buffer address");
    }
    if spans.iter().any(|s| s.len as u64 % off_align != 0) {
        wrong.push("the length");
    }
    if offset % off_align != 0 {
        wrong.push("the file offset");
    }
    if wrong.is_empty() {
        msg.push_str(" (all look aligned, so the EINVAL has another cause).");
    } else {
        msg.push_str(&format!(" (not aligned: {}).", wrong.join(", ")));
    }
    msg
}
