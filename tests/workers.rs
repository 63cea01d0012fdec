//! Multi-worker runtimes: `block_on_each` on every worker, `spawn_on` (output, panic, abort
//! across threads), `SO_REUSEPORT` listeners on two workers serving an echo load, cross-worker
//! wakes (`IORING_OP_MSG_RING`) in a 10,000-round ping-pong, wakes from a plain thread while
//! every worker is parked, `ShutdownHandle` from another thread, `#[coring::test(worker_threads
//! = N)]`, core pinning, and dropping a runtime (threads joined, descriptors back to baseline;
//! checked in a re-executed child process so no other test's descriptors interfere).

mod common;

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_same_fds, child_role, cpu_affinity, describe, fd_lock, gettid, open_fds, run_child,
    thread_count, thread_exists, wait_until, watchdog, within, Rng,
};
use coring::net::{TcpListener, TcpStream};
use coring::runtime::{spawn_on, worker_index, Runtime};
use coring::sync::{mpsc, oneshot, watch};

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().worker_threads(workers).build().unwrap()
}

/// On io_uring whatever `CORING_DRIVER` says: wakes between workers go by `IORING_OP_MSG_RING`.
fn uring_runtime(workers: usize) -> Runtime {
    common::uring().worker_threads(workers).build().unwrap()
}

fn thread_name() -> Option<String> {
    thread::current().name().map(String::from)
}

