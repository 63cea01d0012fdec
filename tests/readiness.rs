//! `readable()` / `writable()` through the ring (`IORING_OP_POLL_ADD`) on TCP, UDP and Unix
//! sockets and on split halves: pending until data arrives, ready at once when it is there,
//! ready on end of stream, and cancelled cleanly when dropped.

mod common;

use std::future::Future;
use std::io::Write;
use std::pin::pin;
use std::time::Duration;

use common::{poll_once, run, tcp_pair, watchdog, within};
use coring::net::{UdpSocket, UnixDatagram, UnixStream};
use coring::runtime::Runtime;
use coring::time::{sleep, timeout};

const LIMIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(50);

/// Asserts that `fut` is still pending after `QUIET`.
async fn stays_pending<F: Future>(fut: F, what: &str) {
    assert!(
        timeout(QUIET, fut).await.is_err(),
        "{what}: ready although nothing happened"
    );
}

#[test]
fn tcp_readable_completes_when_data_arrives() {
    run(10, || async {
        let (server, mut client) = tcp_pair().await.unwrap();
        stays_pending(server.readable(), "readable on a quiet stream").await;

        let readable = coring::spawn(async move {
            server.readable().await.unwrap();
            server
        });
        sleep(Duration::from_millis(20)).await;
        assert!(!readable.is_finished());
        client.write_all(b"wake").unwrap();
        let server = within(LIMIT, "readable after a write", readable)
            .await
            .unwrap();
        // Ready means a read does not wait.
        let (res, buf) = within(LIMIT, "read", server.read(vec![0u8; 8])).await;
        assert_eq!(&buf[..res.unwrap()], b"wake");
        // Data already there: ready at once.
        client.write_all(b"x").unwrap();
        sleep(Duration::from_millis(10)).await;
        within(LIMIT, "readable with data", server.readable())
            .await
            .unwrap();
    });
}

#[test]
fn tcp_readable_on_end_of_stream_and_writable_at_once() {
    run(10, || async {
        let (server, client) = tcp_pair().await.unwrap();
        within(LIMIT, "writable", server.writable()).await.unwrap();
        drop(client);
        within(LIMIT, "readable at end of stream", server.readable())
            .await
            .unwrap();
        let (res, _) = server.read(vec![0u8; 4]).await;
        assert_eq!(res.unwrap(), 0);
    });
}

#[test]
fn udp_readable_when_a_datagram_arrives() {
    run(10, || async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        within(LIMIT, "writable", a.writable()).await.unwrap();
        stays_pending(b.readable(), "readable with no datagram").await;
        let target = b.local_addr().unwrap();
        let (wait, send) = common::join2(b.readable(), async {
            sleep(Duration::from_millis(20)).await;
            a.send_to(b"d", target).await
        })
        .await;
        wait.unwrap();
        send.0.unwrap();
        let (res, buf) = b.recv(vec![0u8; 4]).await;
        assert_eq!(&buf[..res.unwrap()], b"d");
    });
}

#[test]
fn unix_readable_and_writable() {
    run(10, || async {
        let (a, b) = UnixStream::pair().unwrap();
        within(LIMIT, "writable", a.writable()).await.unwrap();
        stays_pending(b.readable(), "readable on a quiet pair").await;
        let (wait, write) = common::join2(b.readable(), async {
            sleep(Duration::from_millis(20)).await;
            a.write_all(b"u").await
        })
        .await;
        wait.unwrap();
        write.0.unwrap();

        let (x, y) = UnixDatagram::pair().unwrap();
        within(LIMIT, "datagram writable", x.writable())
            .await
            .unwrap();
        stays_pending(y.readable(), "datagram readable").await;
        let (res, _) = x.send(b"1").await;
        res.unwrap();
        within(LIMIT, "datagram readable", y.readable())
            .await
            .unwrap();
    });
}

#[test]
fn split_halves_wait_for_readiness() {
    run(10, || async {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = a.into_split();
        within(LIMIT, "write half writable", w.writable())
            .await
            .unwrap();
        stays_pending(r.readable(), "read half readable").await;
        let (res, _) = b.write_all(b"h").await;
        res.unwrap();
        within(LIMIT, "read half readable", r.readable())
            .await
            .unwrap();
    });
}

#[test]
fn writable_waits_while_the_send_buffer_is_full() {
    run(10, || async {
        let (a, b) = UnixStream::pair().unwrap();
        fill_send_buffer(&a);
        stays_pending(a.writable(), "writable with a full buffer").await;
        let (wait, drain) = common::join2(a.writable(), async {
            sleep(Duration::from_millis(20)).await;
            let (res, _) = b.read(vec![0u8; 1 << 20]).await;
            res.unwrap()
        })
        .await;
        wait.unwrap();
        assert!(drain > 0);
    });
}

#[test]
fn dropped_readiness_waits_are_cancelled() {
    watchdog(10, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let (server, _client) = tcp_pair().await.unwrap();
            for _ in 0..10 {
                let mut wait = pin!(server.readable());
                assert!(poll_once(wait.as_mut()).is_pending());
            }
            sleep(Duration::from_millis(50)).await;
        });
        assert_eq!(
            rt.op_slots(),
            0,
            "every dropped poll was cancelled and reaped"
        );
    });
}

/// Fills `stream`'s send path without waiting.
fn fill_send_buffer(stream: &UnixStream) {
    use std::os::fd::AsRawFd;
    let chunk = [0u8; 4096];
    loop {
        // SAFETY: `chunk` is valid for its length; MSG_DONTWAIT makes this non-blocking.
        let n = unsafe {
            libc::send(
                stream.as_raw_fd(),
                chunk.as_ptr().cast(),
                chunk.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EAGAIN)
            );
            return;
        }
    }
}
