//! Read and write on any descriptor, at an offset or at the current position
//! (`IORING_OP_READ`, `IORING_OP_WRITE`, `IORING_OP_READV`, `IORING_OP_WRITEV`).

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue};

use super::{clamp_len, BufResult, Completion, Fallback, FileRef, Interest, OpCode};
use crate::buf::{IoBuf, IoBufMut};

/// Offset meaning "the file's current position" (pipes, sockets, terminals).
pub const CURRENT_POSITION: u64 = u64::MAX;

/// `IORING_OP_READ` into an owned buffer.
pub struct Read<B> {
    fd: FileRef,
    buf: B,
    offset: u64,
}

impl<B: IoBufMut> Read<B> {
    /// Reads into `buf` from `fd` at `offset` ([`CURRENT_POSITION`] for streams).
    pub fn new(fd: impl Into<FileRef>, buf: B, offset: u64) -> Self {
        Read {
            fd: fd.into(),
            buf,
            offset,
        }
    }
}

// SAFETY: the entry points into `buf`'s stable memory, owned by the op.
unsafe impl<B: IoBufMut> OpCode for Read<B> {
    type Output = BufResult<usize, B>;

    fn short_circuit(&self) -> Option<u32> {
        // Nothing to read into: done, without waiting for the descriptor to be readable.
        (self.buf.bytes_total() == 0).then_some(0)
    }

    fn sqe(&mut self) -> squeue::Entry {
        let len = clamp_len(self.buf.bytes_total());
        let ptr = self.buf.stable_mut_ptr();
        match self.buf.fixed_index() {
            Some(index) => on_file!(self.fd, |fd| opcode::ReadFixed::new(fd, ptr, len, index)
                .offset(self.offset)
                .build()),
            None => on_file!(self.fd, |fd| opcode::Read::new(fd, ptr, len)
                .offset(self.offset)
                .build()),
        }
    }

    fn try_inline(&mut self) -> Option<u32> {
        let iovec = libc::iovec {
            iov_base: self.buf.stable_mut_ptr().cast(),
            iov_len: clamp_len(self.buf.bytes_total()) as usize,
        };
        // SAFETY: the iovec describes the buffer's stable memory, writable for its length,
        // and the call returns before anything else can touch the buffer.
        unsafe { read_nowait(self.fd.raw(), &[iovec], self.offset) }
    }

    fn fallback(&mut self) -> Fallback {
        let (fd, len) = (self.fd.raw(), self.buf.bytes_total());
        let ptr = self.buf.stable_mut_ptr().cast();
        positional_or_stream(
            fd,
            self.offset,
            Interest::Readable,
            // SAFETY: `ptr` is the buffer's stable memory, writable for `len` bytes.
            |offset| unsafe { libc::pread(fd, ptr, len, offset) },
            // SAFETY: as above.
            || unsafe { libc::read(fd, ptr, len) },
        )
    }

    fn complete(mut self, completion: Completion) -> Self::Output {
        let result = completion.result.map(|n| {
            // SAFETY: the kernel initialized the first `n` bytes.
            unsafe { self.buf.set_init(n as usize) };
            n as usize
        });
        (result, self.buf)
    }
}

/// `IORING_OP_WRITE` from an owned buffer (`IORING_OP_WRITE_FIXED` from a registered one).
pub struct Write<B> {
    fd: FileRef,
    buf: B,
    offset: u64,
    /// Name a registered buffer by its index (`WRITE_FIXED`), not by its address.
    by_index: bool,
}

impl<B: IoBuf> Write<B> {
    /// Writes `buf`'s initialized bytes to `fd` at `offset` ([`CURRENT_POSITION`] for streams).
    pub fn new(fd: impl Into<FileRef>, buf: B, offset: u64) -> Self {
        Write {
            fd: fd.into(),
            buf,
            offset,
            by_index: true,
        }
    }

