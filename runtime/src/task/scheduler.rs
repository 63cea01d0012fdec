//! The local scheduler: the task slab and the run queue of one runtime.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use slab::Slab;

use super::raw::{Runnable, Task};
use super::waker::{Remote, TaskId, TaskWaker};
use super::JoinHandle;

struct Entry {
    generation: u32,
    task: Rc<dyn Runnable>,
}

pub(crate) struct Scheduler {
    tasks: RefCell<Slab<Entry>>,
    next_generation: Cell<u32>,
    run_queue: RefCell<VecDeque<TaskId>>,
    remote: Arc<Remote>,
    shutting_down: Cell<bool>,
    spawned: Cell<u64>,
}

impl Scheduler {
    pub(crate) fn new(remote: Arc<Remote>) -> Self {
        Scheduler {
            tasks: RefCell::new(Slab::new()),
            next_generation: Cell::new(0),
            run_queue: RefCell::new(VecDeque::new()),
            remote,
            shutting_down: Cell::new(false),
            spawned: Cell::new(0),
        }
    }

    pub(crate) fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawned.set(self.spawned.get() + 1);
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let generation = self.next_generation.get();
        self.next_generation.set(generation.wrapping_add(1));
        let id = TaskId::new(entry.key(), generation);
        trace!(target: "coring::task", task = entry.key(), generation, "spawn");
        let task = Rc::new(Task::new(future, TaskWaker::new(id, self.remote.clone())));
        if self.shutting_down.get() {
            drop(tasks);
            task.shutdown();
        } else {
            entry.insert(Entry {
                generation,
                task: task.clone(),
            });
            drop(tasks);
            self.run_queue.borrow_mut().push_back(id);
        }
        JoinHandle::new(task)
    }

    /// Queues `id` if `remote` is this scheduler's (the waker's thread owns the task).
    pub(crate) fn push_if_owner(&self, remote: &Arc<Remote>, id: TaskId) -> bool {
        if !Arc::ptr_eq(remote, &self.remote) {
            return false;
        }
        self.run_queue.borrow_mut().push_back(id);
        true
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.run_queue.borrow().is_empty()
    }

    /// Moves tasks woken from other threads onto the run queue, and runs the jobs other
    /// threads sent (they spawn tasks here).
    pub(crate) fn drain_remote(&self) {
        let jobs = self.remote.drain(&mut *self.run_queue.borrow_mut());
        for job in jobs {
            job();
        }
    }

    /// Polls up to `max` of the tasks queued now. A task woken during this batch (one that
    /// yields, say) waits for the next one, after timers and completions had their turn.
    pub(crate) fn run_ready(&self, max: usize) {
        let batch = max.min(self.run_queue.borrow().len());
        for _ in 0..batch {
            let Some(id) = self.run_queue.borrow_mut().pop_front() else {
                return;
            };
            let task = match self.tasks.borrow().get(id.index()) {
                Some(entry) if entry.generation == id.generation() => entry.task.clone(),
                _ => continue, // the main future, or a task that already finished
            };
            #[cfg(feature = "tracing")]
            let _span = tracing::trace_span!("coring::task::poll", task = id.index()).entered();
            if task.run() {
                let mut tasks = self.tasks.borrow_mut();
                // The slot may already be gone if the task shut its own runtime down.
                let entry = match tasks.get(id.index()) {
                    Some(entry) if entry.generation == id.generation() => {
                        Some(tasks.remove(id.index()))
                    }
                    _ => None,
                };
                drop(tasks);
                drop(entry);
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
    }

    /// Drops every task's future now; the runtime keeps running.
    pub(crate) fn cancel_all(&self) {
        loop {
            let entries: Vec<Entry> = self.tasks.borrow_mut().drain().collect();
            if entries.is_empty() {
                break;
            }
            for entry in entries {
                entry.task.shutdown();
            }
        }
        self.run_queue.borrow_mut().clear();
    }

    pub(crate) fn spawned(&self) -> u64 {
        self.spawned.get()
    }

    pub(crate) fn tasks_len(&self) -> usize {
        self.tasks.borrow().len()
    }
}
