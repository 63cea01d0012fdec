//! Linked timeouts and multishot accept: `TcpStream::read_with_timeout` times out on an idle
//! connection without losing what is sent later, returns data that is (or becomes)
//! available, and never drops data when the deadline and the data race;
//! `TcpStream::connect_timeout` times out against a listener whose accept queue is full,
//! succeeds against a normal one and reports a refusal as such; `TcpListener::incoming()`
//! accepts 200 connections as a stream from one submission; dropping an `Incoming` (or the
//! runtime under it) while accepted connections are queued closes them and leaves the fd
//! table at its baseline. Every runtime ends with `shutdown() == 0` and `op_slots() == 0`.
//!
//! Every test here counts descriptors or depends on them, so they run one at a time
//! (`fd_lock`).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_same_fds, fd_lock, open_fds, tcp_pair, watchdog, within, Rng};
use coring::net::{TcpListener, TcpStream};
use coring::runtime::Runtime;

/// Generous bound on how late a kernel timeout may be reported on a loaded machine.
const LATE_OK: Duration = Duration::from_secs(2);

/// A runtime on io_uring whatever `CORING_DRIVER` says: linked timeouts and multishot
/// accept are what this file tests.
fn uring() -> Runtime {
    common::uring().build().unwrap()
}

/// Ends a test's runtime: nothing stuck, no slot left.
fn finish(rt: Runtime) {
    assert_eq!(rt.shutdown(), 0, "ops left in flight at shutdown");
    assert_eq!(rt.op_slots(), 0);
    drop(rt);
}

