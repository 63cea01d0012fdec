//! `Compat`: coring streams and files behind tokio's and futures-io's poll-based traits.
//! Byte-exact transfers through small and default buffers, `AsyncBufRead`, write-behind with
//! flush and shutdown, a dropped read future losing nothing, dropping the wrapper with ops in
//! flight, and a file's cursor with seeks.

#![cfg(feature = "compat")]

mod common;

use std::future::poll_fn;
use std::io::SeekFrom;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use common::{watchdog, Rng, TempDir};
use coring::compat::{Compat, CompatIo};
use coring::net::{TcpListener, TcpStream, UnixStream};
use coring::runtime::Runtime;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

/// tokio-style `read`: up to `buf.len()` bytes.
async fn read<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    poll_fn(|cx| {
        let mut dst = ReadBuf::new(buf);
        match Pin::new(&mut *r).poll_read(cx, &mut dst) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(dst.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

async fn read_to_end<R: AsyncRead + Unpin>(r: &mut R, chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        match read(r, &mut buf).await.expect("read") {
            0 => return out,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *w).poll_write(cx, data)).await?;
        assert!(n > 0, "poll_write accepted nothing");
        data = &data[n..];
    }
    Ok(())
}

async fn flush<W: AsyncWrite + Unpin>(w: &mut W) -> std::io::Result<()> {
    poll_fn(|cx| Pin::new(&mut *w).poll_flush(cx)).await
}

async fn shutdown<W: AsyncWrite + Unpin>(w: &mut W) -> std::io::Result<()> {
    poll_fn(|cx| Pin::new(&mut *w).poll_shutdown(cx)).await
}

/// A native server that reads everything until end of stream, then sends it back.
async fn collect_then_echo(listener: TcpListener) {
    let (stream, _) = listener.accept().await.unwrap();
    let mut all = Vec::new();
    loop {
        let (res, buf) = stream.read(Vec::with_capacity(65536)).await;
        match res.unwrap() {
            0 => break,
            _ => all.extend_from_slice(&buf),
        }
    }
    let (res, _) = stream.write_all(all).await;
    res.unwrap();
}

/// A megabyte out in random-sized writes and back, through buffers of `read` and `write`
/// bytes (tiny ones exercise partial accepts, waits on a full buffer and short copies).
fn tcp_round_trip(read_cap: usize, write_cap: usize, seed: u64) {
    watchdog(60, move || {
        Runtime::new().unwrap().block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = coring::spawn(collect_then_echo(listener));
            let stream = TcpStream::connect(addr).await.unwrap();
            let mut io = Compat::with_capacity(stream, read_cap, write_cap);
            let mut rng = Rng::new(seed);
            let data = rng.bytes(1 << 20);
            let mut at = 0;
            while at < data.len() {
                let len = rng.range(1, 70_000).min(data.len() - at);
                write_all(&mut io, &data[at..at + len]).await.unwrap();
                at += len;
            }
            shutdown(&mut io).await.unwrap();
            let back = read_to_end(&mut io, 3000).await;
            server.await.unwrap();
            assert_eq!(back.len(), data.len());
            assert!(back == data, "bytes differ after the round trip");
        })
    })
}

#[test]
fn tcp_round_trip_default_buffers() {
    tcp_round_trip(
        coring::compat::DEFAULT_READ_CAPACITY,
        coring::compat::DEFAULT_WRITE_CAPACITY,
        1,
    );
}

#[test]
fn tcp_round_trip_tiny_buffers() {
    tcp_round_trip(7, 5, 2);
}

#[test]
fn tcp_round_trip_through_a_provided_buffer_ring() {
    watchdog(60, || {
        Runtime::new().unwrap().block_on(async {
            let ring = coring::buf::BufRing::new(8, 1000).unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = coring::spawn(collect_then_echo(listener));
            let stream = TcpStream::connect(addr).await.unwrap();
            let mut io = Compat::with_buf_ring(stream, &ring);
            let data = Rng::new(3).bytes(300_000);
            write_all(&mut io, &data).await.unwrap();
            shutdown(&mut io).await.unwrap();
            // 1000-byte ring buffers, 8 of them, read in odd-sized pieces.
            let back = read_to_end(&mut io, 777).await;
            server.await.unwrap();
            assert!(back == data, "bytes differ after the round trip");
            let mut buf = [0u8; 4];
            assert_eq!(read(&mut io, &mut buf).await.unwrap(), 0, "EOF stays EOF");
        })
    })
}