    /// Names the buffer by its address (`IORING_OP_WRITE`) even when it is registered.
    ///
    /// Registration saves the kernel pinning the buffer's pages for each op, which only a
    /// write that hands the pages to a device does (`O_DIRECT`). A write the kernel copies
    /// into the page cache gains nothing from it, and its copy is slower: from a registered
    /// buffer the kernel copies a page at a time through its own mapping (`memcpy`), from an
    /// address in one user copy. Per 1 MiB buffered write, the first took about a quarter
    /// more time (`docs/bench/fs.md`, "Buffered writes from registered buffers").
    pub fn by_address(mut self) -> Self {
        self.by_index = false;
        self
    }
}

// SAFETY: the entry points into `buf`'s stable memory, owned by the op.
unsafe impl<B: IoBuf> OpCode for Write<B> {
    type Output = BufResult<usize, B>;

    fn sqe(&mut self) -> squeue::Entry {
        let len = clamp_len(self.buf.bytes_init());
        let ptr = self.buf.stable_ptr();
        match self.buf.fixed_index().filter(|_| self.by_index) {
            Some(index) => on_file!(self.fd, |fd| opcode::WriteFixed::new(fd, ptr, len, index)
                .offset(self.offset)
                .build()),
            None => on_file!(self.fd, |fd| opcode::Write::new(fd, ptr, len)
                .offset(self.offset)
                .build()),
        }
    }

    fn fallback(&mut self) -> Fallback {
        let (fd, len) = (self.fd.raw(), self.buf.bytes_init());
        let ptr = self.buf.stable_ptr().cast();
        positional_or_stream(
            fd,
            self.offset,
            Interest::Writable,
            // SAFETY: `ptr` is the buffer's stable memory, with `len` initialized bytes.
            |offset| unsafe { libc::pwrite(fd, ptr, len, offset) },
            // SAFETY: as above.
            || unsafe { libc::write(fd, ptr, len) },
        )
    }

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.result.map(|n| n as usize), self.buf)
    }
}

/// `IORING_OP_WRITEV` from several owned buffers.
pub struct Writev<B> {
    fd: FileRef,
    bufs: Vec<B>,
    iovecs: Vec<libc::iovec>,
    offset: u64,
}

impl<B: IoBuf> Writev<B> {
    /// Writes the initialized bytes of every buffer, in order, at `offset`.
    pub fn new(fd: impl Into<FileRef>, bufs: Vec<B>, offset: u64) -> Self {
        let fd = fd.into();
        let iovecs = iovecs(&bufs);
        Writev {
            fd,
            bufs,
            iovecs,
            offset,
        }
    }
}

/// One iovec per buffer, over its initialized bytes.
pub(crate) fn iovecs<B: IoBuf>(bufs: &[B]) -> Vec<libc::iovec> {
    bufs.iter()
        .map(|b| libc::iovec {
            iov_base: b.stable_ptr() as *mut libc::c_void,
            iov_len: b.bytes_init(),
        })
        .collect()
}

// SAFETY: the iovec array and every buffer it points into are heap memory owned by the op.
unsafe impl<B: IoBuf> OpCode for Writev<B> {
    type Output = BufResult<usize, Vec<B>>;

    fn sqe(&mut self) -> squeue::Entry {
        let count = clamp_len(self.iovecs.len());
        on_file!(self.fd, |fd| opcode::Writev::new(
            fd,
            self.iovecs.as_ptr(),
            count
        )
        .offset(self.offset)
        .build())
    }

    fn fallback(&mut self) -> Fallback {
        let (fd, iov, count) = (
            self.fd.raw(),
            self.iovecs.as_ptr(),
            self.iovecs.len() as libc::c_int,
        );
        positional_or_stream(
            fd,
            self.offset,
            Interest::Writable,
            // SAFETY: the iovecs describe the op's buffers, valid while the op lives.
            |offset| unsafe { libc::pwritev(fd, iov, count, offset) },
            // SAFETY: as above.
            || unsafe { libc::writev(fd, iov, count) },
        )
    }

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.result.map(|n| n as usize), self.bufs)
    }
}

