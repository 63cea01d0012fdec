//! An echo server (the loop of the crate docs) under hundreds of concurrent connections,
//! with clients as coring tasks in the same runtime and as plain std threads.

mod common;

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use common::{watchdog, within, Rng};
use coring::buf::IoBuf;
use coring::net::{TcpListener, TcpStream};
use coring::runtime::Runtime;

const CLIENTS: usize = 300;
const ROUNDS: usize = 4;
const MAX_MSG: usize = 64 * 1024;

/// Exactly the echo loop of `src/lib.rs`, on an already bound listener.
async fn echo_server(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        coring::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (res, b) = stream.read(buf).await;
                let n = match res {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let (res, b) = stream.write_all(b.slice(..n)).await;
                buf = b.into_inner();
                if res.is_err() {
                    return;
                }
            }
        });
    }
}

/// One client: `ROUNDS` messages of random size, each written by a helper task while this
/// task reads the echo back, checked byte for byte.
async fn coring_client(addr: SocketAddr, seed: u64) -> usize {
    let stream = Rc::new(TcpStream::connect(addr).await.expect("connect"));
    let mut rng = Rng::new(seed);
    let mut total = 0;
    for round in 0..ROUNDS {
        let len = rng.range(1, MAX_MSG);
        let msg = rng.bytes(len);
        let writer = {
            let stream = stream.clone();
            let msg = msg.clone();
            coring::spawn(async move {
                let (res, back) = stream.write_all(msg).await;
                res.expect("client write_all");
                back
            })
        };
        let (res, echoed) = stream.read_exact(Vec::with_capacity(len)).await;
        res.unwrap_or_else(|e| panic!("client {seed} round {round}: read_exact: {e}"));
        assert_eq!(echoed.len(), len);
        assert!(echoed == msg, "client {seed} round {round}: echo differs");
        let sent = writer.await.expect("writer task");
        assert_eq!(sent, msg, "write_all must hand back the same buffer");
        total += len;
    }
    let stream = Rc::try_unwrap(stream).expect("sole owner");
    stream.close().await.expect("close");
    total
}

#[test]
fn echo_300_coring_clients_same_runtime() {
    watchdog(60, || {
        let rt = Runtime::new().unwrap();
        let total = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = coring::spawn(echo_server(listener));
            let done = Rc::new(Cell::new(0usize));
            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let done = done.clone();
                    coring::spawn(async move {
                        let n = coring_client(addr, i as u64 + 1).await;
                        done.set(done.get() + 1);
                        n
                    })
                })
                .collect();
            let mut total = 0;
            for c in clients {
                total += within(Duration::from_secs(50), "echo client", c)
                    .await
                    .expect("client task");
            }
            assert_eq!(done.get(), CLIENTS);
            assert!(
                !server.is_finished(),
                "the accept loop must still be running"
            );
            server.abort();
            assert!(server.await.unwrap_err().is_cancelled());
            total
        });
        assert!(total >= CLIENTS * ROUNDS);
        assert_eq!(rt.shutdown(), 0, "ops stuck at shutdown");
        assert_eq!(rt.op_slots(), 0);
        assert_eq!(rt.tasks(), 0);
    });
}

#[test]
fn echo_300_std_thread_clients() {
    watchdog(60, || {
        // A std listener taken over by coring (`from_std`); socket2 gives it the same backlog
        // as `TcpListener::bind` (std's own 128 overflows with 300 simultaneous connects).
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        socket.listen(1024).unwrap();
        let std_listener: std::net::TcpListener = socket.into();
        let addr = std_listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let rt = Runtime::new().unwrap();
            rt.block_on(async {
                let listener = TcpListener::from_std(std_listener);
                let server = coring::spawn(echo_server(listener));
                // Wait until the clients are done, polling the stop channel between sleeps.
                while stop_rx.try_recv().is_err() {
                    coring::time::sleep(Duration::from_millis(5)).await;
                }
                assert!(!server.is_finished());
            });
            rt.shutdown()
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(move || {
                        let mut rng = Rng::new(1000 + i as u64);
                        let mut stream = std::net::TcpStream::connect(addr).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(30)))
                            .unwrap();
                        let mut writer = stream.try_clone().unwrap();
                        for _ in 0..ROUNDS {
                            let len = rng.range(1, MAX_MSG);
                            let msg = rng.bytes(len);
                            let to_send = msg.clone();
                            let w = std::thread::spawn(move || {
                                writer.write_all(&to_send).unwrap();
                                writer
                            });
                            let mut back = vec![0u8; len];
                            stream.read_exact(&mut back).unwrap();
                            assert!(back == msg, "client {i}: echo differs");
                            writer = w.join().unwrap();
                        }
                        // The server sees end of stream and its connection task returns.
                        stream.shutdown(std::net::Shutdown::Write).unwrap();
                        let mut rest = Vec::new();
                        stream.read_to_end(&mut rest).unwrap();
                        assert!(rest.is_empty());
                    })
                    .unwrap()
            })
            .collect();
        for c in clients {
            c.join().expect("client thread");
        }
        stop_tx.send(()).unwrap();
        let stuck = server.join().expect("server thread");
        assert_eq!(stuck, 0);
    });
}
