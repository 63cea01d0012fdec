//! Dropping a socket closes it at once: the peer sees end of stream (and a dropped listener
//! refuses connections) even when the dropping thread blocks right after, as with std and
//! tokio. On io_uring the close is an `IORING_OP_CLOSE`; these tests fail if it waits for the
//! runtime's next turn instead of reaching the kernel with the drop. Registered descriptors
//! (whose table slot also holds the socket open) and drops on another thread are covered too.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::Duration;

use common::{run, tcp_pair};
use coring::net::{TcpListener, UnixStream};

/// How long the peer waits for end of stream; the dropping thread blocks longer than that.
const EOF_WITHIN: Duration = Duration::from_secs(3);

/// Reads from `peer` on another thread; the returned channel yields the first read's result.
fn read_on_a_thread(
    mut peer: impl Read + Send + 'static,
) -> std_mpsc::Receiver<std::io::Result<usize>> {
    let (tx, rx) = std_mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 64];
        let _ = tx.send(peer.read(&mut buf));
    });
    rx
}

/// Blocks this thread (the runtime's) until the peer's read returns; asserts it saw EOF.
fn block_until_eof(read: std_mpsc::Receiver<std::io::Result<usize>>, what: &str) {
    let result = read
        .recv_timeout(EOF_WITHIN + Duration::from_secs(1))
        .unwrap_or_else(|_| {
            panic!("{what}: the peer saw no end of stream while the dropping thread was blocked")
        });
    match result {
        Ok(0) => {}
        Ok(n) => panic!("{what}: the peer read {n} bytes instead of end of stream"),
        Err(e) => panic!("{what}: the peer's read failed instead of seeing end of stream: {e}"),
    }
}

async fn dropped_tcp_stream_is_closed_at_once(register: bool) {
    let (server, client) = tcp_pair().await.unwrap();
    if register {
        server.register().await.unwrap();
        let on_ring = coring::runtime::driver_kind() == Some(coring::runtime::DriverKind::IoUring);
        assert_eq!(server.is_registered(), on_ring);
    }
    // One round trip through the ring first.
    let (res, _) = server.write_all(b"ping").await;
    res.unwrap();
    let mut got = [0u8; 4];
    (&client).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    client.set_read_timeout(Some(EOF_WITHIN)).unwrap();
    let read = read_on_a_thread(client);
    drop(server);
    block_until_eof(
        read,
        if register {
            "registered TcpStream"
        } else {
            "TcpStream"
        },
    );
}

#[test]
fn a_dropped_tcp_stream_is_closed_before_the_thread_blocks() {
    run(30, || dropped_tcp_stream_is_closed_at_once(false));
}

#[test]
fn a_dropped_registered_tcp_stream_is_closed_before_the_thread_blocks() {
    run(30, || dropped_tcp_stream_is_closed_at_once(true));
}

#[test]
fn a_dropped_unix_stream_is_closed_before_the_thread_blocks() {
    run(30, || async {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let theirs = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(theirs));
        theirs.set_read_timeout(Some(EOF_WITHIN)).unwrap();
        let read = read_on_a_thread(theirs);
        drop(ours);
        block_until_eof(read, "UnixStream");
    });
}

#[test]
fn a_dropped_listener_refuses_connections_before_the_thread_blocks() {
    run(30, || async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        drop(listener);
        // A blocking connect from this very thread: the runtime does not turn meanwhile.
        let err = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .expect_err("a dropped listener still accepted a connection");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    });
}

#[test]
fn a_registered_stream_dropped_on_a_plain_thread_is_closed_while_its_runtime_is_parked() {
    run(30, || async {
        let (server, client) = tcp_pair().await.unwrap();
        server.register().await.unwrap();
        client.set_read_timeout(Some(EOF_WITHIN)).unwrap();
        let read = read_on_a_thread(client);
        // Dropped elsewhere while this runtime waits for the peer's verdict in the ring.
        let dropper = thread::spawn(move || drop(server));
        let (tx, rx) = coring::sync::oneshot::channel();
        thread::spawn(move || {
            let _ = tx.send(read.recv_timeout(EOF_WITHIN + Duration::from_secs(1)));
        });
        let result = rx.await.unwrap().expect("the peer saw no end of stream");
        assert_eq!(
            result.unwrap(),
            0,
            "the peer read data instead of end of stream"
        );
        dropper.join().unwrap();
    });
}
