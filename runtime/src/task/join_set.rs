//! [`JoinSet`]: a group of spawned tasks, joined in the order they finish.
//!
//! Each task is spawned wrapped in a small future that owns a [`Notify`] guard. Whenever the
//! task ends (returns, panics or is aborted, which all drop the wrapper), the guard's `Drop`
//! pushes the task's key onto the set's ready queue and wakes whoever waits in
//! [`JoinSet::join_next`]. So `join_next` polls only handles that are known to be finished:
//! O(1) per joined task, however many tasks the set holds.
//!
//! The set and its tasks share the queue through an `Rc`: like the tasks themselves, a set
//! belongs to one thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::{JoinError, JoinHandle};

/// Tasks spawned together and awaited in the order they finish, like tokio's `JoinSet`.
///
/// Dropping the set aborts every task still in it.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let mut set = coring::task::JoinSet::new();
/// for i in 0..3u64 {
///     set.spawn(async move {
///         coring::time::sleep(std::time::Duration::from_millis(3 - i)).await;
///         i
///     });
/// }
/// let mut order = Vec::new();
/// while let Some(result) = set.join_next().await {
///     order.push(result.unwrap());
/// }
/// assert_eq!(order.len(), 3);
/// assert!(set.is_empty());
/// # });
/// ```
pub struct JoinSet<T> {
    /// Each task with its id, unique over the set's life (slab keys are reused).
    tasks: Slab<(u64, JoinHandle<T>)>,
    next_id: u64,
    ready: Rc<RefCell<Ready>>,
}

#[derive(Default)]
struct Ready {
    /// `(slab key, id)` of tasks that ended and were not joined yet.
    keys: VecDeque<(usize, u64)>,
    waker: Option<Waker>,
}

/// Lives inside a task's future; reports the task's end when dropped.
struct Notify {
    key: (usize, u64),
    ready: Rc<RefCell<Ready>>,
}

impl Drop for Notify {
    fn drop(&mut self) {
        let waker = {
            let mut ready = self.ready.borrow_mut();
            ready.keys.push_back(self.key);
            ready.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T: 'static> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            tasks: Slab::new(),
            next_id: 0,
            ready: Rc::default(),
        }
    }

    /// Spawns `future` on the current thread's runtime, as a member of the set.
    ///
    /// # Panics
    /// Outside a coring runtime, as [`spawn`](super::spawn) does.
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = T> + 'static,
    {
        let id = self.next_id;
        self.next_id += 1;
        let entry = self.tasks.vacant_entry();
        let notify = Notify {
            key: (entry.key(), id),
            ready: self.ready.clone(),
        };
        let handle = super::spawn(async move {
            let _notify = notify;
            future.await
        });
        entry.insert((id, handle));
    }

    /// Waits for the next task to finish and returns its result; `None` when the set is
    /// empty. Tasks are returned in the order they finished. Cancel-safe: dropping the future
    /// loses no task.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Polls for the next finished task (see [`join_next`](Self::join_next)).
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        if self.tasks.is_empty() {
            return Poll::Ready(None);
        }
        loop {
            let next = self.ready.borrow().keys.front().copied();
            let Some((key, id)) = next else {
                self.ready.borrow_mut().waker = Some(cx.waker().clone());
                return Poll::Pending;
            };
            let handle = match self.tasks.get_mut(key) {
                Some((task_id, handle)) if *task_id == id => handle,
                _ => {
                    // A task that never joined the set (its spawn panicked).
                    self.ready.borrow_mut().keys.pop_front();
                    continue;
                }
            };
            // The task ended, so its handle is ready (unless the cooperative budget says to
            // yield first, in which case it wakes us).
            let result = std::task::ready!(Pin::new(handle).poll(cx));
            self.ready.borrow_mut().keys.pop_front();
            self.tasks.remove(key);
            return Poll::Ready(Some(result));
        }
    }

    /// Aborts every task in the set. They stay in it: [`join_next`](Self::join_next) returns
    /// each one's result, a cancelled [`JoinError`] for those that had not finished.
    pub fn abort_all(&mut self) {
        for (_, (_, handle)) in &self.tasks {
            handle.abort();
        }
    }

    /// Aborts every task and waits until all have ended, discarding their results.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Removes every task from the set without aborting them: they run on, detached.
    pub fn detach_all(&mut self) {
        self.tasks.clear();
        // The detached tasks report to the old queue, which nobody reads.
        self.ready = Rc::default();
    }

    /// How many tasks the set holds (running, or finished but not yet joined).
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl<T: 'static> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        for (_, (_, handle)) in &self.tasks {
            handle.abort();
        }
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("len", &self.tasks.len())
            .finish()
    }
}

impl<T: 'static, F: Future<Output = T> + 'static> FromIterator<F> for JoinSet<T> {
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> Self {
        let mut set = JoinSet::new();
        for future in iter {
            set.spawn(future);
        }
        set
    }
}