#[test]
fn a_registered_stream_is_read_and_written_through_its_slot() {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    watchdog(60, || {
        let rt = common::uring().build().unwrap();
        rt.block_on(async {
            let ring = coring::buf::BufRing::new(8, 1000).unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            peer.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            stream.register().await.unwrap();
            // Only the slot still reaches the socket: the fd number now names /dev/null.
            let null = std::fs::File::open("/dev/null").unwrap();
            // SAFETY: dup2 onto a descriptor the stream owns; it stays open (as /dev/null).
            assert!(unsafe { libc::dup2(null.as_raw_fd(), stream.as_raw_fd()) } >= 0);
            let mut io = Compat::with_buf_ring(stream, &ring);
            peer.write_all(b"through the slot").unwrap();
            let mut buf = [0u8; 16];
            let mut got = 0;
            while got < buf.len() {
                got += read(&mut io, &mut buf[got..]).await.unwrap();
            }
            assert_eq!(&buf, b"through the slot");
            write_all(&mut io, b"and back").await.unwrap();
            flush(&mut io).await.unwrap();
            let back = coring::task::spawn_blocking(move || {
                let mut back = [0u8; 8];
                peer.read_exact(&mut back).unwrap();
                back
            });
            assert_eq!(&back.await.unwrap(), b"and back");
        });
        assert_eq!(rt.shutdown(), 0);
    })
}

#[test]
fn ring_reads_share_one_buffer_ring_between_connections() {
    use futures_util::io::AsyncBufReadExt;
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let ring = coring::buf::BufRing::new(4, 64).unwrap();
            let mut pairs = Vec::new();
            for i in 0..3 {
                let (a, b) = UnixStream::pair().unwrap();
                let (res, _) = b.write_all(format!("line {i}\nrest").into_bytes()).await;
                res.unwrap();
                pairs.push((Compat::with_buf_ring(a, &ring), b));
            }
            for (i, (io, _)) in pairs.iter_mut().enumerate() {
                let mut line = String::new();
                io.read_line(&mut line).await.unwrap();
                assert_eq!(line, format!("line {i}\n"));
                assert_eq!(io.read_buffer(), b"rest");
            }
        })
    })
}

#[test]
fn vectored_writes_are_gathered() {
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let mut io = a.compat();
            let slices = [
                std::io::IoSlice::new(b"hello"),
                std::io::IoSlice::new(b", "),
                std::io::IoSlice::new(b"world"),
            ];
            assert!(io.is_write_vectored());
            let n = poll_fn(|cx| Pin::new(&mut io).poll_write_vectored(cx, &slices))
                .await
                .unwrap();
            assert_eq!(n, 12);
            flush(&mut io).await.unwrap();
            let (res, buf) = b.read_exact(vec![0u8; 12]).await;
            res.unwrap();
            assert_eq!(&buf, b"hello, world");
        })
    })
}

#[test]
fn buf_read_lines_arriving_in_pieces() {
    use futures_util::io::AsyncBufReadExt;
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let writer = coring::spawn(async move {
                for piece in ["fir", "st\nsecond\nthi", "rd\n", "no newline"] {
                    let (res, _) = b.write_all(piece).await;
                    res.unwrap();
                    coring::time::sleep(Duration::from_millis(2)).await;
                }
            });
            let mut io = a.compat();
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                // futures-io's AsyncBufRead, straight off the wrapper's buffer.
                if io.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                lines.push(line);
            }
            writer.await.unwrap();
            assert_eq!(lines, ["first\n", "second\n", "third\n", "no newline"]);
        })
    })
}

#[test]
fn tokio_fill_buf_and_consume() {
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let (res, _) = b.write_all(&b"abcdef"[..]).await;
            res.unwrap();
            let mut io = a.compat();
            let got = poll_fn(|cx| {
                Pin::new(&mut io)
                    .poll_fill_buf(cx)
                    .map_ok(|bytes| bytes.to_vec())
            })
            .await
            .unwrap();
            assert_eq!(got, b"abcdef");
            Pin::new(&mut io).consume(4);
            assert_eq!(io.read_buffer(), b"ef");
            let mut buf = [0u8; 8];
            assert_eq!(read(&mut io, &mut buf).await.unwrap(), 2);
            assert_eq!(&buf[..2], b"ef");
        })
    })
}

#[test]
fn dropped_read_future_loses_nothing() {
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let mut io = a.compat();
            let mut buf = [0u8; 16];
            // The read op stays in the wrapper when its future is dropped by the timeout.
            let early = coring::time::timeout(Duration::from_millis(5), read(&mut io, &mut buf));
            assert!(early.await.is_err());
            let (res, _) = b.write_all(&b"later"[..]).await;
            res.unwrap();
            let n = read(&mut io, &mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"later");
        })
    })
}

#[test]
fn write_error_is_reported_by_a_later_call() {
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            b.close().await.unwrap();
            let mut io = a.compat();
            // The write is only accepted into the buffer; its failure (EPIPE) shows up at
            // shutdown, which waits for the send to complete.
            write_all(&mut io, b"into the void").await.unwrap();
            let err = shutdown(&mut io)
                .await
                .expect_err("shutdown must report EPIPE");
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
            // And at a write after the failed send completed.
            write_all(&mut io, b"again").await.unwrap();
            coring::time::sleep(Duration::from_millis(10)).await;
            let err = write_all(&mut io, b"and again").await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
        })
    })
}

