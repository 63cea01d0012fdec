//! Item 13: zero-length buffers and iovecs. `tests/bad_input.rs` checks that empty writes,
//! reads and vectored writes complete at once on an idle socket; this adds the cases where a
//! real syscall would *not* complete at once, and the loop semantics of `write_all`:
//! - `write_all(&[])` (a `'static` empty slice, an empty `Vec`, an empty slice of a buffer)
//!   completes at once even when the send buffer is full (a real send would wait) and even
//!   on a reset connection (a real send would fail);
//! - empty iovecs among full ones are skipped: the peer gets exactly the bytes, in order,
//!   on sockets and files;
//! - inside `write_all`, `Ok(0)` from the writer is not end of stream and not success: it is
//!   `WriteZero`, with the buffer handed back, and never a loop; `Interrupted` is retried;
//!   inside `read_exact`, `Ok(0)` is `UnexpectedEof`.

use std::cell::Cell;
use std::io::{ErrorKind, Read};
use std::time::Duration;

use crate::common::{tcp_pair, watchdog, TempDir};
use crate::{finish, serial};
use coring::buf::IoBuf;
use coring::fs::File;
use coring::io::{AsyncReadRent, AsyncReadRentExt, AsyncWriteRent, AsyncWriteRentExt, BufResult};
use coring::runtime::Runtime;

const AT_ONCE: Duration = Duration::from_millis(200);

fn run<Fut: std::future::Future<Output = ()>>(body: impl FnOnce() -> Fut + Send + 'static) {
    let _serial = serial();
    watchdog(30, move || {
        let rt = Runtime::new().unwrap();
        rt.block_on(body());
        finish(&rt);
    });
}

async fn at_once<F: std::future::Future>(what: &str, f: F) -> F::Output {
    coring::time::timeout(AT_ONCE, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not complete at once"))
}

#[test]
fn empty_writes_complete_at_once_on_a_full_or_reset_socket() {
    run(|| async {
        let (server, client) = tcp_pair().await.unwrap();
        server.set_send_buffer_size(4096).unwrap();
        // Fill the send buffer (and the peer's receive buffer) until a write would wait.
        loop {
            let write = server.write(vec![7u8; 64 * 1024]);
            match coring::time::timeout(Duration::from_millis(50), write).await {
                Ok((res, _)) => {
                    res.unwrap();
                }
                Err(_) => break,
            }
        }
        let static_empty: &'static [u8] = &[];
        at_once(
            "write_all(&[]) on a full socket",
            server.write_all(static_empty),
        )
        .await
        .0
        .unwrap();
        at_once("write_all(vec![])", server.write_all(Vec::new()))
            .await
            .0
            .unwrap();
        let (res, slice) = at_once(
            "write_all(empty slice)",
            server.write_all(b"xyz".to_vec().slice(3..)),
        )
        .await;
        res.unwrap();
        assert_eq!(slice.into_inner(), b"xyz");
        let (res, _) = at_once(
            "writev of empty iovecs",
            server.writev(vec![Vec::new(), Vec::new()]),
        )
        .await;
        assert_eq!(res.unwrap(), 0);
        // Reset the peer: empty writes still complete, successfully, without a syscall.
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(client);
        coring::time::sleep(Duration::from_millis(10)).await;
        at_once(
            "write_all(&[]) on a reset socket",
            server.write_all(static_empty),
        )
        .await
        .0
        .unwrap();
    });
}

#[test]
fn empty_iovecs_among_full_ones_are_skipped() {
    run(|| async {
        let (server, mut client) = tcp_pair().await.unwrap();
        let bufs = vec![
            Vec::new(),
            b"ab".to_vec(),
            Vec::new(),
            Vec::new(),
            b"c".to_vec(),
            Vec::new(),
        ];
        let (res, bufs) = server.writev(bufs).await;
        assert_eq!(res.unwrap(), 3);
        assert_eq!(bufs.len(), 6, "every buffer comes back");
        let mut got = [0u8; 3];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abc");
        // Files: writev_all_at with empties, read back exactly.
        let dir = TempDir::new();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .open(dir.join("v"))
            .await
            .unwrap();
        let (res, _) = file
            .writev_all_at(
                vec![
                    Vec::new(),
                    b"hello".to_vec(),
                    Vec::new(),
                    b" world".to_vec(),
                ],
                0,
            )
            .await;
        res.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 11);
        let (res, bufs) = file
            .readv_exact_at(vec![Vec::new(), vec![0u8; 5], Vec::new(), vec![0u8; 6]], 0)
            .await;
        res.unwrap();
        assert_eq!(bufs[1], b"hello");
        assert_eq!(bufs[3], b" world");
    });
}

