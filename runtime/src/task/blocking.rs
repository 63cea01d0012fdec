//! The blocking pool: threads for work io_uring has no op for (name resolution, CPU-heavy
//! or blocking library calls).
//!
//! One process-wide pool, bounded at [`MAX_THREADS`]; a thread that finds no work for
//! [`KEEP_ALIVE`] exits, so an idle process holds no pool threads. Jobs wait in a FIFO queue
//! when every thread is busy.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use super::join::{JoinError, JoinHandle, Shared};

/// Most threads the pool runs at once.
pub const MAX_THREADS: usize = 64;
/// How long an idle pool thread waits for work before exiting.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

#[derive(Default)]
struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(Pool::default)
}

/// Runs `f` on the blocking pool; the handle resolves to its result.
///
/// Works with or without a runtime on the calling thread. A panic in `f` is reported as a
/// [`JoinError`]. `abort` cancels the job only if it has not started.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let sum = coring::task::spawn_blocking(|| (1..=10u64).sum::<u64>()).await.unwrap();
/// assert_eq!(sum, 55);
/// # });
/// ```
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let shared = Shared::new();
    let report = shared.clone();
    pool().submit(Box::new(move || {
        if report.is_aborted() {
            report.complete(Err(JoinError::cancelled()));
            return;
        }
        let result = catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::panic);
        report.complete(result);
    }));
    JoinHandle::shared(shared)
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn submit(&'static self, job: Job) {
        let mut state = self.lock();
        state.queue.push_back(job);
        if state.idle > 0 {
            self.work.notify_one();
        }
        // `idle` drops only when a woken thread runs: until then it still counts threads that
        // are already spoken for. Start another thread whenever the queue outgrows them.
        if state.queue.len() > state.idle && state.threads < MAX_THREADS {
            state.threads += 1;
            drop(state);
            let spawned = std::thread::Builder::new()
                .name("coring-blocking".into())
                .spawn(move || self.run());
            if spawned.is_err() {
                let mut state = self.lock();
                state.threads -= 1;
                if state.threads == 0 {
                    // No thread could start and none runs: do the work here rather than hang.
                    let jobs: Vec<Job> = state.queue.drain(..).collect();
                    drop(state);
                    jobs.into_iter().for_each(|job| job());
                }
            }
        }
    }

    fn run(&self) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job();
                state = self.lock();
                continue;
            }
            state.idle += 1;
            let (next, timeout) = self
                .work
                .wait_timeout(state, KEEP_ALIVE)
                .unwrap_or_else(|p| p.into_inner());
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.queue.is_empty() {
                state.threads -= 1;
                return;
            }
        }
    }
}
