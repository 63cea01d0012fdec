//! Item 18: timers under load. `tests/time.rs` covers the runtime's own timers (`sleep`,
//! `interval`) thoroughly: never early, p99 lateness within 5 ms beside a busy task. This adds
//! the timers the kernel runs: `IORING_OP_TIMEOUT` ops (and `sleep`s beside them) while the
//! same ring carries a steady echo load. None may complete early, measured from just before
//! submission; lateness is reported and bounded.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::common::{percentile, tcp_pair, watchdog, Rng};
use crate::{finish, serial, uring};
use coring::op::timeout::Timeout;
use coring::op::Op;

const TIMERS: usize = 2000;

#[test]
fn kernel_timeouts_under_io_load_are_never_early() {
    let _serial = serial();
    watchdog(60, || {
        let rt = uring().build().unwrap();
        let (mut kernel, mut user, echoed, reflectors) = rt.block_on(async {
            let stop = Rc::new(Cell::new(false));
            let echoed = Rc::new(Cell::new(0usize));
            // The load: 8 connections doing 4 KiB round trips as fast as they can.
            let mut load = Vec::new();
            for c in 0..8u8 {
                let (server, mut client) = tcp_pair().await.unwrap();
                let (stop, echoed) = (stop.clone(), echoed.clone());
                load.push(coring::spawn(async move {
                    let msg = vec![c; 4096];
                    let reflector = std::thread::spawn(move || {
                        let mut buf = vec![0u8; 4096];
                        use std::io::{Read, Write};
                        while client.read_exact(&mut buf).is_ok() {
                            if client.write_all(&buf).is_err() {
                                break;
                            }
                        }
                    });
                    while !stop.get() {
                        let (res, _) = server.write_all(msg.clone()).await;
                        res.unwrap();
                        let (res, back) = server.read_exact(vec![0u8; 4096]).await;
                        res.unwrap();
                        assert_eq!(back, msg);
                        echoed.set(echoed.get() + 1);
                    }
                    // End of stream for the reflector; joined after the runtime is gone.
                    server.shutdown(std::net::Shutdown::Write).unwrap();
                    reflector
                }));
            }
            let timers: Vec<_> = (0..TIMERS)
                .map(|i| {
                    coring::spawn(async move {
                        let mut rng = Rng::new(i as u64);
                        // Spread the starts over 200 ms.
                        coring::time::sleep(Duration::from_micros(rng.range(0, 200_000) as u64))
                            .await;
                        let wait = Duration::from_micros(rng.range(500, 20_000) as u64);
                        let start = Instant::now();
                        if i % 2 == 0 {
                            Op::submit(Timeout::new(wait)).await.unwrap();
                            (true, start.elapsed(), wait)
                        } else {
                            coring::time::sleep(wait).await;
                            (false, start.elapsed(), wait)
                        }
                    })
                })
                .collect();
            let (mut kernel, mut user) = (Vec::new(), Vec::new());
            for t in timers {
                let (is_kernel, took, wait) = t.await.unwrap();
                assert!(
                    took >= wait,
                    "a {} timer of {wait:?} fired after {took:?}",
                    if is_kernel { "kernel" } else { "user-space" }
                );
                if is_kernel {
                    kernel.push(took - wait);
                } else {
                    user.push(took - wait);
                }
            }
            stop.set(true);
            let mut reflectors = Vec::new();
            for l in load {
                reflectors.push(l.await.unwrap());
            }
            (kernel, user, echoed.get(), reflectors)
        });
        for r in reflectors {
            r.join().unwrap();
        }
        kernel.sort();
        user.sort();
        for (name, lateness) in [("kernel timeouts", &kernel), ("sleeps", &user)] {
            let (p50, p99, max) = (
                percentile(lateness, 50.0),
                percentile(lateness, 99.0),
                *lateness.last().unwrap(),
            );
            eprintln!(
                "{} {name} beside {echoed} 4 KiB echo round trips: lateness p50 {p50:?} p99 \
                 {p99:?} max {max:?}",
                lateness.len()
            );
            assert!(
                p99 < Duration::from_millis(20),
                "{name}: p99 lateness {p99:?}"
            );
        }
        assert!(echoed > 100, "the load ran ({echoed} round trips)");
        finish(&rt);
    });
}
