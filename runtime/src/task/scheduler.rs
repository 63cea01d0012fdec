//! The local scheduler: the tasks of one runtime and its run queue.
//!
//! Every unfinished task is in an intrusive list threaded through the task headers (so a
//! spawn allocates nothing but the task) and holds a reference from it; the list is how
//! shutdown finds the tasks to drop. The run queue holds one reference per entry; an entry
//! whose task has finished meanwhile is skipped.
//!
//! Nothing here calls user code (a future's poll or drop, a waker) while a `RefCell` borrow is
//! held: those may spawn or wake, which comes back here.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::mem;
use std::ptr::NonNull;
use std::sync::Arc;

use super::cache::TaskCache;
use super::raw::{self, Header, LocalTask};
use super::waker::Remote;
use super::JoinHandle;

pub(crate) struct Scheduler {
    /// Unfinished tasks (and ones being polled while the runtime shuts down).
    tasks: Cell<Option<NonNull<Header>>>,
    tasks_len: Cell<usize>,
    run_queue: RefCell<VecDeque<LocalTask>>,
    remote: Arc<Remote>,
    shutting_down: Cell<bool>,
    spawned: Cell<u64>,
    /// Declared last: dropped after the tasks the other fields release.
    cache: TaskCache,
}

impl Scheduler {
    pub(crate) fn new(remote: Arc<Remote>) -> Self {
        Scheduler {
            tasks: Cell::new(None),
            tasks_len: Cell::new(0),
            run_queue: RefCell::new(VecDeque::new()),
            remote,
            shutting_down: Cell::new(false),
            spawned: Cell::new(0),
            cache: TaskCache::new(),
        }
    }

    pub(crate) fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    pub(crate) fn cache(&self) -> &TaskCache {
        &self.cache
    }

    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawned.set(self.spawned.get() + 1);
        let (task, join) = raw::new_task(future, &self.remote, &self.cache);
        trace!(target: "coring::task", task = task.id(), "spawn");
        if self.shutting_down.get() {
            task.cancel();
        } else {
            self.push(task.clone());
            self.link(task);
        }
        JoinHandle::new(join)
    }

    fn link(&self, task: LocalTask) {
        task.link(&self.tasks);
        self.tasks_len.set(self.tasks_len.get() + 1);
    }

    fn unlink(&self, task: &LocalTask) -> Option<LocalTask> {
        let unlinked = task.unlink(&self.tasks);
        if unlinked.is_some() {
            self.tasks_len.set(self.tasks_len.get() - 1);
        }
        unlinked
    }

    fn pop_task(&self) -> Option<LocalTask> {
        let task = LocalTask::pop_list(&self.tasks)?;
        self.tasks_len.set(self.tasks_len.get() - 1);
        Some(task)
    }

    /// Queues a task of this scheduler (its waker ran on this thread).
    pub(crate) fn push(&self, task: LocalTask) {
        self.run_queue.borrow_mut().push_back(task);
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.run_queue.borrow().is_empty()
    }

    /// Moves tasks woken from other threads onto the run queue, and runs the jobs other
    /// threads sent (they spawn tasks here).
    pub(crate) fn drain_remote(&self) {
        let Some(inbox) = self.remote.drain() else {
            return;
        };
        for task in inbox.woken {
            // SAFETY: the inbox is this scheduler's, so its tasks are owned by this thread.
            if let Some(task) = unsafe { task.into_local() } {
                self.push(task);
            }
        }
        for job in inbox.jobs {
            job();
        }
    }

    /// Polls up to `max` of the tasks queued now. A task woken during this batch (one that
    /// yields, say) waits for the next one, after timers and completions had their turn.
    pub(crate) fn run_ready(&self, max: usize) {
        let batch = max.min(self.run_queue.borrow().len());
        for _ in 0..batch {
            let Some(task) = self.run_queue.borrow_mut().pop_front() else {
                return;
            };
            if task.is_finished() {
                continue; // woken, then finished (aborted, or cancelled by a shutdown)
            }
            #[cfg(feature = "tracing")]
            let _span = tracing::trace_span!("coring::task::poll", task = task.id()).entered();
            if task.run() {
                // Still linked, even if the task shut its own runtime down meanwhile (a task
                // being polled stays in the list); the list's reference goes here.
                drop(self.unlink(&task));
            }
        }
    }

    /// Drops every task's future (their ops are cancelled by their `Drop`s), for good: tasks
    /// spawned afterwards are cancelled at once.
    pub(crate) fn shutdown(&self) {
        self.shutting_down.set(true);
        self.cancel_all();
        // Jobs sent from other threads spawn into the closed scheduler: they are cancelled.
        self.drain_remote();
        // Jobs sent from now on (through a `Handle` that outlives the runtime) are dropped
        // when sent, which reports their tasks as cancelled.
        self.remote.close();
    }

    /// Drops every task's future now; the runtime keeps running. A task that is being polled
    /// (it called this) is aborted instead, and finishes when its poll returns.
    pub(crate) fn cancel_all(&self) {
        let mut running = Vec::new();
        // Dropping a future may spawn (or, past shutdown, cancel at once) more tasks: the
        // loop takes those too.
        while let Some(task) = self.pop_task() {
            if !task.cancel() {
                running.push(task);
            }
        }
        for task in running {
            self.link(task);
        }
        let queued = mem::take(&mut *self.run_queue.borrow_mut());
        drop(queued);
    }

    pub(crate) fn spawned(&self) -> u64 {
        self.spawned.get()
    }

    pub(crate) fn tasks_len(&self) -> usize {
        self.tasks_len.get()
    }
}

impl Drop for Scheduler {
    /// Normally a no-op (the runtime's shutdown already dropped every task); if the runtime
    /// unwound without one, the futures are dropped here, still on their thread.
    fn drop(&mut self) {
        self.shutting_down.set(true);
        self.cancel_all();
        // Entries queued while the futures were dropped.
        let queued = mem::take(self.run_queue.get_mut());
        drop(queued);
        // A worker that unwound never reached `shutdown`: refuse further jobs here too, so a
        // spawn through a `Handle` reports a cancelled task instead of waiting forever.
        self.remote.close();
    }
}
