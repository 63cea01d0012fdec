//! The [`Sleep`] future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::timers::{TimerKey, TimerQueue};
use crate::runtime::context;
use crate::task::waker::Remote;

/// Waits until `duration` has elapsed. Never completes early.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let start = std::time::Instant::now();
/// coring::time::sleep(std::time::Duration::from_millis(5)).await;
/// assert!(start.elapsed() >= std::time::Duration::from_millis(5));
/// # });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(deadline_after(duration))
}

/// Waits until `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registered: None,
    }
}

/// `now + duration`, saturating far in the future.
pub(crate) fn deadline_after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(86400 * 365 * 30))
}

/// A future that completes at its deadline; made by [`sleep`] and [`sleep_until`].
///
/// `Send` and `Sync`: it may live in a future that must be `Send` (an axum handler, a tower
/// service, [`Handle::spawn`](crate::runtime::Handle::spawn)). Its timer sits in the queue of
/// the worker that first polls it, and only that worker may poll it while the timer is
/// pending (coring's tasks never move between workers, so only a future moved by hand can
/// break this; once it has completed or been reset, any worker may). Dropped on any thread,
/// it removes its timer: at once on its worker, elsewhere by a message to it, which the
/// worker runs on its next turn.
///
/// # Panics
/// Polling it outside a coring runtime, or while its timer is pending on another worker,
/// panics with a message that says so. (A timer whose runtime has shut down is registered
/// afresh with the runtime that polls it.)
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    registered: Option<Registration>,
}

/// A registered timer: its key in the queue of the worker that owns it.
struct Registration {
    key: TimerKey,
    /// The owning worker's inbox: who may touch the queue, and where a drop on another
    /// thread sends the removal.
    owner: Arc<Remote>,
}

impl Registration {
    /// Runs `f` with the owning worker's queue when this thread runs that worker.
    fn on_owner<R>(&self, f: impl FnOnce(&TimerQueue) -> R) -> Option<R> {
        context::with_core(|core| {
            Arc::ptr_eq(core.scheduler.remote(), &self.owner).then(|| f(&core.timers))
        })
        .flatten()
    }
}

impl Sleep {
    /// The instant the sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline (the next poll re-registers the timer).
    pub fn reset(&mut self, deadline: Instant) {
        self.unregister();
        self.deadline = deadline;
    }

    fn unregister(&mut self) {
        let Some(registration) = self.registered.take() else {
            return;
        };
        let key = registration.key;
        if registration.on_owner(|queue| queue.remove(key)).is_none() {
            // Not on the owning worker: it removes the timer on its next turn. A runtime that
            // has shut down refuses the job; a timer left in its queue then only fires late,
            // waking nobody, or goes with the queue.
            registration.owner.push_job(Box::new(move || {
                context::with_core(|core| core.timers.remove(key));
            }));
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.deadline {
            this.unregister();
            return Poll::Ready(());
        }
        if let Some(registration) = &this.registered {
            let key = registration.key;
            match registration.on_owner(|queue| queue.update(key, cx.waker())) {
                Some(true) => return Poll::Pending,
                Some(false) => {} // no longer queued: register it again below
                // Its runtime is gone: the timer went with it; register with this one.
                None if registration.owner.is_closed() => this.registered = None,
                None => panic!(
                    "coring::time: a Sleep (or Timeout, Interval) was polled on another thread \
                     than the coring worker that registered its timer, or outside that \
                     worker's block_on. coring's tasks stay on their worker; a future moved to \
                     another thread after its first poll cannot take its timer along. Create \
                     the future on the worker that awaits it (coring::runtime::spawn_on_with) \
                     instead of moving a started one."
                ),
            }
        }
        let (key, owner) = context::with_core(|core| {
            let key = core.timers.insert(this.deadline, cx.waker().clone());
            (key, core.scheduler.remote().clone())
        })
        .expect("coring::time: a Sleep was polled outside a coring runtime");
        this.registered = Some(Registration { key, owner });
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}