/// `IORING_OP_READV` into several owned buffers.
pub struct Readv<B> {
    fd: FileRef,
    bufs: Vec<B>,
    iovecs: Vec<libc::iovec>,
    offset: u64,
}

impl<B: IoBufMut> Readv<B> {
    /// Fills the buffers in order from `offset`.
    pub fn new(fd: impl Into<FileRef>, mut bufs: Vec<B>, offset: u64) -> Self {
        let fd = fd.into();
        let iovecs = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.stable_mut_ptr().cast(),
                iov_len: b.bytes_total(),
            })
            .collect();
        Readv {
            fd,
            bufs,
            iovecs,
            offset,
        }
    }
}

// SAFETY: the iovec array and every buffer it points into are heap memory owned by the op.
unsafe impl<B: IoBufMut> OpCode for Readv<B> {
    type Output = BufResult<usize, Vec<B>>;

    fn sqe(&mut self) -> squeue::Entry {
        let count = clamp_len(self.iovecs.len());
        on_file!(self.fd, |fd| opcode::Readv::new(
            fd,
            self.iovecs.as_ptr(),
            count
        )
        .offset(self.offset)
        .build())
    }

    fn try_inline(&mut self) -> Option<u32> {
        // SAFETY: the iovecs describe the op's buffers, writable while the op lives, and the
        // call returns before anything else can touch them.
        unsafe { read_nowait(self.fd.raw(), &self.iovecs, self.offset) }
    }

    fn fallback(&mut self) -> Fallback {
        let (fd, iov, count) = (
            self.fd.raw(),
            self.iovecs.as_ptr(),
            self.iovecs.len() as libc::c_int,
        );
        positional_or_stream(
            fd,
            self.offset,
            Interest::Readable,
            // SAFETY: the iovecs describe the op's buffers, writable while the op lives.
            |offset| unsafe { libc::preadv(fd, iov, count, offset) },
            // SAFETY: as above.
            || unsafe { libc::readv(fd, iov, count) },
        )
    }

    fn complete(mut self, completion: Completion) -> Self::Output {
        let result = completion.result.map(|n| {
            let mut left = n as usize;
            for buf in &mut self.bufs {
                let filled = left.min(buf.bytes_total());
                // SAFETY: the kernel filled the buffers in order; this one got `filled` bytes.
                unsafe { buf.set_init(filled) };
                left -= filled;
            }
            n as usize
        });
        (result, self.bufs)
    }
}

/// `preadv2` with `RWF_NOWAIT` at `offset` ([`CURRENT_POSITION`]: the file position): what
/// the page cache (or a stream's queue) holds, without waiting for a device. `None` when it
/// would wait, or fails for any reason (a descriptor without `FMODE_NOWAIT` such as procfs
/// files answers `EOPNOTSUPP`, a pipe at an offset `ESPIPE`): the ring then does the read,
/// and reports the errors.
///
/// At an offset the answer is the ring's: io_uring finishes a short read of a regular file,
/// so a count short of the request means the end of the file. When the page cache holds only
/// the start of the range, the copy stops there and the rest is asked for again: the end of
/// the file answers 0, cached pages more bytes, and pages that would need the device
/// `EAGAIN`, which sends the whole read to the ring (the cached part is copied twice; a
/// positional read consumes nothing). At [`CURRENT_POSITION`] (a stream) a short count is
/// the normal answer, and what was read is gone: it is returned as it is.
///
/// # Safety
/// Every iovec must describe memory writable for its length.
unsafe fn read_nowait(fd: RawFd, iovecs: &[libc::iovec], offset: u64) -> Option<u32> {
    if offset == CURRENT_POSITION {
        let count = libc::c_int::try_from(iovecs.len()).ok()?;
        // SAFETY: the caller vouches for the iovecs; `count` is their number.
        let n = unsafe { libc::preadv2(fd, iovecs.as_ptr(), count, -1, libc::RWF_NOWAIT) };
        return u32::try_from(n).ok();
    }
    let start = libc::off_t::try_from(offset).ok()?;
    let total: usize = iovecs.iter().map(|iov| iov.iov_len).sum();
    let mut done = 0;
    let mut rest;
    let mut current = iovecs;
    loop {
        let count = libc::c_int::try_from(current.len()).ok()?;
        let at = start.checked_add(libc::off_t::try_from(done).ok()?)?;
        // SAFETY: `current` is the caller's iovecs or, after a short read, the part of them
        // not yet filled (see `unfilled`); `count` is their number.
        let n = unsafe { libc::preadv2(fd, current.as_ptr(), count, at, libc::RWF_NOWAIT) };
        let n = usize::try_from(n).ok()?;
        done += n;
        if n == 0 || done >= total {
            return u32::try_from(done).ok();
        }
        rest = unfilled(iovecs, done);
        current = &rest;
    }
}

