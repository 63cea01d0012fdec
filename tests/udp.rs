//! `UdpSocket` on loopback: send_to / recv_from, connected send / recv, datagrams longer than
//! the buffer reported (never cut silently), invalid destinations, options, `from_std`, and a
//! cancelled receive that must not eat the next datagram.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::pin::pin;
use std::time::Duration;

use common::{poll_once, run, within};
use coring::buf::IoBuf;
use coring::net::UdpSocket;

const LIMIT: Duration = Duration::from_secs(5);

async fn bound() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

#[test]
fn send_to_and_recv_from_report_the_sender() {
    run(10, || async {
        let (a, b) = (bound().await, bound().await);
        let (res, buf) = a.send_to(b"hello".to_vec(), b.local_addr().unwrap()).await;
        assert_eq!(res.unwrap(), 5);
        assert_eq!(buf, b"hello", "the buffer comes back");
        let (res, buf) = within(LIMIT, "recv_from", b.recv_from(Vec::with_capacity(64))).await;
        let (n, from) = res.unwrap();
        assert_eq!(n, 5);
        assert_eq!(buf, b"hello", "the Vec's length grew to what arrived");
        assert_eq!(from, a.local_addr().unwrap());

        // Reply to whoever sent it, by the address recv_from gave.
        let (res, _) = b.send_to(b"back", from).await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "reply", a.recv_from(vec![0u8; 64])).await;
        let (n, from) = res.unwrap();
        assert_eq!((&buf[..n], from), (&b"back"[..], b.local_addr().unwrap()));
    });
}

#[test]
fn connected_send_and_recv() {
    run(10, || async {
        let (a, b) = (bound().await, bound().await);
        assert_eq!(
            a.peer_addr().unwrap_err().kind(),
            ErrorKind::NotConnected,
            "no peer before connect"
        );
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());

        let (res, _) = a.send(b"one").await;
        assert_eq!(res.unwrap(), 3);
        let (res, buf) = within(LIMIT, "recv", b.recv(vec![0u8; 16])).await;
        assert_eq!(&buf[..res.unwrap()], b"one");

        // A connected socket ignores datagrams from anyone else.
        let stranger = bound().await;
        let (res, _) = stranger.send_to(b"noise", b.local_addr().unwrap()).await;
        res.unwrap();
        let (res, _) = a.send(b"two").await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv after noise", b.recv(vec![0u8; 16])).await;
        assert_eq!(&buf[..res.unwrap()], b"two");
    });
}

#[test]
fn connect_by_host_name() {
    run(10, || async {
        let (a, b) = (bound().await, bound().await);
        let port = b.local_addr().unwrap().port();
        // "localhost" goes through the blocking resolver; IPv6 may come first and fail on a
        // socket bound to 127.0.0.1, so the next address is tried.
        a.connect(("localhost", port)).await.unwrap();
        let (res, _) = a.send(b"x").await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv", b.recv(vec![0u8; 4])).await;
        assert_eq!(&buf[..res.unwrap()], b"x");
    });
}

#[test]
fn truncated_datagram_is_reported_with_the_bytes_that_fit() {
    run(10, || async {
        let (a, b) = (bound().await, bound().await);
        let payload: Vec<u8> = (0..100u8).collect();
        let (res, _) = a.send_to(payload.clone(), b.local_addr().unwrap()).await;
        assert_eq!(res.unwrap(), 100);

        let (res, buf) = within(LIMIT, "recv_from", b.recv_from(vec![0u8; 10])).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("100") && msg.contains("10-byte"),
            "the message names both sizes: {msg}"
        );
        assert_eq!(
            &buf[..],
            &payload[..10],
            "the buffer holds the truncated bytes"
        );

        // The socket goes on: the next datagram is whole.
        let (res, _) = a.send_to(b"next", b.local_addr().unwrap()).await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv_from", b.recv_from(vec![0u8; 10])).await;
        assert_eq!(&buf[..res.unwrap().0], b"next");

        // The connected `recv` reports it too, and a datagram exactly the buffer's size is fine.
        b.connect(a.local_addr().unwrap()).await.unwrap();
        let (res, _) = a.send_to(vec![7u8; 11], b.local_addr().unwrap()).await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv", b.recv(vec![0u8; 10])).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.to_string().contains("11"), "{err}");
        assert_eq!(buf, vec![7u8; 10]);
        let (res, _) = a.send_to(vec![8u8; 10], b.local_addr().unwrap()).await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv exact fit", b.recv(vec![0u8; 10])).await;
        assert_eq!(res.unwrap(), 10);
        assert_eq!(buf, vec![8u8; 10]);
    });
}

#[test]
fn receive_into_a_slice_of_a_buffer() {
    run(10, || async {
        let (a, b) = (bound().await, bound().await);
        let (res, _) = a.send_to(b"abc", b.local_addr().unwrap()).await;
        res.unwrap();
        let (res, slice) = within(LIMIT, "recv", b.recv_from(vec![b'-'; 8].slice(4..))).await;
        assert_eq!(res.unwrap().0, 3);
        assert_eq!(&slice.into_inner()[..], b"----abc-");
    });
}