#[test]
fn accepted_bytes_are_written_after_the_wrapper_is_dropped() {
    watchdog(60, || {
        Runtime::new().unwrap().block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let data = Rng::new(9).bytes(3 << 20);
            let mut io = Compat::with_capacity(a, 4096, 4 << 20);
            let writer = {
                let data = data.clone();
                coring::spawn(async move {
                    // One send in flight (the first megabyte), two more megabytes staged.
                    write_all(&mut io, &data[..1 << 20]).await.unwrap();
                    write_all(&mut io, &data[1 << 20..]).await.unwrap();
                    // Dropped with megabytes accepted but not in the socket (nobody reads
                    // yet): a task finishes the writes, then closes.
                    drop(io);
                })
            };
            writer.await.unwrap();
            coring::time::sleep(Duration::from_millis(20)).await;
            let mut got = Vec::new();
            loop {
                let (res, buf) = b.read(Vec::with_capacity(1 << 16)).await;
                if res.unwrap() == 0 {
                    break;
                }
                got.extend_from_slice(&buf);
            }
            assert_eq!(
                got.len(),
                data.len(),
                "every accepted byte arrives, then EOF"
            );
            assert!(got == data);
        })
    })
}

#[test]
fn dropping_the_wrapper_cancels_its_ops() {
    watchdog(30, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let base = rt.op_slots();
            let (a, b) = UnixStream::pair().unwrap();
            let mut io = a.compat();
            let mut buf = [0u8; 4];
            let pending = coring::time::timeout(Duration::from_millis(2), read(&mut io, &mut buf));
            assert!(pending.await.is_err());
            drop(io); // a recv in flight: cancelled, then the socket closes
            let (res, _) = b.read(vec![0u8; 4]).await;
            assert_eq!(res.unwrap(), 0, "the peer sees end of stream");
            for _ in 0..1000 {
                if rt.op_slots() <= base {
                    break;
                }
                coring::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(rt.op_slots() <= base, "the cancelled recv's slot is freed");
        });
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    })
}

#[test]
fn file_cursor_and_seek() {
    use futures_util::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
    watchdog(30, || {
        let dir = TempDir::new();
        let path = dir.join("compat.txt");
        Runtime::new().unwrap().block_on(async move {
            let file = coring::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await
                .unwrap();
            let mut io = file.compat();
            io.write_all(b"hello ").await.unwrap();
            io.write_all(b"world").await.unwrap();
            assert_eq!(io.position(), 11);
            // Reads flush first: seeking back and reading sees both writes.
            assert_eq!(io.seek(SeekFrom::Start(0)).await.unwrap(), 0);
            let mut all = String::new();
            io.read_to_string(&mut all).await.unwrap();
            assert_eq!(all, "hello world");
            assert_eq!(io.seek(SeekFrom::End(-5)).await.unwrap(), 6);
            let mut word = [0u8; 5];
            io.read_exact(&mut word).await.unwrap();
            assert_eq!(&word, b"world");
            assert_eq!(io.seek(SeekFrom::Current(-11)).await.unwrap(), 0);
            let mut first = [0u8; 2];
            io.read_exact(&mut first).await.unwrap();
            // A write after a read goes at the cursor, not after the data read ahead.
            io.write_all(b"LL").await.unwrap();
            io.flush().await.unwrap();
            assert!(io.seek(SeekFrom::Current(-100)).await.is_err());
            io.close().await.unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "heLLo world");
        })
    })
}

#[test]
fn tokio_seek_two_steps() {
    watchdog(30, || {
        let dir = TempDir::new();
        let path = dir.join("seek.bin");
        std::fs::write(&path, b"0123456789").unwrap();
        Runtime::new().unwrap().block_on(async move {
            let mut io = coring::fs::File::open(&path).await.unwrap().compat();
            let now = poll_fn(|cx| Pin::new(&mut io).poll_complete(cx)).await;
            assert_eq!(now.unwrap(), 0, "no seek started: the current position");
            Pin::new(&mut io).start_seek(SeekFrom::End(-3)).unwrap();
            let at = poll_fn(|cx| Pin::new(&mut io).poll_complete(cx)).await;
            assert_eq!(at.unwrap(), 7);
            let rest = read_to_end(&mut io, 2).await;
            assert_eq!(rest, b"789");
        })
    })
}

#[test]
fn native_and_compat_interoperate_over_tcp() {
    watchdog(30, || {
        Runtime::new().unwrap().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = coring::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                let mut io = Compat::new(stream);
                let mut buf = [0u8; 5];
                for _ in 0..100 {
                    let mut got = 0;
                    while got < 5 {
                        got += read(&mut io, &mut buf[got..]).await.unwrap();
                    }
                    write_all(&mut io, &buf).await.unwrap();
                    flush(&mut io).await.unwrap();
                }
            });
            let stream = TcpStream::connect(addr).await.unwrap();
            for i in 0..100u8 {
                let msg = vec![i; 5];
                let (res, _) = stream.write_all(msg.clone()).await;
                res.unwrap();
                let (res, back) = stream.read_exact(Vec::with_capacity(5)).await;
                res.unwrap();
                assert_eq!(back, msg);
            }
            server.await.unwrap();
        })
    })
}