/// The part of `iovecs` after their first `skip` bytes.
fn unfilled(iovecs: &[libc::iovec], mut skip: usize) -> Vec<libc::iovec> {
    let mut rest = Vec::with_capacity(iovecs.len());
    for iov in iovecs {
        if skip >= iov.iov_len {
            skip -= iov.iov_len;
            continue;
        }
        rest.push(libc::iovec {
            // Within the iovec's memory: `skip` is less than its length.
            iov_base: iov.iov_base.cast::<u8>().wrapping_add(skip).cast(),
            iov_len: iov.iov_len - skip,
        });
        skip = 0;
    }
    rest
}

/// The readiness fallback shared by reads and writes at `offset`: the positional call for
/// files; for streams ([`CURRENT_POSITION`], or a positional call that answers `ESPIPE`: a
/// pipe, FIFO, socket or terminal, where io_uring ignores the offset) the stream call, once a
/// zero-timeout `poll` says it cannot block.
fn positional_or_stream(
    fd: RawFd,
    offset: u64,
    interest: Interest,
    positional: impl FnOnce(libc::off_t) -> isize,
    stream: impl FnOnce() -> isize,
) -> Fallback {
    if offset != CURRENT_POSITION {
        let ret = positional(offset as libc::off_t);
        let unseekable = ret < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESPIPE);
        if !unseekable {
            return Fallback::done(ret);
        }
    }
    let events = match interest {
        Interest::Readable => libc::POLLIN,
        Interest::Writable => libc::POLLOUT,
    };
    if !ready_now(fd, events) {
        return Fallback::Wait(fd, interest);
    }
    Fallback::from_syscall(stream(), fd, interest)
}

/// Whether `fd` is ready for `events` right now (`poll(2)` with a zero timeout): streams are
/// only read or written once ready, so the call cannot block. Regular files are always ready.
pub(crate) fn ready_now(fd: RawFd, events: libc::c_short) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one pollfd on our stack, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n != 0 // an error (n < 0) lets the syscall itself report it
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Heap memory that claims to lie in registered buffer 3. Only SQEs are built from it,
    /// never submitted.
    struct Registered(Vec<u8>);

    // SAFETY: a Vec's heap memory does not move while the Vec lives and is not resized.
    unsafe impl IoBuf for Registered {
        fn stable_ptr(&self) -> *const u8 {
            self.0.as_ptr()
        }

        fn bytes_init(&self) -> usize {
            self.0.len()
        }

        fn bytes_total(&self) -> usize {
            self.0.len()
        }

        fn fixed_index(&self) -> Option<u16> {
            Some(3)
        }
    }

    #[test]
    fn a_registered_buffer_is_written_by_index_unless_by_address() {
        let code = |mut write: Write<Registered>| write.sqe().get_opcode();
        let fresh = || Write::new(1, Registered(vec![7; 8]), 0);
        assert_eq!(code(fresh()), u32::from(opcode::WriteFixed::CODE));
        assert_eq!(code(fresh().by_address()), u32::from(opcode::Write::CODE));
    }
}
