//! Messages with names and control data (`IORING_OP_SENDMSG`, `IORING_OP_RECVMSG`).
//!
//! [`SendMsg`] sends one buffer, optionally to an address (a datagram's destination) and
//! optionally with descriptors (`SCM_RIGHTS`). [`RecvMsg`] receives into one buffer, optionally
//! with the sender's address and room for up to `max_fds` descriptors.
//!
//! Each op owns, on the heap, everything the kernel touches: the `msghdr` and its single
//! `iovec` (one box), the buffer, the name storage and a control buffer of `u64`s (so the
//! `cmsghdr`s in it are aligned as `CMSG_*` require). The header's pointers are refreshed in
//! `sqe`, once the op struct has stopped moving.
//!
//! # Kernel behaviour relied on
//! - On completion the kernel writes `msg_namelen`, `msg_controllen` and `msg_flags` back into
//!   the op's `msghdr` (`io_recvmsg` → `__sys_recvmsg_sock`, as `recvmsg(2)` does), so
//!   `complete` reads them there.
//! - `MSG_TRUNC` in a datagram socket's receive flags makes the result the datagram's real
//!   length, even when the buffer was shorter (`udp(7)`, `unix(7)` since Linux 3.4).
//! - Descriptors that arrive with `SCM_RIGHTS` are installed in the process's table when the
//!   receive completes (with `MSG_CMSG_CLOEXEC`, which these ops always pass). Whoever completes
//!   the op therefore owns them: [`OpCode::complete`] hands them out as [`OwnedFd`]s and
//!   [`OpCode::complete_orphan`] closes them, so a dropped receive never leaks them. When the
//!   control buffer is too small the kernel closes the extra ones and sets `MSG_CTRUNC`.
//! - Descriptors being sent are looked up when the kernel *issues* the send, which may be after
//!   the caller's future was dropped (the entry may still sit in the submission queue). So
//!   [`SendMsg`] owns its descriptors ([`OwnedFd`], duplicates if need be) until it completes:
//!   a number the program closed and reused can never be sent by mistake.

use std::fmt;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use io_uring::{opcode, squeue};

use super::net::SockAddr;
use super::{BufResult, Completion, Fallback, FileRef, Interest, OpCode};
use crate::buf::{IoBuf, IoBufMut};

/// A `msghdr` and the one `iovec` it points to, boxed together so neither moves.
struct Header {
    msg: libc::msghdr,
    iov: libc::iovec,
}

impl Header {
    fn new() -> Box<Header> {
        // SAFETY: msghdr and iovec are plain data; all-zero is "no name, no data, no control".
        Box::new(unsafe { mem::zeroed::<Header>() })
    }
}

/// Room for a control message carrying `fds` descriptors, as `u64`s so it is aligned for
/// `cmsghdr`. `CMSG_SPACE` is a multiple of 8 on Linux, so the buffer is exactly that long.
fn control_buffer(fds: usize) -> Vec<u64> {
    let payload = u32::try_from(fds * mem::size_of::<RawFd>()).unwrap_or(u32::MAX);
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
    vec![0u64; space.div_ceil(mem::size_of::<u64>())]
}

/// `IORING_OP_SENDMSG` of one owned buffer, with `MSG_NOSIGNAL`; optionally to an address and
/// with descriptors (`SCM_RIGHTS`).
pub struct SendMsg<B> {
    fd: FileRef,
    buf: B,
    addr: Option<SockAddr>,
    /// Kept open until the kernel has looked them up (see the module docs).
    fds: Vec<OwnedFd>,
    control: Vec<u64>,
    header: Box<Header>,
}

impl<B: IoBuf> SendMsg<B> {
    /// Sends `buf`'s initialized bytes on socket `fd` (to its connected peer, unless
    /// [`to`](SendMsg::to) names a destination).
    pub fn new(fd: impl Into<FileRef>, buf: B) -> Self {
        SendMsg {
            fd: fd.into(),
            buf,
            addr: None,
            fds: Vec::new(),
            control: Vec::new(),
            header: Header::new(),
        }
    }

    /// Sends to `addr` (`sendto` semantics: datagram sockets).
    pub fn to(mut self, addr: SockAddr) -> Self {
        self.addr = Some(addr);
        self
    }

    /// Passes `fds` along with the bytes, in one `SCM_RIGHTS` control message. The op owns
    /// them until it completes, then closes them (the receiver has its own copies).
    pub fn with_fds(mut self, fds: Vec<OwnedFd>) -> Self {
        self.control = if fds.is_empty() {
            Vec::new()
        } else {
            control_buffer(fds.len())
        };
        if let Some(first) = self.control.first_mut() {
            let cmsg: *mut libc::cmsghdr = (first as *mut u64).cast();
            let payload = (fds.len() * mem::size_of::<RawFd>()) as u32;
            // SAFETY: `control` is u64-aligned and CMSG_SPACE(payload) bytes long: room for one
            // header and `fds.len()` descriptors after CMSG_DATA, all inside the allocation.
            unsafe {
                (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as _;
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for (i, fd) in fds.iter().enumerate() {
                    ptr::write_unaligned(data.add(i), fd.as_raw_fd());
                }
            }
        }
        self.fds = fds;
        self
    }
}

// SAFETY: the entry points at the boxed header; the header points into the op's buffer, its
// boxed name and its control Vec, all heap memory owned by the op. The pointers are refreshed
// here, after the op reached its final place.
unsafe impl<B: IoBuf> OpCode for SendMsg<B> {
    type Output = BufResult<usize, B>;