#[test]
fn empty_datagram_is_received_as_zero_bytes() {
    run(10, || async {
        let (a, b) = (bound().await, bound().await);
        let (res, _) = a.send_to(Vec::new(), b.local_addr().unwrap()).await;
        assert_eq!(res.unwrap(), 0);
        let (res, _) = within(LIMIT, "recv_from", b.recv_from(vec![0u8; 8])).await;
        assert_eq!(res.unwrap(), (0, a.local_addr().unwrap()));
    });
}

#[test]
fn send_to_an_invalid_address_errors() {
    run(10, || async {
        let a = bound().await;
        // Port 0 is not a destination.
        let (res, buf) = a.send_to(b"x".to_vec(), "127.0.0.1:0").await;
        let err = res.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
        assert_eq!(buf, b"x", "the buffer comes back on failure");
        // An IPv6 destination from an IPv4 socket.
        let (res, _) = a.send_to(b"x", "[::1]:9").await;
        assert!(
            res.is_err(),
            "IPv6 destination from an IPv4 socket: {res:?}"
        );
        // Something that is not an address at all.
        let (res, _) = a.send_to(b"x", "not an address").await;
        assert!(res.is_err());
        // Connecting to an address of the wrong family fails too, and `send` on an
        // unconnected socket has no destination.
        assert!(a.connect("[::1]:9").await.is_err());
        let (res, _) = a.send(b"x").await;
        assert!(res.is_err(), "send without a peer: {res:?}");
    });
}

#[test]
fn bind_to_an_address_in_use_fails() {
    run(10, || async {
        let a = bound().await;
        let err = UdpSocket::bind(a.local_addr().unwrap()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);
    });
}

#[test]
fn options_round_trip() {
    run(10, || async {
        let a = bound().await;
        assert!(!a.broadcast().unwrap());
        a.set_broadcast(true).unwrap();
        assert!(a.broadcast().unwrap());
        a.set_ttl(42).unwrap();
        assert_eq!(a.ttl().unwrap(), 42);
        a.set_send_buffer_size(64 * 1024).unwrap();
        assert!(a.send_buffer_size().unwrap() >= 64 * 1024);
        a.set_recv_buffer_size(64 * 1024).unwrap();
        assert!(a.recv_buffer_size().unwrap() >= 64 * 1024);
        assert!(a.set_ttl(1000).is_err(), "a TTL above 255 is refused");
    });
}

#[test]
fn from_std_and_descriptor_traits() {
    run(10, || async {
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = std_socket.local_addr().unwrap();
        let raw = std_socket.as_raw_fd();
        let a = UdpSocket::from_std(std_socket);
        assert_eq!(a.as_raw_fd(), raw);
        assert_eq!(a.local_addr().unwrap(), addr);

        let b = bound().await;
        let (res, _) = b.send_to(b"std", addr).await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv", a.recv(vec![0u8; 8])).await;
        assert_eq!(&buf[..res.unwrap()], b"std");

        let owned = OwnedFd::from(a);
        assert_eq!(owned.as_raw_fd(), raw);
        let raw = owned.into_raw_fd();
        // SAFETY: `raw` came from `into_raw_fd` and is owned by nobody else.
        let back = std::net::UdpSocket::from(unsafe {
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw)
        });
        assert_eq!(back.local_addr().unwrap(), addr);
        b.close().await.unwrap();
    });
}

#[test]
fn cancelled_recv_does_not_eat_the_next_datagram() {
    run(10, || async {
        let (a, b) = (bound().await, bound().await);
        {
            let mut recv = pin!(b.recv_from(vec![0u8; 16]));
            assert!(poll_once(recv.as_mut()).is_pending());
            // Let the receive reach the kernel, then drop it.
            coring::time::sleep(Duration::from_millis(20)).await;
            assert!(poll_once(recv.as_mut()).is_pending());
        }
        let (res, _) = a.send_to(b"kept", b.local_addr().unwrap()).await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv after cancel", b.recv_from(vec![0u8; 16])).await;
        assert_eq!(&buf[..res.unwrap().0], b"kept");
    });
}

#[test]
fn ipv6_loopback() {
    run(10, || async {
        let Ok(a) = UdpSocket::bind("[::1]:0").await else {
            eprintln!("no IPv6 loopback here; skipping");
            return;
        };
        let b = UdpSocket::bind("[::1]:0").await.unwrap();
        let (res, _) = a.send_to(b"six", b.local_addr().unwrap()).await;
        res.unwrap();
        let (res, buf) = within(LIMIT, "recv_from", b.recv_from(vec![0u8; 8])).await;
        let (n, from) = res.unwrap();
        assert_eq!((&buf[..n], from), (&b"six"[..], a.local_addr().unwrap()));
    });
}
