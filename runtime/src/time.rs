//! Timers on the ring (`IORING_OP_TIMEOUT`).
//!
//! The full time API (`timeout`, `interval`, `sleep_until`) is built on this op in a later
//! step; [`sleep`] is what the core needs.

use std::time::Duration;

use crate::op::{timeout::Timeout, Op};

/// Waits until `duration` has elapsed. Never returns early.
///
/// # Panics
/// When called outside a coring runtime.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let start = std::time::Instant::now();
/// coring::time::sleep(std::time::Duration::from_millis(5)).await;
/// assert!(start.elapsed() >= std::time::Duration::from_millis(5));
/// # });
/// ```
pub async fn sleep(duration: Duration) {
    if let Err(e) = Op::submit(Timeout::new(duration)).await {
        panic!("coring::time::sleep: {e}");
    }
}