/// Waits (at most 2 s) until this thread's op table is empty.
async fn slots_drain(rt: &Runtime, what: &str) {
    within(Duration::from_secs(2), what, async {
        while rt.op_slots() > 0 {
            coring::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

#[test]
fn read_with_timeout_on_an_idle_connection_then_data() {
    watchdog(60, || {
        let _lock = fd_lock();
        let before = open_fds();
        let rt = uring();
        rt.block_on(async {
            let (server, mut client) = tcp_pair().await.unwrap();
            for (round, ms) in [100u64, 30, 5, 1].into_iter().enumerate() {
                let limit = Duration::from_millis(ms);
                let t0 = Instant::now();
                let (res, buf) = server.read_with_timeout(vec![0u8; 64], limit).await;
                let took = t0.elapsed();
                let err = res.unwrap_err();
                assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
                assert!(took >= limit, "timed out after {took:?}, before {limit:?}");
                assert!(took < limit + LATE_OK, "timed out after {took:?}");
                assert_eq!(buf.len(), 64, "the buffer comes back");
                if round == 0 {
                    eprintln!("read_with_timeout({limit:?}) on an idle connection: {took:?}");
                }
                // Both linked ops are finished: nothing left behind.
                slots_drain(&rt, "slots after a timed-out read").await;
                // Data sent afterwards is all there for the next read.
                let msg = format!("after timeout {round}");
                client.write_all(msg.as_bytes()).unwrap();
                let (res, buf) = server.read(vec![0u8; 64]).await;
                let n = res.unwrap();
                assert_eq!(&buf[..n], msg.as_bytes());
            }
            // End of stream within the timeout is Ok(0), not a timeout.
            client.shutdown(Shutdown::Write).unwrap();
            let (res, _) = server
                .read_with_timeout(vec![0u8; 8], Duration::from_secs(5))
                .await;
            assert_eq!(res.unwrap(), 0);
        });
        finish(rt);
        assert_same_fds(&before, "after read_with_timeout");
    });
}

#[test]
fn read_with_timeout_returns_available_data() {
    watchdog(60, || {
        let _lock = fd_lock();
        let rt = uring();
        rt.block_on(async {
            let (server, mut client) = tcp_pair().await.unwrap();
            // Already there.
            client.write_all(b"ready").unwrap();
            coring::time::sleep(Duration::from_millis(10)).await;
            let t0 = Instant::now();
            let (res, buf) = server
                .read_with_timeout(vec![0u8; 16], Duration::from_secs(5))
                .await;
            assert_eq!(&buf[..res.unwrap()], b"ready");
            assert!(t0.elapsed() < Duration::from_secs(1));
            // The linked timeout was cancelled with the read: its slot is gone well before
            // its 5 s.
            slots_drain(&rt, "the linked timeout's slot after data").await;
            // Arriving during the wait.
            let t0 = Instant::now();
            let writer = thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                client.write_all(b"later").unwrap();
                client
            });
            let (res, buf) = server
                .read_with_timeout(vec![0u8; 16], Duration::from_secs(5))
                .await;
            assert_eq!(&buf[..res.unwrap()], b"later");
            let took = t0.elapsed();
            assert!(
                took >= Duration::from_millis(50) && took < Duration::from_secs(4),
                "{took:?}"
            );
            slots_drain(&rt, "the linked timeout's slot after late data").await;
            let client = writer.join().unwrap();
            drop(client);
            // With a buffer slice.
            let (res, _) = server
                .read_with_timeout(
                    coring::buf::IoBuf::slice(vec![0u8; 16], 4..8),
                    Duration::from_secs(5),
                )
                .await;
            assert_eq!(res.unwrap(), 0, "EOF");
        });
        finish(rt);
    });
}

#[test]
fn read_with_timeout_racing_data_loses_nothing() {
    watchdog(120, || {
        let _lock = fd_lock();
        let rt = uring();
        rt.block_on(async {
            let (server, mut client) = tcp_pair().await.unwrap();
            const MESSAGES: usize = 300;
            let sent: Vec<u8> = Rng::new(99).bytes(MESSAGES * 8);
            let to_send = sent.clone();
            // Messages at random moments, so deadlines and arrivals collide.
            let writer = thread::spawn(move || {
                let mut rng = Rng::new(5);
                for chunk in to_send.chunks(8) {
                    thread::sleep(Duration::from_micros(rng.range(0, 3000) as u64));
                    client.write_all(chunk).unwrap();
                }
                client
            });
            let mut rng = Rng::new(6);
            let mut received = Vec::with_capacity(sent.len());
            let (mut timeouts, mut reads) = (0, 0);
            let mut buf = vec![0u8; 64];
            while received.len() < sent.len() {
                let limit = Duration::from_micros(rng.range(100, 2500) as u64);
                let (res, b) = server.read_with_timeout(buf, limit).await;
                buf = b;
                match res {
                    Ok(0) => panic!("EOF after {} of {} bytes", received.len(), sent.len()),
                    Ok(n) => {
                        received.extend_from_slice(&buf[..n]);
                        reads += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => timeouts += 1,
                    Err(e) => panic!("read failed: {e}"),
                }
            }
            eprintln!("racing read_with_timeout: {reads} reads with data, {timeouts} timeouts");
            assert!(
                received == sent,
                "the byte stream differs: data was lost or reordered"
            );
            let client = writer.join().unwrap();
            drop(client);
            let (res, _) = server.read(vec![0u8; 8]).await;
            assert_eq!(res.unwrap(), 0, "nothing beyond what was sent");
        });
        finish(rt);
    });
}

/// A listener whose accept queue is full: `listen(0)`, nobody accepts, and a few
/// non-blocking connects already made. Further SYNs are dropped by the kernel, so a connect
/// stays pending (retransmitting) instead of completing or failing.
fn full_listener() -> (socket2::Socket, SocketAddr, Vec<socket2::Socket>) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let fillers = (0..4)
        .map(|_| {
            let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            match s.connect(&addr.into()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                Err(e) => panic!("filler connect: {e}"),
            }
            s
        })
        .collect();
    // Let the first handshakes land in the accept queue.
    thread::sleep(Duration::from_millis(50));
    (listener, addr, fillers)
}

#[test]
fn connect_timeout_against_a_full_accept_queue() {
    watchdog(60, || {
        let _lock = fd_lock();
        let before = open_fds();
        let (listener, addr, fillers) = full_listener();
        // A blocking std connect with a timeout confirms the queue really is full.
        let std_probe = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(
            std_probe.is_err(),
            "the accept queue is not full: a std connect succeeded ({std_probe:?})"
        );
        let rt = uring();
        rt.block_on(async {
            for ms in [200u64, 50] {
                let limit = Duration::from_millis(ms);
                let t0 = Instant::now();
                let err = TcpStream::connect_timeout(addr, limit).await.unwrap_err();
                let took = t0.elapsed();
                eprintln!(
                    "connect_timeout({limit:?}) to a full accept queue: {err} after {took:?}"
                );
                assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
                assert!(took >= limit, "gave up after {took:?}, before {limit:?}");
                assert!(took < limit + LATE_OK, "gave up after {took:?}");
                slots_drain(&rt, "slots after a timed-out connect").await;
            }
        });
        finish(rt);
        drop(fillers);
        drop(listener);
        assert_same_fds(&before, "after the timed-out connects");
    });
}

#[test]
fn connect_timeout_succeeds_or_is_refused() {
    watchdog(60, || {
        let _lock = fd_lock();
        let before = open_fds();
        let rt = uring();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let t0 = Instant::now();
            let (client, accepted) = common::join2(
                TcpStream::connect_timeout(addr, Duration::from_secs(5)),
                listener.accept(),
            )
            .await;
            let client = client.unwrap();
            let (server, peer) = accepted.unwrap();
            assert!(t0.elapsed() < Duration::from_secs(4));
            assert_eq!(peer, client.local_addr().unwrap());
            let (res, _) = client.write_all(b"ping".to_vec()).await;
            res.unwrap();
            let (res, buf) = server.read_exact(vec![0u8; 4]).await;
            res.unwrap();
            assert_eq!(&buf[..], b"ping");
            // The linked timeout went with the connect.
            drop((client, server));
            slots_drain(&rt, "slots after a successful connect_timeout").await;
            // A closed port is refused at once, not timed out. (Dropping the listener submits
            // its close to the ring: wait for it to complete.)
            drop(listener);
            slots_drain(&rt, "the listener's close").await;
            let t0 = Instant::now();
            let err = TcpStream::connect_timeout(addr, Duration::from_secs(5))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
            assert!(t0.elapsed() < Duration::from_secs(4));
        });
        finish(rt);
        assert_same_fds(&before, "after connect_timeout");
    });
}

