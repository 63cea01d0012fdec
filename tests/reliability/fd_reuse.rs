//! Item 6: a socket closed while a recv on it is pending, and its descriptor number reused at
//! once by a new socket. The recv future must be dropped first (it borrows the stream), so
//! the order is: recv in flight → drop the recv (cancel queued) → drop the stream (close
//! queued) → a new connection gets the same fd number → its peer sends. The old recv must end
//! promptly (its buffer released within a bound) and never see the new socket's bytes, and the
//! new socket must get all of them.
//!
//! On io_uring the in-flight recv holds a reference to the old *file*, not to the number; on
//! the epoll backend readiness is registered by number, so a stale registration would hand
//! the new socket's readiness to the old op. Both backends are run.

use std::cell::RefCell;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::common::{assert_same_fds, open_fds, poll_once, watchdog};
use crate::{finish, serial, uring};
use coring::buf::{IoBuf, IoBufMut};
use coring::net::{TcpListener, TcpStream};
use coring::runtime::{Builder, DriverPolicy, Runtime};

const FILL: u8 = 0xEE;

/// What a [`Probe`] saw when it was dropped: whether any byte changed, and when.
#[derive(Default)]
struct Report {
    dropped_at: Option<Instant>,
    written: bool,
}

/// A receive buffer that reports, when dropped, whether anything was written into it.
struct Probe {
    data: Vec<u8>,
    report: Rc<RefCell<Report>>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        let mut report = self.report.borrow_mut();
        report.dropped_at = Some(Instant::now());
        report.written = self.data.iter().any(|&b| b != FILL);
    }
}

// SAFETY: the bytes live in the Vec's heap allocation, which never moves or reallocates while
// the probe exists; all of them are initialized.
unsafe impl IoBuf for Probe {
    fn stable_ptr(&self) -> *const u8 {
        self.data.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.data.len()
    }
    fn bytes_total(&self) -> usize {
        self.data.len()
    }
}

// SAFETY: same memory as `stable_ptr`, writable for its whole length.
unsafe impl IoBufMut for Probe {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.data.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

async fn connected(listener: &std::net::TcpListener) -> (TcpStream, std::net::TcpStream) {
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (TcpStream::from_std(client), server)
}

fn run(builder: Builder, what: &str) {
    let before = open_fds();
    let rt = builder.build().unwrap();
    rt.block_on(async {
        // Peers are plain std sockets on a std listener, so the only descriptors this runtime
        // creates are the coring streams under test.
        let peers = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        for round in 0..50 {
            let (old, mut old_peer) = connected(&peers).await;
            let number = old.as_raw_fd();
            let report = Rc::new(RefCell::new(Report::default()));
            {
                let probe = Probe {
                    data: vec![FILL; 4096],
                    report: report.clone(),
                };
                let mut recv = pin!(old.read(probe));
                assert!(poll_once(recv.as_mut()).is_pending(), "{what}: no data yet");
                // Let the recv reach the kernel (or the epoll wait list) on some rounds.
                if round % 2 == 0 {
                    coring::task::yield_now().await;
                }
            } // recv dropped: cancellation queued
            let closed_at = Instant::now();
            drop(old); // close queued, in the same batch as the cancel
                       // Take the number back as soon as the close went through: sockets created
                       // meanwhile fill any lower free numbers and are held until the number is ours.
            let mut placeholders = Vec::new();
            let mut socket = None;
            for _ in 0..200 {
                coring::task::yield_now().await;
                let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .unwrap();
                match s.as_raw_fd().cmp(&number) {
                    std::cmp::Ordering::Equal => {
                        socket = Some(s);
                        break;
                    }
                    std::cmp::Ordering::Less => placeholders.push(s),
                    std::cmp::Ordering::Greater => {
                        drop(s);
                        coring::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            drop(placeholders);
            let Some(socket) = socket else {
                panic!("{what}: round {round}: fd {number} was never freed by the close");
            };
            socket.connect(&peers.local_addr().unwrap().into()).unwrap();
            let (mut new_peer, _) = peers.accept().unwrap();
            let new = TcpStream::from_std(socket.into());
            // Both peers talk now: the old one into a closed socket, the new one to us.
            let _ = old_peer.write_all(b"old socket's bytes");
            let message: Vec<u8> = (0..1000u32).map(|i| (i * 7 + round) as u8).collect();
            new_peer.write_all(&message).unwrap();
            let (res, got) = coring::time::timeout(
                Duration::from_secs(5),
                new.read_exact(vec![0u8; message.len()]),
            )
            .await
            .unwrap_or_else(|_| panic!("{what}: the new socket's data never arrived"));
            res.unwrap();
            assert!(
                got == message,
                "{what}: round {round}: new socket's data differs"
            );
            // The old recv has ended by now, promptly, with its buffer untouched.
            coring::time::sleep(Duration::from_millis(5)).await;
            let report = report.borrow();
            let dropped_at = report
                .dropped_at
                .unwrap_or_else(|| panic!("{what}: round {round}: old recv still in flight"));
            let took = dropped_at - closed_at;
            assert!(
                took < Duration::from_millis(500),
                "{what}: the old recv took {took:?} to end"
            );
            assert!(
                !report.written,
                "{what}: round {round}: the cancelled recv received bytes"
            );
            drop(new);
            drop(new_peer);
            drop(old_peer);
        }
        coring::time::sleep(Duration::from_millis(20)).await;
    });
    finish(&rt);
    drop(rt);
    assert_same_fds(&before, what);
}

#[test]
fn closed_socket_number_reused_while_its_recv_is_cancelled_io_uring() {
    let _serial = serial();
    watchdog(60, || run(uring(), "io_uring"));
}

#[test]
fn closed_socket_number_reused_while_its_recv_is_cancelled_epoll() {
    let _serial = serial();
    watchdog(60, || {
        run(Runtime::builder().driver(DriverPolicy::Epoll), "epoll")
    });
}

#[test]
fn closed_socket_number_reused_while_a_listener_accept_is_cancelled() {
    // The same with an accept: the old listener's cancelled accept must not take the new
    // listener's connection.
    let _serial = serial();
    watchdog(60, || {
        let before = open_fds();
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            for _ in 0..30 {
                let old = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let number = old.as_raw_fd();
                {
                    let mut accept = pin!(old.accept());
                    assert!(poll_once(accept.as_mut()).is_pending());
                }
                drop(old);
                coring::task::yield_now().await;
                let new = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = new.local_addr().unwrap();
                let client = std::net::TcpStream::connect(addr).unwrap();
                let (stream, peer) = coring::time::timeout(Duration::from_secs(5), new.accept())
                    .await
                    .expect("the new listener's connection was taken")
                    .unwrap();
                assert_eq!(peer, client.local_addr().unwrap());
                if new.as_raw_fd() != number {
                    eprintln!("listener number not reused this round");
                }
                drop((stream, client, new));
            }
            coring::time::sleep(Duration::from_millis(20)).await;
        });
        finish(&rt);
        drop(rt);
        assert_same_fds(&before, "listener reuse");
    });
}
