//! TCP listeners and streams.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::FromRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use coring_runtime::buf::{BufRing, IoBuf, IoBufMut, ProvidedBuf};
use coring_runtime::fd::Fd;
use coring_runtime::io::{AsyncReadRentExt, AsyncWriteRentExt, BufResult};
use coring_runtime::op::multishot::MultishotOp;
use coring_runtime::op::net::{
    Accept, AcceptMulti, Connect, MultishotRecv, Recv, Send, SendVectored, SendZc,
};
use coring_runtime::op::Op;
use socket2::{Domain, SockRef, Socket, Type};

use crate::addr::{resolve, ToSocketAddrs};

/// Backlog of listening sockets.
const LISTEN_BACKLOG: i32 = 1024;

fn new_socket(addr: &SocketAddr) -> io::Result<Socket> {
    // socket2 creates the socket with SOCK_CLOEXEC on Linux.
    Socket::new(Domain::for_address(*addr), Type::STREAM, None)
}

/// A TCP socket listening for connections.
///
/// ```no_run
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let listener = coring::net::TcpListener::bind("127.0.0.1:0").await?;
/// let (stream, peer) = listener.accept().await?;
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
#[derive(Debug)]
pub struct TcpListener {
    fd: Fd,
    /// The pause (µs) before reporting the next resource-exhaustion error from `accept`.
    backoff_us: AtomicU64,
}

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(1);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(100);

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl TcpListener {
    /// Binds to `addr` (with `SO_REUSEADDR`) and listens. Each resolved address is tried in
    /// turn; the last error is returned if none works.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with(addr, false).await
    }

    /// Binds with `SO_REUSEPORT` as well, so several listeners (one per worker) can share the
    /// address and the kernel spreads incoming connections over them.
    ///
    /// ```no_run
    /// let rt = coring::runtime::Runtime::builder().worker_threads(2).build()?;
    /// rt.block_on_each(|_| async {
    ///     let listener = coring::net::TcpListener::bind_reuseport("127.0.0.1:8080").await?;
    ///     let (_stream, _peer) = listener.accept().await?;
    ///     Ok::<(), std::io::Error>(())
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn bind_reuseport(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with(addr, true).await
    }

    async fn bind_with(addr: impl ToSocketAddrs, reuse_port: bool) -> io::Result<TcpListener> {
        let mut last_error = None;
        for addr in resolve(addr).await? {
            match Self::bind_one(&addr, reuse_port) {
                Ok(listener) => return Ok(listener),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("resolve returns at least one address"))
    }

    fn bind_one(addr: &SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
        let socket = new_socket(addr)?;
        socket.set_reuse_address(true)?;
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&(*addr).into())?;
        socket.listen(LISTEN_BACKLOG)?;
        Ok(TcpListener::from_fd(Fd::from_owned(socket.into())))
    }

    /// Accepts a connection: the stream and the peer's address.
    ///
    /// When the process (or system) is out of descriptors (`EMFILE`, `ENFILE`) or memory
    /// (`ENOBUFS`, `ENOMEM`), the error is returned after a short pause that grows while the
    /// condition lasts (up to 100 ms), so a loop that logs and retries does not spin; accepting
    /// resumes by itself once descriptors are freed.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let accepted = Op::submit(Accept::new(self.fd.file_ref())).await;
        let (raw, addr) = match accepted {
            Ok(accepted) => {
                self.backoff_us.store(0, Ordering::Relaxed);
                accepted
            }
            Err(e) if is_resource_exhaustion(&e) => {
                let last = Duration::from_micros(self.backoff_us.load(Ordering::Relaxed));
                let pause = (last * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                self.backoff_us
                    .store(pause.as_micros() as u64, Ordering::Relaxed);
                coring_runtime::time::sleep(pause).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        // SAFETY: the kernel just created `raw` for us; nothing else owns it.
        let fd = unsafe { Fd::from_raw_fd(raw) };
        let stream = TcpStream::from_fd(fd);
        let peer = match addr.to_std() {
            Some(peer) => peer,
            None => stream.peer_addr()?,
        };
        Ok((stream, peer))
    }

    /// A stream of accepted connections from one multishot accept (`IORING_OP_ACCEPT` with
    /// `IORING_ACCEPT_MULTISHOT`): the kernel keeps accepting without a submission per
    /// connection. Re-armed by itself when the kernel ends it (after an error such as
    /// `EMFILE`, which is yielded). Dropping the stream cancels it; connections accepted but
    /// not taken are closed.
    ///
    /// ```no_run
    /// # coring::runtime::Runtime::new().unwrap().block_on(async {
    /// let listener = coring::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// let mut incoming = listener.incoming();
    /// while let Some(accepted) = incoming.next().await {
    ///     let (stream, peer) = accepted?;
    ///     println!("connection from {peer}");
    ///     coring::spawn(async move { drop(stream) });
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// # });
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming {
            listener: self,
            op: None,
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket_addr(SockRef::from(&self.fd).local_addr()?)
    }

    /// Takes over a `std` listener.
    pub fn from_std(listener: std::net::TcpListener) -> TcpListener {
        TcpListener::from_fd(Fd::from_owned(listener.into()))
    }

    fn from_fd(fd: Fd) -> TcpListener {
        TcpListener {
            fd,
            backoff_us: AtomicU64::new(0),
        }
    }
}

/// Connections accepted by one multishot accept; made by [`TcpListener::incoming`].
pub struct Incoming<'a> {
    listener: &'a TcpListener,
    op: Option<MultishotOp<AcceptMulti>>,
}

