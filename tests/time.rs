//! Time: `sleep` is never early, `sleep_until`, `timeout` (Ok, `Elapsed`, conversion to
//! `io::ErrorKind::TimedOut`, no data lost when it cancels a socket read), `interval` (first
//! tick at once, then one period apart) and its `MissedTickBehavior`s after the thread was
//! blocked, `Sleep::reset`, timers removed when their futures are dropped, and the lateness of
//! 10,000 concurrent 1 ms sleeps while another task keeps the thread busy.
//!
//! The tests measure time, so they run one at a time (`timing_lock`) to keep each other's CPU
//! use out of their measurements.

mod common;

use std::cell::Cell;
use std::io::Write;
use std::pin::pin;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::{noop_waker, percentile, poll_once, tcp_pair, watchdog, within, Rng};
use coring::runtime::Runtime;
use coring::time::{
    interval, interval_at, sleep, sleep_until, timeout, timeout_at, Elapsed, MissedTickBehavior,
};

static TIMING: Mutex<()> = Mutex::new(());

fn timing_lock() -> MutexGuard<'static, ()> {
    TIMING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `body` on a fresh runtime under the watchdog and the timing lock.
fn run<F>(secs: u64, body: F)
where
    F: FnOnce(&Runtime) + Send + 'static,
{
    watchdog(secs, move || {
        let _lock = timing_lock();
        let rt = Runtime::new().unwrap();
        body(&rt);
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}

/// Generous bound on how late a timer may fire on a loaded 2-core CI machine.
const LATE_OK: Duration = Duration::from_millis(500);

#[test]
fn sleep_is_never_early() {
    run(60, |rt| {
        rt.block_on(async {
            let mut rng = Rng::new(0x5EE9);
            // Concurrent sleeps of random lengths, 0..=25 ms, with microsecond resolution.
            let handles: Vec<_> = (0..400)
                .map(|_| {
                    let d = Duration::from_micros(rng.range(0, 25_000) as u64);
                    coring::spawn(async move {
                        let start = Instant::now();
                        sleep(d).await;
                        (d, start.elapsed())
                    })
                })
                .collect();
            let mut worst = Duration::ZERO;
            for h in handles {
                let (d, took) = h.await.unwrap();
                assert!(took >= d, "sleep({d:?}) returned after {took:?}");
                worst = worst.max(took - d);
            }
            // And one after another.
            for _ in 0..100 {
                let d = Duration::from_micros(rng.range(0, 3_000) as u64);
                let start = Instant::now();
                sleep(d).await;
                let took = start.elapsed();
                assert!(took >= d, "sleep({d:?}) returned after {took:?}");
                worst = worst.max(took - d);
            }
            eprintln!("sleep: worst lateness {worst:?}");
            assert!(worst < LATE_OK, "a sleep was {worst:?} late");
            // A zero sleep completes without waiting for a timer.
            let mut zero = pin!(sleep(Duration::ZERO));
            assert_eq!(poll_once(zero.as_mut()), Poll::Ready(()));
        });
        assert_eq!(rt.timers(), 0);
    });
}

#[test]
fn sleep_until_a_deadline() {
    run(30, |rt| {
        rt.block_on(async {
            for ms in [1u64, 7, 30] {
                let deadline = Instant::now() + Duration::from_millis(ms);
                let s = sleep_until(deadline);
                assert_eq!(s.deadline(), deadline);
                assert!(!s.is_elapsed());
                s.await;
                let now = Instant::now();
                assert!(now >= deadline, "woke {:?} early", deadline - now);
                assert!(now - deadline < LATE_OK, "woke {:?} late", now - deadline);
            }
            // A deadline in the past completes at the first poll and registers nothing.
            let past = Instant::now() - Duration::from_millis(10);
            let mut s = pin!(sleep_until(past));
            assert!(s.is_elapsed());
            assert_eq!(poll_once(s.as_mut()), Poll::Ready(()));
            assert_eq!(rt.timers(), 0);
            // A deadline far away registers one timer until dropped.
            {
                let mut far = pin!(sleep_until(Instant::now() + Duration::from_secs(3600)));
                assert_eq!(poll_once(far.as_mut()), Poll::Pending);
                assert_eq!(rt.timers(), 1);
            }
            assert_eq!(rt.timers(), 0);
            // A duration too large for an Instant saturates instead of panicking.
            let mut huge = pin!(sleep(Duration::MAX));
            assert_eq!(poll_once(huge.as_mut()), Poll::Pending);
        });
        assert_eq!(rt.timers(), 0);
    });
}

#[test]
fn timeout_ok_and_elapsed() {
    run(30, |rt| {
        rt.block_on(async {
            // Finishes in time.
            let start = Instant::now();
            let out = timeout(Duration::from_secs(5), async {
                sleep(Duration::from_millis(5)).await;
                42
            })
            .await;
            assert_eq!(out, Ok(42));
            assert!(start.elapsed() < Duration::from_secs(1));
            assert_eq!(rt.timers(), 0, "the timeout's timer went with it");

            // A ready future wins even with a zero timeout.
            assert_eq!(timeout(Duration::ZERO, async { 1 }).await, Ok(1));

            // Too slow.
            for ms in [1u64, 20, 50] {
                let limit = Duration::from_millis(ms);
                let start = Instant::now();
                let out = timeout(limit, sleep(Duration::from_secs(3600))).await;
                let took = start.elapsed();
                let err: Elapsed = out.unwrap_err();
                assert!(took >= limit, "timeout({limit:?}) fired after {took:?}");
                assert!(took < limit + LATE_OK, "timeout({limit:?}) took {took:?}");
                assert_eq!(err.to_string(), "deadline has elapsed");
                let io: std::io::Error = err.into();
                assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
            }
            assert_eq!(rt.timers(), 0);

            // `?` turns Elapsed into an io::Error.
            async fn with_question_mark() -> std::io::Result<()> {
                timeout(Duration::from_millis(1), std::future::pending::<()>()).await?;
                Ok(())
            }
            let err = with_question_mark().await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);

            // timeout_at with a past deadline on a pending future: Elapsed at once.
            let past = Instant::now() - Duration::from_millis(1);
            assert!(timeout_at(past, std::future::pending::<()>())
                .await
                .is_err());
            // into_inner gives back the future.
            let t = timeout(Duration::from_millis(1), async { 9 });
            assert_eq!(t.into_inner().await, 9);
        });
    });
}

#[test]
fn timeout_around_a_socket_read_loses_no_data() {
    run(60, |rt| {
        rt.block_on(async {
            let (server, mut client) = tcp_pair().await.unwrap();
            let mut rng = Rng::new(11);
            for round in 0..20u32 {
                // Nothing to read: the read times out (and is cancelled)...
                let limit = Duration::from_millis(rng.range(1, 20) as u64);
                let start = Instant::now();
                let out = timeout(limit, server.read(vec![0u8; 64])).await;
                assert!(out.is_err(), "round {round}: read returned {out:?}");
                assert!(start.elapsed() >= limit);
                // ...and what is sent afterwards arrives whole at the next read.
                let msg = format!("message {round}");
                client.write_all(msg.as_bytes()).unwrap();
                let (res, buf) = within(
                    Duration::from_secs(10),
                    "read after a timeout",
                    server.read(vec![0u8; 64]),
                )
                .await;
                let n = res.unwrap();
                assert_eq!(&buf[..n], msg.as_bytes(), "round {round}");
            }
            // Let the cancellations finish, then nothing is left in flight.
            sleep(Duration::from_millis(10)).await;
            assert_eq!(rt.metrics().ops_in_flight, 0);
        });
    });
}

#[test]
fn interval_first_tick_at_once_then_one_period_apart() {
    run(30, |rt| {
        rt.block_on(async {
            let period = Duration::from_millis(15);
            let created = Instant::now();
            let mut ticks = interval(period);
            assert_eq!(ticks.period(), period);
            assert_eq!(ticks.missed_tick_behavior(), MissedTickBehavior::Burst);
            let first = ticks.tick().await;
            assert!(
                created.elapsed() < LATE_OK,
                "first tick took {:?}",
                created.elapsed()
            );
            assert!(first >= created && first - created < LATE_OK);
            let mut previous_wake = Instant::now();
            for k in 1..=10u32 {
                let scheduled = ticks.tick().await;
                let woke = Instant::now();
                assert_eq!(scheduled, first + period * k, "tick {k} is on the grid");
                assert!(woke >= scheduled, "tick {k} fired early");
                assert!(
                    woke - scheduled < LATE_OK,
                    "tick {k}: {:?} late",
                    woke - scheduled
                );
                // Waking on time, the thread waits about a period between ticks.
                assert!(
                    woke - previous_wake <= period + LATE_OK,
                    "tick {k}: {:?} since the previous one",
                    woke - previous_wake
                );
                previous_wake = woke;
            }
            let total = first.elapsed();
            assert!(total >= period * 10, "10 periods took only {total:?}");

            // interval_at starts at the given instant.
            let start = Instant::now() + Duration::from_millis(20);
            let mut later = interval_at(start, period);
            assert_eq!(later.tick().await, start);
            assert!(Instant::now() >= start);

            // reset(): the next tick is one period from now.
            let mut ticks = interval(Duration::from_millis(30));
            ticks.tick().await;
            sleep(Duration::from_millis(10)).await;
            let reset_at = Instant::now();
            ticks.reset();
            let next = ticks.tick().await;
            assert!(next >= reset_at + Duration::from_millis(30));
            assert!(Instant::now() >= reset_at + Duration::from_millis(30));
        });
    });
}

#[test]
#[should_panic(expected = "period must be non-zero")]
fn interval_of_zero_panics() {
    let _ = interval(Duration::ZERO);
}

/// An interval of `period` that ticked once, then a thread blocked for `block`; returns
/// (first tick, the instant the block ended, the interval).
async fn block_after_first_tick(
    behavior: MissedTickBehavior,
    period: Duration,
    block: Duration,
) -> (Instant, Instant, coring::time::Interval) {
    let mut ticks = interval(period);
    ticks.set_missed_tick_behavior(behavior);
    assert_eq!(ticks.missed_tick_behavior(), behavior);
    let first = ticks.tick().await;
    // Block the whole runtime thread, as a CPU-heavy task would.
    std::thread::sleep(block);
    (first, Instant::now(), ticks)
}

const PERIOD: Duration = Duration::from_millis(20);
/// 5.5 periods: five ticks missed, the sixth half a period away.
const BLOCK: Duration = Duration::from_millis(110);

#[test]
fn missed_ticks_burst() {
    run(30, |rt| {
        rt.block_on(async {
            let (first, unblocked, mut ticks) =
                block_after_first_tick(MissedTickBehavior::Burst, PERIOD, BLOCK).await;
            let missed = (unblocked - first).as_nanos() / PERIOD.as_nanos();
            assert!(missed >= 5);
            // Every missed tick is ready at once (at the first poll), with its own scheduled
            // instant.
            let waker = noop_waker();
            let mut cx = Context::from_waker(&waker);
            for k in 1..=missed as u32 {
                match ticks.poll_tick(&mut cx) {
                    Poll::Ready(scheduled) => {
                        assert_eq!(scheduled, first + PERIOD * k, "burst tick {k}")
                    }
                    Poll::Pending => panic!("missed tick {k} of {missed} was not ready at once"),
                }
            }
            // Then back on the original grid, waiting for it.
            let k = missed as u32 + 1;
            let scheduled = ticks.tick().await;
            assert_eq!(scheduled, first + PERIOD * k);
            assert!(Instant::now() >= scheduled);
        });
    });
}

#[test]
fn missed_ticks_delay() {
    run(30, |rt| {
        rt.block_on(async {
            let (first, unblocked, mut ticks) =
                block_after_first_tick(MissedTickBehavior::Delay, PERIOD, BLOCK).await;
            // The late tick is ready at once...
            let waker = noop_waker();
            let late = ticks.poll_tick(&mut Context::from_waker(&waker));
            let fired = Instant::now();
            assert_eq!(late, Poll::Ready(first + PERIOD));
            // ...and the schedule starts over one period after it.
            let next = ticks.tick().await;
            assert!(
                next >= unblocked + PERIOD && next <= fired + PERIOD,
                "next tick {:?} after the unblock, the late tick fired {:?} after it",
                next - unblocked,
                fired - unblocked
            );
            assert!(Instant::now() >= next);
            let after = ticks.tick().await;
            assert_eq!(after, next + PERIOD, "then one period apart again");
        });
    });
}

#[test]
fn missed_ticks_skip() {
    run(30, |rt| {
        rt.block_on(async {
            let (first, unblocked, mut ticks) =
                block_after_first_tick(MissedTickBehavior::Skip, PERIOD, BLOCK).await;
            let waker = noop_waker();
            let late = ticks.poll_tick(&mut Context::from_waker(&waker));
            let fired = Instant::now();
            assert_eq!(
                late,
                Poll::Ready(first + PERIOD),
                "the late tick is ready at once"
            );
            // The next tick is the first one on the original grid after the late tick.
            let next = ticks.tick().await;
            let offset = next - first;
            assert_eq!(
                offset.as_nanos() % PERIOD.as_nanos(),
                0,
                "next tick {offset:?} after the first is on the grid"
            );
            assert!(next > unblocked, "missed ticks were skipped");
            assert!(next <= fired + PERIOD, "no more than one period later");
            assert!(offset >= PERIOD * 6);
            assert!(Instant::now() >= next);
            assert_eq!(ticks.tick().await, next + PERIOD);
        });
    });
}

#[test]
fn sleep_reset_moves_the_deadline() {
    run(30, |rt| {
        rt.block_on(async {
            let mut s = sleep(Duration::from_secs(3600));
            // Register the far deadline.
            assert!(timeout(Duration::from_millis(2), &mut s).await.is_err());
            assert_eq!(rt.timers(), 1);
            // Earlier.
            let reset_at = Instant::now();
            s.reset(reset_at + Duration::from_millis(20));
            assert_eq!(s.deadline(), reset_at + Duration::from_millis(20));
            assert!(rt.timers() <= 1, "the old registration was removed");
            within(Duration::from_secs(5), "reset sleep", &mut s).await;
            let took = reset_at.elapsed();
            assert!(took >= Duration::from_millis(20), "{took:?}");
            assert!(s.is_elapsed());
            assert_eq!(rt.timers(), 0);
            // Again after it fired: later.
            let reset_at = Instant::now();
            s.reset(reset_at + Duration::from_millis(30));
            assert!(!s.is_elapsed());
            (&mut s).await;
            assert!(reset_at.elapsed() >= Duration::from_millis(30));
            // Into the past: ready at once.
            s.reset(Instant::now() - Duration::from_secs(1));
            assert_eq!(poll_once(pin!(&mut s)), Poll::Ready(()));
            // Reset while another timer is pending keeps that one.
            let mut other = pin!(sleep(Duration::from_secs(3600)));
            assert_eq!(poll_once(other.as_mut()), Poll::Pending);
            s.reset(Instant::now() + Duration::from_secs(3600));
            assert_eq!(poll_once(pin!(&mut s)), Poll::Pending);
            assert_eq!(rt.timers(), 2);
            s.reset(Instant::now() + Duration::from_millis(1));
            assert_eq!(rt.timers(), 1);
            (&mut s).await;
            assert_eq!(rt.timers(), 1, "the other timer is still there");
        });
        assert_eq!(rt.timers(), 0);
    });
}

#[test]
fn dropping_pending_timers_removes_them() {
    run(30, |rt| {
        rt.block_on(async {
            // Tasks sleeping for an hour, then aborted.
            let handles: Vec<_> = (0..500)
                .map(|i| {
                    coring::spawn(async move {
                        sleep(Duration::from_secs(3600 + i)).await;
                    })
                })
                .collect();
            coring::task::yield_now().await;
            while rt.timers() < 500 {
                coring::task::yield_now().await;
            }
            assert_eq!(rt.timers(), 500);
            for h in &handles {
                h.abort();
            }
            for h in handles {
                assert!(h.await.unwrap_err().is_cancelled());
            }
            assert_eq!(rt.timers(), 0);
            // Timeouts whose futures finished first.
            for _ in 0..100 {
                assert_eq!(timeout(Duration::from_secs(3600), async { 1 }).await, Ok(1));
                let (tx, rx) = coring::sync::oneshot::channel::<u8>();
                let sender = coring::spawn(async move {
                    coring::task::yield_now().await;
                    tx.send(2).unwrap();
                });
                assert_eq!(timeout(Duration::from_secs(3600), rx).await, Ok(Ok(2)));
                sender.await.unwrap();
            }
            assert_eq!(rt.timers(), 0);
            // Intervals dropped between ticks.
            let mut ticks = interval(Duration::from_secs(3600));
            ticks.tick().await;
            assert!(timeout(Duration::from_millis(1), ticks.tick())
                .await
                .is_err());
            assert_eq!(rt.timers(), 1);
            drop(ticks);
            assert_eq!(rt.timers(), 0);
        });
        assert_eq!(rt.timers(), 0);
        assert_eq!(rt.tasks(), 0);
    });
}

#[test]
fn dropping_a_runtime_with_pending_timers() {
    watchdog(30, || {
        let _lock = timing_lock();
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            for i in 0..100 {
                coring::spawn(sleep(Duration::from_secs(3600 + i)));
            }
            // A turn polls at most a batch of tasks: yield until every sleep registered.
            while rt.timers() < 100 {
                coring::task::yield_now().await;
            }
        });
        assert_eq!(rt.timers(), 100);
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.timers(), 0, "shutdown dropped the sleeping tasks");
    });
}

