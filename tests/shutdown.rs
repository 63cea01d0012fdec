//! Shutting a runtime down with work pending (accept, recv, a blocking file read, a long
//! sleep, a task that panicked out of block_on) is prompt and leaks nothing: no op slot after
//! `shutdown`, and the process's descriptors back to where they were once it is dropped.
//!
//! Every test here counts the process's descriptors, so they run one at a time (`fd_lock`).

mod common;

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use common::{assert_same_fds, fd_is_open, fd_lock, open_fds, plain_block_on, watchdog, TempDir};
use coring::fs::{File, OpenOptions};
use coring::net::{TcpListener, TcpStream};
use coring::runtime::Runtime;

const PROMPT: Duration = Duration::from_secs(2);

fn mkfifo(dir: &TempDir, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
    path
}

/// Starts tasks blocked in accept, recv, a FIFO read and a long sleep; returns the std peers
/// that must stay open so nothing completes on its own.
fn start_pending_work(rt: &Runtime, dir: &TempDir) -> Vec<std::net::TcpStream> {
    let fifo = mkfifo(dir, "fifo");
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        coring::spawn(async move {
            let res = listener.accept().await;
            panic!("accept completed: {res:?}");
        });
        let mut peers = Vec::new();
        for _ in 0..4 {
            let (server, client) = common::tcp_pair().await.unwrap();
            peers.push(client);
            coring::spawn(async move {
                let (res, _) = server.read(vec![0u8; 1024]).await;
                panic!("recv completed: {res:?}");
            });
        }
        // Opened read-write, a FIFO never blocks the open, and a read waits for a writer's data.
        let pipe = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .await
            .unwrap();
        coring::spawn(async move {
            let (res, _) = pipe.read_at(vec![0u8; 64], 0).await;
            panic!("fifo read completed: {res:?}");
        });
        // A connection to a listener nobody accepts on: the read never completes.
        let quiet = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let quiet_addr = quiet.local_addr().unwrap();
        coring::spawn(async move {
            coring::time::sleep(Duration::from_secs(3600)).await;
            drop(quiet);
            panic!("slept an hour");
        });
        let connect = TcpStream::connect(quiet_addr).await.unwrap();
        coring::spawn(async move {
            let (res, _) = connect.read(vec![0u8; 16]).await;
            panic!("read on an unaccepted connection completed: {res:?}");
        });
        // Let everything reach the kernel.
        coring::time::sleep(Duration::from_millis(50)).await;
        peers
    })
}

#[test]
fn shutdown_with_pending_ops_is_prompt_and_complete() {
    watchdog(30, || {
        let _lock = fd_lock();
        let dir = TempDir::new();
        let before = open_fds();
        let rt = Runtime::new().unwrap();
        let peers = start_pending_work(&rt, &dir);
        assert!(
            rt.tasks() >= 8,
            "the pending tasks are alive: {}",
            rt.tasks()
        );
        assert!(rt.metrics().ops_in_flight >= 7, "{:?}", rt.metrics());
        let start = Instant::now();
        let stuck = rt.shutdown();
        let took = start.elapsed();
        assert_eq!(stuck, 0, "ops that did not finish at shutdown");
        assert!(took < PROMPT, "shutdown took {took:?}");
        assert_eq!(rt.op_slots(), 0);
        assert_eq!(rt.tasks(), 0);
        assert_eq!(rt.metrics().ops_in_flight, 0);
        // A second shutdown is a no-op.
        assert_eq!(rt.shutdown(), 0);
        drop(rt);
        drop(peers);
        assert_same_fds(&before, "after shutdown and drop");
    });
}

#[test]
fn drop_with_pending_ops_is_prompt_and_complete() {
    watchdog(30, || {
        let _lock = fd_lock();
        let dir = TempDir::new();
        let before = open_fds();
        let rt = Runtime::new().unwrap();
        let peers = start_pending_work(&rt, &dir);
        let start = Instant::now();
        drop(rt);
        let took = start.elapsed();
        assert!(took < PROMPT, "drop took {took:?}");
        // The peers of the recvs see their connections closed by the runtime's drop.
        for mut p in peers {
            p.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut b = [0u8; 4];
            let n = std::io::Read::read(&mut p, &mut b);
            assert!(
                matches!(n, Ok(0))
                    || n.as_ref()
                        .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
                "the runtime's sockets must be closed: {n:?}"
            );
        }
        assert_same_fds(&before, "after drop");
    });
}