impl Incoming<'_> {
    /// The next connection and its peer's address, as [`TcpListener::accept`] gives them.
    /// Never `None` while the listener is open: an ended multishot accept is re-armed.
    pub async fn next(&mut self) -> Option<io::Result<(TcpStream, SocketAddr)>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for Incoming<'_> {
    /// A connection and its peer's address. A multishot accept cannot hand each connection its
    /// own address buffer, so the address is read with `getpeername(2)`; a connection already
    /// reset by then (`ENOTCONN`) is closed and skipped, as if it had never arrived.
    type Item = io::Result<(TcpStream, SocketAddr)>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let fd = self.listener.fd.file_ref();
        loop {
            let op = self
                .op
                .get_or_insert_with(|| MultishotOp::submit(AcceptMulti::new(fd)));
            match std::task::ready!(Pin::new(op).poll_next(cx)) {
                Some(Ok(Ok(raw))) => {
                    // SAFETY: the kernel just created `raw` for us; nothing else owns it.
                    let fd = unsafe { Fd::from_raw_fd(raw) };
                    match SockRef::from(&fd).peer_addr().and_then(socket_addr) {
                        Ok(peer) => return Poll::Ready(Some(Ok((TcpStream::from_fd(fd), peer)))),
                        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => continue,
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
                Some(Ok(Err(e))) | Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => self.op = None, // the kernel ended it: arm a new one
            }
        }
    }
}

/// Data received by a multishot receive; made by [`TcpStream::recv_multishot`].
pub struct RecvStream<'a> {
    stream: &'a TcpStream,
    recv: MultishotRecv,
}

impl RecvStream<'_> {
    /// The next buffer of data; `None` at end of stream.
    pub async fn next(&mut self) -> Option<io::Result<ProvidedBuf>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for RecvStream<'_> {
    type Item = io::Result<ProvidedBuf>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.recv.poll_next(this.stream.fd.file_ref(), cx)
    }
}

/// A linked timeout cancels the op: `ECANCELED` means the deadline passed.
fn timed_out(e: io::Error, what: &str) -> io::Error {
    if e.raw_os_error() == Some(libc::ECANCELED) {
        io::Error::new(io::ErrorKind::TimedOut, format!("coring: {what} timed out"))
    } else {
        e
    }
}

fn socket_addr(addr: socket2::SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "coring: not an IP socket address",
        )
    })
}