/// What the busy task saw: how often it was polled, and the longest stretch between two
/// consecutive clock reads of its spin. The spin is user code alone, so a stretch of a
/// millisecond or more means the thread lost the CPU to something outside it (an interrupt
/// storm, the hypervisor), which no runtime causes and `/proc` may not report.
struct Busy {
    polls: u64,
    longest_gap: Duration,
}

/// About 50 us of work, then a yield, until `stop` is set.
async fn busy_loop(stop: Rc<Cell<bool>>) -> Busy {
    let mut polls = 0u64;
    let mut x = 0u64;
    let mut longest_gap = Duration::ZERO;
    while !stop.get() {
        let mut last = Instant::now();
        let until = last + Duration::from_micros(50);
        loop {
            let now = Instant::now();
            longest_gap = longest_gap.max(now - last);
            if now >= until {
                break;
            }
            last = now;
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        polls += 1;
        coring::task::yield_now().await;
    }
    Busy { polls, longest_gap }
}

/// Sleeps until `deadline` and returns how late it woke; panics if early.
async fn late_by(deadline: Instant) -> Duration {
    sleep_until(deadline).await;
    let now = Instant::now();
    now.checked_duration_since(deadline)
        .unwrap_or_else(|| panic!("a sleep woke {:?} early", deadline - now))
}

fn summary(lateness: &mut [Duration]) -> (Duration, Duration, Duration) {
    lateness.sort();
    (
        percentile(lateness, 50.0),
        percentile(lateness, 99.0),
        *lateness.last().unwrap(),
    )
}

/// How long the kernel has kept the calling thread runnable but off the CPU
/// (`/proc/thread-self/schedstat`, second field), if the kernel reports it.
fn run_delay() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// CPU time the hypervisor has taken from this machine's virtual CPUs (steal, the eighth
/// field of the `cpu` line of `/proc/stat`, in clock ticks of 10 ms), if the kernel reports it.
fn host_steal_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    cpu.split_whitespace().nth(7)?.parse().ok()
}

