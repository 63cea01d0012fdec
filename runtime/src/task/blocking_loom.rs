//! A loom model of the blocking pool's hand-off ([`super::blocking`]): submit, run, and the
//! idle exit after `KEEP_ALIVE`.
//!
//! The pool is built on `std::sync::Mutex`/`Condvar` and a process-wide `OnceLock`, which loom
//! cannot instrument in place, so the model is a **copy of the pool's state machine** (same
//! `State { queue, threads, idle }`, same steps in the same order under the same lock) on
//! loom's primitives. Keep it in step with `blocking.rs` when that changes.
//!
//! One thing loom cannot model directly is the timeout of `Condvar::wait_timeout` (loom's
//! never times out). The model makes the expiry an event instead: a timer thread, at a point
//! of loom's choosing, bumps an expiry generation under the lock and wakes every waiter; an
//! idle thread whose wait ends with the generation changed behaves exactly as the pool does
//! when `wait_timeout` reports a timeout (it exits if the queue is empty, else runs the
//! queue). At the end of the model every wait times out at once, so every idle thread exits.
//!
//! Properties checked, over every interleaving loom explores (up to three preemptions):
//! - every submitted job runs exactly once;
//! - no job is stranded: the submitters then wait for every job to have run, with no further
//!   timer event, so a job that only a timeout would pick up shows up as a deadlock;
//! - the thread count stays within the bound, and is back to zero once all threads exited.
//!
//! Run: `CARGO_TARGET_DIR=target/loom RUSTFLAGS="--cfg coring_loom" cargo test -p
//! coring-runtime --lib --release loom`.

use std::collections::VecDeque;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// The model's bound (the pool's is 64; two threads reach every state that matters).
const MAX_THREADS: usize = 2;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// `blocking::State`, plus the expiry generation that stands in for `wait_timeout`'s clock.
#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    expiries: u64,
    /// The end of the model: every wait from now on times out at once.
    closing: bool,
}

struct Pool {
    state: Mutex<State>,
    work: Condvar,
    handles: Mutex<Vec<thread::JoinHandle<()>>>,
}

impl Pool {
    fn new() -> Arc<Pool> {
        Arc::new(Pool {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            handles: Mutex::new(Vec::new()),
        })
    }

    /// `Pool::submit`, step for step: notify an idle thread (under the lock), and start
    /// another thread whenever the queue outgrows the idle threads (which stay counted as idle
    /// until they run, so a woken thread may already be spoken for).
    fn submit(pool: &Arc<Pool>, job: Job) {
        let mut state = pool.state.lock().unwrap();
        state.queue.push_back(job);
        if state.idle > 0 {
            pool.work.notify_one();
        }
        if state.queue.len() > state.idle && state.threads < MAX_THREADS {
            state.threads += 1;
            drop(state);
            let runner = pool.clone();
            let handle = thread::spawn(move || runner.run());
            pool.handles.lock().unwrap().push(handle);
        }
    }

    /// `Pool::run`, step for step; `wait_timeout` becomes a wait plus the expiry generation.
    fn run(&self) {
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job();
                state = self.state.lock().unwrap();
                continue;
            }
            state.idle += 1;
            let generation = state.expiries;
            if !state.closing {
                state = self.work.wait(state).unwrap();
            }
            let timed_out = state.closing || state.expiries != generation;
            state.idle -= 1;
            if timed_out && state.queue.is_empty() {
                state.threads -= 1;
                return;
            }
        }
    }

    /// The keep-alive expiring for every thread waiting now.
    fn expire(&self) {
        self.state.lock().unwrap().expiries += 1;
        self.work.notify_all();
    }
}

/// Counts runs per job and lets a waiter block until `total` jobs ran.
struct Done {
    runs: Vec<AtomicUsize>,
    ran: Mutex<usize>,
    all: Condvar,
}

impl Done {
    fn new(jobs: usize) -> Arc<Done> {
        Arc::new(Done {
            runs: (0..jobs).map(|_| AtomicUsize::new(0)).collect(),
            ran: Mutex::new(0),
            all: Condvar::new(),
        })
    }

    fn job(done: &Arc<Done>, id: usize) -> Job {
        let done = done.clone();
        Box::new(move || {
            done.runs[id].fetch_add(1, Ordering::SeqCst);
            *done.ran.lock().unwrap() += 1;
            done.all.notify_all();
        })
    }

    fn wait_for(&self, total: usize) {
        let mut ran = self.ran.lock().unwrap();
        while *ran < total {
            ran = self.all.wait(ran).unwrap();
        }
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// Joins every pool thread after the final expiry, and checks the end state.
fn finish(pool: &Arc<Pool>, done: &Done) {
    pool.state.lock().unwrap().closing = true;
    pool.work.notify_all();
    loop {
        let handle = pool.handles.lock().unwrap().pop();
        match handle {
            Some(h) => h.join().unwrap(),
            None => break,
        }
    }
    let state = pool.state.lock().unwrap();
    assert_eq!(
        state.threads, 0,
        "a pool thread was counted but never exited"
    );
    assert_eq!(state.idle, 0);
    assert!(state.queue.is_empty());
    for (id, runs) in done.runs.iter().enumerate() {
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "job {id} ran other than once"
        );
    }
}

/// Two submitters, while the keep-alive of the first thread may expire at any point.
#[test]
fn loom_blocking_pool_two_submitters_and_an_idle_exit() {
    model(|| {
        let pool = Pool::new();
        let done = Done::new(2);
        let timer = {
            let pool = pool.clone();
            thread::spawn(move || pool.expire())
        };
        let other = {
            let (pool, done) = (pool.clone(), done.clone());
            thread::spawn(move || Pool::submit(&pool, Done::job(&done, 1)))
        };
        Pool::submit(&pool, Done::job(&done, 0));
        other.join().unwrap();
        timer.join().unwrap();
        // No more timer events: a job only a timeout would pick up deadlocks here.
        done.wait_for(2);
        finish(&pool, &done);
    });
}

/// A submit racing the exit of the only idle thread: the thread ran a first job, went idle,
/// and its keep-alive expires while a second job arrives.
#[test]
fn loom_blocking_pool_submit_races_the_idle_exit() {
    model(|| {
        let pool = Pool::new();
        let done = Done::new(2);
        Pool::submit(&pool, Done::job(&done, 0));
        done.wait_for(1);
        let timer = {
            let pool = pool.clone();
            thread::spawn(move || pool.expire())
        };
        Pool::submit(&pool, Done::job(&done, 1));
        timer.join().unwrap();
        done.wait_for(2);
        finish(&pool, &done);
    });
}
