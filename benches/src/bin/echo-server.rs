//! Echo servers for the grid: `echo-server NAME ADDR`, one thread each.
//!
//! Every runtime runs the user loop of `examples/echo.rs`: accept; per connection, read up to
//! 4096 bytes and write all of them back, TCP_NODELAY on. Each prints
//! `listening on ADDR` on stdout when ready (ADDR may end in `:0`; the bound port is printed).
//!
//! NAME: coring, monoio, glommio, tokio-uring, compio, tokio, floor-default, floor-tuned,
//! floor-best; and variants of the loop:
//! - `coring-reg`: the plain loop, each accepted stream registered in the ring's file table
//!   first (`TcpStream::register`: ops name a fixed-file slot).
//! - `coring-ms`: each connection receives through `TcpStream::recv_multishot` from one
//!   `BufRing` shared by all connections (4096 buffers of 4096 bytes, as floor-best) and
//!   writes each received buffer back with `write_all`; an idle connection holds no buffer.
//!   `coring-ms-512`: the same with a 512-buffer ring (2 MiB), sized for a few hundred
//!   connections active at once rather than for peak throughput (the memory benchmark).
//! - `coring-sqpoll`: the plain loop on a runtime with SQPOLL (the kernel's SQ thread, idle
//!   10 ms, submits; the worker enters only to wait for completions). The SQ thread shares
//!   the server's CPU: on this 2-core machine it is for counting enters, not for speed.
//! - `tokio-readable`: tokio with no buffer while idle: `stream.readable().await`, then
//!   `try_read` into one buffer shared by the thread, `try_write` back from it (only what the
//!   socket does not take at once is copied into a buffer of the connection).
//!
//! Every server raises its `RLIMIT_NOFILE` soft limit to the hard limit (the memory benchmark
//! holds 10,000 connections).
//!
//! The coring server answers SIGUSR1 by printing `metrics enters=.. sqes=.. cqes=..` (its
//! `Runtime::metrics()`) on stderr; the runner sends it at the edges of the measured window.

use std::io;

const SERVERS: &[&str] = &[
    "coring",
    "monoio",
    "glommio",
    "tokio-uring",
    "compio",
    "tokio",
    "floor-default",
    "floor-tuned",
    "floor-best",
    "coring-ms",
    "coring-sqpoll",
    "tokio-readable",
    "coring-2t",
    "monoio-2t",
    "tokio-2t",
];

/// `coring-sqpoll`: how long the kernel's SQ thread polls before it sleeps.
const SQPOLL_IDLE_MS: u64 = 10;

fn ready(addr: std::net::SocketAddr) {
    println!("listening on {addr}");
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args[0] == "--help" || args[0] == "-h" {
        eprintln!(
            "usage: echo-server NAME [ADDR]\n  NAME: {}",
            SERVERS.join(", ")
        );
        std::process::exit(2);
    }
    let name = args[0].as_str();
    if let Err(e) = coring_bench::raise_nofile_limit() {
        eprintln!("warning: cannot raise RLIMIT_NOFILE: {e}");
    }
    let addr = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    match name {
        "coring" => coring_server::run(&addr, coring_server::Loop::Plain),
        "coring-reg" => coring_server::run(&addr, coring_server::Loop::Registered),
        "coring-ms" => coring_server::run(&addr, coring_server::Loop::Multishot(4096)),
        "coring-sqpoll" => coring_server::run_on(
            coring::runtime::Runtime::builder()
                .sqpoll(std::time::Duration::from_millis(SQPOLL_IDLE_MS))
                .build()?,
            &addr,
            coring_server::Loop::Plain,
        ),
        "coring-ms-512" => coring_server::run(&addr, coring_server::Loop::Multishot(512)),
        "tokio-readable" => tokio_server::run_readable(&addr),
        "monoio" => monoio_server::run(&addr),
        "glommio" => glommio_server::run(&addr),
        "tokio-uring" => tokio_uring_server::run(&addr),
        "compio" => compio_server::run(&addr),
        "tokio" => tokio_server::run(&addr),
        "coring-2t" => two_threads::coring(&addr),
        "monoio-2t" => two_threads::monoio(&addr),
        "tokio-2t" => two_threads::tokio(&addr),
        "floor-default" | "floor-tuned" | "floor-best" => {
            let listener = coring_bench::std_listener(&addr)?;
            ready(listener.local_addr()?);
            match name {
                "floor-default" => coring_bench::floor::run_simple(listener, false),
                "floor-tuned" => coring_bench::floor::run_simple(listener, true),
                _ => coring_bench::floor::run_best(listener),
            }
        }
        other => {
            eprintln!("unknown server {other:?}; one of: {}", SERVERS.join(", "));
            std::process::exit(2);
        }
    }
}

