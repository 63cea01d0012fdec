//! `coring::io::copy` between sockets holds no kernel thread per connection, and io-wq
//! threads are bounded (`Builder::iowq_max_workers`).
//!
//! Thread counts are process-wide, so each counting test runs in a child process of its own
//! (the ignored `*_child` tests), where nothing else makes threads.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use common::{child_role, describe, join2, run_child, watchdog};
use coring::net::{TcpListener, TcpStream};
use coring::runtime::Runtime;

/// Idle connections proxied at once.
const CONNECTIONS: usize = 100;

/// The process's io-wq threads (`iou-wrk-*`).
fn io_wq_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("iou-wrk"))
        })
        .count()
}

/// An echo server on its own thread and runtime; returns its address.
fn echo_upstream() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        Runtime::new().unwrap().block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                coring::spawn(async move {
                    let _ = coring::io::copy(&stream, &stream).await;
                });
            }
        })
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

/// Proxies each connection accepted on `listener` to `upstream` with a `coring::io::copy`
/// each way; a side's end of stream is passed on as a write shutdown.
async fn proxy(listener: TcpListener, upstream: SocketAddr) {
    loop {
        let (client, _) = listener.accept().await.unwrap();
        coring::spawn(async move {
            let server = Rc::new(TcpStream::connect(upstream).await.unwrap());
            let client = Rc::new(client);
            let (c, s) = (client.clone(), server.clone());
            let up = async move {
                let copied = coring::io::copy(&*c, &*s).await;
                let _ = s.shutdown(std::net::Shutdown::Write);
                copied
            };
            let down = async move {
                let copied = coring::io::copy(&*server, &*client).await;
                let _ = client.shutdown(std::net::Shutdown::Write);
                copied
            };
            let (up, down) = join2(up, down).await;
            assert_eq!(up.unwrap(), down.unwrap(), "the echo returns every byte");
        });
    }
}

#[test]
fn a_proxy_built_on_copy_holds_no_kernel_thread_per_idle_connection() {
    let out = run_child("proxy_child", "proxy", Duration::from_secs(60));
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
#[ignore = "child process of a_proxy_built_on_copy_holds_no_kernel_thread_per_idle_connection"]
fn proxy_child() {
    let Some(role) = child_role() else {
        return;
    };
    assert_eq!(role, "proxy");
    watchdog(50, || {
        let upstream = echo_upstream();
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            Runtime::new().unwrap().block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                proxy(listener, upstream).await;
            })
        });
        let addr: SocketAddr = rx.recv_timeout(Duration::from_secs(10)).unwrap();

        // Many connections, each used once, then left idle.
        let mut clients = Vec::new();
        for i in 0..CONNECTIONS {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let msg = format!("hello {i:04}");
            c.write_all(msg.as_bytes()).unwrap();
            let mut back = vec![0u8; msg.len()];
            c.read_exact(&mut back).unwrap();
            assert_eq!(back, msg.as_bytes());
            clients.push(c);
        }
        thread::sleep(Duration::from_millis(300));
        let idle_threads = io_wq_threads();
        assert!(
            idle_threads < 8,
            "{idle_threads} io-wq threads for {CONNECTIONS} idle proxied connections \
             (a splice from each idle socket holds one)"
        );

        // One connection carries 4 MiB both ways, byte-exact, and half-closes.
        let data: Vec<u8> = (0..4 << 20).map(|i: usize| (i * 7 % 251) as u8).collect();
        let mut big = std::net::TcpStream::connect(addr).unwrap();
        big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reader = big.try_clone().unwrap();
        let echoed = thread::spawn(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            all
        });
        big.write_all(&data).unwrap();
        big.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(
            echoed.join().unwrap() == data,
            "the proxy changed the bytes"
        );

        // Every idle connection still works, then ends cleanly.
        for (i, mut c) in clients.into_iter().enumerate() {
            let msg = format!("bye {i:04}");
            c.write_all(msg.as_bytes()).unwrap();
            c.shutdown(std::net::Shutdown::Write).unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back).unwrap();
            assert_eq!(back, msg.as_bytes());
        }
    });
}

#[test]
fn io_wq_threads_are_bounded_by_the_builder() {
    let out = run_child("bounded_child", "bounded", Duration::from_secs(60));
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
#[ignore = "child process of io_wq_threads_are_bounded_by_the_builder"]
fn bounded_child() {
    const SPLICES: usize = 6;
    let Some(role) = child_role() else {
        return;
    };
    assert_eq!(role, "bounded");
    watchdog(50, || {
        let rt = common::uring().iowq_max_workers(0, 2).build().unwrap();
        let limits = rt
            .ring_flags()
            .iowq_max_workers
            .expect("the kernel reports its limits");
        assert_eq!(limits[1], 2, "{limits:?}");
        assert!(
            limits[0] > 0,
            "the bounded limit stays the kernel's: {limits:?}"
        );
        rt.block_on(async {
            let mut clients = Vec::new();
            let mut pipe_reads = Vec::new();
            let mut splices = Vec::new();
            for _ in 0..SPLICES {
                let (server, client) = common::tcp_pair().await.unwrap();
                let mut fds = [0; 2];
                // SAFETY: pipe2 writes two descriptors into the array.
                assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
                // SAFETY: both were just created and are owned by nobody else.
                let (read, write) = unsafe {
                    use std::os::fd::{FromRawFd, OwnedFd};
                    (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
                };
                // A splice from an idle socket blocks an unbounded io-wq thread.
                splices.push(coring::spawn(async move {
                    coring::io::splice(&server, None, &write, None, 64).await
                }));
                clients.push(client);
                pipe_reads.push(read);
            }
            coring::time::sleep(Duration::from_millis(300)).await;
            let threads = io_wq_threads();
            assert!(threads <= 2, "{threads} io-wq threads with a limit of 2");
            for client in &mut clients {
                client.write_all(b"x").unwrap();
            }
            // The splices past the limit waited in the kernel's queue and run now.
            for splice in splices {
                let moved = common::within(Duration::from_secs(10), "queued splice", splice)
                    .await
                    .unwrap();
                assert_eq!(moved.unwrap(), 1);
            }
            drop(pipe_reads);
        });
        assert_eq!(rt.shutdown(), 0);
    });
}

#[test]
fn the_default_limit_on_unbounded_io_wq_threads_is_tokios_on_blocking_threads() {
    let rt = common::uring().build().unwrap();
    let limits = rt
        .ring_flags()
        .iowq_max_workers
        .expect("the kernel reports its limits");
    assert_eq!(limits[1], 512, "{limits:?}");
}
