//! Unix signals: a listener receives `kill(getpid(), ...)` sent from another thread, every
//! delivery when they are spaced out, and a delivery made before `recv` was called; two
//! listeners (on one runtime or two) both see a signal; dropping a listener frees its slot
//! (500 in a row; and exactly `MAX_LISTENERS` at once, in a child process); `ctrl_c()` (in a
//! child process, since it replaces SIGINT's default action); signals that cannot be caught
//! are refused; and a signal storm aimed at the runtime thread while it is blocked in
//! `io_uring_enter` makes no op fail.
//!
//! Signal handlers and counters are process-wide, so each test uses its own signal number.

mod common;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::{child_role, describe, gettid, run_child, watchdog, within, Rng};
use coring::net::{TcpListener, TcpStream};
use coring::runtime::Runtime;
use coring::signal::unix::{signal, SignalKind, MAX_LISTENERS};

/// Generous: a signal sent to ourselves arrives in microseconds.
const DELIVERY: Duration = Duration::from_secs(10);

fn kill_self(signum: i32) {
    // SAFETY: kill takes no pointers; every signal sent here has a handler installed.
    let rc = unsafe { libc::kill(libc::getpid(), signum) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

/// Sends `signum` to thread `tid` of this process.
fn tgkill(tid: i32, signum: i32) -> bool {
    // SAFETY: tgkill takes integers only.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signum) == 0 }
}

/// A thread that sends `signum` to the process each time it is asked.
fn signal_sender(signum: i32) -> (std_mpsc::Sender<()>, thread::JoinHandle<usize>) {
    let (tx, rx) = std_mpsc::channel::<()>();
    let handle = thread::spawn(move || {
        let mut sent = 0;
        while rx.recv().is_ok() {
            kill_self(signum);
            sent += 1;
        }
        sent
    });
    (tx, handle)
}

#[test]
fn sigusr1_from_another_thread_several_times() {
    watchdog(60, || {
        let rt = Runtime::new().unwrap();
        let (ask, sender) = signal_sender(libc::SIGUSR1);
        rt.block_on(async move {
            let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
            for round in 0..10 {
                // Spaced out (each one received before the next is sent), none is merged.
                ask.send(()).unwrap();
                let got = within(DELIVERY, &format!("SIGUSR1 #{round}"), usr1.recv()).await;
                assert_eq!(got, Some(()));
            }
            // Nothing else is pending.
            let extra = coring::time::timeout(Duration::from_millis(50), usr1.recv()).await;
            assert!(extra.is_err(), "an eleventh delivery appeared");
            drop(ask);
        });
        assert_eq!(sender.join().unwrap(), 10);
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}

#[test]
fn delivery_before_recv_is_not_missed() {
    watchdog(30, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
            // Sent (and handled: kill delivers to the calling thread before returning when
            // the signal is not blocked) before anybody waits.
            kill_self(libc::SIGUSR2);
            let got = within(DELIVERY, "SIGUSR2 sent before recv", usr2.recv()).await;
            assert_eq!(got, Some(()));
            // Several deliveries between two recv calls may be reported once, but at least
            // once.
            for _ in 0..5 {
                kill_self(libc::SIGUSR2);
            }
            within(DELIVERY, "burst of SIGUSR2", usr2.recv()).await;
        });
    });
}

#[test]
fn two_listeners_both_see_the_signal() {
    watchdog(60, || {
        const ROUNDS: usize = 6;
        let hup = SignalKind::hangup();
        // A third listener on another runtime, on another thread. It acknowledges each
        // delivery, and the next signal is sent only then: deliveries that pile up before a
        // `recv` may be reported once.
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let (ack_tx, ack_rx) = coring::sync::mpsc::unbounded_channel::<usize>();
        let other = thread::spawn(move || {
            let rt = Runtime::new().unwrap();
            rt.block_on(async move {
                let mut third = signal(hup).unwrap();
                ready_tx.send(()).unwrap();
                for round in 0..ROUNDS {
                    within(DELIVERY, &format!("third listener #{round}"), third.recv()).await;
                    ack_tx.send(round).unwrap();
                }
                ROUNDS
            })
        });
        ready_rx.recv().unwrap();
        let rt = Runtime::new().unwrap();
        let (ask, sender) = signal_sender(libc::SIGHUP);
        rt.block_on(async move {
            let mut first = signal(hup).unwrap();
            let mut second = signal(hup).unwrap();
            // One receiver, awaited by one acknowledgement at a time.
            let ack_rx = std::rc::Rc::new(coring::sync::Mutex::new(ack_rx));
            let third_ack = |round: usize| {
                let ack_rx = ack_rx.clone();
                async move {
                    let mut ack_rx = ack_rx.lock().await;
                    let acked =
                        within(DELIVERY, &format!("third listener #{round}"), ack_rx.recv())
                            .await
                            .unwrap();
                    assert_eq!(acked, round);
                }
            };
            for round in 0..ROUNDS - 1 {
                ask.send(()).unwrap();
                let ((a, b), ()) = common::join2(
                    common::join2(
                        within(DELIVERY, &format!("first listener #{round}"), first.recv()),
                        within(
                            DELIVERY,
                            &format!("second listener #{round}"),
                            second.recv(),
                        ),
                    ),
                    third_ack(round),
                )
                .await;
                assert_eq!((a, b), (Some(()), Some(())));
            }
            // Dropping one listener does not disturb the others.
            drop(first);
            ask.send(()).unwrap();
            let (got, ()) = common::join2(
                within(DELIVERY, "second listener alone", second.recv()),
                third_ack(ROUNDS - 1),
            )
            .await;
            assert_eq!(got, Some(()));
            drop(ask);
        });
        assert_eq!(sender.join().unwrap(), ROUNDS);
        assert_eq!(other.join().unwrap(), ROUNDS);
    });
}

#[test]
fn dropping_listeners_frees_their_slots() {
    watchdog(60, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let winch = SignalKind::window_change();
            // Far more than MAX_LISTENERS, one after another.
            for i in 0..500 {
                let listener = signal(winch).unwrap_or_else(|e| panic!("listener #{i}: {e}"));
                drop(listener);
            }
            // In batches as well, some of them waiting in the ring when dropped.
            for batch in 0..10 {
                let mut listeners: Vec<_> = (0..20)
                    .map(|i| signal(winch).unwrap_or_else(|e| panic!("batch {batch} #{i}: {e}")))
                    .collect();
                for l in listeners.iter_mut().step_by(2) {
                    assert!(
                        coring::time::timeout(Duration::from_millis(1), l.recv())
                            .await
                            .is_err(),
                        "no SIGWINCH was sent"
                    );
                }
                drop(listeners);
            }
            // The slots still work.
            let mut last = signal(winch).unwrap();
            kill_self(libc::SIGWINCH);
            within(DELIVERY, "SIGWINCH after 700 listeners", last.recv()).await;
        });
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}

