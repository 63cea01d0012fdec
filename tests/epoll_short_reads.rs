//! The readiness backend treats a short stream read as "drained" and waits for the next edge
//! instead of trying a `recv` that would answer `EAGAIN`. These tests pin down the cases
//! where that would hang if it were wrong: a burst followed by silence, end of stream right
//! after a short read, and a peer that closes while nobody reads.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::watchdog;
use coring::net::{TcpListener, TcpStream};
use coring::runtime::{DriverPolicy, Runtime};

fn epoll() -> Runtime {
    Runtime::builder()
        .driver(DriverPolicy::Epoll)
        .build()
        .unwrap()
}

async fn accept_std_peer() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    (stream, peer)
}

#[test]
fn a_burst_then_silence_is_read_to_the_last_byte() {
    watchdog(60, || {
        epoll().block_on(async {
            let (stream, peer) = accept_std_peer().await;
            const BURST: usize = 4 << 20;
            // The peer writes one burst, then waits for the answer: no more edges come
            // after its last byte.
            let peer = std::thread::spawn(move || {
                let mut peer = peer;
                let data: Vec<u8> = (0..BURST).map(|i| (i % 249) as u8).collect();
                peer.write_all(&data).unwrap();
                let mut answer = [0; 2];
                peer.read_exact(&mut answer).unwrap();
                answer
            });
            let mut got = 0;
            let mut size = 1000;
            while got < BURST {
                // Odd sizes, so reads end inside segments and come back short often.
                size = size * 7 % 65_521 + 1;
                let (res, buf) = stream.read(vec![0; size]).await;
                let n = res.unwrap();
                assert!(n > 0, "end of stream after {got} bytes");
                for (i, &b) in buf[..n].iter().enumerate() {
                    assert_eq!(b, ((got + i) % 249) as u8);
                }
                got += n;
            }
            let (res, _) = stream.write_all(b"ok".to_vec()).await;
            res.unwrap();
            let answer = coring::task::spawn_blocking(move || peer.join().unwrap())
                .await
                .unwrap();
            assert_eq!(&answer, b"ok");
        });
    });
}

#[test]
fn end_of_stream_right_after_a_short_read() {
    watchdog(60, || {
        epoll().block_on(async {
            for round in 0..40u64 {
                let (stream, mut peer) = accept_std_peer().await;
                // The peer's data and its FIN arrive while a read waits (or just before it),
                // often reported by one edge: the short read that follows must not make
                // the next read wait for an edge that already came.
                let closer = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(round % 4));
                    peer.write_all(b"last words").unwrap();
                    drop(peer);
                });
                let (n, _) = stream.read(vec![0; 4096]).await;
                assert_eq!(n.unwrap(), 10);
                for _ in 0..3 {
                    let (n, _) = stream.read(vec![0; 4096]).await;
                    assert_eq!(n.unwrap(), 0);
                }
                closer.join().unwrap();
            }
        });
    });
}

#[test]
fn ping_pong_with_short_reads() {
    watchdog(60, || {
        epoll().block_on(async {
            let (stream, peer) = accept_std_peer().await;
            let peer = std::thread::spawn(move || {
                let mut peer = peer;
                for round in 0..2000u32 {
                    let msg = round.to_le_bytes();
                    peer.write_all(&msg).unwrap();
                    let mut back = [0; 4];
                    peer.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg);
                }
            });
            loop {
                let (n, buf) = stream.read(vec![0; 4096]).await;
                let n = n.unwrap();
                if n == 0 {
                    break;
                }
                let (res, _) = stream.write_all(buf[..n].to_vec()).await;
                res.unwrap();
            }
            coring::task::spawn_blocking(move || peer.join().unwrap())
                .await
                .unwrap();
        });
    });
}
