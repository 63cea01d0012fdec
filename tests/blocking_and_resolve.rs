//! The blocking pool and name resolution: `spawn_blocking` returns values (inside and outside
//! a runtime), reports panics as `JoinError`, runs 100 jobs concurrently on a bounded pool,
//! and is awaited from several workers; `TcpStream::connect("localhost:PORT")` resolves on
//! the pool and connects; `TcpListener::bind("localhost:0")`; a name that does not resolve is
//! an error within 10 s, not a hang.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    child_role, cpu_affinity, describe, gettid, plain_block_on, run_child, watchdog, within,
};
use coring::net::{TcpListener, TcpStream};
use coring::runtime::{worker_index, Runtime};
use coring::task::spawn_blocking;

/// The pool's bound (`coring_runtime::task::blocking::MAX_THREADS`, not exported).
const POOL_MAX_THREADS: usize = 64;
/// How long a name lookup may take before the test calls it a hang.
const RESOLVE_LIMIT: Duration = Duration::from_secs(10);

fn thread_name() -> String {
    thread::current().name().unwrap_or("").to_string()
}

#[test]
fn spawn_blocking_returns_values() {
    watchdog(30, || {
        let rt = Runtime::new().unwrap();
        let caller = thread::current().id();
        rt.block_on(async move {
            let sum = spawn_blocking(|| (1..=100u64).sum::<u64>()).await.unwrap();
            assert_eq!(sum, 5050);
            let (name, id) = spawn_blocking(|| (thread_name(), thread::current().id()))
                .await
                .unwrap();
            assert_eq!(name, "coring-blocking");
            assert_ne!(id, caller, "the job ran on a pool thread");
            // Owned, heap-allocated output.
            let v = spawn_blocking(|| vec![7u8; 1 << 20]).await.unwrap();
            assert!(v.len() == 1 << 20 && v.iter().all(|&b| b == 7));
            // A job that blocks (until the runtime tells it to go on) does not block the
            // runtime: a timer fires and a task runs meanwhile.
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let slow = spawn_blocking(move || {
                go_rx
                    .recv_timeout(Duration::from_secs(20))
                    .expect("told to go on");
                "slow"
            });
            coring::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(coring::spawn(async { 5 }).await.unwrap(), 5);
            assert!(!slow.is_finished());
            go_tx.send(()).unwrap();
            assert_eq!(
                within(Duration::from_secs(10), "slow job", slow)
                    .await
                    .unwrap(),
                "slow"
            );
        });
    });
}

#[test]
fn spawn_blocking_without_a_runtime() {
    watchdog(30, || {
        let handle = spawn_blocking(|| 6 * 7);
        assert_eq!(plain_block_on(handle, Duration::from_secs(10)).unwrap(), 42);
    });
}

#[test]
fn spawn_blocking_panic_is_a_join_error() {
    watchdog(30, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let err = spawn_blocking(|| -> u32 { panic!("blocking boom") })
                .await
                .unwrap_err();
            assert!(err.is_panic() && !err.is_cancelled(), "{err:?}");
            assert!(err.to_string().contains("blocking boom"), "{err}");
            let payload = err.into_panic();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"blocking boom"));
            let err = spawn_blocking(|| -> () { std::panic::panic_any(17u32) })
                .await
                .unwrap_err();
            assert_eq!(err.into_panic().downcast_ref::<u32>(), Some(&17));
            // The pool survives its jobs' panics.
            assert_eq!(spawn_blocking(|| 1).await.unwrap(), 1);
            let io: std::io::Error = spawn_blocking(|| panic!("as io")).await.unwrap_err().into();
            assert!(io.to_string().contains("as io"), "{io}");
        });
    });
}

/// Runs 100 jobs of `JOB_TIME` at once; returns (wall time, most jobs running at once).
fn hundred_jobs(rt: &Runtime) -> (Duration, usize) {
    const JOBS: usize = 100;
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let results = rt.block_on(async {
        let handles: Vec<_> = (0..JOBS)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                spawn_blocking(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    thread::sleep(JOB_TIME);
                    running.fetch_sub(1, Ordering::SeqCst);
                    i * i
                })
            })
            .collect();
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await.unwrap());
        }
        results
    });
    assert_eq!(results, (0..JOBS).map(|i| i * i).collect::<Vec<_>>());
    (t0.elapsed(), most.load(Ordering::SeqCst))
}

const JOB_TIME: Duration = Duration::from_millis(50);