    fn sqe(&mut self) -> squeue::Entry {
        self.prepare();
        on_file!(self.fd, |fd| opcode::SendMsg::new(fd, &self.header.msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build())
    }

    fn fallback(&mut self) -> Fallback {
        self.prepare();
        let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
        // SAFETY: the header points into the op's own heap memory (see `prepare`).
        let ret = unsafe { libc::sendmsg(self.fd.raw(), &self.header.msg, flags) };
        Fallback::from_syscall(ret, self.fd.raw(), Interest::Writable)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        // `self.fds` are closed here: the kernel took its own references at issue time.
        (completion.result.map(|n| n as usize), self.buf)
    }
}

impl<B: IoBuf> SendMsg<B> {
    /// Points the header at the buffer, name and control data, where they now are.
    fn prepare(&mut self) {
        let header = &mut *self.header;
        header.iov = libc::iovec {
            iov_base: self.buf.stable_ptr() as *mut libc::c_void,
            iov_len: self.buf.bytes_init(),
        };
        header.msg.msg_iov = &mut header.iov;
        header.msg.msg_iovlen = 1;
        if let Some(addr) = &self.addr {
            header.msg.msg_name = addr.as_ptr() as *mut libc::c_void;
            header.msg.msg_namelen = addr.len();
        }
        if !self.control.is_empty() {
            header.msg.msg_control = self.control.as_mut_ptr().cast();
            header.msg.msg_controllen = self.control.len() * mem::size_of::<u64>();
        }
    }
}

/// What a [`RecvMsg`] got besides the bytes in the buffer.
pub struct Received {
    /// The result of `recvmsg`: the bytes received, or, with `MSG_TRUNC` in the op's flags on
    /// a datagram socket, the datagram's real length, which may exceed the buffer.
    pub len: usize,
    /// The `msg_flags` the kernel reported (`MSG_TRUNC`, `MSG_CTRUNC`, ...).
    pub flags: libc::c_int,
    /// The sender's address, when the op asked for it ([`RecvMsg::with_addr`]).
    pub addr: Option<SockAddr>,
    /// Descriptors that arrived with `SCM_RIGHTS`, close-on-exec.
    pub fds: Vec<OwnedFd>,
}

impl fmt::Debug for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received")
            .field("len", &self.len)
            .field("flags", &self.flags)
            .field("addr", &self.addr.as_ref().map(SockAddr::to_socket2))
            .field("fds", &self.fds)
            .finish()
    }
}

impl Received {
    /// Whether the datagram was longer than the buffer (`MSG_TRUNC`).
    pub fn is_truncated(&self) -> bool {
        self.flags & libc::MSG_TRUNC != 0
    }

    /// Whether control data (descriptors) did not fit (`MSG_CTRUNC`).
    pub fn is_control_truncated(&self) -> bool {
        self.flags & libc::MSG_CTRUNC != 0
    }
}

/// `IORING_OP_RECVMSG` into one owned buffer; optionally with the sender's address and up to
/// `max_fds` descriptors (`SCM_RIGHTS`, received close-on-exec).
pub struct RecvMsg<B> {
    fd: FileRef,
    buf: B,
    addr: Option<SockAddr>,
    control: Vec<u64>,
    flags: libc::c_int,
    header: Box<Header>,
}

impl<B: IoBufMut> RecvMsg<B> {
    /// Points the header at the buffer, name storage and control data, where they now are.
    fn prepare(&mut self) {
        let header = &mut *self.header;
        header.iov = libc::iovec {
            iov_base: self.buf.stable_mut_ptr().cast(),
            iov_len: self.buf.bytes_total(),
        };
        header.msg.msg_iov = &mut header.iov;
        header.msg.msg_iovlen = 1;
        if let Some(addr) = &mut self.addr {
            let (name, _) = addr.as_mut_ptrs();
            header.msg.msg_name = name.cast();
            header.msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as _;
        }
        if !self.control.is_empty() {
            header.msg.msg_control = self.control.as_mut_ptr().cast();
            header.msg.msg_controllen = self.control.len() * mem::size_of::<u64>();
        }
        header.msg.msg_flags = 0;
    }

    /// Receives into `buf` from socket `fd`.
    pub fn new(fd: impl Into<FileRef>, buf: B) -> Self {
        RecvMsg {
            fd: fd.into(),
            buf,
            addr: None,
            control: Vec::new(),
            flags: libc::MSG_CMSG_CLOEXEC,
            header: Header::new(),
        }
    }