/// Runs the (not necessarily `Send`) future `make()` on worker `worker`.
///
/// `spawn_on` takes only `Send` futures, which excludes anything holding coring I/O, a timer
/// or a local `JoinHandle` across an await. The future is therefore created on the target
/// worker inside a local task, and its output comes back through a oneshot. (Aborting the
/// returned handle does not cancel that local task.)
fn run_on<M, F>(worker: usize, make: M) -> coring::task::JoinHandle<F::Output>
where
    M: FnOnce() -> F + Send + 'static,
    F: std::future::Future + 'static,
    F::Output: Send + 'static,
{
    spawn_on(worker, async move {
        let (tx, rx) = oneshot::channel();
        drop(coring::spawn(async move {
            let _ = tx.send(make().await);
        }));
        rx.await
            .expect("the local task on the target worker finished")
    })
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicUsize>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn worker_threads_counts_workers() {
    watchdog(30, || {
        assert_eq!(Runtime::new().unwrap().worker_threads(), 1);
        assert_eq!(
            Runtime::builder()
                .worker_threads(0)
                .build()
                .unwrap()
                .worker_threads(),
            1,
            "worker_threads(0) means one worker"
        );
        for n in [1, 2, 3] {
            assert_eq!(runtime(n).worker_threads(), n);
        }
        assert_eq!(worker_index(), None, "no runtime on this thread");
        let err = catch_unwind(|| drop(spawn_on(0, async {}))).unwrap_err();
        let msg = err
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| err.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(
            msg.contains("inside a coring runtime"),
            "spawn_on outside a runtime: {msg:?}"
        );
    });
}

#[test]
fn block_on_each_runs_on_every_worker() {
    watchdog(30, || {
        for n in [2, 3] {
            let rt = runtime(n);
            let results = rt.block_on_each(|worker| async move {
                // A little real work on each worker's ring first.
                coring::time::sleep(Duration::from_millis(5)).await;
                let (server, client) = common::tcp_pair().await.unwrap();
                drop(client);
                let (res, _) = server.read(vec![0u8; 4]).await;
                assert_eq!(res.unwrap(), 0);
                (worker, worker_index(), gettid(), thread_name())
            });
            assert_eq!(results.len(), n);
            let mut tids = HashSet::new();
            for (i, result) in results.into_iter().enumerate() {
                let (arg, index, tid, name) = result.unwrap();
                assert_eq!(arg, i, "make() got the worker's index");
                assert_eq!(index, Some(i), "worker_index() on worker {i}");
                assert!(tids.insert(tid), "worker {i} shares thread {tid}");
                if i == 0 {
                    assert_eq!(tid, gettid(), "worker 0 is the calling thread");
                } else {
                    assert_eq!(name, Some(format!("coring-worker-{i}")));
                }
            }
        }
    });
}

#[test]
fn block_on_each_reports_a_panicking_worker() {
    watchdog(30, || {
        let rt = runtime(3);
        let results = rt.block_on_each(|worker| async move {
            coring::task::yield_now().await;
            if worker == 1 {
                panic!("worker one gives up");
            }
            worker * 10
        });
        assert_eq!(*results[0].as_ref().unwrap(), 0);
        let err = results[1].as_ref().unwrap_err();
        assert!(err.is_panic(), "{err:?}");
        assert!(err.to_string().contains("worker one gives up"), "{err}");
        assert_eq!(*results[2].as_ref().unwrap(), 20);
        // The runtime survives the panic: worker 1 still runs tasks.
        let again = rt.block_on(async { spawn_on(1, async { worker_index() }).await });
        assert_eq!(again.unwrap(), Some(1));
    });
}

#[test]
fn spawn_on_runs_on_the_target_worker_and_returns_output() {
    watchdog(30, || {
        let rt = runtime(3);
        let main_tid = gettid();
        rt.block_on(async move {
            let handles: Vec<_> = (0..3)
                .flat_map(|round| {
                    (0..3usize).map(move |target| {
                        spawn_on(target, async move {
                            for _ in 0..round {
                                coring::task::yield_now().await;
                            }
                            // An output that owns heap memory crosses back.
                            let payload: Vec<u8> = (0..1000).map(|b| (b + target) as u8).collect();
                            (target, worker_index(), gettid(), payload)
                        })
                    })
                })
                .collect();
            let mut tids = vec![HashSet::new(); 3];
            for handle in handles {
                let (target, index, tid, payload) =
                    within(Duration::from_secs(10), "spawn_on", handle)
                        .await
                        .unwrap();
                assert_eq!(index, Some(target));
                assert_eq!(payload.len(), 1000);
                assert!(payload
                    .iter()
                    .enumerate()
                    .all(|(b, &v)| v == (b + target) as u8));
                tids[target].insert(tid);
            }
            for (worker, set) in tids.iter().enumerate() {
                assert_eq!(set.len(), 1, "worker {worker} ran on one thread: {set:?}");
            }
            assert!(tids[0].contains(&main_tid));
            let all: HashSet<_> = tids.iter().flatten().collect();
            assert_eq!(all.len(), 3, "three distinct threads");

            // A handle awaited on another worker than the spawner's, and a spawn_on from a
            // worker other than 0.
            let nested = run_on(1, || async {
                let inner = spawn_on(2, async { worker_index().unwrap() * 100 });
                let from_two = inner.await.unwrap();
                let back_home = spawn_on(0, async { worker_index() }).await.unwrap();
                // Real I/O and a timer on worker 1's ring.
                coring::time::sleep(Duration::from_millis(2)).await;
                let (server, client) = common::tcp_pair().await.unwrap();
                drop(client);
                assert_eq!(server.read(vec![0u8; 4]).await.0.unwrap(), 0);
                (worker_index(), from_two, back_home)
            });
            let out = within(Duration::from_secs(10), "nested spawn_on", nested)
                .await
                .unwrap();
            assert_eq!(out, (Some(1), 200, Some(0)));
        });
    });
}

#[test]
fn spawn_on_panic_is_a_join_error() {
    watchdog(30, || {
        let rt = runtime(2);
        rt.block_on(async {
            let handle = spawn_on(1, async {
                coring::task::yield_now().await;
                if worker_index() == Some(1) {
                    panic!("remote boom");
                }
                5
            });
            let err = within(Duration::from_secs(10), "panicking remote task", handle)
                .await
                .unwrap_err();
            assert!(err.is_panic() && !err.is_cancelled(), "{err:?}");
            let payload = err.into_panic();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"remote boom"));
            // Panicking immediately (first poll) as well.
            let err = spawn_on(1, async { panic!("at once") }).await.unwrap_err();
            assert!(err.is_panic(), "{err:?}");
            // Worker 1 keeps going.
            assert_eq!(spawn_on(1, async { 7 }).await.unwrap(), 7);
        });
    });
}

