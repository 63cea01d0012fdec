//! Time: [`sleep`], [`sleep_until`], [`timeout`], [`interval`], with tokio's semantics.
//!
//! Timers live in user space, one queue per runtime (a `BTreeMap` ordered by deadline). When
//! the runtime has nothing to run it blocks in `io_uring_enter` with the earliest deadline as
//! the wait timeout (`IORING_ENTER_EXT_ARG`), so a timer costs no submission and no
//! completion, and dropping one (the common case for `timeout` around I/O) costs no cancel
//! entry either. Expired timers are fired on every turn of the loop, after at most one batch
//! of tasks, so a busy runtime fires them late by at most that batch. A timer never fires
//! before its deadline.
//!
//! [`op::timeout::Timeout`](crate::op::timeout::Timeout) remains available for code that
//! wants the kernel's `IORING_OP_TIMEOUT` (for instance to link it to another op).

mod interval;
mod sleep;
mod timeout;
pub(crate) mod timers;

pub use interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use sleep::{sleep, sleep_until, Sleep};
pub use std::time::{Duration, Instant};
pub use timeout::{timeout, timeout_at, Elapsed, Timeout};
