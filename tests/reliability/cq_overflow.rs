//! Item 10: a forced completion-queue overflow. Extends `tests/tiny_ring.rs`
//! (`completion_burst_far_beyond_cq`: 3000 timeouts into a 16-entry CQ, counted per task)
//! by *guaranteeing* the overflow: 5000 kernel timeouts are submitted, then the runtime
//! thread is blocked outside the kernel until long after they all expired, so nearly all of
//! their completions wait in the kernel's overflow list. Each op must complete exactly once
//! (counted per op, and against the driver's CQE counter, which would show a doubled CQE), and
//! nothing may hang.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::common::watchdog;
use crate::{finish, serial, uring};
use coring::op::timeout::Timeout;
use coring::op::Op;

const OPS: usize = 5000;

#[test]
fn five_thousand_timeouts_overflow_a_16_entry_cq() {
    let _serial = serial();
    watchdog(60, || {
        let rt = uring().entries(8).cq_entries(16).build().unwrap();
        for round in 0..3 {
            let cqes_before = rt.metrics().cqes;
            let start = Instant::now();
            let completions = rt.block_on(async {
                // Submitted at creation: the 8-entry SQ is flushed to the kernel as it fills.
                let mut ops: Vec<Option<Op<Timeout>>> = (0..OPS)
                    .map(|_| Some(Op::submit(Timeout::new(Duration::from_millis(10)))))
                    .collect();
                // Block the thread (not in the kernel) until every timer fired.
                std::thread::sleep(Duration::from_millis(100));
                let counts: Vec<Rc<Cell<u32>>> = (0..OPS).map(|_| Rc::default()).collect();
                let mut left = OPS;
                poll_fn(|cx| {
                    for (op, count) in ops.iter_mut().zip(&counts) {
                        let Some(fut) = op.as_mut() else { continue };
                        if let Poll::Ready(res) = std::pin::Pin::new(fut).poll(cx) {
                            res.expect("timeout op failed");
                            count.set(count.get() + 1);
                            *op = None;
                            left -= 1;
                        }
                    }
                    if left == 0 {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await;
                counts.iter().map(|c| c.get()).collect::<Vec<_>>()
            });
            assert!(
                completions.iter().all(|&c| c == 1),
                "round {round}: some op completed other than once"
            );
            let cqes = rt.metrics().cqes - cqes_before;
            eprintln!(
                "round {round}: {OPS} timeouts through a 16-entry CQ in {:?}, {cqes} CQEs",
                start.elapsed()
            );
            // Exactly one CQE per op, plus at most a few of the driver's own (wake-up reads).
            assert!(
                (OPS as u64..=OPS as u64 + 8).contains(&cqes),
                "round {round}: {cqes} CQEs for {OPS} ops"
            );
            assert_eq!(rt.op_slots(), 0);
        }
        finish(&rt);
    });
}