/// In a child process, so the pool starts empty and no other test uses it: a burst of 100
/// jobs on a cold pool ("cold"), or after one job left one idle thread behind ("warm"). The
/// pool must use (nearly) all of its 64 threads either way.
#[test]
#[ignore = "child process of the bounded-pool tests"]
fn pool_child() {
    let Some(role) = child_role() else {
        return;
    };
    watchdog(60, move || {
        let rt = Runtime::new().unwrap();
        match role.as_str() {
            "cold" => {}
            "warm" => {
                // One job, awaited: the pool now has exactly one idle thread.
                let pool_tid = rt.block_on(async { spawn_blocking(gettid).await.unwrap() });
                // What a busy machine does by chance, made certain: the idle thread, once
                // woken, gets no CPU before the whole burst is submitted. It shares this
                // thread's CPU with the lowest scheduling class, so it runs only when this
                // thread blocks (threads the pool starts for the burst are normal ones).
                let cpu = cpu_affinity(0)[0];
                set_affinity(0, cpu);
                set_affinity(pool_tid, cpu);
                // SAFETY: sched_param is plain data, read by the call.
                let rc = unsafe {
                    let param = libc::sched_param { sched_priority: 0 };
                    libc::sched_setscheduler(pool_tid, libc::SCHED_IDLE, &param)
                };
                assert_eq!(rc, 0, "SCHED_IDLE: {}", std::io::Error::last_os_error());
                // This thread sleeps: the pool thread gets the CPU and goes back to waiting.
                thread::sleep(Duration::from_millis(50));
            }
            other => panic!("unknown role {other}"),
        }
        let (took, most) = hundred_jobs(&rt);
        println!("CHILD: {role}: 100 jobs of {JOB_TIME:?} in {took:?}, at most {most} at once");
        assert!(
            most <= POOL_MAX_THREADS,
            "{most} jobs ran at once, above the pool's bound"
        );
        // 100 jobs, 64 threads: two waves, with (nearly) all 64 threads busy in the first.
        assert!(
            most >= POOL_MAX_THREADS / 2,
            "{role} pool: only {most} of 100 jobs ran at once (bound {POOL_MAX_THREADS}); took \
             {took:?}"
        );
        assert!(
            took >= JOB_TIME * 2,
            "100 jobs in {took:?}: the pool is not bounded"
        );
        assert!(took < JOB_TIME * 20, "100 jobs took {took:?}");
        println!("CHILD-OK {role}");
    });
}

/// Restricts thread `tid` (0: the calling thread) to `cpu`.
fn set_affinity(tid: i32, cpu: usize) {
    // SAFETY: cpu_set_t is plain data; the call reads the set we pass, with its real size.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity: {}",
        std::io::Error::last_os_error()
    );
}

fn pool_case(role: &str) {
    let out = run_child("pool_child", role, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed\n{}", describe(&out));
    assert!(
        stdout.contains(&format!("CHILD-OK {role}")),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_hundred_jobs_on_a_cold_bounded_pool() {
    pool_case("cold");
}

#[test]
fn a_hundred_jobs_when_the_pool_has_one_idle_thread() {
    pool_case("warm");
}

#[test]
fn spawn_blocking_from_every_worker() {
    watchdog(60, || {
        let rt = Runtime::builder().worker_threads(3).build().unwrap();
        let results = rt.block_on_each(|worker| async move {
            let mut out = Vec::new();
            for i in 0..20usize {
                let (value, name) = spawn_blocking(move || {
                    thread::sleep(Duration::from_millis(1));
                    (worker * 1000 + i, thread_name())
                })
                .await
                .unwrap();
                assert_eq!(name, "coring-blocking");
                // The awaiting task resumed on its own worker.
                assert_eq!(worker_index(), Some(worker));
                out.push(value);
            }
            out
        });
        for (worker, r) in results.into_iter().enumerate() {
            let expected: Vec<usize> = (0..20).map(|i| worker * 1000 + i).collect();
            assert_eq!(r.unwrap(), expected);
        }
    });
}

/// A std listener on 127.0.0.1 that echoes one line per connection, `conns` times.
fn std_echo_listener(conns: usize) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        for _ in 0..conns {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        }
    });
    (addr, handle)
}

async fn hello(stream: &TcpStream) {
    let (res, _) = stream.write_all(b"hello".to_vec()).await;
    res.unwrap();
    let (res, buf) = stream.read_exact(vec![0u8; 5]).await;
    res.unwrap();
    assert_eq!(&buf[..], b"hello");
}

