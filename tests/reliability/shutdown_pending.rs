//! Item 17: dropping a runtime with a pending accept, recv, file write, multishot recv on a
//! provided-buffer ring, a one-hour sleep and a one-hour kernel timeout. (`tests/shutdown.rs`
//! covers accept, recv, a FIFO read and a long sleep; this adds the file write, the multishot
//! recv with its registered buffer ring, the kernel timeout, and checks that the file does not
//! change after the drop returned: no write the kernel was still doing lands later.)
//! Required: the drop returns within a bound, every descriptor is closed, and the file's size
//! and contents are the same a while after the drop as right after it.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::common::{assert_same_fds, open_fds, tcp_pair, watchdog, TempDir};
use crate::serial;
use coring::buf::BufRing;
use coring::fs::OpenOptions;
use coring::net::TcpListener;
use coring::op::timeout::Timeout;
use coring::op::Op;
use coring::runtime::{Builder, DriverPolicy, Runtime};

const CHUNK: usize = 8 << 20;

/// A cheap fingerprint of the file: its size and a hash of its bytes.
fn fingerprint(path: &std::path::Path) -> (u64, u64) {
    let bytes = std::fs::read(path).unwrap();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        hash = (hash ^ u64::from_le_bytes(word)).wrapping_mul(0x1000_0000_01b3);
    }
    (bytes.len() as u64, hash)
}

fn run(builder: Builder, what: &str, shutdown_first: bool) {
    let dir = TempDir::new();
    let path = dir.join("written");
    let before = open_fds();
    let rt = builder.build().unwrap();
    let peers = rt.block_on(async {
        let mut peers = Vec::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        coring::spawn(async move {
            let res = listener.accept().await;
            panic!("accept completed: {res:?}");
        });
        let (server, client) = tcp_pair().await.unwrap();
        peers.push(client);
        coring::spawn(async move {
            let (res, _) = server.read(vec![0u8; 1024]).await;
            panic!("recv completed: {res:?}");
        });
        let (server, client) = tcp_pair().await.unwrap();
        peers.push(client);
        coring::spawn(async move {
            let ring = BufRing::new(16, 4096).unwrap();
            let mut stream = server.recv_multishot(&ring);
            let next = stream.next().await;
            panic!(
                "multishot recv yielded: {:?}",
                next.map(|r| r.map(|b| b.len()))
            );
        });
        coring::spawn(async {
            coring::time::sleep(Duration::from_secs(3600)).await;
            panic!("slept an hour");
        });
        coring::spawn(async {
            let res = Op::submit(Timeout::new(Duration::from_secs(3600))).await;
            panic!("kernel timeout fired: {res:?}");
        });
        // A writer that always has a large write in flight.
        let file = Rc::new(
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await
                .unwrap(),
        );
        coring::spawn(async move {
            let mut pos = 0u64;
            let mut buf = vec![0x5Au8; CHUNK];
            loop {
                let (res, b) = file.write_all_at(buf, pos).await;
                res.unwrap();
                buf = b;
                pos = (pos + CHUNK as u64) % (64 << 20);
                buf[0] = buf[0].wrapping_add(1);
                // On the epoll backend a file write completes at once and spends no
                // cooperative budget (see `epoll_ready_ops_starve_other_tasks`): yield.
                coring::task::yield_now().await;
            }
        });
        // Let everything reach the kernel, and the writer get going.
        coring::time::sleep(Duration::from_millis(30)).await;
        peers
    });
    assert!(rt.tasks() >= 6, "{what}: tasks alive: {}", rt.tasks());
    let start = Instant::now();
    if shutdown_first {
        assert_eq!(rt.shutdown(), 0, "{what}: ops left to the kernel");
        assert_eq!(rt.op_slots(), 0, "{what}: op slots left");
    }
    drop(rt);
    let took = start.elapsed();
    let right_after = fingerprint(&path);
    assert!(
        took < Duration::from_secs(2),
        "{what}: the drop took {took:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fingerprint(&path),
        right_after,
        "{what}: the file changed after the runtime was dropped"
    );
    eprintln!(
        "{what}: runtime with 7 kinds of pending work dropped in {took:?}; file {} bytes, \
         unchanged afterwards",
        right_after.0
    );
    drop(peers);
    assert_same_fds(&before, what);
}

#[test]
fn drop_with_pending_multishot_recv_file_write_and_timers() {
    let _serial = serial();
    watchdog(60, || {
        run(crate::uring(), "io_uring, drop", false);
        run(crate::uring(), "io_uring, shutdown then drop", true);
        run(
            Runtime::builder().driver(DriverPolicy::Epoll),
            "epoll, drop",
            false,
        );
    });
}

#[test]
fn epoll_ready_ops_starve_other_tasks() {
    // A task that loops on file writes (always ready at once on epoll: regular files are
    // never "not ready") must still let the `block_on` future's 10 ms sleep end.
    let _serial = serial();
    watchdog(10, || {
        let dir = TempDir::new();
        let rt = Runtime::builder()
            .driver(DriverPolicy::Epoll)
            .build()
            .unwrap();
        rt.block_on(async {
            let file = coring::fs::File::create(dir.join("spin")).await.unwrap();
            let writer = coring::spawn(async move {
                loop {
                    let (res, _) = file.write_at(vec![1u8; 4096], 0).await;
                    res.unwrap();
                }
            });
            coring::time::sleep(Duration::from_millis(10)).await;
            writer.abort();
        });
        assert_eq!(rt.shutdown(), 0);
    });
}
