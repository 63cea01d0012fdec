//! Aborting a task blocked in `accept`, and an accept whose future is dropped although the
//! kernel accepted a connection: no descriptor may leak, and the orphaned connection must be
//! closed (the client sees end of stream).
//!
//! Every test here counts the process's descriptors, so they run one at a time (`fd_lock`).

mod common;

use std::io::Read;
use std::pin::pin;
use std::time::{Duration, Instant};

use common::{assert_same_fds, fd_lock, open_fds, poll_once, uring, watchdog};
use coring::net::TcpListener;
use coring::runtime::Runtime;

/// Reads from `client` until end of stream, failing after `limit`.
fn expect_eof(client: &mut std::net::TcpStream, limit: Duration) {
    client.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 16];
    match client.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("unexpected {n} bytes from the server side"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the orphaned connection was not closed (read: {e})"),
    }
}

#[test]
fn abort_task_blocked_in_accept_then_connect() {
    watchdog(20, || {
        let _lock = fd_lock();
        let before = open_fds();
        let rt = Runtime::new().unwrap();
        let client = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let acceptor = coring::spawn(async move {
                let res = listener.accept().await;
                panic!("accept returned although nobody connected: {res:?}");
            });
            // Let the accept reach the kernel.
            coring::time::sleep(Duration::from_millis(20)).await;
            assert!(!acceptor.is_finished());
            acceptor.abort();
            let err = acceptor.await.unwrap_err();
            assert!(err.is_cancelled(), "{err}");
            coring::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(
                rt.op_slots(),
                0,
                "the cancelled accept (and listener close) completed"
            );
            // The listener is closed with the aborted task, so the connect is refused.
            let res = std::net::TcpStream::connect(addr);
            assert_eq!(
                res.as_ref().map_err(|e| e.kind()).err(),
                Some(std::io::ErrorKind::ConnectionRefused),
                "listener still open after its task was aborted: {res:?}"
            );
            // Connect to a listener whose accept was aborted but which stays alive.
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let listener = std::rc::Rc::new(listener);
            let l2 = listener.clone();
            let acceptor = coring::spawn(async move { l2.accept().await.map(|_| ()) });
            coring::time::sleep(Duration::from_millis(20)).await;
            acceptor.abort();
            assert!(acceptor.await.unwrap_err().is_cancelled());
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            coring::time::sleep(Duration::from_millis(20)).await;
            // Nobody accepted: the connection sits in the backlog. A new accept gets it.
            let (stream, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            drop(stream);
            coring::time::sleep(Duration::from_millis(20)).await;
            expect_eof(&mut client, Duration::from_secs(2));
            client
        });
        drop(client);
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
        drop(rt);
        assert_same_fds(&before, "after aborting accept and dropping the runtime");
    });
}

#[test]
fn dropped_accept_whose_cqe_is_a_success_closes_the_connection() {
    // The accept SQE and its cancel go to the kernel in the same batch, and a connection is
    // already waiting: the accept succeeds before the cancel, so the orphaned op owns a new
    // descriptor that the runtime must close.
    watchdog(20, || {
        let _lock = fd_lock();
        let before = open_fds();
        let rt = uring().build().unwrap();
        let mut client = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let client = std::net::TcpStream::connect(addr).unwrap();
            {
                let mut accept = pin!(listener.accept());
                assert!(poll_once(accept.as_mut()).is_pending());
            }
            coring::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(rt.op_slots(), 0);
            client
        });
        expect_eof(&mut client, Duration::from_secs(2));
        drop(client);
        drop(rt);
        assert_same_fds(&before, "after an orphaned successful accept");
    });
}

#[test]
fn accept_completed_but_never_collected_closes_the_connection() {
    // The accept completes (the CQE is reaped into the slot) while its future, polled once
    // with a no-op waker, is not polled again; then the future is dropped.
    watchdog(20, || {
        let _lock = fd_lock();
        let before = open_fds();
        let rt = Runtime::new().unwrap();
        let mut client = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut accept = Box::pin(listener.accept());
            assert!(poll_once(accept.as_mut()).is_pending());
            coring::time::sleep(Duration::from_millis(10)).await;
            let client = std::net::TcpStream::connect(addr).unwrap();
            // The accept's completion arrives while this task sleeps.
            coring::time::sleep(Duration::from_millis(30)).await;
            drop(accept);
            coring::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(rt.op_slots(), 0);
            client
        });
        expect_eof(&mut client, Duration::from_secs(2));
        drop(client);
        drop(rt);
        assert_same_fds(&before, "after an uncollected accept completion");
    });
}

#[test]
fn many_aborted_acceptors_with_connection_storm() {
    // Abort acceptors while connections keep arriving: whichever way each race ends, every
    // connection is either accepted (and closed by us) or closed by the runtime.
    watchdog(30, || {
        let _lock = fd_lock();
        let before = open_fds();
        let rt = Runtime::new().unwrap();
        let clients = rt.block_on(async {
            let listener = std::rc::Rc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
            let addr = listener.local_addr().unwrap();
            let mut clients = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            for round in 0..200 {
                assert!(Instant::now() < deadline, "storm too slow at round {round}");
                let l = listener.clone();
                let task = coring::spawn(async move {
                    let (_stream, _) = l.accept().await.unwrap();
                });
                if round % 2 == 0 {
                    coring::task::yield_now().await;
                }
                clients.push(std::net::TcpStream::connect(addr).unwrap());
                if round % 3 == 0 {
                    coring::task::yield_now().await;
                }
                task.abort();
                let _ = task.await;
            }
            coring::time::sleep(Duration::from_millis(50)).await;
            clients
        });
        drop(rt);
        drop(clients);
        assert_same_fds(&before, "after 200 aborted acceptors");
    });
}
