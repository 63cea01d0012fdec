//! Socket ops (`IORING_OP_ACCEPT`, `CONNECT`, `RECV`, `SEND`, `SENDMSG`, `SHUTDOWN`).
//!
//! Sends always carry `MSG_NOSIGNAL`: a peer that went away gives `EPIPE`, never `SIGPIPE`.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use io_uring::{opcode, squeue};

use super::multishot::MultishotOp;
use super::{clamp_len, BufResult, Completion, Fallback, FileRef, Interest, OpCode};
use crate::buf::{BufRing, IoBuf, IoBufMut, ProvidedBuf};

/// A socket address in the kernel's layout, on the heap so the kernel can read or fill it.
pub struct SockAddr {
    storage: Box<(libc::sockaddr_storage, libc::socklen_t)>,
}

impl SockAddr {
    /// Room for any address (what `accept` fills).
    pub fn empty() -> Self {
        // SAFETY: `sockaddr_storage` is plain data; all-zero is a valid (unspecified) value.
        let storage = unsafe { mem::zeroed::<libc::sockaddr_storage>() };
        SockAddr {
            storage: Box::new((storage, mem::size_of::<libc::sockaddr_storage>() as _)),
        }
    }

    /// `addr` in the kernel's layout.
    pub fn from_std(addr: SocketAddr) -> Self {
        let mut this = SockAddr::empty();
        let (storage, len) = &mut *this.storage;
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
                unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), sin) };
                *len = mem::size_of::<libc::sockaddr_in>() as _;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
                unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), sin6) };
                *len = mem::size_of::<libc::sockaddr_in6>() as _;
            }
        }
        this
    }

    /// `addr` in the kernel's layout: any family socket2 knows, including Unix pathname and
    /// abstract addresses.
    pub fn from_socket2(addr: &socket2::SockAddr) -> Self {
        let len = addr.len();
        SockAddr {
            storage: Box::new((addr.clone().as_storage(), len)),
        }
    }

    /// The address as a socket2 address (IP, Unix, or whatever family the kernel filled in).
    pub fn to_socket2(&self) -> socket2::SockAddr {
        let (storage, len) = *self.storage;
        // The kernel reports an address's full length even when it did not fit; never claim
        // more than the storage holds.
        let len = len.min(mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t);
        // SAFETY: the storage holds an address of family `ss_family` written by `from_std`,
        // `from_socket2` or the kernel, `len` bytes long and within the storage.
        unsafe { socket2::SockAddr::new(storage, len) }
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage.0 as *const libc::sockaddr_storage).cast()
    }

    pub(crate) fn as_mut_ptrs(&mut self) -> (*mut libc::sockaddr, *mut libc::socklen_t) {
        let (storage, len) = &mut *self.storage;
        ((storage as *mut libc::sockaddr_storage).cast(), len)
    }

    pub(crate) fn len(&self) -> libc::socklen_t {
        self.storage.1
    }

    /// The address as a `std` IP socket address, if it is one.
    pub fn to_std(&self) -> Option<SocketAddr> {
        let (storage, len) = &*self.storage;
        match storage.ss_family as libc::c_int {
            libc::AF_INET if *len as usize >= mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in, and it is long enough.
                let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
                let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 if *len as usize >= mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the family says the storage holds a sockaddr_in6, and it is long enough.
                let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
                let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// `IORING_OP_ACCEPT`: a new connection's fd (`SOCK_CLOEXEC`) and its peer address.
pub struct Accept {
    fd: FileRef,
    addr: SockAddr,
}

impl Accept {
    /// Accepts one connection on the listening socket `fd`.
    pub fn new(fd: impl Into<FileRef>) -> Self {
        Accept {
            fd: fd.into(),
            addr: SockAddr::empty(),
        }
    }
}

// SAFETY: the entry points into the op's boxed sockaddr storage and length.
unsafe impl OpCode for Accept {
    type Output = io::Result<(RawFd, SockAddr)>;

    fn sqe(&mut self) -> squeue::Entry {
        let (addr, len) = self.addr.as_mut_ptrs();
        on_file!(self.fd, |fd| opcode::Accept::new(fd, addr, len)
            .flags(libc::SOCK_CLOEXEC)
            .build())
    }

    fn fallback(&mut self) -> Fallback {
        if !super::rw::ready_now(self.fd.raw(), libc::POLLIN) {
            return Fallback::Wait(self.fd.raw(), Interest::Readable);
        }
        let (addr, len) = self.addr.as_mut_ptrs();
        // SAFETY: the sockaddr storage and its length are the op's boxed memory.
        let ret = unsafe {
            libc::accept4(
                self.fd.raw(),
                addr,
                len,
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        Fallback::from_syscall(ret as isize, self.fd.raw(), Interest::Readable)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(|fd| (fd as RawFd, self.addr))
    }

    fn complete_orphan(self, completion: Completion) {
        // Nobody is waiting for this connection any more: close it rather than leak it.
        if let Ok(fd) = completion.result {
            close_now(fd as RawFd);
        }
    }
}

/// Multishot `IORING_OP_ACCEPT` (Linux 5.19+): one submission accepts connection after
/// connection. Each item is a new `SOCK_CLOEXEC` socket (peer addresses are not reported:
/// ask the socket).
pub struct AcceptMulti {
    fd: FileRef,
}

impl AcceptMulti {
    /// Accepts connections on the listening socket `fd` until the stream is dropped.
    pub fn new(fd: impl Into<FileRef>) -> Self {
        AcceptMulti { fd: fd.into() }
    }
}

// SAFETY: the entry carries no pointers.
unsafe impl super::multishot::MultishotCode for AcceptMulti {
    type Item = io::Result<RawFd>;

    fn sqe(&mut self) -> squeue::Entry {
        on_file!(self.fd, |fd| opcode::AcceptMulti::new(fd)
            .flags(libc::SOCK_CLOEXEC)
            .build())
    }

    fn next(&mut self, completion: Completion) -> Self::Item {
        completion.result.map(|fd| fd as RawFd)
    }

    fn fallback(&mut self) -> Fallback {
        if !super::rw::ready_now(self.fd.raw(), libc::POLLIN) {
            return Fallback::Wait(self.fd.raw(), Interest::Readable);
        }
        let flags = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        // SAFETY: accept4 with null address pointers.
        let ret = unsafe {
            libc::accept4(
                self.fd.raw(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                flags,
            )
        };
        Fallback::from_syscall(ret as isize, self.fd.raw(), Interest::Readable)
    }

    fn discard(&mut self, completion: Completion) {
        // A connection nobody will take: close it rather than leak it.
        if let Ok(fd) = completion.result {
            close_now(fd as RawFd);
        }
    }
}

/// Multishot `IORING_OP_RECV` into a provided buffer ring (Linux 6.0+): each completion is a
/// buffer the kernel picked from the ring and filled. `Ok(None)` is end of stream.
pub struct RecvMulti {
    fd: FileRef,
    ring: BufRing,
}

impl RecvMulti {
    /// Receives from socket `fd` into buffers of `ring` until cancelled.
    pub fn new(fd: impl Into<FileRef>, ring: BufRing) -> Self {
        RecvMulti {
            fd: fd.into(),
            ring,
        }
    }
}

// SAFETY: the entry carries no pointers; the kernel writes into `ring`'s buffers, which the
// op keeps alive (an `Rc`) until its last completion.
unsafe impl super::multishot::MultishotCode for RecvMulti {
    type Item = io::Result<Option<ProvidedBuf>>;

    fn sqe(&mut self) -> squeue::Entry {
        let group = self
            .ring
            .group()
            .expect("an io_uring op uses a registered buffer ring");
        on_file!(self.fd, |fd| opcode::RecvMulti::new(fd, group).build())
    }

    fn next(&mut self, completion: Completion) -> Self::Item {
        let bid = io_uring::cqueue::buffer_select(completion.flags);
        match (completion.result, bid) {
            // SAFETY: the kernel handed out `bid` from our ring with `n` bytes filled.
            (Ok(n), Some(bid)) => Ok(Some(unsafe { self.ring.take(bid, n) })),
            (Ok(_), None) => Ok(None),
            (Err(e), bid) => {
                if let Some(bid) = bid {
                    // SAFETY: as above; nobody will read it.
                    unsafe { self.ring.recycle(bid) };
                }
                Err(e)
            }
        }
    }

    fn fallback(&mut self) -> Fallback {
        let Some((bid, ptr)) = self.ring.pop_free() else {
            return Fallback::Done(Err(io::Error::from_raw_os_error(libc::ENOBUFS)), 0);
        };
        let len = self.ring.buf_len() as usize;
        // SAFETY: buffer `bid` was free, so nothing else reads or writes its `len` bytes.
        let ret = unsafe { libc::recv(self.fd.raw(), ptr.cast(), len, libc::MSG_DONTWAIT) };
        match Fallback::from_syscall(ret, self.fd.raw(), Interest::Readable) {
            Fallback::Done(Ok(n), _) if n > 0 => Fallback::Done(
                Ok(n),
                IORING_CQE_F_BUFFER | (u32::from(bid) << IORING_CQE_BUFFER_SHIFT),
            ),
            other => {
                // End of stream, an error or nothing yet: the buffer goes back unused.
                // SAFETY: `bid` came from this ring's free list and was not handed out.
                unsafe { self.ring.recycle(bid) };
                other
            }
        }
    }

    fn discard(&mut self, completion: Completion) {
        if let Some(bid) = io_uring::cqueue::buffer_select(completion.flags) {
            // SAFETY: the kernel handed out `bid` from our ring; nobody took it.
            unsafe { self.ring.recycle(bid) };
        }
    }
}

/// `IORING_OP_SEND_ZC` (Linux 6.0+): sends without copying the buffer into the kernel. Two
/// completions: the result, then a notification once the kernel no longer reads the buffer;
/// the buffer is handed back only after the second.
pub struct SendZc<B> {
    fd: FileRef,
    buf: B,
    result: Option<io::Result<u32>>,
}

impl<B: IoBuf> SendZc<B> {
    /// Sends `buf`'s initialized bytes on socket `fd` without a copy.
    pub fn new(fd: impl Into<FileRef>, buf: B) -> Self {
        SendZc {
            fd: fd.into(),
            buf,
            result: None,
        }
    }

    /// The send's result (once its stream ended) and the buffer.
    pub fn into_parts(self) -> (Option<io::Result<u32>>, B) {
        (self.result, self.buf)
    }
}

const IORING_CQE_F_NOTIF: u32 = 1 << 3;

// SAFETY: the entry points into `buf`'s stable memory, owned by the op until its last
// completion (the notification).
unsafe impl<B: IoBuf> super::multishot::MultishotCode for SendZc<B> {
    type Item = ();

    fn sqe(&mut self) -> squeue::Entry {
        let len = clamp_len(self.buf.bytes_init());
        // A buffer from a registered pool is sent from its registered pages
        // (`IORING_RECVSEND_FIXED_BUF`): the kernel skips pinning them for each send.
        let fixed = self.buf.fixed_index();
        on_file!(self.fd, |fd| opcode::SendZc::new(
            fd,
            self.buf.stable_ptr(),
            len
        )
        .flags(libc::MSG_NOSIGNAL)
        .buf_index(fixed)
        .build())
    }

    fn next(&mut self, completion: Completion) {
        if completion.flags & IORING_CQE_F_NOTIF == 0 {
            self.result = Some(completion.result);
        }
    }

    fn fallback(&mut self) -> Fallback {
        // No zero-copy without the ring: a plain non-blocking send.
        let (ptr, len) = (self.buf.stable_ptr().cast(), self.buf.bytes_init());
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: the buffer's stable memory, with `len` initialized bytes.
        let ret = unsafe { libc::send(self.fd.raw(), ptr, len, flags) };
        Fallback::from_syscall(ret, self.fd.raw(), Interest::Writable)
    }

    fn is_finished(&self) -> bool {
        self.result.is_some()
    }
}

/// Receiving into a provided-buffer ring, as a stream of buffers: one multishot
/// [`RecvMulti`], armed again whenever the kernel ends it. When the ring runs dry
/// (`ENOBUFS`) it waits for a buffer to come back before arming again, instead of spinning.
///
/// Used by `TcpStream::recv_multishot` and the compat layer's buffer-ring reader.
pub struct MultishotRecv {
    ring: BufRing,
    op: Option<MultishotOp<RecvMulti>>,
    /// The ring's [`returned`](BufRing::returned) count when `op` was armed.
    armed_at: u64,
    /// The ring ran dry: waiting for a buffer to come back since this count.
    dry_since: Option<u64>,
    done: bool,
}

impl MultishotRecv {
    /// Receives into `ring`'s buffers (nothing is submitted before the first poll).
    pub fn new(ring: BufRing) -> Self {
        MultishotRecv {
            ring,
            op: None,
            armed_at: 0,
            dry_since: None,
            done: false,
        }
    }

    /// The next buffer of data from `fd`; `None` at end of stream.
    pub fn poll_next(
        &mut self,
        fd: FileRef,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<ProvidedBuf>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(since) = self.dry_since {
            std::task::ready!(self.ring.poll_returned(since, cx));
            self.dry_since = None;
        }
        loop {
            let op = match &mut self.op {
                Some(op) => op,
                None => {
                    self.armed_at = self.ring.returned();
                    let op = MultishotOp::submit(RecvMulti::new(fd, self.ring.clone()));
                    self.op.insert(op)
                }
            };
            match std::task::ready!(Pin::new(op).poll_next(cx)) {
                Some(Ok(Ok(Some(buf)))) => return Poll::Ready(Some(Ok(buf))),
                Some(Ok(Ok(None))) => {
                    self.done = true;
                    self.op = None;
                    return Poll::Ready(None);
                }
                Some(Ok(Err(e))) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // Every buffer is out. Arm again once one comes back: at once if one
                    // came back since this receive was armed (the ring may have refilled
                    // after the kernel found it empty), else when the next one does.
                    self.op = None;
                    if self.ring.poll_returned(self.armed_at, cx).is_pending() {
                        self.dry_since = Some(self.armed_at);
                        return Poll::Pending;
                    }
                }
                Some(Ok(Err(e))) | Some(Err(e)) => {
                    self.op = None;
                    return Poll::Ready(Some(Err(e)));
                }
                None => self.op = None, // ended by the kernel: arm a new one
            }
        }
    }
}

const IORING_CQE_F_BUFFER: u32 = 1;
const IORING_CQE_BUFFER_SHIFT: u32 = 16;

/// Puts `fd` in non-blocking mode (readiness fallback only: io_uring needs blocking fds).
pub(crate) fn set_nonblocking(fd: RawFd) {
    // SAFETY: F_GETFL/F_SETFL on a descriptor; no pointers.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 && flags & libc::O_NONBLOCK == 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// Closes `fd` with a plain `close(2)`; for descriptors nobody else knows about.
pub(crate) fn close_now(fd: RawFd) {
    // SAFETY: the caller owns `fd` and nothing else refers to it.
    unsafe { libc::close(fd) };
}

/// `IORING_OP_CONNECT`.
pub struct Connect {
    fd: FileRef,
    addr: SockAddr,
    /// Readiness fallback: the non-blocking connect is under way.
    in_progress: bool,
}

impl Connect {
    /// Connects socket `fd` to `addr`.
    pub fn new(fd: impl Into<FileRef>, addr: SocketAddr) -> Self {
        Connect::with_addr(fd, SockAddr::from_std(addr))
    }

    /// Connects socket `fd` to an address of any family (a Unix path, say).
    pub fn with_addr(fd: impl Into<FileRef>, addr: SockAddr) -> Self {
        Connect {
            fd: fd.into(),
            addr,
            in_progress: false,
        }
    }
}

// SAFETY: the entry points into the op's boxed sockaddr.
unsafe impl OpCode for Connect {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        on_file!(self.fd, |fd| opcode::Connect::new(
            fd,
            self.addr.as_ptr(),
            self.addr.len()
        )
        .build())
    }

    fn fallback(&mut self) -> Fallback {
        let fd = self.fd.raw();
        if self.in_progress {
            let mut error: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: SO_ERROR writes one c_int into our local.
            let ret = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut error as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            if ret < 0 {
                return Fallback::done(-1);
            }
            return match error {
                0 => Fallback::Done(Ok(0), 0),
                e => Fallback::Done(Err(io::Error::from_raw_os_error(e)), 0),
            };
        }
        set_nonblocking(fd);
        // SAFETY: the sockaddr is the op's boxed memory.
        let ret = unsafe { libc::connect(fd, self.addr.as_ptr(), self.addr.len()) };
        if ret < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINPROGRESS) {
            self.in_progress = true;
            return Fallback::Wait(fd, Interest::Writable);
        }
        Fallback::done(ret as isize)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(drop)
    }
}

/// `IORING_OP_RECV` into an owned buffer.
pub struct Recv<B> {
    fd: FileRef,
    buf: B,
}

impl<B: IoBufMut> Recv<B> {
    /// Receives into `buf` from socket `fd`.
    pub fn new(fd: impl Into<FileRef>, buf: B) -> Self {
        Recv { fd: fd.into(), buf }
    }
}

// SAFETY: the entry points into `buf`'s stable memory, owned by the op.
unsafe impl<B: IoBufMut> OpCode for Recv<B> {
    type Output = BufResult<usize, B>;

    fn short_circuit(&self) -> Option<u32> {
        // Nothing to read into: done, without waiting for the descriptor to be readable.
        (self.buf.bytes_total() == 0).then_some(0)
    }

    fn sqe(&mut self) -> squeue::Entry {
        let len = clamp_len(self.buf.bytes_total());
        on_file!(self.fd, |fd| opcode::Recv::new(
            fd,
            self.buf.stable_mut_ptr(),
            len
        )
        .build())
    }

    fn fallback(&mut self) -> Fallback {
        let (ptr, len) = (self.buf.stable_mut_ptr().cast(), self.buf.bytes_total());
        // SAFETY: the buffer's stable memory, writable for `len` bytes.
        let ret = unsafe { libc::recv(self.fd.raw(), ptr, len, libc::MSG_DONTWAIT) };
        Fallback::from_syscall(ret, self.fd.raw(), Interest::Readable)
    }

    fn stream_read(&self) -> Option<(RawFd, usize)> {
        Some((self.fd.raw(), self.buf.bytes_total()))
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

/// `IORING_OP_SEND` from an owned buffer, with `MSG_NOSIGNAL`.
pub struct Send<B> {
    fd: FileRef,
    buf: B,
}

impl<B: IoBuf> Send<B> {
    /// Sends `buf`'s initialized bytes on socket `fd`.
    pub fn new(fd: impl Into<FileRef>, buf: B) -> Self {
        Send { fd: fd.into(), buf }
    }
}

// SAFETY: the entry points into `buf`'s stable memory, owned by the op.
unsafe impl<B: IoBuf> OpCode for Send<B> {
    type Output = BufResult<usize, B>;

    fn sqe(&mut self) -> squeue::Entry {
        let len = clamp_len(self.buf.bytes_init());
        on_file!(self.fd, |fd| opcode::Send::new(
            fd,
            self.buf.stable_ptr(),
            len
        )
        .flags(libc::MSG_NOSIGNAL)
        .build())
    }

    fn fallback(&mut self) -> Fallback {
        let (ptr, len) = (self.buf.stable_ptr().cast(), self.buf.bytes_init());
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: the buffer's stable memory, with `len` initialized bytes.
        let ret = unsafe { libc::send(self.fd.raw(), ptr, len, flags) };
        Fallback::from_syscall(ret, self.fd.raw(), Interest::Writable)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.result.map(|n| n as usize), self.buf)
    }
}

/// `IORING_OP_SENDMSG` of several owned buffers (a vectored send), with `MSG_NOSIGNAL`.
pub struct SendVectored<B> {
    fd: FileRef,
    bufs: Vec<B>,
    iovecs: Vec<libc::iovec>,
    msg: Box<libc::msghdr>,
}

impl<B: IoBuf> SendVectored<B> {
    /// Sends the initialized bytes of every buffer, in order, on socket `fd`.
    pub fn new(fd: impl Into<FileRef>, bufs: Vec<B>) -> Self {
        let fd = fd.into();
        let iovecs = super::rw::iovecs(&bufs);
        // SAFETY: msghdr is plain data; all-zero is "no name, no control data".
        let msg = Box::new(unsafe { mem::zeroed::<libc::msghdr>() });
        SendVectored {
            fd,
            bufs,
            iovecs,
            msg,
        }
    }
}

// SAFETY: the msghdr, the iovec array and every buffer are heap memory owned by the op; the
// msghdr's pointers are refreshed in `sqe`, after the op reached its final place.
unsafe impl<B: IoBuf> OpCode for SendVectored<B> {
    type Output = BufResult<usize, Vec<B>>;

    fn sqe(&mut self) -> squeue::Entry {
        self.msg.msg_iov = self.iovecs.as_mut_ptr();
        self.msg.msg_iovlen = self.iovecs.len();
        on_file!(self.fd, |fd| opcode::SendMsg::new(fd, &*self.msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build())
    }

    fn fallback(&mut self) -> Fallback {
        self.msg.msg_iov = self.iovecs.as_mut_ptr();
        self.msg.msg_iovlen = self.iovecs.len();
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: the msghdr and iovecs are the op's heap memory, describing its buffers.
        let ret = unsafe { libc::sendmsg(self.fd.raw(), &*self.msg, flags) };
        Fallback::from_syscall(ret, self.fd.raw(), Interest::Writable)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.result.map(|n| n as usize), self.bufs)
    }
}

/// `IORING_OP_SHUTDOWN`.
pub struct Shutdown {
    fd: FileRef,
    how: libc::c_int,
}

impl Shutdown {
    /// Shuts down the read half, the write half or both (`SHUT_RD`, `SHUT_WR`, `SHUT_RDWR`).
    pub fn new(fd: impl Into<FileRef>, how: std::net::Shutdown) -> Self {
        let fd = fd.into();
        let how = match how {
            std::net::Shutdown::Read => libc::SHUT_RD,
            std::net::Shutdown::Write => libc::SHUT_WR,
            std::net::Shutdown::Both => libc::SHUT_RDWR,
        };
        Shutdown { fd, how }
    }
}

// SAFETY: the entry carries no pointers.
unsafe impl OpCode for Shutdown {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        on_file!(self.fd, |fd| opcode::Shutdown::new(fd, self.how).build())
    }

    fn fallback(&mut self) -> Fallback {
        // SAFETY: no pointers.
        Fallback::done(unsafe { libc::shutdown(self.fd.raw(), self.how) } as isize)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.result.map(drop)
    }
}