/// A TCP connection.
///
/// ```no_run
/// use coring::buf::IoBuf;
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let stream = coring::net::TcpStream::connect("127.0.0.1:8080").await?;
/// let (res, _) = stream.write_all(b"ping").await;
/// res?;
/// let (res, buf) = stream.read(vec![0u8; 4]).await;
/// println!("{:?}", &buf[..res?]);
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
#[derive(Debug)]
pub struct TcpStream {
    fd: Fd,
    /// Writes of at least this many bytes go out as zero-copy sends (`usize::MAX`: never).
    send_zc_threshold: AtomicUsize,
}

impl TcpStream {
    fn from_fd(fd: Fd) -> TcpStream {
        TcpStream {
            fd,
            send_zc_threshold: AtomicUsize::new(usize::MAX),
        }
    }

    /// Connects to `addr`, trying each resolved address in turn.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last_error = None;
        for addr in resolve(addr).await? {
            match Self::connect_one(addr, None).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("resolve returns at least one address"))
    }

    async fn connect_one(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let socket = new_socket(&addr)?;
        let stream = TcpStream::from_fd(Fd::from_owned(socket.into()));
        let connect = Connect::new(stream.fd.file_ref(), addr);
        match timeout {
            None => Op::submit(connect).await?,
            Some(t) => Op::submit_with_timeout(connect, t)
                .await
                .map_err(|e| timed_out(e, "connect"))?,
        }
        Ok(stream)
    }

    /// Connects to `addr`, giving up after `timeout` (an `IORING_OP_LINK_TIMEOUT` linked to
    /// the connect: no timer on the runtime, and exactly one outcome). Each resolved address
    /// gets the full timeout. Fails with `ErrorKind::TimedOut` when it expires.
    pub async fn connect_timeout(
        addr: impl ToSocketAddrs,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        let mut last_error = None;
        for addr in resolve(addr).await? {
            match Self::connect_one(addr, Some(timeout)).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("resolve returns at least one address"))
    }

    /// Like [`read`](TcpStream::read), but gives up after `timeout` with
    /// `ErrorKind::TimedOut`. The deadline is an `IORING_OP_LINK_TIMEOUT` linked to the
    /// `recv`: the kernel decides, so data that arrived is always returned, never dropped
    /// with a timed-out future.
    pub async fn read_with_timeout<B: IoBufMut>(
        &self,
        buf: B,
        timeout: Duration,
    ) -> BufResult<usize, B> {
        let (result, buf) =
            Op::submit_with_timeout(Recv::new(self.fd.file_ref(), buf), timeout).await;
        (result.map_err(|e| timed_out(e, "read")), buf)
    }

    /// Reads up to `buf.bytes_total()` bytes; `Ok(0)` is end of stream (or an empty buffer).
    pub async fn read<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        Op::submit(Recv::new(self.fd.file_ref(), buf)).await
    }

    /// A stream of received data in buffers the kernel picks from `ring` (multishot
    /// `IORING_OP_RECV` with a provided buffer ring): one submission for many receives, and
    /// no buffer held while the connection is idle. Each item returns its buffer to the ring
    /// when dropped. The stream ends at end of stream; when the ring runs dry (`ENOBUFS`) it
    /// waits for a buffer to come back, then re-arms.
    ///
    /// ```no_run
    /// # coring::runtime::Runtime::new().unwrap().block_on(async {
    /// let ring = coring::buf::BufRing::new(256, 4096)?;
    /// let stream = coring::net::TcpStream::connect("127.0.0.1:8080").await?;
    /// let mut received = stream.recv_multishot(&ring);
    /// while let Some(buf) = received.next().await {
    ///     let buf = buf?;
    ///     println!("{} bytes", buf.len());
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// # });
    /// ```
    pub fn recv_multishot(&self, ring: &BufRing) -> RecvStream<'_> {
        RecvStream {
            stream: self,
            recv: MultishotRecv::new(ring.clone()),
        }
    }

    /// Writes some of `buf`'s initialized bytes; returns how many. Large writes may go out
    /// as zero-copy sends: see [`set_send_zc_threshold`](TcpStream::set_send_zc_threshold).
    pub async fn write<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        if buf.bytes_init() >= self.send_zc_threshold.load(Ordering::Relaxed) {
            // Boxed: the zero-copy future is large, and inlined it would grow every write.
            return Box::pin(self.send_zc(buf)).await;
        }
        Op::submit(Send::new(self.fd.file_ref(), buf)).await
    }

    /// Makes [`write`](TcpStream::write) (and so `write_all`) send buffers of at least
    /// `bytes` with [`send_zc`](TcpStream::send_zc); `None` (the default) never does.
    ///
    /// Zero-copy pays for large buffers on a real NIC, where the copy into the kernel is the
    /// cost; each such send also waits for the kernel's notification before the buffer comes
    /// back. On loopback the kernel copies anyway, so it does not pay there: measure.
    ///
    /// ```
    /// # coring::runtime::Runtime::new()?.block_on(async {
    /// let listener = coring::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = coring::net::TcpStream::connect(listener.local_addr()?).await?;
    /// stream.set_send_zc_threshold(Some(64 * 1024));
    /// assert_eq!(stream.send_zc_threshold(), Some(64 * 1024));
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_send_zc_threshold(&self, bytes: Option<usize>) {
        let threshold = bytes.unwrap_or(usize::MAX);
        self.send_zc_threshold.store(threshold, Ordering::Relaxed);
    }

    /// The size from which writes go out as zero-copy sends, if set.
    pub fn send_zc_threshold(&self) -> Option<usize> {
        let threshold = self.send_zc_threshold.load(Ordering::Relaxed);
        (threshold != usize::MAX).then_some(threshold)
    }

    /// Writes some of `buf` without copying it into the kernel (`IORING_OP_SEND_ZC`, Linux
    /// 6.0+): worth it for large buffers on real NICs (on loopback the kernel copies anyway).
    /// The buffer comes back only once the kernel's notification says it is done reading it.
    /// On the epoll backend this is a plain send.
    pub async fn send_zc<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        let mut op = MultishotOp::submit(SendZc::new(self.fd.file_ref(), buf));
        let mut submit_error = None;
        while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut op).poll_next(cx)).await {
            if let Err(e) = item {
                submit_error = Some(e);
            }
        }
        let (result, buf) = op
            .into_data()
            .expect("the stream ended, so the kernel is done with the op")
            .into_parts();
        let result = match (result, submit_error) {
            (Some(result), _) => result.map(|n| n as usize),
            (None, Some(e)) => Err(e),
            (None, None) => Err(io::Error::other("coring: SEND_ZC ended without a result")),
        };
        (result, buf)
    }

    /// Writes from several buffers in one `sendmsg`; returns how many bytes went out.
    pub async fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        Op::submit(SendVectored::new(self.fd.file_ref(), bufs)).await
    }

    /// Fills `buf` completely, or fails with `UnexpectedEof`.
    pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> BufResult<(), B> {
        let mut this = self;
        AsyncReadRentExt::read_exact(&mut this, buf).await
    }

    /// Writes every initialized byte of `buf`.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        let mut this = self;
        AsyncWriteRentExt::write_all(&mut this, buf).await
    }

    /// Shuts down the read half, the write half, or both (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        SockRef::from(&self.fd).shutdown(how)
    }

    /// Sets `TCP_NODELAY`: small writes go out at once instead of waiting to be coalesced.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        SockRef::from(&self.fd).set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        SockRef::from(&self.fd).nodelay()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket_addr(SockRef::from(&self.fd).peer_addr()?)
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket_addr(SockRef::from(&self.fd).local_addr()?)
    }

    /// Takes over a connected `std` stream.
    pub fn from_std(stream: std::net::TcpStream) -> TcpStream {
        TcpStream::from_fd(Fd::from_owned(stream.into()))
    }

    /// Closes the connection and reports errors.
    pub async fn close(self) -> io::Result<()> {
        self.fd.close().await
    }
}

