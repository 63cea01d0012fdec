//! `into_split` on TCP and Unix streams: the halves read and write concurrently from two
//! tasks, implement the owned-buffer I/O traits, shut the write direction down when the write
//! half is dropped, and `reunite` (only with their own partner).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use common::{run, tcp_pair, within};
use coring::io::{AsyncReadRent, AsyncReadRentExt, AsyncWriteRent, AsyncWriteRentExt};
use coring::net::{OwnedReadHalf, OwnedWriteHalf, SplitStream, TcpListener, TcpStream, UnixStream};
use coring::runtime::Runtime;

const LIMIT: Duration = Duration::from_secs(10);
/// Far more than the socket buffers hold: the writer cannot finish unless the reader runs
/// at the same time.
const TOTAL: usize = 4 << 20;

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// Echoes everything from `stream` back until end of stream, then shuts down.
async fn echo<S: SplitStream>(read: OwnedReadHalf<S>, write: OwnedWriteHalf<S>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (res, b) = read.read(buf).await;
        let n = res.unwrap();
        if n == 0 {
            break;
        }
        let (res, b) = write.write_all(coring::buf::IoBuf::slice(b, ..n)).await;
        res.unwrap();
        buf = b.into_inner();
    }
    write.shutdown().unwrap();
}

/// Writes `TOTAL` bytes from one task and reads the echo from another, concurrently.
async fn pump<S: SplitStream>(read: OwnedReadHalf<S>, write: OwnedWriteHalf<S>) {
    let writer = coring::spawn(async move {
        let mut sent = 0;
        while sent < TOTAL {
            let chunk: Vec<u8> = (sent..(sent + 100_000).min(TOTAL)).map(pattern).collect();
            sent += chunk.len();
            let (res, _) = write.write_all(chunk).await;
            res.unwrap();
        }
        drop(write); // shuts down the write direction: the echo ends
    });
    let reader = coring::spawn(async move {
        let mut got = 0;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let (res, b) = read.read(buf).await;
            let n = res.unwrap();
            if n == 0 {
                break;
            }
            for (i, &byte) in b[..n].iter().enumerate() {
                assert_eq!(byte, pattern(got + i), "byte {} of the echo", got + i);
            }
            got += n;
            buf = b;
        }
        got
    });
    within(LIMIT, "writer", writer).await.unwrap();
    let got = within(LIMIT, "reader", reader).await.unwrap();
    assert_eq!(got, TOTAL);
}

#[test]
fn tcp_halves_read_and_write_concurrently_from_two_tasks() {
    run(30, || async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (sr, sw) = server.into_split();
        let echo = coring::spawn(echo(sr, sw));
        let (r, w) = client.into_split();
        assert_eq!(r.as_ref().peer_addr().unwrap(), addr);
        assert_eq!(w.as_ref().peer_addr().unwrap(), addr);
        pump(r, w).await;
        within(LIMIT, "echo", echo).await.unwrap();
    });
}

#[test]
fn unix_halves_read_and_write_concurrently_from_two_tasks() {
    run(30, || async {
        let (a, b) = UnixStream::pair().unwrap();
        let (br, bw) = b.into_split();
        let echo = coring::spawn(echo(br, bw));
        let (r, w) = a.into_split();
        pump(r, w).await;
        within(LIMIT, "echo", echo).await.unwrap();
    });
}

#[test]
fn halves_move_to_another_thread() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    run(10, || async {
        let (server, mut client) = tcp_pair().await.unwrap();
        let (r, w) = server.into_split();
        assert_send(&r);
        assert_send(&w);
        // The write half goes to a thread with its own runtime; the read half stays here.
        let thread = std::thread::spawn(move || {
            Runtime::new().unwrap().block_on(async move {
                let (res, _) = w.write_all(b"from another ring").await;
                res.unwrap();
            })
        });
        let mut got = [0u8; 17];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"from another ring");
        thread.join().unwrap();
        // The write half was dropped on the other thread: end of stream.
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        client.write_all(b"still readable").unwrap();
        let (res, buf) = within(LIMIT, "read", r.read_exact(vec![0u8; 14])).await;
        res.unwrap();
        assert_eq!(buf, b"still readable");
    });
}