#[test]
fn block_on_panicking_with_ops_in_flight_then_drop() {
    watchdog(30, || {
        let _lock = fd_lock();
        let before = open_fds();
        let rt = Runtime::new().unwrap();
        let peer = std::cell::RefCell::new(None);
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                let (server, client) = common::tcp_pair().await.unwrap();
                *peer.borrow_mut() = Some(client);
                let mut read = Box::pin(server.read(vec![0u8; 128]));
                assert!(common::poll_once(read.as_mut()).is_pending());
                coring::time::sleep(Duration::from_millis(10)).await;
                panic!("boom with a read in flight");
            })
        }));
        assert!(res.is_err());
        // The main future was dropped while unwinding: its read is cancelled on the next turn
        // or at shutdown.
        let start = Instant::now();
        assert_eq!(rt.shutdown(), 0);
        assert!(start.elapsed() < PROMPT);
        assert_eq!(rt.op_slots(), 0);
        drop(rt);
        drop(peer);
        assert_same_fds(&before, "after a panicking block_on");
    });
}

#[test]
fn block_on_after_shutdown_fails_fast() {
    watchdog(20, || {
        let _lock = fd_lock();
        let dir = TempDir::new();
        let path = dir.join("f");
        std::fs::write(&path, b"data").unwrap();
        let before = open_fds();
        let rt = Runtime::new().unwrap();
        rt.block_on(coring::time::sleep(Duration::from_millis(1)));
        assert_eq!(rt.shutdown(), 0);
        // New I/O is refused with an error, spawned tasks are cancelled, nothing hangs.
        let res = rt.block_on(async { File::open(&path).await });
        let err = res.unwrap_err();
        assert!(err.to_string().contains("shutting down"), "{err}");
        let joined = rt.block_on(async { coring::spawn(async { 1 }).await });
        assert!(joined.unwrap_err().is_cancelled());
        assert_eq!(rt.block_on(async { 7 }), 7);
        drop(rt);
        assert_same_fds(&before, "after use past shutdown");
    });
}

#[test]
fn close_that_cannot_be_submitted_still_closes_the_descriptor() {
    // `File::close` consumes the file. When the op cannot reach a ring (no runtime on this
    // thread, or one shutting down) the descriptor must still be released.
    watchdog(20, || {
        let _lock = fd_lock();
        let dir = TempDir::new();
        let path = dir.join("f");
        std::fs::write(&path, b"data").unwrap();

        let file = File::from_std(std::fs::File::open(&path).unwrap());
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        // With no ring to take the op, `close` falls back to close(2) and reports its result.
        let res = plain_block_on(file.close(), Duration::from_secs(2));
        res.expect("close outside a runtime closes with close(2)");
        assert!(
            !fd_is_open(fd),
            "fd {fd} leaked by a close outside any runtime"
        );

        let rt = Runtime::new().unwrap();
        assert_eq!(rt.shutdown(), 0);
        let file = File::from_std(std::fs::File::open(&path).unwrap());
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let _ = rt.block_on(file.close());
        assert!(!fd_is_open(fd), "fd {fd} leaked by a close after shutdown");
    });
}

#[test]
fn socket_dropped_at_the_end_of_block_on_is_closed_when_it_returns() {
    // Dropping a socket inside the runtime queues an IORING_OP_CLOSE. When that happens as the
    // block_on future finishes, nothing must keep the descriptor open until some later
    // block_on: the peer should see end of stream while the runtime is merely idle.
    watchdog(20, || {
        let _lock = fd_lock();
        let before = open_fds();
        let rt = Runtime::new().unwrap();
        let after_rt = open_fds();
        let mut client = rt.block_on(async {
            let (server, client) = common::tcp_pair().await.unwrap();
            drop(server);
            client
        });
        client
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut b = [0u8; 4];
        let res = std::io::Read::read(&mut client, &mut b);
        let fds_now = open_fds();
        drop(rt);
        drop(client);
        assert_same_fds(&before, "after drop");
        assert!(
            matches!(res, Ok(0)),
            "peer did not see the close while the runtime was idle: {res:?}; \
             fds still open besides the client: {}",
            fds_now.len() as isize - after_rt.len() as isize - 1
        );
    });
}

#[test]
fn many_runtimes_in_sequence_leak_nothing() {
    watchdog(30, || {
        let _lock = fd_lock();
        let before = open_fds();
        for i in 0..50 {
            let rt = Runtime::builder().entries(16).build().unwrap();
            rt.block_on(async {
                let (server, mut client) = common::tcp_pair().await.unwrap();
                client.write_all(b"ping").unwrap();
                let (res, buf) = server.read(vec![0u8; 4]).await;
                assert_eq!(res.unwrap(), 4, "runtime {i}");
                assert_eq!(buf, b"ping");
            });
        }
        assert_same_fds(&before, "after 50 runtimes");
    });
}