/// Other processes on a shared 2-core machine can take the CPU away from the test thread for
/// a scheduler time slice or more, which no runtime can hide. A measurement is therefore
/// judged only if the kernel kept the runtime thread waiting for less than this much of it.
const CLEAN_RUN_DELAY: Duration = Duration::from_millis(1);

/// Runs a lateness measurement up to five times. `attempt` returns (p99, bound, summary, the
/// busy task's longest spin gap). Passes at the first attempt within its bound; fails at the
/// first attempt over its bound during which the thread had the CPU to itself (the runtime
/// was late on its own); when every attempt over the bound was disturbed, says so and passes.
/// Disturbed: the kernel kept the thread runnable but off the CPU for `CLEAN_RUN_DELAY` or
/// more, or the busy task's spin saw the thread stopped that long (the CPU taken where the
/// scheduler does not count it, such as by the hypervisor: stalls of 6-13 ms with under
/// 0.6 ms of run delay have been seen on the 2-core CI VM), or the kernel counted steal by
/// the hypervisor during the attempt (a 10 ms tick or more). The spin covers little of an
/// attempt under AddressSanitizer, where timer work takes most of the time; the steal count
/// covers all of it.
fn judge_lateness(name: &str, mut attempt: impl FnMut() -> (Duration, Duration, String, Duration)) {
    let mut disturbed = Vec::new();
    for i in 1..=5 {
        let delay_before = run_delay();
        let steal_before = host_steal_ticks();
        let (p99, bound, summary, spin_gap) = attempt();
        let stolen = run_delay()
            .zip(delay_before)
            .map(|(after, before)| after - before);
        let steal = host_steal_ticks()
            .zip(steal_before)
            .map(|(after, before)| after - before);
        eprintln!(
            "{name}, attempt {i}: {summary}; time runnable but off the CPU: {}; longest gap in \
             the busy task's spin: {spin_gap:?}; steal ticks on the host: {}",
            stolen.map_or("unknown".to_string(), |d| format!("{d:?}")),
            steal.map_or("unknown".to_string(), |n| n.to_string()),
        );
        if p99 <= bound {
            return;
        }
        match (stolen, steal) {
            (Some(stolen), _) if stolen >= CLEAN_RUN_DELAY => {
                disturbed.push(format!("p99 {p99:?} with {stolen:?} off the CPU"));
            }
            _ if spin_gap >= CLEAN_RUN_DELAY => {
                disturbed.push(format!("p99 {p99:?} with the thread stopped {spin_gap:?}"));
            }
            (_, Some(ticks)) if ticks > 0 => {
                disturbed.push(format!(
                    "p99 {p99:?} while the hypervisor stole {ticks} ticks"
                ));
            }
            _ => panic!(
                "{name}: p99 lateness {p99:?} exceeds {bound:?} although the thread kept the \
                 CPU ({summary})"
            ),
        }
    }
    eprintln!(
        "{name}: INCONCLUSIVE, every attempt was disturbed by other processes: {disturbed:?}"
    );
}