#[test]
fn dropping_the_write_half_shuts_down_only_writing() {
    run(10, || async {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = a.into_split();
        let (res, _) = w.write_all(b"last").await;
        res.unwrap();
        drop(w);
        let (res, buf) = b.read_exact(vec![0u8; 4]).await;
        res.unwrap();
        assert_eq!(buf, b"last");
        let (res, _) = within(LIMIT, "eof", b.read(vec![0u8; 4])).await;
        assert_eq!(res.unwrap(), 0, "the peer sees end of stream");
        let (res, _) = b.write_all(b"reply").await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "read half", r.read_exact(vec![0u8; 5])).await;
        res.unwrap();
        assert_eq!(buf, b"reply", "the read half still works");
    });
}

#[test]
fn reunite_gives_the_whole_stream_back_without_shutting_down() {
    run(10, || async {
        let (server, mut client) = tcp_pair().await.unwrap();
        let (r, w) = server.into_split();
        let server = r.reunite(w).expect("halves of the same stream");
        let (res, _) = server.write_all(b"whole").await;
        res.unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"whole");
        // Reuniting from the write side works too, and the stream is still open both ways.
        let (r, w) = server.into_split();
        let server = w.reunite(r).unwrap();
        client.write_all(b"ok").unwrap();
        let (res, buf) = within(LIMIT, "read", server.read_exact(vec![0u8; 2])).await;
        res.unwrap();
        assert_eq!(buf, b"ok");
        client
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let err = client.read(&mut got).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "no end of stream after reunite: {err}"
        );
    });
}

#[test]
fn reunite_with_a_stranger_fails_and_returns_both_halves() {
    run(10, || async {
        let (a, _a_peer) = UnixStream::pair().unwrap();
        let (b, b_peer) = UnixStream::pair().unwrap();
        let (ar, aw) = a.into_split();
        let (br, bw) = b.into_split();
        let err = ar.reunite(bw).unwrap_err();
        assert_eq!(
            err.to_string(),
            "coring: tried to reunite halves of two different streams"
        );
        let _: &dyn std::error::Error = &err;
        let (ar, bw) = (err.0, err.1);
        // The halves still work after the failed attempt...
        let (res, _) = bw.write_all(b"b").await;
        res.unwrap();
        let (res, buf) = b_peer.read_exact(vec![0u8; 1]).await;
        res.unwrap();
        assert_eq!(buf, b"b");
        // ...and each reunites with its own partner.
        ar.reunite(aw).unwrap();
        bw.reunite(br).unwrap();
    });
}

/// Generic over the owned-buffer traits, as library code would be.
async fn request<R: AsyncReadRent, W: AsyncWriteRent>(r: &mut R, w: &mut W) -> Vec<u8> {
    let (res, _) = w.writev(vec![b"pi".to_vec(), b"ng".to_vec()]).await;
    assert_eq!(res.unwrap(), 4);
    let (res, _) = w.write_all(b"!".to_vec()).await;
    res.unwrap();
    w.shutdown().await.unwrap();
    let (res, buf) = r.read_exact(vec![0u8; 5]).await;
    res.unwrap();
    buf
}

#[test]
fn halves_implement_the_io_traits() {
    run(10, || async {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut r, mut w) = a.into_split();
        let peer = coring::spawn(async move {
            let (res, buf) = b.read_exact(vec![0u8; 5]).await;
            res.unwrap();
            assert_eq!(buf, b"ping!");
            let (res, _) = b.read(vec![0u8; 1]).await;
            assert_eq!(
                res.unwrap(),
                0,
                "AsyncWriteRent::shutdown on the write half"
            );
            let (res, _) = b.write_all(b"pong!").await;
            res.unwrap();
        });
        assert_eq!(request(&mut r, &mut w).await, b"pong!");
        within(LIMIT, "peer", peer).await.unwrap();

        // By reference as well.
        let (server, mut client) = tcp_pair().await.unwrap();
        let (r, w) = server.into_split();
        client.write_all(b"hello").unwrap();
        let (mut rr, mut wr) = (&r, &w);
        let (res, buf) = AsyncReadRentExt::read_exact(&mut rr, vec![0u8; 5]).await;
        res.unwrap();
        assert_eq!(buf, b"hello");
        AsyncWriteRentExt::write_all(&mut wr, b"x".to_vec())
            .await
            .0
            .unwrap();
        let mut got = [0u8; 1];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"x");
    });
}
