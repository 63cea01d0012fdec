//! Item 8: `accept` when the process is out of descriptors (`EMFILE`), in a child process with
//! a lowered `RLIMIT_NOFILE`. The acceptor is the naive "log and retry" loop that
//! `TcpListener::accept` documents as safe (it pauses, up to 100 ms, before returning a
//! resource-exhaustion error). Required:
//! - no spin: the process uses well under half a core over one second at `EMFILE`;
//! - other, already accepted connections keep being served meanwhile;
//! - once descriptors are freed, the waiting connection is accepted (and echoed) within a
//!   second.
//!
//! Clients cannot open sockets in the exhausted process, so they are created before the
//! limit is lowered and only connected afterwards (a connect needs no new descriptor).

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{child_role, open_fds, run_child};
use crate::{assert_child_ok, process_cpu, set_soft_limit, uring};
use coring::buf::IoBuf;
use coring::net::{TcpListener, TcpStream};
use coring::runtime::{Builder, DriverPolicy, Runtime};

async fn echo(stream: TcpStream) {
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
}

/// One echo round trip on a blocking std client.
fn round_trip(client: &mut std::net::TcpStream, msg: &[u8]) -> bool {
    let mut back = vec![0u8; msg.len()];
    client.write_all(msg).is_ok() && client.read_exact(&mut back).is_ok() && back == msg
}

/// Opens `/dev/null` until the process is out of descriptors; returns what it opened.
fn exhaust_descriptors() -> Vec<OwnedFd> {
    let mut fillers = Vec::new();
    loop {
        // SAFETY: a NUL-terminated literal path; a non-negative result is a new fd we own.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
            return fillers;
        }
        // SAFETY: just opened, owned by nobody else.
        fillers.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

fn scenario(builder: Builder, what: &str) {
    let rt = builder.build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let errors = Rc::new(Cell::new(0u64));
        let accepted = Rc::new(Cell::new(0u64));
        let last_error = Rc::new(Cell::new(0i32));
        let (e, a, l) = (errors.clone(), accepted.clone(), last_error.clone());
        let acceptor = coring::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        a.set(a.get() + 1);
                        coring::spawn(echo(stream));
                    }
                    Err(err) => {
                        e.set(e.get() + 1);
                        l.set(err.raw_os_error().unwrap_or(-1));
                    }
                }
            }
        });
        // A connection accepted and served before the exhaustion.
        let mut served = std::net::TcpStream::connect(addr).unwrap();
        served
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        while accepted.get() < 1 {
            coring::time::sleep(Duration::from_millis(1)).await;
        }
        let waiting =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        // Lower the limit just above the highest descriptor in use, then fill the rest.
        let highest = *open_fds().keys().max().unwrap() as u64;
        set_soft_limit(libc::RLIMIT_NOFILE, highest + 16);
        let mut fillers = exhaust_descriptors();
        // A client connects: the kernel queues it, and every accept now fails with EMFILE.
        waiting.connect(&addr.into()).unwrap();
        let errors_before = errors.get();
        // One second at EMFILE, with the served connection in use from another thread.
        let stop = Arc::new(AtomicBool::new(false));
        let round_trips = Arc::new(AtomicU64::new(0));
        let (s, r) = (stop.clone(), round_trips.clone());
        let user = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                assert!(
                    round_trip(&mut served, b"still served?"),
                    "served connection broke"
                );
                r.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
            served
        });
        let (cpu0, t0) = (process_cpu(), Instant::now());
        coring::time::sleep(Duration::from_secs(1)).await;
        let (cpu, wall) = (process_cpu() - cpu0, t0.elapsed());
        stop.store(true, Ordering::SeqCst);
        let user = {
            while !user.is_finished() {
                coring::time::sleep(Duration::from_millis(1)).await;
            }
            user.join().unwrap()
        };
        let share = cpu.as_secs_f64() / wall.as_secs_f64();
        let failed_accepts = errors.get() - errors_before;
        println!(
            "{what}: at EMFILE for {wall:?}: CPU {cpu:?} ({:.1}% of a core), {failed_accepts} \
             failed accepts (last errno {}), {} round trips on the served connection",
            share * 100.0,
            last_error.get(),
            round_trips.load(Ordering::SeqCst)
        );
        assert!(failed_accepts >= 1, "{what}: accept never reported EMFILE");
        assert_eq!(last_error.get(), libc::EMFILE, "{what}");
        assert!(
            share < 0.5,
            "{what}: accept spins at EMFILE: {:.1}%",
            share * 100.0
        );
        assert!(
            round_trips.load(Ordering::SeqCst) >= 10,
            "{what}: the served connection starved"
        );
        // Free descriptors: the queued connection is accepted and echoed within a second.
        let freed_at = Instant::now();
        fillers.truncate(fillers.len().saturating_sub(8));
        let mut waiting = std::net::TcpStream::from(OwnedFd::from(waiting));
        waiting
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let client = std::thread::spawn(move || round_trip(&mut waiting, b"let me in"));
        while !client.is_finished() {
            coring::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            client.join().unwrap(),
            "{what}: the waiting connection was not served"
        );
        let resumed = freed_at.elapsed();
        println!("{what}: accepting resumed {resumed:?} after descriptors were freed");
        assert!(
            resumed < Duration::from_secs(1),
            "{what}: resumed after {resumed:?}"
        );
        assert_eq!(accepted.get(), 2);
        acceptor.abort();
        drop((fillers, user));
    });
    assert_eq!(rt.shutdown(), 0);
    assert_eq!(rt.op_slots(), 0);
}

#[test]
#[ignore = "child process of accept_at_emfile; runs only when re-executed"]
fn emfile_child() {
    let Some(role) = child_role() else { return };
    match role.as_str() {
        "uring" => scenario(uring(), "io_uring"),
        "epoll" => scenario(Runtime::builder().driver(DriverPolicy::Epoll), "epoll"),
        _ => scenario(Runtime::builder(), "default"),
    }
    println!("emfile-ok");
}

#[test]
fn accept_at_emfile() {
    let _serial = crate::serial();
    for role in ["uring", "epoll"] {
        let out = run_child("emfile::emfile_child", role, Duration::from_secs(30));
        assert_child_ok(&out, "emfile-ok");
        eprint!("{}", String::from_utf8_lossy(&out.stdout));
    }
}
