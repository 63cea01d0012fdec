//! Multishot receive into a provided buffer ring: every byte arrives, in order; buffers go
//! back to the ring; a dropped stream returns its buffers and leaks nothing.

use std::io::{Read, Write};
use std::time::Duration;

use coring::buf::BufRing;
use coring::net::{TcpListener, TcpStream};
use coring::runtime::Runtime;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn echo_through_provided_buffers_is_byte_exact() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        // Few, small buffers: the ring runs dry (ENOBUFS) and must re-arm.
        let ring = BufRing::new(4, 512).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let data = pattern(1 << 20, 7);
            let writer = {
                let mut s = s.try_clone().unwrap();
                let data = data.clone();
                std::thread::spawn(move || {
                    s.write_all(&data).unwrap();
                    s.shutdown(std::net::Shutdown::Write).unwrap();
                })
            };
            let mut back = Vec::new();
            s.read_to_end(&mut back).unwrap();
            writer.join().unwrap();
            assert_eq!(back.len(), data.len());
            assert!(back == data, "echoed bytes differ");
        });
        let (stream, _) = listener.accept().await.unwrap();
        let mut received = stream.recv_multishot(&ring);
        let mut total = 0;
        while let Some(buf) = received.next().await {
            let buf = buf.unwrap();
            assert!(!buf.is_empty() && buf.len() <= 512);
            total += buf.len();
            // Send straight from the provided buffer; it returns to the ring afterwards.
            let (res, _) = stream.write_all(buf).await;
            res.unwrap();
        }
        assert_eq!(total, 1 << 20);
        drop(received);
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        client.join().unwrap();
    });
    assert_eq!(rt.shutdown(), 0);
    assert_eq!(rt.op_slots(), 0);
}

#[test]
fn dropped_stream_returns_buffers_and_cancels() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let ring = BufRing::new(8, 64).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        for round in 0..20u8 {
            client.write_all(&pattern(200, round)).unwrap();
            let mut received = stream.recv_multishot(&ring);
            let first = received.next().await.unwrap().unwrap();
            assert_eq!(first[0], pattern(1, round)[0]);
            drop(first);
            // Drop with more data queued in the kernel and a receive armed.
            drop(received);
            coring::time::sleep(Duration::from_millis(2)).await;
            // Drain what is left with a plain read so the next round starts clean.
            let mut left = 200 - 64;
            while left > 0 {
                let res =
                    coring::time::timeout(Duration::from_millis(50), stream.read(vec![0u8; 256]))
                        .await;
                match res {
                    Ok((Ok(n), _)) => left -= n.min(left),
                    _ => break, // the rest went to buffers the dropped stream gave back
                }
            }
        }
        // Every buffer came back: a new stream can fill all eight.
        let mut received = stream.recv_multishot(&ring);
        client.write_all(&[1u8; 8 * 64]).unwrap();
        let mut held = Vec::new();
        let mut got = 0;
        while got < 8 * 64 {
            let buf = received.next().await.unwrap().unwrap();
            got += buf.len();
            held.push(buf);
        }
        assert_eq!(got, 8 * 64);
        drop(held);
        drop(received);
        let _ = TcpStream::connect(addr).await.unwrap();
    });
    assert_eq!(rt.shutdown(), 0);
    assert_eq!(rt.op_slots(), 0);
}

#[test]
fn incoming_accepts_a_stream_of_connections() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let clients = std::thread::spawn(move || {
            (0..100)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect::<Vec<_>>()
        });
        let mut incoming = listener.incoming();
        let mut n = 0;
        while n < 100 {
            let (stream, _peer) = incoming.next().await.unwrap().unwrap();
            assert_eq!(stream.local_addr().unwrap(), addr);
            n += 1;
        }
        drop(incoming);
        drop(clients.join().unwrap());
    });
    assert_eq!(rt.shutdown(), 0);
}

#[test]
fn a_dry_ring_waits_for_a_buffer_instead_of_spinning() {
    let rt = Runtime::new().unwrap();
    let rt_ref = &rt;
    rt.block_on(async move {
        let ring = BufRing::new(2, 512).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let data = pattern(4096, 3);
        peer.write_all(&data).unwrap();
        let mut received = stream.recv_multishot(&ring);
        // Hold both buffers: the ring is dry while data waits in the socket.
        let first = received.next().await.unwrap().unwrap();
        let second = received.next().await.unwrap().unwrap();
        let before = rt_ref.metrics();
        let waited = coring::time::timeout(Duration::from_millis(100), received.next()).await;
        assert!(
            waited.is_err(),
            "no buffer can be filled while both are held"
        );
        let spent = rt_ref.metrics().sqes - before.sqes;
        assert!(
            spent < 20,
            "{spent} submissions in 100 ms while the ring was dry: the receive spins"
        );
        // A buffer comes back: receiving resumes, and every byte arrives in order.
        let mut got = Vec::new();
        got.extend_from_slice(&first);
        drop(first);
        got.extend_from_slice(&second);
        drop(second);
        while got.len() < data.len() {
            let buf = received.next().await.unwrap().unwrap();
            got.extend_from_slice(&buf);
        }
        assert!(got == data, "bytes differ");
        drop(peer);
        assert!(received.next().await.is_none(), "end of stream");
    });
    assert_eq!(rt.shutdown(), 0);
    assert_eq!(rt.op_slots(), 0);
}