crate::socket_fd_traits!(TcpListener);
crate::registered_fd_methods!(TcpListener);

crate::stream_rent_traits!(TcpStream);
crate::socket_fd_traits!(TcpStream);
crate::registered_fd_methods!(TcpStream);

/// Splitting, readiness and socket options.
impl TcpStream {
    /// Splits the stream into halves that can live in different tasks; see
    /// [`OwnedReadHalf`](crate::OwnedReadHalf). Dropping the write half shuts down the write
    /// direction; `reunite` gives the stream back.
    ///
    /// ```no_run
    /// # coring::runtime::Runtime::new().unwrap().block_on(async {
    /// let stream = coring::net::TcpStream::connect("127.0.0.1:8080").await?;
    /// let (read, write) = stream.into_split();
    /// coring::spawn(async move { write.write_all(b"hello").await.0 });
    /// let (res, buf) = read.read(vec![0u8; 1024]).await;
    /// println!("{:?}", &buf[..res?]);
    /// # Ok::<(), std::io::Error>(())
    /// # });
    /// ```
    pub fn into_split(
        self,
    ) -> (
        crate::OwnedReadHalf<TcpStream>,
        crate::OwnedWriteHalf<TcpStream>,
    ) {
        crate::split::split(self)
    }

    /// Waits until the stream is readable (data, end of stream or an error), through the ring
    /// (`IORING_OP_POLL_ADD`), for code that drives the descriptor itself.
    pub async fn readable(&self) -> io::Result<()> {
        crate::ready::ready(&self.fd, crate::ready::READABLE).await
    }