#[test]
fn incoming_accepts_200_connections_as_a_stream() {
    watchdog(90, || {
        let _lock = fd_lock();
        let before = open_fds();
        const CONNS: u32 = 200;
        let rt = uring();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let clients = thread::spawn(move || {
                let threads: Vec<_> = (0..4u32)
                    .map(|t| {
                        thread::spawn(move || {
                            (0..CONNS / 4)
                                .map(|i| {
                                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                                    s.write_all(&(t * 1000 + i).to_le_bytes()).unwrap();
                                    s
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                let mut all: Vec<std::net::TcpStream> = Vec::new();
                for t in threads {
                    all.extend(t.join().unwrap());
                }
                // Every connection gets its id plus one back, then EOF.
                for s in &mut all {
                    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    let mut id = [0u8; 4];
                    s.read_exact(&mut id).unwrap();
                    let mut rest = [0u8; 1];
                    assert_eq!(s.read(&mut rest).unwrap(), 0);
                }
                all.len()
            });
            let sqes_before = rt.metrics().sqes;
            let mut incoming = listener.incoming();
            let mut streams = Vec::new();
            for i in 0..CONNS {
                let (stream, peer) =
                    within(Duration::from_secs(30), "incoming.next()", incoming.next())
                        .await
                        .expect("the stream does not end")
                        .unwrap_or_else(|e| panic!("connection {i}: {e}"));
                assert_eq!(
                    peer,
                    stream.peer_addr().unwrap(),
                    "incoming() names the peer"
                );
                streams.push(stream);
            }
            let accept_sqes = rt.metrics().sqes - sqes_before;
            eprintln!("incoming: {CONNS} connections from {accept_sqes} submissions");
            assert!(
                accept_sqes < u64::from(CONNS) / 4,
                "{accept_sqes} submissions for {CONNS} accepts: not multishot"
            );
            let peers: std::collections::HashSet<_> =
                streams.iter().map(|s| s.peer_addr().unwrap()).collect();
            assert_eq!(peers.len(), CONNS as usize, "distinct connections");
            let handlers: Vec<_> = streams
                .into_iter()
                .map(|stream| {
                    coring::spawn(async move {
                        let (res, buf) = stream.read_exact(vec![0u8; 4]).await;
                        res.unwrap();
                        let id = u32::from_le_bytes(buf[..].try_into().unwrap());
                        let (res, _) = stream.write_all((id + 1).to_le_bytes().to_vec()).await;
                        res.unwrap();
                        id
                    })
                })
                .collect();
            let mut ids = Vec::new();
            for h in handlers {
                ids.push(h.await.unwrap());
            }
            ids.sort();
            let mut expected: Vec<u32> = (0..4u32)
                .flat_map(|t| (0..CONNS / 4).map(move |i| t * 1000 + i))
                .collect();
            expected.sort();
            assert_eq!(ids, expected);
            assert_eq!(clients.join().unwrap(), CONNS as usize);
            drop(incoming);
        });
        finish(rt);
        assert_same_fds(&before, "after 200 accepts through incoming()");
    });
}

/// Reads until EOF (or reset): the server side of the connection was closed.
fn expect_closed(client: &mut std::net::TcpStream, what: &str) {
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 8];
    match client.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("{what}: {n} unexpected bytes"),
        Err(e) => panic!("{what}: the connection was not closed ({e})"),
    }
}

#[test]
fn dropping_incoming_with_queued_connections_leaks_nothing() {
    watchdog(60, || {
        let _lock = fd_lock();
        let before = open_fds();
        let rt = uring();
        let mut clients = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut incoming = listener.incoming();
            let mut clients = vec![std::net::TcpStream::connect(addr).unwrap()];
            let (first, _) = within(Duration::from_secs(10), "first connection", incoming.next())
                .await
                .unwrap()
                .unwrap();
            // More connections arrive; the armed multishot accept takes each of them into
            // this process while nobody asks for them.
            let with_queued = open_fds().len();
            for _ in 0..20 {
                clients.push(std::net::TcpStream::connect(addr).unwrap());
            }
            let accepted = within(Duration::from_secs(10), "kernel accepts", async {
                loop {
                    coring::time::sleep(Duration::from_millis(5)).await;
                    // 20 client sockets plus the 20 accepted ones.
                    if open_fds().len() >= with_queued + 40 {
                        break;
                    }
                }
            })
            .await;
            let () = accepted;
            drop(incoming);
            drop(first);
            // The queued connections were closed with the stream; the listener stays open.
            slots_drain(&rt, "the cancelled multishot accept").await;
            coring::time::sleep(Duration::from_millis(20)).await;
            assert!(
                open_fds().len() <= with_queued + 20,
                "accepted fds were closed"
            );
            // A new stream on the same listener still accepts.
            let mut late = std::net::TcpStream::connect(addr).unwrap();
            let mut incoming = listener.incoming();
            let (stream, peer) = within(
                Duration::from_secs(10),
                "connection after the drop",
                incoming.next(),
            )
            .await
            .unwrap()
            .unwrap();
            assert_eq!(
                peer,
                late.local_addr().unwrap(),
                "incoming() names the peer"
            );
            late.write_all(b"x").unwrap();
            let (res, _) = stream.read(vec![0u8; 1]).await;
            assert_eq!(res.unwrap(), 1);
            clients.push(late);
            clients
        });
        for (i, c) in clients.iter_mut().enumerate() {
            expect_closed(c, &format!("client {i}"));
        }
        finish(rt);
        drop(clients);
        assert_same_fds(&before, "after dropping incoming() with queued connections");
    });
}