#[test]
fn signals_that_cannot_be_caught_are_refused() {
    watchdog(30, || {
        for signum in [libc::SIGKILL, libc::SIGSTOP] {
            let err = signal(SignalKind::from_raw(signum)).unwrap_err();
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::InvalidInput,
                "{signum}: {err}"
            );
        }
        for signum in [0, -1, 65, 1000] {
            let err = signal(SignalKind::from_raw(signum)).unwrap_err();
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::InvalidInput,
                "{signum}: {err}"
            );
        }
        // Inside a runtime too, and the refusal leaves no slot taken.
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let err = signal(SignalKind::from_raw(libc::SIGKILL)).unwrap_err();
            assert!(err.to_string().contains("cannot"), "{err}");
        });
        assert_eq!(SignalKind::from_raw(libc::SIGTERM), SignalKind::terminate());
        assert_eq!(SignalKind::interrupt().as_raw_value(), libc::SIGINT);
    });
}

/// The ctrl_c child: SIGINT raised by another thread after `ctrl_c()` started waiting.
#[test]
#[ignore = "child process of ctrl_c_completes_on_sigint"]
fn ctrl_c_child() {
    let Some(role) = child_role() else {
        return;
    };
    assert_eq!(role, "ctrl-c");
    watchdog(30, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let waiting = coring::spawn(coring::signal::ctrl_c());
            // Let the task create its listener and park on the eventfd read.
            coring::time::sleep(Duration::from_millis(50)).await;
            assert!(!waiting.is_finished(), "ctrl_c completed without a SIGINT");
            let raiser = thread::spawn(|| {
                // SAFETY: raise takes an integer; SIGINT has coring's handler by now.
                assert_eq!(unsafe { libc::raise(libc::SIGINT) }, 0);
            });
            let res = within(DELIVERY, "ctrl_c after SIGINT", waiting).await;
            res.unwrap().unwrap();
            raiser.join().unwrap();
            println!("CHILD: ctrl_c completed");
            // The handler stays installed: a second SIGINT no longer kills the process.
            // SAFETY: as above.
            assert_eq!(unsafe { libc::raise(libc::SIGINT) }, 0);
            // ctrl_c waits for the *next* SIGINT, not the one before it.
            let again = coring::time::timeout(Duration::from_millis(100), coring::signal::ctrl_c());
            assert!(again.await.is_err(), "ctrl_c completed on an old SIGINT");
        });
        println!("CHILD-OK ctrl-c");
    });
}

#[test]
fn ctrl_c_completes_on_sigint() {
    let out = run_child("ctrl_c_child", "ctrl-c", Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed\n{}", describe(&out));
    assert!(stdout.contains("CHILD-OK ctrl-c"), "{}", describe(&out));
    assert!(stdout.contains("1 passed"), "{}", describe(&out));
}

/// The slot-limit child: alone in its process, so it can take every listener slot.
#[test]
#[ignore = "child process of listener_slots_run_out_with_an_error"]
fn slots_child() {
    let Some(role) = child_role() else {
        return;
    };
    assert_eq!(role, "slots");
    watchdog(30, || {
        let term = SignalKind::terminate();
        let mut held: Vec<_> = (0..MAX_LISTENERS)
            .map(|i| signal(term).unwrap_or_else(|e| panic!("listener #{i}: {e}")))
            .collect();
        let err = signal(term).unwrap_err();
        println!("CHILD: listener #{MAX_LISTENERS}: {err}");
        assert!(err.to_string().contains("signal streams"), "{err}");
        // Freeing one makes room for one.
        held.pop();
        let mut again = signal(term).unwrap();
        assert!(signal(term).is_err());
        // And the listeners work.
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            kill_self(libc::SIGTERM);
            within(DELIVERY, "SIGTERM on the last slot", again.recv()).await;
            within(DELIVERY, "SIGTERM on the first slot", held[0].recv()).await;
        });
        drop(held);
        println!("CHILD-OK slots");
    });
}