mod coring_server {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicI32, Ordering};

    use coring::buf::IoBuf;
    use coring::runtime::Runtime;

    /// Write end of the self-pipe the SIGUSR1 handler writes to.
    static SIGNAL_FD: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn on_usr1(_: libc::c_int) {
        let fd = SIGNAL_FD.load(Ordering::Relaxed);
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a live local.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }

    /// The size of each buffer in the shared ring of `coring-ms` (floor-best's).
    const RING_BUF_LEN: u32 = 4096;

    /// Which user loop a coring server runs.
    pub enum Loop {
        /// `examples/echo.rs`.
        Plain,
        /// The same, each accepted stream registered in the ring's file table first.
        Registered,
        /// Receives through one shared buffer ring of this many buffers.
        Multishot(u16),
    }

    /// `user_loop` on an explicit `Runtime` (default builder, like `#[coring::main]`), plus a
    /// side task that prints the runtime's metrics when SIGUSR1 arrives. The side task has
    /// one read in flight on a socketpair and costs nothing while no signal comes.
    pub fn run(addr: &str, user_loop: Loop) -> std::io::Result<()> {
        run_on(Runtime::new()?, addr, user_loop)
    }

    /// [`run`] on a runtime built by the caller (`coring-sqpoll`).
    pub fn run_on(rt: Runtime, addr: &str, user_loop: Loop) -> std::io::Result<()> {
        // Leaked so the metrics task can hold a `'static` reference (the process ends by signal).
        let rt: &'static Runtime = Box::leak(Box::new(rt));
        eprintln!("coring ring flags: {}", rt.ring_flags());
        let mut fds = [0i32; 2];
        // SAFETY: socketpair writes two fds into the live array.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        } != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        SIGNAL_FD.store(fds[1], Ordering::Relaxed);
        // SAFETY: installs a handler that only calls write(2).
        unsafe { libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t) };
        // SAFETY: fds[0] was just created and is owned by nobody else. coring's TcpStream only
        // issues recv/read on it, which a unix stream socket supports.
        let signal_rx = unsafe { std::net::TcpStream::from(OwnedFd::from_raw_fd(fds[0])) };
        let rt_ref = rt;
        rt.block_on(async move {
            let signals = coring::net::TcpStream::from_std(signal_rx);
            coring::spawn(async move {
                let mut buf = vec![0u8; 64];
                loop {
                    let (res, b) = signals.read(buf).await;
                    buf = b;
                    if !matches!(res, Ok(n) if n > 0) {
                        return;
                    }
                    let m = rt_ref.metrics();
                    eprintln!(
                        "metrics enters={} sqes={} cqes={} in_flight={}",
                        m.enters, m.sqes, m.cqes, m.ops_in_flight
                    );
                }
            });
            match user_loop {
                Loop::Plain => echo_main(addr, false).await,
                Loop::Registered => echo_main(addr, true).await,
                Loop::Multishot(ring_bufs) => echo_multishot(addr, ring_bufs).await,
            }
        })
    }

    /// The echo loop on a multishot receive: one `BufRing` for every connection; each
    /// received buffer is written back as it is and returns to the ring when dropped.
    async fn echo_multishot(addr: &str, ring_bufs: u16) -> std::io::Result<()> {
        let ring = coring::buf::BufRing::new(ring_bufs, RING_BUF_LEN)?;
        let listener = coring::net::TcpListener::bind(addr).await?;
        super::ready(listener.local_addr()?);
        loop {
            let (stream, _peer) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let ring = ring.clone();
            coring::spawn(async move {
                let mut received = stream.recv_multishot(&ring);
                while let Some(Ok(buf)) = received.next().await {
                    let (res, _buf) = stream.write_all(buf).await;
                    if res.is_err() {
                        return;
                    }
                }
            });
        }
    }

    /// The user loop of `examples/echo.rs`, verbatim.
    async fn echo_main(addr: &str, register: bool) -> std::io::Result<()> {
        let listener = coring::net::TcpListener::bind(addr).await?;
        super::ready(listener.local_addr()?);
        loop {
            let (stream, _peer) = listener.accept().await?;
            stream.set_nodelay(true)?;
            coring::spawn(async move {
                if register && stream.register().await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; 4096];
                loop {
                    let (res, b) = stream.read(buf).await;
                    let n = match res {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let (res, b) = stream.write_all(b.slice(..n)).await;
                    buf = b.into_inner();
                    if res.is_err() {
                        return;
                    }
                }
            });
        }
    }
}

