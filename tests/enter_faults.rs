//! `io_uring_enter` failing after entries were published (EINTR, EAGAIN, EBUSY, injected by
//! the `test-util` hook): ops stay owned until their completions, transient errors are
//! retried, nothing is lost or doubled.

use std::time::Duration;

use coring::buf::IoBuf;
use coring::net::{TcpListener, TcpStream};
use coring::runtime::{DriverPolicy, Runtime};
use coring_runtime::driver::fault::{fail_next_enters, injected_failures};

fn run_echo_with_faults(errno: i32) {
    // The injection hook sits in the io_uring backend.
    let rt = Runtime::builder()
        .driver(DriverPolicy::IoUring)
        .entries(16)
        .build()
        .unwrap();
    let enters_before = rt.metrics().enters;
    let injected_before = injected_failures();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        coring::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
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
        });
        // Keep injecting failures while 20 clients each do 200 round trips.
        let injector = coring::spawn(async move {
            for _ in 0..400 {
                fail_next_enters(errno, 3);
                coring::time::sleep(Duration::from_micros(200)).await;
            }
        });
        let clients: Vec<_> = (0..20u8)
            .map(|c| {
                coring::spawn(async move {
                    let stream = TcpStream::connect(addr).await.unwrap();
                    for round in 0..200u32 {
                        let msg: Vec<u8> = (0..(1 + (round as usize * 7) % 3000))
                            .map(|i| (i as u8) ^ c)
                            .collect();
                        let (res, msg) = stream.write_all(msg).await;
                        res.unwrap();
                        let (res, back) = stream.read_exact(vec![0u8; msg.len()]).await;
                        res.unwrap();
                        assert_eq!(back, msg, "client {c} round {round}");
                    }
                })
            })
            .collect();
        for client in clients {
            coring::time::timeout(Duration::from_secs(30), client)
                .await
                .expect("client finished")
                .unwrap();
        }
        injector.abort();
    });
    fail_next_enters(0, 0);
    assert!(rt.metrics().enters > enters_before);
    assert_eq!(rt.shutdown(), 0);
    assert_eq!(rt.op_slots(), 0);
    let injected = injected_failures() - injected_before;
    assert!(injected >= 100, "only {injected} failures were injected");
}

#[test]
fn eintr_is_retried() {
    run_echo_with_faults(libc::EINTR);
}

#[test]
fn eagain_is_retried() {
    run_echo_with_faults(libc::EAGAIN);
}

#[test]
fn ebusy_is_retried() {
    run_echo_with_faults(libc::EBUSY);
}
