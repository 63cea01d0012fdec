//! A loom model of the raw task's cross-thread protocol ([`super::raw`]): the two reference
//! counts and the `queued` flag.
//!
//! The raw task code reaches the thread's runtime (`with_core`) and the scheduler, which loom
//! cannot run, so the model is a **copy of the protocol's steps** on loom's primitives, with
//! the same orderings. Keep it in step with `raw.rs` when that changes:
//! - `release_local_unit`: `refs.load(Acquire) == 1 || refs.fetch_sub(1, AcqRel) == 1`;
//! - `release_shared` (a waker or inbox entry): `fetch_sub(1, Release) == 1`, then an
//!   `Acquire` fence;
//! - a wake: `queued.swap(true, AcqRel)`; if it was clear, `refs.fetch_add(1, Relaxed)` and an
//!   inbox entry;
//! - the owner: `queued.swap(false, AcqRel)` before each poll; `finish` writes the stage,
//!   then sets `queued` for good; an inbox entry of an unfinished task becomes a local
//!   reference (`fetch_sub(1, Release)`), of a finished one is released.
//!
//! Properties checked, over every interleaving loom explores (up to three preemptions):
//! - the task is freed exactly once, and the free (on whichever thread drops the last count)
//!   happens after the owner's last write to the stage (loom reports a data race otherwise);
//! - no lost wake-up: a value published before a wake is seen by the poll that the wake
//!   causes, or a later one.
//!
//! Run: `CARGO_TARGET_DIR=target/loom RUSTFLAGS="--cfg coring_loom" cargo test -p
//! coring-runtime --lib --release loom`.

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

const RUNNING: u8 = 0;
const CONSUMED: u8 = 1;

/// The header fields the protocol touches, plus the stage and a count of frees.
struct Task {
    refs: AtomicUsize,
    queued: AtomicBool,
    stage: UnsafeCell<u8>,
    freed: AtomicUsize,
    /// The owner's `FINISHED` flag (owner thread only in the real code).
    finished: AtomicBool,
    /// The runtime's remote inbox: one count of `refs` per entry.
    inbox: Mutex<usize>,
}

impl Task {
    fn new(refs: usize, queued: bool) -> Arc<Task> {
        Arc::new(Task {
            refs: AtomicUsize::new(refs),
            queued: AtomicBool::new(queued),
            stage: UnsafeCell::new(RUNNING),
            freed: AtomicUsize::new(0),
            finished: AtomicBool::new(false),
            inbox: Mutex::new(0),
        })
    }

    fn dealloc(&self) {
        // Reads the stage (`dealloc` drops it): must happen after the owner's `finish`.
        self.stage.with(|stage| {
            // SAFETY: loom checks that this read does not race with the owner's write.
            assert_eq!(unsafe { *stage }, CONSUMED, "freed before it finished");
        });
        self.freed.fetch_add(1, Ordering::Relaxed);
    }

    fn release_local_unit(&self) {
        if self.refs.load(Ordering::Acquire) == 1 || self.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.dealloc();
        }
    }

    fn release_shared(&self) {
        if self.refs.fetch_sub(1, Ordering::Release) == 1 {
            fence(Ordering::Acquire);
            self.dealloc();
        }
    }

    /// `schedule` from a thread that does not own the task, with a borrowed waker.
    fn wake_remote(&self) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        self.refs.fetch_add(1, Ordering::Relaxed);
        *self.inbox.lock().unwrap() += 1;
    }

    /// The owner's `drain_remote`: entries of an unfinished task become local references
    /// (the local unit is held, so the decrement is never the last), others are released.
    /// Returns how many became local.
    fn drain(&self) -> usize {
        let entries = std::mem::take(&mut *self.inbox.lock().unwrap());
        let mut local = 0;
        for _ in 0..entries {
            if self.finished.load(Ordering::Relaxed) {
                self.release_shared();
            } else {
                self.refs.fetch_sub(1, Ordering::Release);
                local += 1;
            }
        }
        local
    }

    /// The owner's `finish`.
    fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
        self.queued.store(true, Ordering::Release);
        // SAFETY: owner thread; loom checks no other thread reads the stage concurrently.
        self.stage.with_mut(|stage| unsafe { *stage = CONSUMED });
    }
}

/// Explores interleavings with up to three preemptions (as the other loom models do).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// A waker held by another thread, woken and dropped there, while the owner finishes the
/// task and lets go of it: freed once, after the finish, whoever comes last.
#[test]
fn loom_task_freed_once_after_finish() {
    model(|| {
        // The local unit, plus the waker the other thread owns; not queued (it is parked on
        // something the other thread will signal).
        let task = Task::new(2, false);
        let waker = {
            let task = task.clone();
            thread::spawn(move || {
                task.wake_remote();
                task.release_shared();
            })
        };
        // The owner may take the wake before it finishes (the entry becomes a run-queue
        // reference, dropped after the poll)...
        let _ = task.drain();
        task.finish();
        task.release_local_unit();
        waker.join().unwrap();
        // ...or after: the entry of the finished task is released here, possibly last.
        let _ = task.drain();
        assert_eq!(task.freed.load(Ordering::Relaxed), 1);
    });
}

/// Two foreign wakers dropped on two threads, one also waking: still one free.
#[test]
fn loom_task_two_foreign_wakers() {
    model(|| {
        let task = Task::new(3, false);
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let task = task.clone();
                thread::spawn(move || {
                    if i == 0 {
                        task.wake_remote();
                    }
                    task.release_shared();
                })
            })
            .collect();
        task.finish();
        task.release_local_unit();
        for t in threads {
            t.join().unwrap();
        }
        let _ = task.drain();
        assert_eq!(task.freed.load(Ordering::Relaxed), 1);
    });
}

/// No lost wake-up: the other thread publishes a value, then wakes; the owner clears
/// `queued` before each poll and polls again whenever an entry arrived.
#[test]
fn loom_task_no_lost_wake() {
    model(|| {
        // Queued at spawn, with its run-queue entry; plus the waker the other thread owns.
        let task = Task::new(2, true);
        let value = Arc::new(AtomicUsize::new(0));
        let waker = {
            let (task, value) = (task.clone(), value.clone());
            thread::spawn(move || {
                value.store(1, Ordering::Relaxed);
                task.wake_remote();
                task.release_shared();
            })
        };
        // The first poll (its entry came from the spawn).
        task.queued.swap(false, Ordering::AcqRel);
        let mut seen = value.load(Ordering::Relaxed);
        waker.join().unwrap();
        if seen == 0 {
            // Not seen: the wake must have queued the task again.
            assert_eq!(task.drain(), 1, "lost wake-up");
            task.queued.swap(false, Ordering::AcqRel);
            seen = value.load(Ordering::Relaxed);
        }
        assert_eq!(seen, 1);
        task.finish();
        let _ = task.drain();
        task.release_local_unit();
        assert_eq!(task.freed.load(Ordering::Relaxed), 1);
    });
}
