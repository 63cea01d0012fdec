//! The [`Sleep`] future.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::timers::{TimerKey, TimerQueue};

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
/// # Panics
/// Polling it outside a coring runtime panics.
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    registered: Option<(Rc<TimerQueue>, TimerKey)>,
}

impl Sleep {
    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline (earlier or later), even after it fired.
    pub fn reset(&mut self, deadline: Instant) {
        self.unregister();
        self.deadline = deadline;
    }

    fn unregister(&mut self) {
        if let Some((queue, key)) = self.registered.take() {
            queue.remove(key);
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
        if let Some((queue, key)) = &this.registered {
            if queue.update(*key, cx.waker()) {
                return Poll::Pending;
            }
        }
        let queue = crate::runtime::context::with_core(|core| core.timers.clone())
            .expect("coring::time: a Sleep was polled outside a coring runtime");
        let key = queue.insert(this.deadline, cx.waker().clone());
        this.registered = Some((queue, key));
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