#[test]
fn connect_to_localhost_resolves_and_connects() {
    watchdog(60, || {
        let (addr, server) = std_echo_listener(4);
        let port = addr.port();
        let rt = Runtime::new().unwrap();
        rt.block_on(async move {
            let forms: Vec<Box<dyn Fn() -> _>> = vec![
                Box::new(move || {
                    Box::pin(TcpStream::connect(format!("localhost:{port}")))
                        as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>
                }),
                Box::new(move || Box::pin(TcpStream::connect(("localhost", port)))),
                Box::new(move || Box::pin(TcpStream::connect(("localhost".to_string(), port)))),
                Box::new(move || {
                    Box::pin(TcpStream::connect_timeout(
                        format!("localhost:{port}"),
                        Duration::from_secs(5),
                    ))
                }),
            ];
            for (i, connect) in forms.iter().enumerate() {
                let stream = within(RESOLVE_LIMIT, "connect to localhost", connect())
                    .await
                    .unwrap_or_else(|e| panic!("form {i}: {e}"));
                let peer = stream.peer_addr().unwrap();
                assert_eq!(peer.port(), port);
                assert!(peer.ip().is_loopback(), "{peer}");
                hello(&stream).await;
            }
        });
        server.join().unwrap();
    });
}

#[test]
fn bind_to_localhost_port_zero() {
    watchdog(60, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let listener = within(
                RESOLVE_LIMIT,
                "bind localhost:0",
                TcpListener::bind("localhost:0"),
            )
            .await
            .unwrap();
            let addr = listener.local_addr().unwrap();
            assert!(addr.ip().is_loopback(), "{addr}");
            assert_ne!(addr.port(), 0, "a port was chosen");
            let client = thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.write_all(b"hello").unwrap();
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).unwrap();
                buf
            });
            let (stream, _) = listener.accept().await.unwrap();
            let (res, buf) = stream.read_exact(vec![0u8; 5]).await;
            res.unwrap();
            let (res, _) = stream.write_all(buf).await;
            res.unwrap();
            assert_eq!(&client.join().unwrap(), b"hello");
            // And with SO_REUSEPORT, twice on one resolved port.
            let a = TcpListener::bind_reuseport("localhost:0").await.unwrap();
            let port = a.local_addr().unwrap().port();
            let b = TcpListener::bind_reuseport(("localhost", port))
                .await
                .unwrap();
            assert_eq!(b.local_addr().unwrap().port(), port);
            // A literal address needs no lookup at all.
            let lit = TcpListener::bind((IpAddr::from([127, 0, 0, 1]), 0))
                .await
                .unwrap();
            assert!(lit.local_addr().unwrap().ip().is_loopback());
        });
    });
}

#[test]
fn a_name_that_does_not_resolve_is_an_error() {
    watchdog(60, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let t0 = Instant::now();
            let err = within(
                RESOLVE_LIMIT,
                "connect to an unresolvable name",
                TcpStream::connect("no-such-host.invalid:80"),
            )
            .await
            .unwrap_err();
            eprintln!(
                "no-such-host.invalid: {err} (kind {:?}) after {:?}",
                err.kind(),
                t0.elapsed()
            );
            let err = within(
                RESOLVE_LIMIT,
                "connect_timeout to an unresolvable name",
                TcpStream::connect_timeout("no-such-host.invalid:80", Duration::from_secs(1)),
            )
            .await
            .unwrap_err();
            assert_ne!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
            let err = within(
                RESOLVE_LIMIT,
                "bind to an unresolvable name",
                TcpListener::bind(("no-such-host.invalid", 0)),
            )
            .await
            .unwrap_err();
            eprintln!("bind no-such-host.invalid: {err}");
            // No port, or a bad one: refused without a lookup hanging.
            for bad in ["localhost", "localhost:99999", "localhost:http-ish", ":80"] {
                let res = within(RESOLVE_LIMIT, bad, TcpStream::connect(bad)).await;
                assert!(res.is_err(), "{bad} connected");
            }
            // The runtime goes on working after the failed lookups.
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (client, accepted) =
                common::join2(TcpStream::connect(addr), listener.accept()).await;
            client.unwrap();
            accepted.unwrap();
        });
    });
}

#[test]
fn many_lookups_at_once() {
    watchdog(60, || {
        let (addr, server) = std_echo_listener(50);
        let port = addr.port();
        let rt = Runtime::new().unwrap();
        rt.block_on(async move {
            let handles: Vec<_> = (0..50)
                .map(|_| {
                    coring::spawn(async move {
                        let stream = TcpStream::connect(format!("localhost:{port}")).await?;
                        hello(&stream).await;
                        Ok::<_, std::io::Error>(())
                    })
                })
                .collect();
            for h in handles {
                within(RESOLVE_LIMIT, "lookup + connect", h)
                    .await
                    .unwrap()
                    .unwrap();
            }
        });
        server.join().unwrap();
    });
}
