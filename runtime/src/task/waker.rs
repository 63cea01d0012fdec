//! Waking tasks from any thread: the runtime's [`Remote`] inbox, and the `block_on` future's
//! waker.
//!
//! A task's waker points into the task's own allocation (see [`super::raw`]). Woken on the
//! thread of the runtime that owns the task, the task goes straight onto the local run queue.
//! Woken elsewhere, a counted reference to it goes into the runtime's [`Remote`] inbox, and if
//! the runtime is parked in `io_uring_enter` the driver's [`Unparker`] wakes it.
//!
//! The handshake that decides whether a remote wake needs an unpark lives in [`super::park`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Wake;

use super::park::ParkState;
use super::raw::TaskRef;
use crate::driver::Unparker;

/// Work sent to a runtime from another thread, run on the runtime's thread.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// What other threads sent: tasks they woke, jobs to run.
#[derive(Default)]
pub(crate) struct Inbox {
    pub(crate) woken: Vec<TaskRef>,
    pub(crate) jobs: Vec<Job>,
    /// The runtime shut down: jobs sent now are dropped at once (a dropped spawn job reports
    /// its task as cancelled) instead of waiting for a loop that will not run again.
    closed: bool,
}

/// The part of a scheduler other threads may touch.
pub(crate) struct Remote {
    inbox: Mutex<Inbox>,
    park: ParkState,
    unparker: Arc<Unparker>,
}

impl Remote {
    pub(crate) fn new(unparker: Arc<Unparker>) -> Self {
        Remote {
            inbox: Mutex::new(Inbox::default()),
            park: ParkState::default(),
            unparker,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a task woken from another thread (or from another runtime on this one).
    pub(crate) fn push(&self, task: TaskRef) {
        self.lock().woken.push(task);
        self.notify();
    }

    /// Whether the runtime has shut down (jobs are refused).
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Sends `job` to run on the runtime's thread; drops it if the runtime has shut down.
    pub(crate) fn push_job(&self, job: Job) {
        let mut inbox = self.lock();
        if inbox.closed {
            drop(inbox);
            drop(job); // outside the lock: dropping a job may send another
            return;
        }
        inbox.jobs.push(job);
        drop(inbox);
        self.notify();
    }

    /// Refuses jobs from now on and drops those still queued (a dropped spawn job reports its
    /// task as cancelled).
    pub(crate) fn close(&self) {
        let queued = {
            let mut inbox = self.lock();
            inbox.closed = true;
            std::mem::take(&mut inbox.jobs)
        };
        drop(queued); // outside the lock: dropping a job may send another
    }

    /// Wakes the runtime through its eventfd whether or not it is parked.
    pub(crate) fn unpark_now(&self) {
        self.unparker.write_eventfd();
    }

    fn notify(&self) {
        if self.park.notify() {
            self.unparker.unpark();
        }
    }

    /// Takes the tasks woken and the jobs sent from other threads, if any.
    pub(crate) fn drain(&self) -> Option<Inbox> {
        if !self.park.take_pending() {
            return None;
        }
        let mut inbox = self.lock();
        Some(Inbox {
            woken: std::mem::take(&mut inbox.woken),
            jobs: std::mem::take(&mut inbox.jobs),
            closed: inbox.closed,
        })
    }

    /// Announces that the executor is about to block; false if a remote wake is pending.
    pub(crate) fn begin_park(&self) -> bool {
        self.park.begin_park()
    }

    pub(crate) fn end_park(&self) {
        self.park.end_park();
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("park", &self.park).finish()
    }
}

/// The waker of the future passed to `block_on`: a `queued` flag, and the runtime to unpark
/// when it is woken from elsewhere.
#[derive(Debug)]
pub(crate) struct MainWaker {
    queued: AtomicBool,
    remote: Arc<Remote>,
}

impl MainWaker {
    /// A waker that starts out queued (the future is polled once first).
    pub(crate) fn new(remote: Arc<Remote>) -> Arc<Self> {
        Arc::new(MainWaker {
            queued: AtomicBool::new(true),
            remote,
        })
    }

    /// Whether the future was woken; clears the flag (it is about to be polled).
    pub(crate) fn take_queued(&self) -> bool {
        self.queued.swap(false, Ordering::AcqRel)
    }

    /// Whether the future was woken and not polled since.
    pub(crate) fn is_queued(&self) -> bool {
        self.queued.load(Ordering::Acquire)
    }
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        // On the runtime's own thread the loop checks the flag before it parks; from anywhere
        // else the runtime may be parked.
        let local = crate::runtime::context::with_core(|core| {
            Arc::ptr_eq(core.scheduler.remote(), &self.remote)
        })
        .unwrap_or(false);
        if !local {
            self.remote.notify();
        }
    }
}
