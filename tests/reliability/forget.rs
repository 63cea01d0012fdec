//! Item 2: `mem::forget` of in-flight op futures. Extends `tests/cancel_read.rs` (which
//! forgets one socket read) to every kind of op that owns kernel-visible memory or creates a
//! resource: accept, recv, a multishot recv on a provided-buffer ring, a kernel timeout, a
//! pipe read and a connect, and to a thousand forgotten ops on a tiny ring. A forgotten op
//! leaks its memory (never freed, so the kernel cannot write into freed memory) but shutdown
//! must still cancel and reap it: `shutdown() == 0`, promptly, no op slot left, and every
//! descriptor the test opened closed once the runtime is gone.

use std::future::Future;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::common::{open_fds, poll_once, tcp_pair, watchdog};
use crate::{serial, uring};
use coring::buf::BufRing;
use coring::fs::File;
use coring::net::TcpListener;
use coring::op::net::Connect;
use coring::op::timeout::Timeout;
use coring::op::Op;
use coring::runtime::{Builder, Runtime};

/// Polls `fut` once (so its op is submitted and waiting) and forgets it.
fn submit_and_forget<F: Future>(fut: F) {
    let mut fut = Box::pin(fut);
    assert!(
        poll_once(fut.as_mut()).is_pending(),
        "the op was expected to wait"
    );
    std::mem::forget(fut);
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just created both descriptors; nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn forget_every_kind(builder: Builder, what: &str) {
    let before = open_fds();
    let rt = builder.build().unwrap();
    eprintln!("{what}: runtime's own descriptors: {:?}", new_fds(&before));
    let peers = rt.block_on(async {
        let mut peers = Vec::new();
        // accept on a listener nobody connects to
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        submit_and_forget(listener.accept());
        drop(listener);
        // recv on an idle connection
        let (server, client) = tcp_pair().await.unwrap();
        submit_and_forget(server.read(vec![0u8; 4096]));
        peers.push(client);
        drop(server);
        // a multishot recv into a provided-buffer ring: the stream and the pending `next`
        let (server, client) = tcp_pair().await.unwrap();
        let ring = BufRing::new(8, 256).unwrap();
        let mut stream = server.recv_multishot(&ring);
        submit_and_forget(stream.next());
        std::mem::forget(stream);
        std::mem::forget(ring);
        peers.push(client);
        drop(server);
        // a one-hour kernel timeout
        submit_and_forget(Op::submit(Timeout::new(Duration::from_secs(3600))));
        // a read on a pipe nobody writes to
        let (r, w) = pipe();
        let file = File::from_std(std::fs::File::from(r));
        submit_and_forget(file.read_at(vec![0u8; 64], 0));
        drop(file);
        // a connect to a listener whose accept queue is full (it never completes)
        // (the socket is ours, outside the op, so forgetting the op leaks no socket).
        let (full, addr, queued) = full_listener();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let mut connect = Box::pin(Op::submit(Connect::new(socket.as_raw_fd(), addr)));
        if poll_once(connect.as_mut()).is_pending() {
            std::mem::forget(connect);
        }
        coring::time::sleep(Duration::from_millis(20)).await;
        (peers, w, full, queued, socket)
    });
    let in_flight = rt.metrics().ops_in_flight;
    assert!(
        in_flight >= 5,
        "{what}: forgotten ops in flight: {in_flight}"
    );
    let start = Instant::now();
    assert_eq!(rt.shutdown(), 0, "{what}: shutdown left ops to the kernel");
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "{what}: shutdown took {took:?}"
    );
    assert_eq!(rt.op_slots(), 0, "{what}: slots of forgotten ops remain");
    drop(rt);
    drop(peers);
    // Every socket, pipe and listener the forgotten ops referred to was closed by its owner.
    // What a forgotten op does keep is its `Rc` of the driver, so the driver itself is never
    // dropped: its ring (or epoll) descriptor and its eventfd stay open, and nothing else.
    let deadline = Instant::now() + Duration::from_secs(2);
    let leaked = loop {
        let leaked: Vec<(i32, String)> = open_fds()
            .into_iter()
            .filter(|(fd, target)| !before.contains_key(fd) && !is_listing(target))
            .collect();
        let only_driver = leaked.iter().all(|(_, target)| is_driver_fd(target));
        if only_driver || Instant::now() >= deadline {
            break leaked;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        leaked.iter().all(|(_, target)| is_driver_fd(target)),
        "{what}: descriptors other than the leaked driver's are still open: {leaked:?}"
    );
    eprintln!("{what}: forgotten ops keep the driver alive: {leaked:?}");
    assert!(
        leaked.len() <= 2,
        "{what}: more than one driver leaked: {leaked:?}"
    );
    // The thread can run another runtime, and it works.
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (server, client) = tcp_pair().await.unwrap();
        use std::io::Write;
        (&client).write_all(b"still fine").unwrap();
        let (res, buf) = server.read_exact(vec![0u8; 10]).await;
        res.unwrap();
        assert_eq!(buf, b"still fine");
    });
    crate::finish(&rt);
}

fn is_driver_fd(target: &str) -> bool {
    [
        "anon_inode:[io_uring]",
        "anon_inode:[eventfd]",
        "anon_inode:[eventpoll]",
    ]
    .contains(&target)
}

/// The `/proc/self/fd` listing's own descriptor, which `open_fds` may catch.
fn is_listing(target: &str) -> bool {
    target.starts_with("/proc/") && target.ends_with("/fd")
}

fn new_fds(before: &std::collections::BTreeMap<i32, String>) -> Vec<(i32, String)> {
    open_fds()
        .into_iter()
        .filter(|(fd, target)| !before.contains_key(fd) && !is_listing(target))
        .collect()
}

/// A listener with a backlog of 0 whose queue is already full, so a further connect waits.
fn full_listener() -> (socket2::Socket, std::net::SocketAddr, Vec<socket2::Socket>) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut queued = Vec::new();
    for _ in 0..4 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        queued.push(s);
    }
    std::thread::sleep(Duration::from_millis(20));
    (listener, addr, queued)
}

#[test]
fn forgotten_ops_of_every_kind_are_reaped_by_shutdown_on_io_uring() {
    let _serial = serial();
    watchdog(30, || forget_every_kind(uring(), "io_uring"));
}

#[test]
fn forgotten_ops_of_every_kind_are_reaped_by_shutdown_on_the_default_backend() {
    let _serial = serial();
    watchdog(30, || {
        forget_every_kind(Runtime::builder(), "default backend")
    });
}

#[test]
fn a_thousand_forgotten_ops_on_a_tiny_ring() {
    // More forgotten ops than the SQ and CQ hold: their submissions wait in the backlog, and
    // shutdown's cancels must get through the same backlog.
    let _serial = serial();
    watchdog(30, || {
        let rt = uring().entries(4).cq_entries(8).build().unwrap();
        rt.block_on(async {
            for i in 0..1000u64 {
                // Half of them expire during the run (their CQEs land in forgotten slots).
                let after = if i % 2 == 0 { 3_600_000 } else { 1 + i % 7 };
                let mut op: Pin<Box<Op<Timeout>>> =
                    Box::pin(Op::submit(Timeout::new(Duration::from_millis(after))));
                let _ = poll_once(op.as_mut());
                std::mem::forget(op);
            }
            coring::time::sleep(Duration::from_millis(30)).await;
        });
        assert!(rt.op_slots() >= 500, "slots: {}", rt.op_slots());
        let start = Instant::now();
        crate::finish(&rt);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    });
}