#[test]
fn dropping_the_runtime_under_an_incoming_stream_leaks_nothing() {
    watchdog(60, || {
        let _lock = fd_lock();
        let before = open_fds();
        let rt = uring();
        let clients = rt.block_on(async {
            let (addr_tx, addr_rx) = coring::sync::oneshot::channel::<SocketAddr>();
            // A task owns the listener and its stream, takes one connection and then waits
            // for ever; more connections pile up in the multishot's queue.
            coring::spawn(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let mut incoming = listener.incoming();
                let (first, _peer) = incoming.next().await.unwrap().unwrap();
                std::future::pending::<()>().await;
                drop(first);
            });
            let addr = addr_rx.await.unwrap();
            let mut clients = Vec::new();
            for _ in 0..15 {
                clients.push(std::net::TcpStream::connect(addr).unwrap());
            }
            coring::time::sleep(Duration::from_millis(100)).await;
            clients
        });
        // The task, its stream and every connection it accepted go with the runtime.
        finish(rt);
        let mut clients = clients;
        for (i, c) in clients.iter_mut().enumerate() {
            expect_closed(c, &format!("client {i}"));
        }
        drop(clients);
        assert_same_fds(&before, "after dropping the runtime under incoming()");
    });
}

#[test]
fn incoming_skips_a_connection_reset_before_its_peer_address_is_read() {
    // A connection reset while it waits in the accept queue is still accepted, but has no peer
    // address any more (`getpeername` answers ENOTCONN): `incoming()` closes it and yields
    // the next connection, with that connection's address.
    let _lock = fd_lock(); // the other tests here count the process's descriptors
    common::run(30, || async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reset = std::net::TcpStream::connect(addr).unwrap();
        socket2::SockRef::from(&reset)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(reset); // RST
        coring::time::sleep(Duration::from_millis(20)).await;
        let good = std::net::TcpStream::connect(addr).unwrap();
        let mut incoming = listener.incoming();
        let (stream, peer) = within(Duration::from_secs(10), "incoming", incoming.next())
            .await
            .expect("the stream does not end")
            .expect("a reset connection is skipped, not an error");
        assert_eq!(peer, good.local_addr().unwrap());
        assert_eq!(stream.peer_addr().unwrap(), peer);
    });
}