/// 10,000 tasks each sleep 1 ms at once, beside a task that keeps the thread busy.
///
/// All 10,000 sleeps become due at about the same time, and each sleeper waits in the FIFO
/// run queue behind every task woken or spawned before it: the last one runs only after the
/// thread has polled all the others once. That queueing floor is the time one pass over the
/// 10,000 first polls takes (about 0.6 ms in a release build, 6 ms in a debug build on the
/// reference 2-core machine), so the bound is 5 ms beyond that floor. The steady-state test
/// below checks the plain 5 ms bound.
#[test]
fn lateness_of_10000_concurrent_sleeps_beside_a_busy_task() {
    run(180, |rt| {
        judge_lateness("10000 concurrent 1 ms sleeps beside a busy task", || {
            let (mut lateness, first_polls, busy) = burst_lateness(rt);
            let (p50, p99, max) = summary(&mut lateness);
            let floor = first_polls.saturating_sub(Duration::from_millis(1));
            let busy_polls = busy.polls;
            assert!(busy_polls > 0, "the busy task ran");
            assert_eq!(rt.timers(), 0);
            (
                p99,
                floor + Duration::from_millis(5),
                format!(
                    "p50 {p50:?}, p99 {p99:?}, max {max:?} (first polls spread over \
                     {first_polls:?}: queueing floor {floor:?}; {busy_polls} busy polls)"
                ),
                busy.longest_gap,
            )
        });
    });
}

