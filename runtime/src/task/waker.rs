//! Task wakers, which any thread may wake.
//!
//! A task's future never leaves its thread; its waker carries only the task's id, a `queued`
//! flag, and the [`Remote`] queue of the runtime that owns it. Woken on the owning thread,
//! the id goes straight onto the local run queue. Woken elsewhere, it goes onto the runtime's
//! remote queue, and if the runtime is parked in `io_uring_enter` the driver's
//! [`Unparker`] wakes it.
//!
//! The `queued` flag makes a wake of an already queued task free: no second queue entry, and
//! no system call. The executor clears it just before polling the task, so a wake during the
//! poll queues the task again.
//!
//! The handshake that decides whether a remote wake needs an unpark lives in [`super::park`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::park::ParkState;
use crate::driver::Unparker;

/// A task's identity in its scheduler: slab index and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskId(u64);

impl TaskId {
    /// The future passed to `block_on`.
    pub(crate) const MAIN: TaskId = TaskId(u64::MAX);

    pub(crate) fn new(index: usize, generation: u32) -> Self {
        TaskId((u64::from(generation) << 32) | index as u64)
    }

    pub(crate) fn index(self) -> usize {
        (self.0 as u32) as usize
    }

    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// Work sent to a runtime from another thread, run on the runtime's thread.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct Inbox {
    woken: Vec<TaskId>,
    jobs: Vec<Job>,
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

    fn push(&self, id: TaskId) {
        self.lock().woken.push(id);
        self.notify();
    }

    /// Sends `job` to run on the runtime's thread.
    pub(crate) fn push_job(&self, job: Job) {
        self.lock().jobs.push(job);
        self.notify();
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

    /// Takes the ids woken and the jobs sent from other threads.
    pub(crate) fn drain(&self, woken: &mut impl Extend<TaskId>) -> Vec<Job> {
        if !self.park.take_pending() {
            return Vec::new();
        }
        let inbox = std::mem::take(&mut *self.lock());
        woken.extend(inbox.woken);
        inbox.jobs
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

/// What a task's [`Waker`] points to.
#[derive(Debug)]
pub(crate) struct TaskWaker {
    pub(crate) id: TaskId,
    pub(crate) queued: AtomicBool,
    remote: Arc<Remote>,
}

impl TaskWaker {
    /// A waker for a task that starts out queued.
    pub(crate) fn new(id: TaskId, remote: Arc<Remote>) -> Arc<Self> {
        Arc::new(TaskWaker {
            id,
            queued: AtomicBool::new(true),
            remote,
        })
    }

    /// Whether the task is queued; clears the flag (the executor is about to poll it).
    pub(crate) fn take_queued(&self) -> bool {
        self.queued.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn wake(&self) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let pushed_locally = crate::runtime::context::with_core(|core| {
            core.scheduler
                .push_if_owner(&self.remote, self.id)
                .then_some(())
        })
        .flatten()
        .is_some();
        if !pushed_locally {
            self.remote.push(self.id);
        }
    }

    pub(crate) fn into_waker(this: Arc<Self>) -> Waker {
        let raw = RawWaker::new(Arc::into_raw(this).cast(), &VTABLE);
        // SAFETY: the vtable's functions treat the data pointer as an `Arc<TaskWaker>` obtained
        // from `Arc::into_raw`, and `TaskWaker` is `Send + Sync`, as `Waker` requires.
        unsafe { Waker::from_raw(raw) }
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` came from `Arc::into_raw` (see `into_waker`) and this waker still holds
    // its count, so the Arc is alive; we add one count for the new waker.
    unsafe { Arc::increment_strong_count(data.cast::<TaskWaker>()) };
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    // SAFETY: `data` came from `Arc::into_raw`; waking by value consumes this waker's count.
    let this = unsafe { Arc::from_raw(data.cast::<TaskWaker>()) };
    this.wake();
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: `data` came from `Arc::into_raw` and the waker keeps it alive for this call.
    let this = unsafe { &*data.cast::<TaskWaker>() };
    this.wake();
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: `data` came from `Arc::into_raw`; dropping the waker releases its count.
    drop(unsafe { Arc::from_raw(data.cast::<TaskWaker>()) });
}