#[test]
fn listener_slots_run_out_with_an_error() {
    let out = run_child("slots_child", "slots", Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed\n{}", describe(&out));
    assert!(stdout.contains("CHILD-OK slots"), "{}", describe(&out));
}

/// Echo round trips between client and server tasks on one runtime; every byte checked and
/// every op's result unwrapped (an EINTR would panic here).
async fn echo_workload(round_trips: usize, clients: usize, seed: u64) -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = coring::spawn(async move {
        let mut handlers = Vec::new();
        for _ in 0..clients {
            let (stream, _) = listener.accept().await.expect("accept during the storm");
            handlers.push(coring::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let (res, b) = stream.read(buf).await;
                    let n = res.expect("server read during the storm");
                    if n == 0 {
                        return;
                    }
                    let (res, b) = stream.write_all(coring::buf::IoBuf::slice(b, ..n)).await;
                    res.expect("server write during the storm");
                    buf = b.into_inner();
                }
            }));
        }
        for h in handlers {
            h.await.unwrap();
        }
    });
    let per_client = round_trips / clients;
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            coring::spawn(async move {
                let mut rng = Rng::new(seed + c as u64);
                let stream = TcpStream::connect(addr)
                    .await
                    .expect("connect during the storm");
                let mut bytes = 0;
                for _ in 0..per_client {
                    let len = rng.range(1, 2048);
                    let data = rng.bytes(len);
                    let (res, data) = stream.write_all(data).await;
                    res.expect("client write during the storm");
                    let (res, back) = stream.read_exact(vec![0u8; len]).await;
                    res.expect("client read during the storm");
                    assert!(back == data, "echo differs");
                    bytes += len;
                    if rng.range(0, 20) == 0 {
                        // Park in io_uring_enter with a timer, too.
                        coring::time::sleep(Duration::from_micros(rng.range(0, 500) as u64)).await;
                    }
                }
                stream.close().await.expect("close during the storm");
                bytes
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    server.await.unwrap();
    total
}

#[test]
fn signal_storm_during_io_makes_no_op_fail() {
    watchdog(120, || {
        // A real-time signal, only used here; it queues, so every send is a delivery.
        let storm_signal = libc::SIGRTMIN() + 3;
        // Blocked in io_uring_enter, whatever CORING_DRIVER says.
        let rt = common::uring().build().unwrap();
        let runtime_tid = gettid();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std_mpsc::channel::<()>();
        let (s, n) = (stop.clone(), sent.clone());
        let storm = thread::spawn(move || {
            ready_rx.recv().unwrap();
            // About 1 kHz at the runtime thread, plus some at the process.
            let mut next = Instant::now();
            while !s.load(Ordering::SeqCst) {
                assert!(tgkill(runtime_tid, storm_signal), "tgkill failed");
                n.fetch_add(1, Ordering::SeqCst);
                if n.load(Ordering::SeqCst) % 10 == 0 {
                    kill_self(storm_signal);
                    n.fetch_add(1, Ordering::SeqCst);
                }
                next += Duration::from_micros(1000);
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        let start = Instant::now();
        let (bytes, seen) = rt.block_on(async move {
            let mut listener = signal(SignalKind::from_raw(storm_signal)).unwrap();
            let seen = Rc::new(std::cell::Cell::new(0u64));
            let s = seen.clone();
            let counter = coring::spawn(async move {
                loop {
                    listener.recv().await;
                    s.set(s.get() + 1);
                }
            });
            ready_tx.send(()).unwrap();
            // Let the storm start before the workload.
            coring::time::sleep(Duration::from_millis(20)).await;
            let mut bytes = 0;
            for round in 0..3 {
                bytes += echo_workload(3000, 6, 100 * round).await;
                // Idle for a while, blocked in io_uring_enter with nothing to do.
                coring::time::sleep(Duration::from_millis(30)).await;
            }
            counter.abort();
            (bytes, seen.get())
        });
        stop.store(true, Ordering::SeqCst);
        storm.join().unwrap();
        let sent = sent.load(Ordering::SeqCst);
        eprintln!(
            "signal storm: {sent} signals sent over {:?}, the listener saw {seen}; {bytes} bytes \
             echoed in 9000 round trips",
            start.elapsed()
        );
        assert!(sent >= 20, "the storm ran ({sent} signals)");
        assert!(seen >= 1, "the listener saw the storm");
        assert!(seen <= sent);
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}
