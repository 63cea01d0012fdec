//! Item 9: 10,000 connections through a tiny ring (32 SQ entries, 64 CQ entries), both ends in
//! the same runtime, in waves of 500 at once, each carrying one message of random size
//! (1 byte to 64 KiB, a few of 1 MiB) that is echoed and checked byte for byte. Submissions
//! overflow into the backlog and completions into the kernel's overflow list the whole time.
//!
//! The server closes first (after echoing the length it was told), so `TIME_WAIT` lands on
//! the listener's port rather than on 10,000 ephemeral ports.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::common::{assert_same_fds, open_fds, watchdog, Rng};
use crate::{finish, raise_nofile, serial, uring};
use coring::net::{TcpListener, TcpStream};

const CONNECTIONS: usize = 10_000;
const WAVE: usize = 500;

fn message(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let len = if seed % 1000 == 999 {
        1 << 20
    } else {
        rng.range(1, 64 * 1024)
    };
    // Cheap to make, still different per connection and per position.
    let salt = rng.next_u64();
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(0x9E37) ^ salt) as u8)
        .collect()
}

async fn serve(stream: TcpStream) -> usize {
    let (res, header) = stream.read_exact(vec![0u8; 4]).await;
    res.unwrap();
    let len = u32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
    let (res, body) = stream.read_exact(vec![0u8; len]).await;
    res.unwrap();
    let (res, _) = stream.write_all(body).await;
    res.unwrap();
    len
}

async fn client(addr: std::net::SocketAddr, seed: u64) -> usize {
    let msg = message(seed);
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut framed = (msg.len() as u32).to_le_bytes().to_vec();
    framed.extend_from_slice(&msg);
    let (res, _) = stream.write_all(framed).await;
    res.unwrap();
    let (res, back) = stream.read_exact(vec![0u8; msg.len()]).await;
    res.unwrap();
    assert!(back == msg, "connection {seed}: echoed bytes differ");
    // The server closes after echoing: end of stream.
    let (res, _) = stream.read(vec![0u8; 1]).await;
    assert_eq!(res.unwrap(), 0, "connection {seed}: no end of stream");
    msg.len()
}

#[test]
fn ten_thousand_connections_through_a_tiny_ring() {
    let _serial = serial();
    watchdog(110, || {
        let limit = raise_nofile(4 * WAVE as u64 + 256);
        assert!(
            limit >= 2 * WAVE as u64 + 64,
            "RLIMIT_NOFILE too low: {limit}"
        );
        let before = open_fds();
        let rt = uring().entries(32).cq_entries(64).build().unwrap();
        let start = Instant::now();
        let (bytes, served) = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let served = Rc::new(Cell::new(0usize));
            let s = served.clone();
            let server = coring::spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let s = s.clone();
                    coring::spawn(async move {
                        serve(stream).await;
                        s.set(s.get() + 1);
                    });
                }
            });
            let mut bytes = 0;
            for wave in 0..CONNECTIONS / WAVE {
                let clients: Vec<_> = (0..WAVE)
                    .map(|i| coring::spawn(client(addr, (wave * WAVE + i) as u64)))
                    .collect();
                for (i, c) in clients.into_iter().enumerate() {
                    bytes += c
                        .await
                        .unwrap_or_else(|e| panic!("wave {wave} client {i}: {e}"));
                }
            }
            server.abort();
            coring::time::sleep(Duration::from_millis(20)).await;
            (bytes, served.get())
        });
        let took = start.elapsed();
        let m = rt.metrics();
        eprintln!(
            "{CONNECTIONS} connections, {} MiB echoed in {took:?} through a 32/64 ring: {m:?}",
            bytes >> 20
        );
        assert_eq!(served, CONNECTIONS);
        finish(&rt);
        drop(rt);
        assert_same_fds(&before, "after 10,000 connections");
    });
}
