//! Registered (direct) descriptors: sockets and files in the ring's file table work like
//! plain ones, leave the table when closed (wherever they are dropped), never leak a slot
//! (a cancelled registration included), and the table's limits are clear errors.

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::pin::pin;
use std::time::Duration;

use common::{poll_once, uring, watchdog, TempDir};
use coring::buf::{FixedBufPool, IoBuf};
use coring::fs::File;
use coring::net::{TcpListener, TcpStream};
use coring::runtime::{Builder, DriverPolicy, Runtime};

/// A connected pair: a coring stream and its std peer (with a read timeout).
async fn pair(listener: &TcpListener) -> (TcpStream, std::net::TcpStream) {
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    (stream, peer)
}

/// Runs `body` with a loopback listener on a runtime from `builder` (under a watchdog), then
/// checks that shutdown found every op finished.
fn with_listener<Fut>(
    builder: fn() -> Builder,
    body: impl FnOnce(TcpListener) -> Fut + Send + 'static,
) where
    Fut: Future<Output = ()>,
{
    watchdog(60, move || {
        let rt = builder().build().unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            body(listener).await;
        });
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}

/// Asserts the peer sees end of stream: the socket really closed, slot and all.
fn assert_peer_sees_eof(mut peer: std::net::TcpStream) {
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest)
        .expect("the peer gets EOF, not a timeout (a slot would keep the socket open)");
}

/// [`assert_peer_sees_eof`] on the blocking pool, while the runtime goes on (and so submits
/// the closes).
async fn peer_sees_eof(peer: std::net::TcpStream) {
    coring::task::spawn_blocking(move || assert_peer_sees_eof(peer))
        .await
        .unwrap();
}

#[test]
fn registered_stream_echoes_and_closes() {
    with_listener(uring, |listener| async move {
        listener.register().await.unwrap();
        assert!(listener.is_registered());
        let (stream, mut peer) = pair(&listener).await;
        assert!(!stream.is_registered());
        stream.register().await.unwrap();
        stream.register().await.unwrap(); // again: nothing happens
        assert!(stream.is_registered());
        for round in 0..100u32 {
            let msg = format!("round {round}").into_bytes();
            peer.write_all(&msg).unwrap();
            let (n, buf) = stream.read(vec![0; 64]).await;
            let n = n.unwrap();
            assert_eq!(&buf[..n], &msg[..]);
            let (res, _) = stream.write_all(buf[..n].to_vec()).await;
            res.unwrap();
            let mut back = vec![0; n];
            peer.read_exact(&mut back).unwrap();
            assert_eq!(back, msg);
        }
        drop(stream);
        peer_sees_eof(peer).await;

        // `close().await` gives the slot back as well.
        let (stream, peer) = pair(&listener).await;
        stream.register().await.unwrap();
        stream.close().await.unwrap();
        peer_sees_eof(peer).await;
    });
}

#[test]
fn ring_ops_name_the_slot_not_the_descriptor() {
    use std::os::fd::AsRawFd;
    with_listener(uring, |listener| async move {
        let (stream, mut peer) = pair(&listener).await;
        stream.register().await.unwrap();
        // Point the descriptor number at /dev/null: only the slot still reaches the
        // socket, so I/O that works here went through the slot.
        let null = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: dup2 onto a descriptor the stream owns; it stays open (now /dev/null)
        // and is closed by the stream's drop as before.
        assert!(unsafe { libc::dup2(null.as_raw_fd(), stream.as_raw_fd()) } >= 0);
        peer.write_all(b"via slot").unwrap();
        let (n, buf) = stream.read(vec![0; 16]).await;
        assert_eq!(&buf[..n.unwrap()], b"via slot");
        let (res, _) = stream.write_all(b"back".to_vec()).await;
        res.unwrap();
        let mut back = [0; 4];
        peer.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"back");
        drop(stream);
        peer_sees_eof(peer).await;
    });
}

