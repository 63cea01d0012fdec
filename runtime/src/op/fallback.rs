//! The readiness fallback of ops, for the epoll backend.
//!
//! An op's [`OpCode::fallback`] runs its syscall without blocking (`MSG_DONTWAIT`,
//! `O_NONBLOCK`, or a readiness wait first) and answers [`Fallback::Done`] with the result,
//! or [`Fallback::Wait`] / [`Fallback::Until`] with what to wait for before it is asked again.
//! Files are read and written with `pread`/`pwrite` in place: the page cache answers at
//! memory speed, and a regular file is never "not ready" to epoll.

use std::io;
use std::os::fd::RawFd;
use std::task::{Context, Poll};
use std::time::Instant;

use super::{Completion, OpCode};
use crate::driver::epoll::EpollDriver;
use crate::driver::{Cqe, OpKey};

/// Which readiness an op waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Data (or a connection, or end of stream) to read.
    Readable,
    /// Room to write (or a connect that finished).
    Writable,
}

/// What an op's readiness fallback did.
#[derive(Debug)]
pub enum Fallback {
    /// The syscall ran: its result, and CQE-style flags (`IORING_CQE_F_BUFFER`, say).
    Done(io::Result<u32>, u32),
    /// It would block: try again once `fd` is ready for the interest.
    Wait(RawFd, Interest),
    /// Try again at this instant (timers).
    Until(Instant),
}

impl Fallback {
    /// Maps a syscall's return value: `EAGAIN`/`EINPROGRESS`-like "would block" becomes a
    /// wait on `fd`, anything else is the result.
    pub fn from_syscall(ret: isize, fd: RawFd, interest: Interest) -> Fallback {
        if ret >= 0 {
            return Fallback::Done(Ok(ret as u32), 0);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) => Fallback::Wait(fd, interest),
            Some(libc::EINTR) => Fallback::Wait(fd, interest),
            _ => Fallback::Done(Err(e), 0),
        }
    }

    /// The result of a syscall that never blocks (`close`, `pread` on a file, `statx`).
    pub fn done(ret: isize) -> Fallback {
        if ret >= 0 {
            Fallback::Done(Ok(ret as u32), 0)
        } else {
            Fallback::Done(Err(io::Error::last_os_error()), 0)
        }
    }

    /// For an op the fallback does not implement.
    pub(crate) fn unsupported(name: &str) -> Fallback {
        Fallback::Done(
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("coring: {name} has no readiness fallback; it needs io_uring"),
            )),
            0,
        )
    }
}

pub(super) enum Attempt {
    Done(io::Result<u32>, u32),
    Waiting(OpKey),
}

/// Runs the fallback once; registers a wait if it would block.
pub(super) fn attempt<T: OpCode>(
    epoll: &EpollDriver,
    data: &mut T,
    deadline: Option<Instant>,
) -> io::Result<Attempt> {
    let deadline = deadline.map(|at| (at, -libc::ECANCELED));
    let stream_read = data.stream_read();
    if let Some((fd, _)) = stream_read {
        if epoll.is_drained(fd) {
            // The last read came back short: nothing more until the next edge.
            return epoll
                .wait(Some((fd, Interest::Readable)), deadline)
                .map(Attempt::Waiting);
        }
    }
    match data.fallback() {
        Fallback::Done(Ok(n), flags) => {
            if let Some((fd, asked)) = stream_read {
                // Some bytes, fewer than asked: the socket's receive queue is empty now. No
                // bytes is end of stream, which stays readable and is never "drained".
                if n > 0 && (n as usize) < asked {
                    epoll.mark_drained(fd);
                }
            }
            Ok(Attempt::Done(Ok(n), flags))
        }
        Fallback::Done(result, flags) => Ok(Attempt::Done(result, flags)),
        Fallback::Wait(fd, interest) => epoll
            .wait(Some((fd, interest)), deadline)
            .map(Attempt::Waiting),
        Fallback::Until(at) => {
            let until = match deadline {
                Some((limit, on_limit)) if limit < at => (limit, on_limit),
                _ => (at, 0),
            };
            epoll.wait(None, Some(until)).map(Attempt::Waiting)
        }
    }
}

/// An op's wait ended with `cqe`: a negative result ends the op (its deadline passed);
/// otherwise it tries again, and may wait again under a new key (same deadline).
pub(super) fn resume<T: OpCode>(
    epoll: &EpollDriver,
    key: &mut OpKey,
    data: &mut T,
    cqe: Cqe,
    deadline: Option<Instant>,
    cx: &mut Context<'_>,
) -> Poll<Completion> {
    if cqe.result < 0 {
        return Poll::Ready(Completion::from(cqe));
    }
    loop {
        match attempt(epoll, data, deadline) {
            Ok(Attempt::Done(result, flags)) => {
                return Poll::Ready(Completion {
                    result,
                    flags,
                    from_kernel: true,
                })
            }
            Ok(Attempt::Waiting(next)) => {
                *key = next;
                match epoll.poll_op(next, cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(cqe) if cqe.result < 0 => {
                        return Poll::Ready(Completion::from(cqe))
                    }
                    Poll::Ready(_) => continue,
                }
            }
            Err(e) => {
                return Poll::Ready(Completion {
                    result: Err(e),
                    flags: 0,
                    from_kernel: false,
                })
            }
        }
    }
}