/// One burst: returns every sleeper's lateness, how long the first polls of all sleepers
/// took, and what the busy task saw.
fn burst_lateness(rt: &Runtime) -> (Vec<Duration>, Duration, Busy) {
    const SLEEPERS: usize = 10_000;
    rt.block_on(async {
        let stop = Rc::new(Cell::new(false));
        let busy = coring::spawn(busy_loop(stop.clone()));
        let handles: Vec<_> = (0..SLEEPERS)
            .map(|_| {
                coring::spawn(async move {
                    let start = Instant::now();
                    (start, late_by(start + Duration::from_millis(1)).await)
                })
            })
            .collect();
        let mut lateness = Vec::with_capacity(SLEEPERS);
        let (mut first, mut last) = (None::<Instant>, None::<Instant>);
        for h in handles {
            let (start, late) = h.await.unwrap();
            first = Some(first.map_or(start, |f| f.min(start)));
            last = Some(last.map_or(start, |l| l.max(start)));
            lateness.push(late);
        }
        stop.set(true);
        let busy = busy.await.unwrap();
        (lateness, last.unwrap() - first.unwrap(), busy)
    })
}

/// One steady-state measurement: 10,000 sleeps of 1 ms, 100 at a time (100 tasks, 100 sleeps
/// each), while a task keeps the thread busy with 50 us slices. Returns the sorted lateness
/// and what the busy task saw.
fn steady_lateness(rt: &Runtime) -> (Vec<Duration>, Busy) {
    const TASKS: usize = 100;
    const SLEEPS: usize = 100;
    let (mut lateness, busy) = rt.block_on(async {
        let stop = Rc::new(Cell::new(false));
        let busy = coring::spawn(busy_loop(stop.clone()));
        let handles: Vec<_> = (0..TASKS)
            .map(|t| {
                coring::spawn(async move {
                    // Spread the tasks over the first millisecond.
                    sleep(Duration::from_micros(10 * t as u64)).await;
                    let mut lateness = Vec::with_capacity(SLEEPS);
                    for _ in 0..SLEEPS {
                        lateness.push(late_by(Instant::now() + Duration::from_millis(1)).await);
                    }
                    lateness
                })
            })
            .collect();
        let mut lateness = Vec::with_capacity(TASKS * SLEEPS);
        for h in handles {
            lateness.extend(h.await.unwrap());
        }
        stop.set(true);
        (lateness, busy.await.unwrap())
    });
    assert_eq!(lateness.len(), TASKS * SLEEPS);
    lateness.sort();
    (lateness, busy)
}

