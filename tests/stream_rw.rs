//! `TcpStream` I/O takes `&self`: one task can read and write the same stream at once, and
//! vectored writes send every buffer in order.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{join2, tcp_pair, watchdog, within, Rng};
use coring::io::{AsyncReadRent, AsyncReadRentExt, AsyncWriteRent, AsyncWriteRentExt};
use coring::net::TcpStream;
use coring::runtime::Runtime;

const BIG: usize = 16 * 1024 * 1024;

#[test]
fn concurrent_read_and_write_from_one_task() {
    // The peer echoes everything. 16 MiB is far more than the socket buffers hold, so writing
    // it all before reading would deadlock; reading and writing concurrently from the same
    // task on the same &TcpStream completes.
    watchdog(60, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let (stream, client) = tcp_pair().await.unwrap();
            let echo = std::thread::spawn(move || {
                let mut client = client;
                let mut writer = client.try_clone().unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = client.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    writer.write_all(&buf[..n]).unwrap();
                }
                writer.shutdown(std::net::Shutdown::Write).unwrap();
            });
            let data = Rng::new(99).bytes(BIG);
            let send = async {
                let (res, back) = stream.write_all(data.clone()).await;
                res.unwrap();
                assert_eq!(back.len(), BIG);
                stream.shutdown(std::net::Shutdown::Write).unwrap();
            };
            let recv = async {
                let (res, got) = stream.read_exact(Vec::with_capacity(BIG)).await;
                res.unwrap();
                got
            };
            let ((), got) = within(
                Duration::from_secs(50),
                "full-duplex transfer",
                join2(send, recv),
            )
            .await;
            assert!(got == data, "echoed data differs");
            let (res, _) = stream.read(vec![0u8; 16]).await;
            assert_eq!(res.unwrap(), 0, "end of stream after the echo");
            echo.join().unwrap();
        });
        assert_eq!(rt.shutdown(), 0);
    });
}

#[test]
fn many_reads_and_writes_in_flight_on_one_stream() {
    // Two streams connected to each other through coring; one task keeps a read on each and
    // writes on each at the same time.
    watchdog(30, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let listener = coring::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (a, accepted) = join2(TcpStream::connect(addr), listener.accept()).await;
            let a = a.unwrap();
            let (b, _) = accepted.unwrap();
            a.set_nodelay(true).unwrap();
            assert!(a.nodelay().unwrap());
            for round in 0..200u32 {
                let msg_a = format!("a->b {round}").into_bytes();
                let msg_b = format!("b->a {round} {}", "x".repeat(round as usize)).into_bytes();
                let (la, lb) = (msg_a.len(), msg_b.len());
                let (((wa, _), (wb, _)), ((ra, got_b), (rb, got_a))) = join2(
                    join2(a.write_all(msg_a.clone()), b.write_all(msg_b.clone())),
                    join2(a.read_exact(vec![0u8; lb]), b.read_exact(vec![0u8; la])),
                )
                .await;
                wa.unwrap();
                wb.unwrap();
                ra.unwrap();
                rb.unwrap();
                assert_eq!(got_a, msg_a);
                assert_eq!(got_b, msg_b);
            }
        });
    });
}

#[test]
fn writev_sends_every_buffer_in_order() {
    watchdog(20, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let (stream, mut client) = tcp_pair().await.unwrap();
            let bufs = vec![
                b"one ".to_vec(),
                Vec::new(),
                b"two ".to_vec(),
                b"three".to_vec(),
            ];
            let (res, back) = stream.writev(bufs.clone()).await;
            assert_eq!(res.unwrap(), 13);
            assert_eq!(back, bufs, "the buffers come back in order");
            let mut got = [0u8; 13];
            client.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"one two three");

            // Many buffers, a large total: loop on partial writes until all is sent.
            let mut rng = Rng::new(5);
            let parts: Vec<Vec<u8>> = (0..64)
                .map(|_| {
                    let n = rng.range(0, 64 * 1024);
                    rng.bytes(n)
                })
                .collect();
            let expected: Vec<u8> = parts.concat();
            let reader = std::thread::spawn(move || {
                let mut all = vec![0u8; expected.len()];
                client.read_exact(&mut all).unwrap();
                assert!(all == expected, "vectored data differs");
                client
            });
            let mut pending = parts;
            let mut sent_total = 0;
            while !pending.is_empty() {
                let (res, mut back) = stream.writev(pending).await;
                let mut n = res.unwrap();
                assert!(n > 0);
                sent_total += n;
                // Drop fully sent buffers and trim the partly sent one.
                while n > 0 && !back.is_empty() {
                    if back[0].len() <= n {
                        n -= back[0].len();
                        back.remove(0);
                    } else {
                        back[0].drain(..n);
                        n = 0;
                    }
                }
                back.retain(|b| !b.is_empty());
                pending = back;
            }
            assert!(sent_total > 0);
            drop(reader.join().unwrap());
        });
    });
}

#[test]
fn stream_traits_are_usable_generically() {
    async fn roundtrip<S>(mut s: S) -> Vec<u8>
    where
        S: AsyncReadRent + AsyncWriteRent,
    {
        let (res, _) = s.write_all(b"generic".to_vec()).await;
        res.unwrap();
        let (res, _) = s.writev(vec![b"-v".to_vec()]).await;
        assert_eq!(res.unwrap(), 2);
        AsyncWriteRent::shutdown(&mut s).await.unwrap();
        let (res, buf) = s.read_exact(vec![0u8; 9]).await;
        res.unwrap();
        buf
    }
    watchdog(20, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let (stream, mut client) = tcp_pair().await.unwrap();
            let peer = std::thread::spawn(move || {
                let mut all = Vec::new();
                client.read_to_end(&mut all).unwrap();
                client.write_all(&all).unwrap();
                all
            });
            let echoed = roundtrip(&stream).await;
            assert_eq!(echoed, b"generic-v");
            assert_eq!(peer.join().unwrap(), b"generic-v");
            // By value too.
            let (stream, client) = tcp_pair().await.unwrap();
            let peer = std::thread::spawn(move || {
                let mut client = client;
                let mut all = Vec::new();
                client.read_to_end(&mut all).unwrap();
                client.write_all(&all).unwrap();
            });
            assert_eq!(roundtrip(stream).await, b"generic-v");
            peer.join().unwrap();
        });
    });
}