    /// Also receives the sender's address (`recvfrom` semantics).
    pub fn with_addr(mut self) -> Self {
        self.addr = Some(SockAddr::empty());
        self
    }

    /// Makes room for up to `max_fds` descriptors. More than that sets `MSG_CTRUNC`; the
    /// kernel closes the ones that did not fit.
    pub fn with_fds(mut self, max_fds: usize) -> Self {
        self.control = if max_fds == 0 {
            Vec::new()
        } else {
            control_buffer(max_fds)
        };
        self
    }

    /// Adds `recvmsg(2)` flags, such as `MSG_TRUNC` (datagram sockets: report the real length).
    pub fn flags(mut self, flags: libc::c_int) -> Self {
        self.flags |= flags;
        self
    }

    /// The descriptors the kernel put in the control buffer, now owned by the caller. Only
    /// meaningful after a successful completion from the kernel.
    fn take_fds(&mut self) -> Vec<OwnedFd> {
        let mut fds = Vec::new();
        let start = self.control.as_ptr() as usize;
        let capacity = self.control.len() * mem::size_of::<u64>();
        let msg = &mut self.header.msg;
        if msg.msg_control.is_null() || capacity == 0 {
            return fds;
        }
        // Trust the kernel's length only as far as the buffer goes.
        msg.msg_controllen = msg.msg_controllen.min(capacity);
        let end = start + msg.msg_controllen;
        // SAFETY: `msg_control` points at the op's u64-aligned control buffer and
        // `msg_controllen` (the kernel's count of bytes written, clamped above) lies within it.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
        while !cmsg.is_null() {
            // SAFETY: CMSG_FIRSTHDR / CMSG_NXTHDR return aligned headers that lie within
            // `msg_controllen`, or null.
            let (level, kind, len) =
                unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len) };
            if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
                // SAFETY: as above; CMSG_DATA is pointer arithmetic within the message.
                let data = unsafe { libc::CMSG_DATA(cmsg) };
                let header_len = data as usize - cmsg as usize;
                let payload = len
                    .saturating_sub(header_len)
                    .min(end.saturating_sub(data as usize));
                for i in 0..payload / mem::size_of::<RawFd>() {
                    // SAFETY: `i` indexes a descriptor within the message's payload, inside the
                    // buffer; the data is not aligned for RawFd, hence read_unaligned.
                    let raw = unsafe { ptr::read_unaligned(data.cast::<RawFd>().add(i)) };
                    // SAFETY: the kernel installed `raw` in our table for this message; nothing
                    // else knows about it.
                    fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
            // SAFETY: `cmsg` is a header within the message; CMSG_NXTHDR checks the bounds.
            cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
        }
        // Taken: never hand the same descriptors out twice.
        msg.msg_controllen = 0;
        fds
    }
}

// SAFETY: the entry points at the boxed header; the header points into the op's buffer, its
// boxed name storage and its control Vec, all heap memory owned by the op. The pointers are
// refreshed here, after the op reached its final place.
unsafe impl<B: IoBufMut> OpCode for RecvMsg<B> {
    type Output = BufResult<Received, B>;

    fn sqe(&mut self) -> squeue::Entry {
        self.prepare();
        on_file!(self.fd, |fd| opcode::RecvMsg::new(fd, &mut self.header.msg)
            .flags(self.flags as u32)
            .build())
    }

    fn fallback(&mut self) -> Fallback {
        self.prepare();
        let flags = self.flags | libc::MSG_DONTWAIT;
        // SAFETY: the header points into the op's own heap memory (see `prepare`).
        let ret = unsafe { libc::recvmsg(self.fd.raw(), &mut self.header.msg, flags) };
        Fallback::from_syscall(ret, self.fd.raw(), Interest::Readable)
    }

    fn complete(mut self, completion: Completion) -> Self::Output {
        let n = match completion.result {
            Ok(n) => n as usize,
            Err(e) => return (Err(e), self.buf),
        };
        let fds = self.take_fds();
        let filled = n.min(self.buf.bytes_total());
        // SAFETY: the kernel wrote the first `filled` bytes (the whole datagram, or as much of
        // it as fit, when `n` is a truncated datagram's real length).
        unsafe { self.buf.set_init(filled) };
        let namelen = self.header.msg.msg_namelen;
        let addr = self.addr.take().map(|mut addr| {
            let (_, len) = addr.as_mut_ptrs();
            // SAFETY: `len` points into `addr`'s boxed storage, which we own and which is live.
            unsafe { *len = namelen };
            addr
        });
        let received = Received {
            len: n,
            flags: self.header.msg.msg_flags,
            addr,
            fds,
        };
        (Ok(received), self.buf)
    }

    fn complete_orphan(mut self, completion: Completion) {
        // Nobody will take the descriptors that came with the message: close them.
        if completion.result.is_ok() {
            drop(self.take_fds());
        }
    }
}