/// The lateness a loaded thread adds to its timers: 10,000 sleeps of 1 ms, 100 at a time,
/// beside a task that keeps the thread busy; p99 within 5 ms.
#[test]
fn lateness_of_10000_sleeps_on_a_busy_thread() {
    run(180, |rt| {
        judge_lateness(
            "10000 1 ms sleeps (100 at a time) beside a busy task",
            || {
                let (lateness, busy) = steady_lateness(rt);
                let busy_polls = busy.polls;
                let (p50, p99, max) = (
                    percentile(&lateness, 50.0),
                    percentile(&lateness, 99.0),
                    *lateness.last().unwrap(),
                );
                assert!(
                    busy_polls >= 100,
                    "the busy task kept the thread busy ({busy_polls} polls)"
                );
                assert_eq!(rt.timers(), 0);
                (
                    p99,
                    Duration::from_millis(5),
                    format!("p50 {p50:?}, p99 {p99:?}, max {max:?} ({busy_polls} busy polls)"),
                    busy.longest_gap,
                )
            },
        );
    });
}

/// `yield_now` promises to let "the other ready tasks, and the ring, run before this task
/// continues"; the timers fire in the same place in the loop as the ring is visited. So a task
/// that keeps the thread busy but yields every 50 us must let an expired sleep wake up within
/// a poll or two, whatever the machine's speed: this counts the busy task's polls that start
/// after a sleeper's deadline and before the sleeper ran again.
#[test]
fn a_yielding_busy_task_lets_expired_timers_fire() {
    run(60, |rt| {
        const SLEEPS: usize = 100;
        let (late_polls, mut lateness, busy_polls) = rt.block_on(async {
            let stop = Rc::new(Cell::new(false));
            let watched: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
            let late = Rc::new(Cell::new(0u32));
            let (s, w, l) = (stop.clone(), watched.clone(), late.clone());
            let busy = coring::spawn(async move {
                let mut polls = 0u64;
                while !s.get() {
                    if w.get().is_some_and(|deadline| Instant::now() >= deadline) {
                        l.set(l.get() + 1);
                    }
                    let until = Instant::now() + Duration::from_micros(50);
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    polls += 1;
                    coring::task::yield_now().await;
                }
                polls
            });
            let mut late_polls = Vec::with_capacity(SLEEPS);
            let mut lateness = Vec::with_capacity(SLEEPS);
            // The sleeper is a spawned task like the busy one (the block_on future itself is
            // polled once per turn, so it would not show the problem).
            let sleeper = coring::spawn(async move {
                for _ in 0..SLEEPS {
                    let deadline = Instant::now() + Duration::from_millis(1);
                    late.set(0);
                    watched.set(Some(deadline));
                    lateness.push(late_by(deadline).await);
                    watched.set(None);
                    late_polls.push(late.get());
                }
                (late_polls, lateness)
            });
            let (late_polls, lateness) = sleeper.await.unwrap();
            stop.set(true);
            (late_polls, lateness, busy.await.unwrap())
        });
        let (p50, p99, max) = summary(&mut lateness);
        let worst = *late_polls.iter().max().unwrap();
        let mean = late_polls.iter().map(|&n| f64::from(n)).sum::<f64>() / SLEEPS as f64;
        eprintln!(
            "1 ms sleeps beside a task yielding every 50 us: lateness p50 {p50:?}, p99 {p99:?}, \
             max {max:?}; busy polls after a deadline before the sleeper woke: mean {mean:.1}, \
             max {worst} ({busy_polls} busy polls)"
        );
        assert!(
            worst <= 3,
            "the busy task was polled {worst} times (mean {mean:.1}) after a sleep expired \
             before the sleeper ran: yield_now did not let the timers fire (lateness p50 \
             {p50:?}, p99 {p99:?})"
        );
    });
}