#[test]
fn abort_of_a_remote_task_is_cancelled() {
    watchdog(30, || {
        let rt = runtime(2);
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        rt.block_on(async move {
            // A remote task parked on a channel nobody sends to.
            let (started_tx, started_rx) = oneshot::channel();
            let (mut never_tx, never_rx) = oneshot::channel::<()>();
            let (d1, d2) = (d.clone(), d.clone());
            let handle = spawn_on(1, async move {
                let _flag = DropFlag(d1);
                assert_eq!(worker_index(), Some(1));
                started_tx.send(()).unwrap();
                let res = never_rx.await;
                panic!("the channel delivered although nothing was sent: {res:?}");
            });
            within(Duration::from_secs(10), "remote task start", started_rx)
                .await
                .unwrap();
            assert!(!handle.is_finished());
            handle.abort();
            let err = within(Duration::from_secs(10), "aborted remote task", handle)
                .await
                .unwrap_err();
            assert!(err.is_cancelled() && !err.is_panic(), "{err:?}");
            // The aborted future was dropped on worker 1: its receiver is gone.
            within(
                Duration::from_secs(5),
                "receiver dropped",
                never_tx.closed(),
            )
            .await;
            // A remote task aborted before it ever ran.
            // The flag is built here and moved in: a future that never ran still owns it.
            let flag = DropFlag(d2);
            let handle = spawn_on(1, async move {
                let _flag = flag;
                std::future::pending::<()>().await
            });
            handle.abort();
            let err = within(Duration::from_secs(10), "aborted unstarted task", handle)
                .await
                .unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
            // Aborting a finished remote task changes nothing.
            let handle = spawn_on(1, async { 3 });
            within(Duration::from_secs(10), "remote task to finish", async {
                while !handle.is_finished() {
                    coring::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await;
            handle.abort();
            assert_eq!(handle.await.unwrap(), 3);
        });
        assert!(
            wait_until(Duration::from_secs(5), || dropped.load(Ordering::SeqCst)
                == 2),
            "the aborted futures were dropped ({} of 2)",
            dropped.load(Ordering::SeqCst)
        );
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}

/// Per-worker accounting of the reuseport echo test.
struct ServerStats {
    data_conns: [AtomicUsize; 2],
    bytes: AtomicUsize,
    stopped: [AtomicBool; 2],
}

/// One connection: a header byte, then `D` = echo until EOF, `S` = stop this worker.
async fn serve(stream: TcpStream, worker: usize, stats: Arc<ServerStats>, stop: Rc<Cell<bool>>) {
    let (res, header) = stream.read_exact(vec![0u8; 1]).await;
    if res.is_err() {
        return; // a stop connection that gave up
    }
    match header[0] {
        b'S' => {
            stats.stopped[worker].store(true, Ordering::SeqCst);
            stop.set(true);
        }
        b'D' => {
            stats.data_conns[worker].fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 8192];
            loop {
                let (res, b) = stream.read(buf).await;
                let n = res.expect("echo read");
                if n == 0 {
                    return;
                }
                stats.bytes.fetch_add(n, Ordering::SeqCst);
                let (res, b) = stream.write_all(coring::buf::IoBuf::slice(b, ..n)).await;
                res.expect("echo write");
                buf = b.into_inner();
            }
        }
        other => panic!("bad header {other}"),
    }
}

fn echo_client(port: u16, seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(b"D").unwrap();
    let mut total = 0;
    for _ in 0..3 {
        let len = rng.range(1, 16 * 1024);
        let data = rng.bytes(len);
        stream.write_all(&data).unwrap();
        let mut back = vec![0u8; len];
        stream.read_exact(&mut back).expect("echo read");
        assert!(back == data, "echoed bytes differ (seed {seed})");
        total += len;
    }
    stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = [0u8; 1];
    assert_eq!(stream.read(&mut rest).unwrap(), 0, "EOF after the echo");
    total
}

#[test]
fn reuseport_listeners_on_two_workers_serve_an_echo_load() {
    watchdog(90, || {
        const CONNS: usize = 100;
        const CLIENT_THREADS: usize = 10;
        let rt = runtime(2);
        let stats = Arc::new(ServerStats {
            data_conns: [AtomicUsize::new(0), AtomicUsize::new(0)],
            bytes: AtomicUsize::new(0),
            stopped: [AtomicBool::new(false), AtomicBool::new(false)],
        });
        // Worker 0 publishes the port it bound; worker 1 waits for it.
        let port = Arc::new(watch::channel(0u16).0);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<u16>();

        let client_stats = stats.clone();
        let clients = thread::spawn(move || {
            let port = ready_rx.recv().unwrap();
            assert_eq!(
                ready_rx.recv().unwrap(),
                port,
                "both workers bound one port"
            );
            let per_thread = CONNS / CLIENT_THREADS;
            let threads: Vec<_> = (0..CLIENT_THREADS)
                .map(|t| {
                    thread::spawn(move || {
                        (0..per_thread)
                            .map(|c| echo_client(port, (t * 1000 + c) as u64))
                            .sum::<usize>()
                    })
                })
                .collect();
            let sent: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
            // Every data connection was served. Now stop both workers: a stop connection
            // lands on either listener; repeat until both saw one.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !client_stats
                .stopped
                .iter()
                .all(|s| s.load(Ordering::SeqCst))
            {
                assert!(Instant::now() < deadline, "could not stop both workers");
                if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                    let _ = s.write_all(b"S");
                }
                thread::sleep(Duration::from_millis(5));
            }
            sent
        });

        let worker_stats = stats.clone();
        let results = rt.block_on_each(move |worker| {
            let (port, ready_tx) = (port.clone(), ready_tx.clone());
            let stats = worker_stats.clone();
            async move {
                let listener = if worker == 0 {
                    let l = TcpListener::bind_reuseport("127.0.0.1:0").await.unwrap();
                    port.send_replace(l.local_addr().unwrap().port());
                    l
                } else {
                    let port = *port.subscribe().wait_for(|p| *p != 0).await.unwrap();
                    TcpListener::bind_reuseport(("127.0.0.1", port))
                        .await
                        .unwrap()
                };
                let port = listener.local_addr().unwrap().port();
                ready_tx.send(port).unwrap();
                let stop = Rc::new(Cell::new(false));
                let (stop_tx, mut stop_rx) = mpsc::channel::<()>(1);
                let accept_stop = stop.clone();
                let acceptor = coring::spawn(async move {
                    let mut handlers = Vec::new();
                    loop {
                        let (stream, _) = listener.accept().await.expect("accept");
                        let (stats, stop, stop_tx) =
                            (stats.clone(), accept_stop.clone(), stop_tx.clone());
                        handlers.push(coring::spawn(async move {
                            serve(stream, worker, stats, stop.clone()).await;
                            if stop.get() {
                                let _ = stop_tx.try_send(());
                            }
                        }));
                        handlers.retain(|h| !h.is_finished());
                    }
                });
                stop_rx.recv().await.expect("a handler reports the stop");
                acceptor.abort();
                let _ = acceptor.await;
                assert_eq!(worker_index(), Some(worker));
                port
            }
        });
        let sent = clients.join().unwrap();
        let ports: Vec<u16> = results.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(ports[0], ports[1]);
        let per_worker: Vec<usize> = stats
            .data_conns
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect();
        eprintln!("reuseport: data connections per worker {per_worker:?}, {sent} bytes echoed");
        assert_eq!(per_worker.iter().sum::<usize>(), CONNS);
        assert!(
            per_worker.iter().all(|&n| n >= 1),
            "SO_REUSEPORT spread {CONNS} connections over both workers: {per_worker:?}"
        );
        assert_eq!(stats.bytes.load(Ordering::SeqCst), sent);
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}

#[test]
fn cross_worker_ping_pong_10000() {
    watchdog(120, || {
        const ROUNDS: u32 = 10_000;
        let rt = uring_runtime(2);
        rt.block_on(async {
            // mpsc both ways.
            let start = Instant::now();
            let (ping_tx, mut ping_rx) = mpsc::channel::<u32>(1);
            let (pong_tx, mut pong_rx) = mpsc::channel::<u32>(1);
            let ponger = spawn_on(1, async move {
                assert_eq!(worker_index(), Some(1));
                let mut n = 0u32;
                while let Some(v) = ping_rx.recv().await {
                    pong_tx.send(v + 1).await.unwrap();
                    n += 1;
                }
                n
            });
            for i in 0..ROUNDS {
                ping_tx.send(i * 2).await.unwrap();
                assert_eq!(pong_rx.recv().await.unwrap(), i * 2 + 1);
            }
            drop(ping_tx);
            assert_eq!(ponger.await.unwrap(), ROUNDS);
            let mpsc_time = start.elapsed();

            // A fresh oneshot per round for the reply.
            let start = Instant::now();
            let (req_tx, mut req_rx) = mpsc::unbounded_channel::<(u32, oneshot::Sender<u32>)>();
            let replier = spawn_on(1, async move {
                while let Some((v, reply)) = req_rx.recv().await {
                    reply.send(v ^ 0xABCD).unwrap();
                }
            });
            for i in 0..ROUNDS {
                let (tx, rx) = oneshot::channel();
                req_tx.send((i, tx)).unwrap();
                assert_eq!(rx.await.unwrap(), i ^ 0xABCD);
            }
            drop(req_tx);
            replier.await.unwrap();
            eprintln!(
                "ping-pong x{ROUNDS} across workers: mpsc {mpsc_time:?}, oneshot {:?}",
                start.elapsed()
            );
        });
        assert_eq!(rt.shutdown(), 0);
    });
}

#[test]
fn token_ring_over_three_workers() {
    watchdog(120, || {
        const PASSES: usize = 3_000;
        let rt = uring_runtime(3);
        rt.block_on(async {
            // Worker w receives on rx[w] and forwards to tx[(w + 1) % 3]; worker 0's part is a
            // spawned task too, so the block_on future only waits.
            let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| mpsc::channel::<usize>(1)).unzip();
            let handles: Vec<_> = rxs
                .into_iter()
                .enumerate()
                .map(|(w, mut rx)| {
                    let next = txs[(w + 1) % 3].clone();
                    spawn_on(w, async move {
                        let mut seen = 0;
                        while let Some(token) = rx.recv().await {
                            assert_eq!(token % 3, w, "token {token} reached worker {w}");
                            assert_eq!(worker_index(), Some(w));
                            seen += 1;
                            if token + 1 == PASSES {
                                return seen;
                            }
                            next.send(token + 1).await.unwrap();
                        }
                        seen
                    })
                })
                .collect();
            txs[0].send(0).await.unwrap();
            // The worker that handles the last pass returns and drops its sender; with `txs`
            // gone too, every channel closes in turn and every worker returns its count.
            drop(txs);
            for (w, h) in handles.into_iter().enumerate() {
                let seen = within(Duration::from_secs(60), "token ring worker", h)
                    .await
                    .unwrap();
                assert_eq!(seen, PASSES / 3, "worker {w} saw a third of the passes");
            }
        });
        assert_eq!(rt.shutdown(), 0);
    });
}

#[test]
fn plain_thread_wakes_parked_workers() {
    watchdog(60, || {
        let rt = runtime(2);
        rt.block_on(async {
            let mut rng = Rng::new(7);
            let mut worst = Duration::ZERO;
            for round in 0..60u64 {
                let (tx1, rx1) = oneshot::channel::<u64>();
                let (tx0, rx0) = oneshot::channel::<(u64, Instant)>();
                let remote = spawn_on(1, async move {
                    // No timer anywhere: only the plain thread's wake can end this wait.
                    let v = rx1.await.unwrap();
                    (v * 2, worker_index())
                });
                let delay = if round % 10 == 0 {
                    Duration::from_millis(30) // long enough for both workers to park
                } else {
                    Duration::from_micros(rng.range(0, 3000) as u64)
                };
                let sender = thread::spawn(move || {
                    thread::sleep(delay);
                    tx1.send(round).unwrap();
                    tx0.send((round, Instant::now())).unwrap();
                });
                let (v, sent_at) = rx0.await.unwrap();
                worst = worst.max(sent_at.elapsed());
                assert_eq!(v, round);
                assert_eq!(remote.await.unwrap(), (round * 2, Some(1)));
                sender.join().unwrap();
            }
            eprintln!("plain-thread wake of a parked worker 0: worst {worst:?}");
            assert!(
                worst < Duration::from_secs(2),
                "a parked worker took {worst:?} to wake"
            );
        });
    });
}

#[test]
fn shutdown_handle_from_another_thread_cancels_block_on_each() {
    watchdog(60, || {
        let rt = runtime(2);
        let handle = rt.shutdown_handle();
        assert!(!handle.is_shutdown());
        let started = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (s, h) = (started.clone(), handle.clone());
        let stopper = thread::spawn(move || {
            assert!(
                wait_until(Duration::from_secs(20), || s.load(Ordering::SeqCst) == 2),
                "both workers started"
            );
            thread::sleep(Duration::from_millis(50));
            h.shutdown();
        });
        let (s, d) = (started.clone(), dropped.clone());
        let t0 = Instant::now();
        let results = rt.block_on_each(move |worker| {
            let (started, dropped) = (s.clone(), d.clone());
            async move {
                let _flag = DropFlag(dropped.clone());
                // A side task with a long timer, and I/O in flight in the worker's future.
                let side_flag = DropFlag(dropped);
                coring::spawn(async move {
                    let _flag = side_flag;
                    coring::time::sleep(Duration::from_secs(3600)).await;
                });
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                started.fetch_add(1, Ordering::SeqCst);
                let res = listener.accept().await;
                panic!("worker {worker}: accept returned {res:?} although nobody connected");
            }
        });
        stopper.join().unwrap();
        assert!(t0.elapsed() < Duration::from_secs(20));
        assert_eq!(results.len(), 2);
        for (w, r) in results.iter().enumerate() {
            let err = r.as_ref().map(|_| ()).unwrap_err();
            assert!(err.is_cancelled(), "worker {w}: {err:?}");
        }
        assert!(handle.is_shutdown());
        assert!(
            wait_until(Duration::from_secs(5), || dropped.load(Ordering::SeqCst)
                == 4),
            "every task (2 per worker) was dropped: {}",
            dropped.load(Ordering::SeqCst)
        );
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
        assert_eq!(rt.tasks(), 0);
    });
}

#[coring::test(worker_threads = 2)]
async fn test_macro_with_worker_threads() {
    assert_eq!(worker_index(), Some(0));
    let h = spawn_on(1, async { (worker_index(), thread_name()) });
    let (index, name) = within(Duration::from_secs(10), "spawn_on(1)", h)
        .await
        .unwrap();
    assert_eq!(index, Some(1));
    assert_eq!(name.as_deref(), Some("coring-worker-1"));
    let err = catch_unwind(AssertUnwindSafe(|| drop(spawn_on(2, async {})))).unwrap_err();
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(msg.contains("there is no worker 2"), "{msg:?}");
    // The refused call left the runtime in working order.
    let h = spawn_on(1, async { worker_index() });
    assert_eq!(h.await.unwrap(), Some(1));
    coring::time::sleep(Duration::from_millis(1)).await;
}

#[coring::test(worker_threads = 3)]
async fn test_macro_with_three_workers_echo_across_workers() -> std::io::Result<()> {
    // A listener on worker 2, a client on worker 1, awaited from worker 0.
    let (addr_tx, addr_rx) = oneshot::channel();
    let server = run_on(2, move || async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        addr_tx.send(listener.local_addr()?).unwrap();
        let (stream, _) = listener.accept().await?;
        let (res, buf) = stream.read_exact(vec![0u8; 5]).await;
        res?;
        let (res, _) = stream.write_all(buf).await;
        res?;
        Ok::<_, std::io::Error>(worker_index())
    });
    let addr = addr_rx.await.unwrap();
    let client = run_on(1, move || async move {
        let stream = TcpStream::connect(addr).await?;
        let (res, _) = stream.write_all(b"hello".to_vec()).await;
        res?;
        let (res, buf) = stream.read_exact(vec![0u8; 5]).await;
        res?;
        Ok::<_, std::io::Error>((buf, worker_index()))
    });
    let (buf, client_worker) = within(Duration::from_secs(10), "client", client).await??;
    assert_eq!(&buf[..], b"hello");
    assert_eq!(client_worker, Some(1));
    assert_eq!(
        within(Duration::from_secs(10), "server", server).await??,
        Some(2)
    );
    Ok(())
}

#[test]
fn pin_cores_gives_each_worker_one_cpu() {
    watchdog(30, || {
        let allowed = cpu_affinity(0);
        assert!(!allowed.is_empty());
        let rt = Runtime::builder()
            .worker_threads(2)
            .pin_cores(true)
            .build()
            .unwrap();
        let results = rt.block_on_each(|worker| async move { (worker, gettid(), cpu_affinity(0)) });
        let mut cpus = Vec::new();
        for r in results {
            let (worker, tid, inside) = r.unwrap();
            assert_eq!(
                inside.len(),
                1,
                "worker {worker} pinned to one CPU: {inside:?}"
            );
            assert_eq!(
                inside[0],
                allowed[worker % allowed.len()],
                "worker {worker} pinned to the {worker}-th allowed CPU ({allowed:?})"
            );
            // Seen from outside the thread as well.
            assert_eq!(cpu_affinity(tid), inside);
            cpus.push(inside[0]);
        }
        if allowed.len() >= 2 {
            assert_ne!(cpus[0], cpus[1], "two workers, two CPUs");
        }
    });
}

#[test]
fn without_pinning_workers_keep_every_cpu() {
    watchdog(30, || {
        let allowed = cpu_affinity(0);
        let rt = runtime(2);
        let results = rt.block_on_each(|_| async { cpu_affinity(0) });
        for r in results {
            assert_eq!(r.unwrap(), allowed);
        }
    });
}

/// The child process of `dropping_runtimes_joins_threads_and_restores_fds`: alone in its
/// process, so thread and descriptor counts see only this runtime.
#[test]
#[ignore = "child process of dropping_runtimes_joins_threads_and_restores_fds"]
fn drop_child() {
    let Some(role) = child_role() else {
        return;
    };
    assert_eq!(role, "drop");
    watchdog(60, || {
        let _lock = fd_lock();
        let fds_before = open_fds();
        let threads_before = thread_count();
        for round in 0..5 {
            let rt = Runtime::builder().worker_threads(3).build().unwrap();
            assert_eq!(thread_count(), threads_before + 2, "two worker threads");
            assert!(
                open_fds().len() > fds_before.len(),
                "each worker has a ring"
            );
            let started = Arc::new(Barrier::new(3));
            let b = started.clone();
            let tids: Vec<i32> = rt
                .block_on_each(move |_| {
                    let started = b.clone();
                    async move {
                        // I/O that completes, and I/O left in flight at the drop.
                        let (server, client) = common::tcp_pair().await.unwrap();
                        let mut client = client;
                        client.write_all(b"x").unwrap();
                        let (res, _) = server.read(vec![0u8; 1]).await;
                        assert_eq!(res.unwrap(), 1);
                        coring::spawn(async move {
                            let _client = client;
                            let (res, _) = server.read(vec![0u8; 8]).await;
                            panic!("read returned {res:?}");
                        });
                        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                        coring::spawn(async move {
                            let res = listener.accept().await;
                            panic!("accept returned {res:?}");
                        });
                        coring::spawn(coring::time::sleep(Duration::from_secs(3600)));
                        coring::task::yield_now().await;
                        started.wait();
                        gettid()
                    }
                })
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(tids[0], gettid());
            let t0 = Instant::now();
            if round % 2 == 0 {
                drop(rt);
            } else {
                assert_eq!(
                    rt.shutdown(),
                    0,
                    "every op finished within the grace period"
                );
                assert_eq!(rt.op_slots(), 0);
                drop(rt);
            }
            let took = t0.elapsed();
            assert!(took < Duration::from_secs(5), "drop took {took:?}");
            // pthread_join returns once the thread has exited; the kernel may list it in
            // /proc for a moment longer, until it is reaped.
            for &tid in &tids[1..] {
                assert!(
                    wait_until(Duration::from_millis(500), || !thread_exists(tid)),
                    "worker thread {tid} still runs after the runtime was dropped"
                );
            }
            assert_eq!(
                thread_count(),
                threads_before,
                "the worker threads were joined"
            );
            let extra: Vec<String> = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|e| {
                    let comm = std::fs::read_to_string(e.unwrap().path().join("comm")).ok()?;
                    Some(comm.trim().to_string())
                })
                .filter(|name| name.starts_with("coring-worker"))
                .collect();
            assert!(extra.is_empty(), "worker threads left: {extra:?}");
            assert_same_fds(
                &fds_before,
                &format!("round {round}: after dropping the runtime"),
            );
        }
        println!("CHILD-OK drop");
    });
}

#[test]
fn dropping_runtimes_joins_threads_and_restores_fds() {
    let out = run_child("drop_child", "drop", Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed\n{}", describe(&out));
    assert!(stdout.contains("CHILD-OK drop"), "{}", describe(&out));
    assert!(stdout.contains("1 passed"), "{}", describe(&out));
}