    /// Waits until the stream is writable (or has an error).
    pub async fn writable(&self) -> io::Result<()> {
        crate::ready::ready(&self.fd, crate::ready::WRITABLE).await
    }

    /// Turns TCP keepalive probes on with `Some(idle)` (`SO_KEEPALIVE`, and `TCP_KEEPIDLE`:
    /// the idle time before the first probe, in whole seconds, at least 1) or off with `None`.
    /// Probe interval and count stay at the system's defaults.
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        let socket = SockRef::from(&self.fd);
        match idle {
            Some(idle) => socket.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle)),
            None => socket.set_keepalive(false),
        }
    }

    /// `Some(idle time before the first probe)` if keepalive is on, else `None`.
    pub fn keepalive(&self) -> io::Result<Option<Duration>> {
        let socket = SockRef::from(&self.fd);
        if socket.keepalive()? {
            socket.keepalive_time().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Sets `SO_LINGER`: with `Some(t)`, closing waits up to `t` for unsent data (`Some(0)`
    /// resets the connection instead); `None` restores the default background close. Note
    /// that coring closes through the ring, so a lingering close does not block the thread.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        SockRef::from(&self.fd).set_linger(linger)
    }

    /// `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        SockRef::from(&self.fd).linger()
    }

    /// Sets `SO_SNDBUF`. Linux doubles the value (for bookkeeping) and clamps it to
    /// `net.core.wmem_max`; [`send_buffer_size`](Self::send_buffer_size) reports the result.
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        SockRef::from(&self.fd).set_send_buffer_size(size)
    }

    /// `SO_SNDBUF`, as the kernel reports it.
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        SockRef::from(&self.fd).send_buffer_size()
    }

    /// Sets `SO_RCVBUF` (doubled and clamped to `net.core.rmem_max` by Linux).
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        SockRef::from(&self.fd).set_recv_buffer_size(size)
    }

    /// `SO_RCVBUF`, as the kernel reports it.
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        SockRef::from(&self.fd).recv_buffer_size()
    }

    /// Sets the IPv4 time-to-live (`IP_TTL`) of outgoing packets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        SockRef::from(&self.fd).set_ttl(ttl)
    }

    /// The IPv4 time-to-live (`IP_TTL`).
    pub fn ttl(&self) -> io::Result<u32> {
        SockRef::from(&self.fd).ttl()
    }
}
