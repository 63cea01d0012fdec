//! Moving data between descriptors inside the kernel (`IORING_OP_SPLICE`): one side must be
//! a pipe.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{Completion, Fallback, Interest, OpCode};

/// `IORING_OP_SPLICE`: moves up to `len` bytes from `fd_in` to `fd_out`. An offset of `None`
/// means the descriptor's current position (required for pipes and sockets).
pub struct Splice {
    fd_in: RawFd,
    off_in: Option<u64>,
    fd_out: RawFd,
    off_out: Option<u64>,
    len: u32,
}

impl Splice {
    /// Splices up to `len` bytes; one of the two descriptors must be a pipe.
    pub fn new(
        fd_in: RawFd,
        off_in: Option<u64>,
        fd_out: RawFd,
        off_out: Option<u64>,
        len: u32,
    ) -> Self {
        Splice {
            fd_in,
            off_in,
            fd_out,
            off_out,
            len,
        }
    }
}

fn offset(off: Option<u64>) -> i64 {
    off.map_or(-1, |o| o as i64)
}

// SAFETY: the entry carries no pointers.
unsafe impl OpCode for Splice {
    type Output = io::Result<usize>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Splice::new(
            types::Fd(self.fd_in),
            offset(self.off_in),
            types::Fd(self.fd_out),
            offset(self.off_out),
            self.len,
        )
        .build()
    }

    fn fallback(&mut self) -> Fallback {
        if !super::rw::ready_now(self.fd_in, libc::POLLIN) {
            return Fallback::Wait(self.fd_in, Interest::Readable);
        }
        if !super::rw::ready_now(self.fd_out, libc::POLLOUT) {
            return Fallback::Wait(self.fd_out, Interest::Writable);
        }
        let mut off_in = self.off_in.map(|o| o as libc::loff_t);
        let mut off_out = self.off_out.map(|o| o as libc::loff_t);
        let ptr = |o: &mut Option<libc::loff_t>| {
            o.as_mut()
                .map_or(std::ptr::null_mut(), |o| o as *mut libc::loff_t)
        };
        let (p_in, p_out) = (ptr(&mut off_in), ptr(&mut off_out));
        // SAFETY: the offset pointers are null or point to live locals.
        let ret = unsafe {
            libc::splice(
                self.fd_in,
                p_in,
                self.fd_out,
                p_out,
                self.len as usize,
                libc::SPLICE_F_NONBLOCK,
            )
        };
        Fallback::from_syscall(ret, self.fd_in, Interest::Readable)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(|n| n as usize)
    }
}