/// A writer that answers each write with the next scripted result.
struct Scripted {
    script: Vec<Result<usize, ErrorKind>>,
    calls: Cell<usize>,
    written: Vec<u8>,
}

impl AsyncWriteRent for Scripted {
    async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        let call = self.calls.get();
        self.calls.set(call + 1);
        let step = self.script.get(call).cloned().unwrap_or(Ok(0));
        match step {
            Ok(n) => {
                // SAFETY: `stable_ptr` points to `bytes_init` initialized bytes.
                let bytes =
                    unsafe { std::slice::from_raw_parts(buf.stable_ptr(), buf.bytes_init()) };
                let n = n.min(bytes.len());
                self.written.extend_from_slice(&bytes[..n]);
                (Ok(n), buf)
            }
            Err(kind) => (Err(kind.into()), buf),
        }
    }

    async fn writev<B: IoBuf>(&mut self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        (Ok(0), bufs)
    }

    async fn shutdown(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A reader that gives `data` in pieces of at most `step` bytes, then `Ok(0)`.
struct Trickle {
    data: Vec<u8>,
    step: usize,
}

impl AsyncReadRent for Trickle {
    async fn read<B: coring::buf::IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        let n = self.step.min(self.data.len()).min(buf.bytes_total());
        // SAFETY: `stable_mut_ptr` is writable for `bytes_total` bytes, and n <= that.
        unsafe {
            std::ptr::copy_nonoverlapping(self.data.as_ptr(), buf.stable_mut_ptr(), n);
            buf.set_init(n);
        }
        self.data.drain(..n);
        (Ok(n), buf)
    }
}

#[test]
fn ok_zero_inside_write_all_is_write_zero_not_eof() {
    run(|| async {
        // Progress, an interruption (retried), progress, then Ok(0): WriteZero, buffer back.
        let mut w = Scripted {
            script: vec![Ok(3), Err(ErrorKind::Interrupted), Ok(2), Ok(0)],
            calls: Cell::new(0),
            written: Vec::new(),
        };
        let (res, buf) = at_once("write_all", w.write_all(b"0123456789".to_vec())).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WriteZero, "{err}");
        assert_eq!(buf, b"0123456789", "the buffer comes back whole");
        assert_eq!(
            w.written, b"01234",
            "bytes written before the stall, in order"
        );
        assert_eq!(w.calls.get(), 4, "Ok(0) ends the loop at once");
        // An empty buffer makes no write call at all.
        let mut w = Scripted {
            script: vec![Err(ErrorKind::BrokenPipe)],
            calls: Cell::new(0),
            written: Vec::new(),
        };
        w.write_all(Vec::new()).await.0.unwrap();
        assert_eq!(w.calls.get(), 0, "write_all(&[]) must not call write");
        // read_exact: short pieces are joined; Ok(0) before the end is UnexpectedEof.
        let mut r = Trickle {
            data: b"abcdefg".to_vec(),
            step: 2,
        };
        let (res, buf) = r.read_exact(vec![0u8; 5]).await;
        res.unwrap();
        assert_eq!(buf, b"abcde");
        let (res, buf) = r.read_exact(vec![0u8; 5]).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::UnexpectedEof);
        assert_eq!(&buf[..2], b"fg", "bytes read before EOF are kept");
    });
}