#[test]
fn slots_are_reused_and_a_full_table_is_a_clear_error() {
    with_listener(
        || uring().fixed_files(4),
        |listener| async move {
            let mut held = Vec::new();
            for _ in 0..4 {
                let (stream, peer) = pair(&listener).await;
                stream.register().await.unwrap();
                held.push((stream, peer));
            }
            let (fifth, fifth_peer) = pair(&listener).await;
            let err = fifth.register().await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory, "{err}");
            assert!(err.to_string().contains("fixed_files"), "{err}");
            assert!(!fifth.is_registered());

            // Many rounds of drop-one, register-another: slots come back every time.
            for _ in 0..50 {
                let (stream, peer) = held.remove(0);
                drop(stream);
                peer_sees_eof(peer).await;
                let (stream, peer) = pair(&listener).await;
                stream.register().await.unwrap();
                held.push((stream, peer));
            }
            drop((fifth, fifth_peer));
        },
    );
}

#[test]
fn a_cancelled_registration_gives_its_slot_back() {
    with_listener(
        || uring().fixed_files(1),
        |listener| async move {
            let (first, _first_peer) = pair(&listener).await;
            {
                let registering = pin!(first.register());
                assert!(poll_once(registering).is_pending());
                // Dropped while the kernel may be filling the slot.
            }
            coring::task::yield_now().await;
            assert!(!first.is_registered());
            let (second, second_peer) = pair(&listener).await;
            // The one slot is free again: the cancelled registration released it.
            second.register().await.unwrap();
            drop(second);
            peer_sees_eof(second_peer).await;
        },
    );
}

#[test]
fn dropped_on_another_thread_the_slot_is_closed() {
    with_listener(uring, |listener| async move {
        let (stream, peer) = pair(&listener).await;
        stream.register().await.unwrap();
        // Dropped on a plain thread: the owning ring is told, and closes the slot while
        // this task waits for the peer's EOF.
        std::thread::spawn(move || drop(stream)).join().unwrap();
        peer_sees_eof(peer).await;
    });
}

#[test]
fn moved_to_another_worker_it_uses_its_descriptor() {
    with_listener(
        || uring().worker_threads(2),
        |listener| async move {
            let (stream, mut peer) = pair(&listener).await;
            stream.register().await.unwrap();
            let here = coring::runtime::worker_index().unwrap();
            let other = (here + 1) % 2;
            let echoed = coring::runtime::spawn_on_with(other, move || async move {
                assert!(
                    !stream.is_registered(),
                    "another ring's slot is no use here"
                );
                let err = stream.register().await.unwrap_err();
                assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
                let (n, buf) = stream.read(vec![0; 16]).await;
                let n = n.unwrap();
                let (res, _) = stream.write_all(buf[..n].to_vec()).await;
                res.unwrap();
                n
            });
            peer.write_all(b"hello").unwrap();
            assert_eq!(echoed.await.unwrap(), 5);
            let mut back = [0; 5];
            peer.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"hello");
            // The stream was dropped on the other worker: its slot here is closed too.
            peer_sees_eof(peer).await;
        },
    );
}

#[test]
fn into_raw_fd_leaves_the_table() {
    use std::os::fd::{FromRawFd, IntoRawFd};
    watchdog(60, || {
        let rt = uring().build().unwrap();
        let (raw, peer) = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let (stream, peer) = pair(&listener).await;
            stream.register().await.unwrap();
            (stream.into_raw_fd(), peer)
        });
        // SAFETY: `into_raw_fd` handed us sole ownership of the open socket.
        let mut std_stream = unsafe { std::net::TcpStream::from_raw_fd(raw) };
        std_stream.write_all(b"still open").unwrap();
        let mut peer_read = peer.try_clone().unwrap();
        let mut got = [0; 10];
        peer_read.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"still open");
        // Run the ring once more so it closes the released slot, then close the fd: the
        // peer must see EOF (no slot keeps the socket alive).
        rt.block_on(coring::task::yield_now());
        drop(std_stream);
        assert_peer_sees_eof(peer);
        assert_eq!(rt.shutdown(), 0);
    });
}