mod monoio_server {
    use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

    pub fn run(addr: &str) -> std::io::Result<()> {
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(1024)
            .build()?;
        rt.block_on(async {
            let listener = monoio::net::TcpListener::bind(addr)?;
            super::ready(listener.local_addr()?);
            loop {
                let (mut stream, _peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                monoio::spawn(async move {
                    let mut buf = Vec::with_capacity(4096);
                    loop {
                        // monoio reads into the Vec's spare capacity and sets its length.
                        let (res, b) = stream.read(buf).await;
                        match res {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let (res, mut b) = stream.write_all(b).await;
                        b.clear();
                        buf = b;
                        if res.is_err() {
                            return;
                        }
                    }
                });
            }
        })
    }
}

mod glommio_server {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use glommio::{LocalExecutorBuilder, Placement};

    pub fn run(addr: &str) -> std::io::Result<()> {
        let ex = LocalExecutorBuilder::new(Placement::Unbound)
            .make()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        ex.run(async {
            let listener = glommio::net::TcpListener::bind(addr).map_err(std::io::Error::from)?;
            super::ready(listener.local_addr().map_err(std::io::Error::from)?);
            loop {
                let mut stream = listener.accept().await.map_err(std::io::Error::from)?;
                stream.set_nodelay(true).map_err(std::io::Error::from)?;
                glommio::spawn_local(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let n = match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if stream.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                })
                .detach();
            }
        })
    }
}

mod tokio_uring_server {
    pub fn run(addr: &str) -> std::io::Result<()> {
        let addr: std::net::SocketAddr = addr.parse().map_err(std::io::Error::other)?;
        tokio_uring::start(async move {
            let listener = tokio_uring::net::TcpListener::bind(addr)?;
            super::ready(listener.local_addr()?);
            loop {
                let (stream, _peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tokio_uring::spawn(async move {
                    let mut buf = Vec::with_capacity(4096);
                    loop {
                        // tokio-uring reads into the Vec's spare capacity and sets its length.
                        let (res, b) = stream.read(buf).await;
                        match res {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let (res, mut b) = stream.write_all(b).await;
                        b.clear();
                        buf = b;
                        if res.is_err() {
                            return;
                        }
                    }
                });
            }
        })
    }
}

mod compio_server {
    use compio::io::{AsyncRead, AsyncWriteExt};

    pub fn run(addr: &str) -> std::io::Result<()> {
        let rt = compio::runtime::Runtime::new()?;
        rt.block_on(async {
            let listener = compio::net::TcpListener::bind(addr).await?;
            super::ready(listener.local_addr()?);
            loop {
                let (mut stream, _peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                compio::runtime::spawn(async move {
                    let mut buf = Vec::with_capacity(4096);
                    loop {
                        // compio reads into the Vec's spare capacity and sets its length.
                        let compio::BufResult(res, b) = stream.read(buf).await;
                        match res {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let compio::BufResult(res, mut b) = stream.write_all(b).await;
                        b.clear();
                        buf = b;
                        if res.is_err() {
                            return;
                        }
                    }
                })
                .detach();
            }
        })
    }
}

mod tokio_server {
    use std::cell::RefCell;
    use std::io::ErrorKind;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    thread_local! {
        /// The read buffer every connection of `tokio-readable` shares.
        static SHARED: RefCell<Vec<u8>> = RefCell::new(vec![0u8; 4096]);
    }

    /// What one `try_read` + `try_write` pass left to do.
    enum Step {
        /// Nothing was ready after all (a spurious readiness).
        Again,
        /// End of stream or an error.
        Close,
        /// Echoed what was read, except these bytes the socket did not take at once.
        Rest(Vec<u8>),
    }

    /// Reads into the shared buffer and writes back from it without waiting; only what the
    /// socket did not take is copied out (held across the await that writes it).
    fn echo_step(stream: &tokio::net::TcpStream) -> Step {
        SHARED.with(|shared| {
            let mut buf = shared.borrow_mut();
            let n = match stream.try_read(&mut buf) {
                Ok(0) => return Step::Close,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Again,
                Err(_) => return Step::Close,
            };
            let mut off = 0;
            while off < n {
                match stream.try_write(&buf[off..n]) {
                    Ok(k) => off += k,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => return Step::Close,
                }
            }
            Step::Rest(buf[off..n].to_vec())
        })
    }

    /// `tokio` without a buffer per idle connection: wait for readiness, then echo through
    /// the thread's shared buffer.
    pub fn run_readable(addr: &str) -> std::io::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            super::ready(listener.local_addr()?);
            loop {
                let (mut stream, _peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tokio::spawn(async move {
                    loop {
                        if stream.readable().await.is_err() {
                            return;
                        }
                        match echo_step(&stream) {
                            Step::Again => {}
                            Step::Close => return,
                            Step::Rest(rest) => {
                                if !rest.is_empty() && stream.write_all(&rest).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        })
    }

    pub fn run(addr: &str) -> std::io::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            super::ready(listener.local_addr()?);
            loop {
                let (mut stream, _peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let n = match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if stream.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        })
    }
}

/// Two-thread servers, the thread-per-core shape: coring and monoio run one runtime per
/// thread, each with its own `SO_REUSEPORT` listener on one port; tokio runs its
/// multi-thread scheduler with two workers and one listener. Same user loop as above.
mod two_threads {
    use std::net::SocketAddr;

    /// Binds an ephemeral port once, so both reuseport listeners can share it.
    fn pick_addr(addr: &str) -> std::io::Result<SocketAddr> {
        let probe = std::net::TcpListener::bind(addr)?;
        probe.local_addr()
    }

    pub fn coring(addr: &str) -> std::io::Result<()> {
        use coring::buf::IoBuf;
        let addr = pick_addr(addr)?;
        let rt = coring::runtime::Runtime::builder()
            .worker_threads(2)
            .build()?;
        let results = rt.block_on_each(move |worker| async move {
            let listener = coring::net::TcpListener::bind_reuseport(addr).await?;
            if worker == 0 {
                super::ready(listener.local_addr()?);
            }
            loop {
                let (stream, _peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                coring::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let (res, b) = stream.read(buf).await;
                        let n = match res {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let (res, b) = stream.write_all(b.slice(..n)).await;
                        buf = b.into_inner();
                        if res.is_err() {
                            return;
                        }
                    }
                });
            }
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        });
        for r in results {
            r.map_err(std::io::Error::from)??;
        }
        Ok(())
    }

    pub fn monoio(addr: &str) -> std::io::Result<()> {
        use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
        let addr = pick_addr(addr)?;
        let serve = move |announce: bool| -> std::io::Result<()> {
            let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .with_entries(1024)
                .build()?;
            rt.block_on(async move {
                let opts = monoio::net::ListenerOpts::default().reuse_port(true);
                let listener = monoio::net::TcpListener::bind_with_config(addr, &opts)?;
                if announce {
                    super::ready(listener.local_addr()?);
                }
                loop {
                    let (mut stream, _peer) = listener.accept().await?;
                    stream.set_nodelay(true)?;
                    monoio::spawn(async move {
                        let mut buf = Vec::with_capacity(4096);
                        loop {
                            let (res, b) = stream.read(buf).await;
                            match res {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            let (res, mut b) = stream.write_all(b).await;
                            b.clear();
                            buf = b;
                            if res.is_err() {
                                return;
                            }
                        }
                    });
                }
            })
        };
        let second = std::thread::spawn(move || serve(false));
        let first = serve(true);
        second
            .join()
            .map_err(|_| std::io::Error::other("monoio thread panicked"))??;
        first
    }

    pub fn tokio(addr: &str) -> std::io::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_io()
            .build()?;
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            super::ready(listener.local_addr()?);
            loop {
                let (mut stream, _peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let n = match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if stream.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        })
    }
}