#[test]
fn registered_file_reads_writes_and_syncs() {
    watchdog(60, || {
        let dir = TempDir::new();
        let path = dir.join("registered.dat");
        let rt = uring().build().unwrap();
        rt.block_on(async {
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await
                .unwrap();
            file.register().await.unwrap();
            assert!(file.is_registered());
            let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
            let (res, _) = file.write_all_at(data.clone(), 4096).await;
            res.unwrap();
            file.sync_data().await.unwrap();
            file.set_len(4096 + (1 << 20)).await.unwrap();
            let (res, back) = file.read_exact_at(vec![0; 1 << 20], 4096).await;
            res.unwrap();
            assert!(back == data, "read back what was written");

            // Fixed buffers and a registered file together: READ_FIXED on a slot.
            let pool = FixedBufPool::new(1, 4096).unwrap();
            let buf = pool.try_take().unwrap();
            let (res, buf) = file.read_exact_at(buf, 4096).await;
            res.unwrap();
            assert_eq!(&buf[..], &data[..4096]);
            assert_eq!(file.metadata().await.unwrap().len(), 4096 + (1 << 20));
            file.close().await.unwrap();
        });
        assert_eq!(rt.shutdown(), 0);
    });
}

#[test]
fn fixed_buffer_zero_copy_sends_and_the_threshold() {
    with_listener(uring, |listener| async move {
        let (stream, peer) = pair(&listener).await;
        stream.register().await.unwrap();
        let reader = std::thread::spawn(move || {
            let mut peer = peer;
            let mut all = Vec::new();
            peer.read_to_end(&mut all).unwrap();
            all
        });
        let mut expected = Vec::new();
        // A registered buffer sent zero-copy from its registered pages.
        let pool = FixedBufPool::new(2, 64 * 1024).unwrap();
        for round in 0..8u8 {
            let mut buf = pool.try_take().unwrap();
            buf.set_len(64 * 1024);
            buf.iter_mut().for_each(|b| *b = round);
            expected.extend_from_slice(&buf);
            let mut sent = 0;
            let mut buf = buf;
            while sent < 64 * 1024 {
                let (res, back) = stream.send_zc(buf.slice(sent..)).await;
                sent += res.unwrap();
                buf = back.into_inner();
            }
        }
        // Writes above the threshold go out zero-copy; below it, plain sends.
        stream.set_send_zc_threshold(Some(32 * 1024));
        for len in [100usize, 32 * 1024, 1 << 20] {
            let data: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
            expected.extend_from_slice(&data);
            let (res, _) = stream.write_all(data).await;
            res.unwrap();
        }
        stream.set_send_zc_threshold(None);
        assert_eq!(stream.send_zc_threshold(), None);
        drop(stream);
        let received = coring::task::spawn_blocking(move || reader.join().unwrap())
            .await
            .unwrap();
        assert_eq!(received.len(), expected.len());
        assert!(received == expected, "bytes differ");
    });
}

#[test]
fn turned_off_and_on_epoll() {
    watchdog(60, || {
        let rt = uring().fixed_files(0).build().unwrap();
        rt.block_on(async {
            let file = File::open("Cargo.toml").await.unwrap();
            let err = file.register().await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::Unsupported, "{err}");
            assert!(err.to_string().contains("fixed_files(0)"), "{err}");
        });

        // The epoll backend has no table: registering is accepted and changes nothing.
        let rt = Runtime::builder()
            .driver(DriverPolicy::Epoll)
            .build()
            .unwrap();
        rt.block_on(async {
            let file = File::open("Cargo.toml").await.unwrap();
            file.register().await.unwrap();
            assert!(!file.is_registered());
            let (n, _) = file.read_at(vec![0; 16], 0).await;
            assert_eq!(n.unwrap(), 16);
        });
    });
}
