//! The io_uring backend: one ring, owned by one thread.
//!
//! It owns the ring, the table of in-flight ops ([`super::slots`]) and a backlog for entries
//! that did not fit in the submission queue; it hands completions to whatever `Waker` an op
//! left in its slot.
//!
//! # Invariants
//! - An entry is pushed only after its op owns a slot, and whatever the entry points to is
//!   owned by the op struct, which lives in the `Op` future or, once that is dropped, in the
//!   slot. A slot is freed only by the op's terminal completion (or by process-wide leaking,
//!   see shutdown). So the kernel never writes into memory that was freed.
//! - A full submission queue never fails a submission: the driver flushes it to the kernel,
//!   and what still does not fit waits in the backlog, in order (linked groups whole), for
//!   the next [`park`](UringDriver::park). Cancel and close entries use the same path, so
//!   they always progress.
//! - Wakers are woken, and orphaned ops are completed, only after the driver's `RefCell` is
//!   released: user code (a buffer's `Drop`, a foreign waker) may call back into the driver.
//! - Completions are never lost: rings are created with `IORING_FEAT_NODROP`'s overflow list
//!   (every supported kernel has it), and whenever `IORING_SQ_CQ_OVERFLOW` is set the driver
//!   enters the ring again to flush the overflowed entries into the emptied queue.
//!
//! # Shutdown
//! [`shutdown`](UringDriver::shutdown) asks the kernel to cancel every op still in flight and
//! waits (bounded) for each terminal completion. Ops the kernel did not finish in time keep
//! their memory forever (it is leaked, never freed), so even then nothing lands in freed
//! memory.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::setup::{self, RingConfig, RingFlags};
use super::slots::{Cqe, Lifecycle, OpKey, Slots, TOKEN_IGNORE, TOKEN_WAKE};
use super::{files, shutting_down, FileTable, Metrics, State, Unparker, SHUTDOWN_GRACE};
use crate::op::Orphan;

const IORING_REGISTER_RING_FDS: libc::c_uint = 20;
const IORING_ENTER_GETEVENTS: u32 = 1;
const IORING_ENTER_SQ_WAKEUP: u32 = 2;
const IORING_ENTER_SQ_WAIT: u32 = 4;
const IORING_ENTER_EXT_ARG: u32 = 8;
const IORING_ENTER_REGISTERED_RING: u32 = 16;

/// `struct __kernel_timespec`.
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// `struct io_uring_getevents_arg` (Linux 5.11+).
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

struct Inner {
    ring: IoUring,
    /// Index of the registered ring fd, used by `io_uring_enter` instead of the fd.
    ring_index: Option<u32>,
    flags: RingFlags,
    slots: Slots,
    /// Entries waiting for room in the SQ; `true` marks an entry linked to the next one, so
    /// a linked group is only ever pushed whole.
    backlog: VecDeque<(squeue::Entry, bool)>,
    state: State,
    /// The buffer of the wake-up read; the kernel may write it while `wake_armed`.
    wake_buf: Box<u64>,
    wake_armed: bool,
    unparker: std::sync::Arc<Unparker>,
    metrics: Metrics,
    next_buf_group: u16,
    /// Slots of the registered file table to close before the next submission.
    released_files: Vec<u32>,
    /// Enter the ring for every op pushed (`Builder::eager_submit`).
    eager_submit: bool,
}

/// Work collected under the driver's borrow, done after releasing it.
#[derive(Default)]
struct Deferred {
    wakers: Vec<Waker>,
    orphans: Vec<(Box<dyn Orphan>, Cqe)>,
}

impl Deferred {
    fn is_empty(&self) -> bool {
        self.wakers.is_empty() && self.orphans.is_empty()
    }
}

/// One thread's ring and its in-flight ops.
pub(crate) struct UringDriver {
    ring_fd: RawFd,
    inner: RefCell<Inner>,
    deferred: RefCell<Deferred>,
    /// The batch being run by `run_deferred`; emptied, its vectors keep their capacity.
    spare: RefCell<Deferred>,
    /// Set while the deferred work is being run, so nested parks don't steal it.
    running_deferred: Cell<bool>,
    /// The registered file table, once a descriptor asked for a slot.
    files: OnceCell<std::sync::Arc<FileTable>>,
    /// Slots to register the file table with (0: never).
    fixed_files: u32,
}

impl UringDriver {
    pub(crate) fn new(config: &RingConfig) -> io::Result<Self> {
        let (ring, mut flags) = setup::build_ring(config)?;
        let ring_index = register_ring_fd(&ring);
        flags.registered_ring_fd = ring_index.is_some();
        flags.iowq_max_workers = setup::limit_io_wq(&ring, config.iowq_max_workers);
        let unparker = std::sync::Arc::new(Unparker::new(Some(ring.as_raw_fd()))?);
        let driver = UringDriver {
            ring_fd: ring.as_raw_fd(),
            inner: RefCell::new(Inner {
                ring,
                ring_index,
                flags,
                slots: Slots::default(),
                backlog: VecDeque::new(),
                state: State::Running,
                wake_buf: Box::new(0),
                wake_armed: false,
                unparker,
                metrics: Metrics::default(),
                next_buf_group: 0,
                released_files: Vec::new(),
                eager_submit: config.eager_submit,
            }),
            deferred: RefCell::default(),
            spare: RefCell::default(),
            running_deferred: Cell::new(false),
            files: OnceCell::new(),
            fixed_files: config.fixed_files,
        };
        driver.inner.borrow_mut().arm_wake();
        Ok(driver)
    }

    pub(crate) fn unparker(&self) -> std::sync::Arc<Unparker> {
        self.inner.borrow().unparker.clone()
    }

    /// Registers a provided-buffer ring at `ring_addr` with `entries` entries; returns the
    /// buffer group id chosen for it.
    pub(crate) fn register_buf_ring(&self, ring_addr: u64, entries: u16) -> io::Result<u16> {
        let mut inner = self.inner.borrow_mut();
        if inner.state != State::Running {
            return Err(shutting_down());
        }
        let group = inner.next_buf_group;
        // SAFETY: the caller keeps `entries` entries at `ring_addr` (page aligned) alive until
        // `unregister_buf_ring` succeeds or the ring is closed.
        unsafe {
            inner
                .ring
                .submitter()
                .register_buf_ring_with_flags(ring_addr, entries, group, 0)?;
        }
        inner.next_buf_group = group.wrapping_add(1);
        Ok(group)
    }

    /// Registers fixed buffers (one table per ring).
    pub(crate) fn register_buffers(&self, iovecs: &[libc::iovec]) -> io::Result<()> {
        let inner = self.inner.borrow();
        // SAFETY: the caller keeps the described memory alive until `unregister_buffers`
        // succeeds or the ring is closed.
        unsafe { inner.ring.submitter().register_buffers(iovecs) }
    }

    pub(crate) fn unregister_buffers(&self) -> io::Result<()> {
        self.inner.borrow().ring.submitter().unregister_buffers()
    }

    pub(crate) fn unregister_buf_ring(&self, group: u16) -> io::Result<()> {
        self.inner
            .borrow()
            .ring
            .submitter()
            .unregister_buf_ring(group)
    }

    /// The registered file table, registering it (sparse) on first use.
    pub(crate) fn file_table(&self) -> io::Result<&std::sync::Arc<FileTable>> {
        if let Some(table) = self.files.get() {
            return Ok(table);
        }
        let inner = self.inner.borrow();
        if inner.state != State::Running {
            return Err(shutting_down());
        }
        if self.fixed_files == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "coring: registered files are turned off for this runtime (Builder::fixed_files(0))",
            ));
        }
        let size = files::table_size(self.fixed_files);
        inner
            .ring
            .submitter()
            .register_files_sparse(size)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("coring: registering a file table of {size} slots failed: {e}"),
                )
            })?;
        let table = FileTable::new(inner.unparker.clone(), size);
        drop(inner);
        Ok(self.files.get_or_init(|| std::sync::Arc::new(table)))
    }

    /// The registered file table, if one was registered.
    pub(crate) fn file_table_if_registered(&self) -> Option<&std::sync::Arc<FileTable>> {
        self.files.get()
    }

    pub(crate) fn ring_fd(&self) -> RawFd {
        self.ring_fd
    }

    pub(crate) fn flags(&self) -> RingFlags {
        self.inner.borrow().flags.clone()
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let inner = self.inner.borrow();
        Metrics {
            ops_in_flight: inner.slots.in_flight(),
            ..inner.metrics
        }
    }

    /// [`metrics`](UringDriver::metrics) without `ops_in_flight` (0), which walks the op table.
    pub(crate) fn counters(&self) -> Metrics {
        self.inner.borrow().metrics
    }

    /// Slots still held, in flight or completed-but-uncollected.
    pub(crate) fn slots_len(&self) -> usize {
        self.inner.borrow().slots.len()
    }

    /// Pushes `entry` for a new op and returns the op's key.
    #[inline]
    pub(crate) fn submit(&self, entry: squeue::Entry) -> io::Result<OpKey> {
        self.submit_with(entry, Lifecycle::Submitted, false)
    }

    /// Pushes `entry` for a new op and enters the ring with it at once, whatever the
    /// runtime's batching (with SQPOLL the kernel thread picks it up; the ring is entered
    /// only to wake that thread if it sleeps).
    #[inline]
    pub(crate) fn submit_eager(&self, entry: squeue::Entry) -> io::Result<OpKey> {
        self.submit_with(entry, Lifecycle::Submitted, true)
    }

    /// Runs `attempt` (an op's non-blocking syscall, [`OpCode::try_inline`]) when the ring is
    /// idle: running, nothing in flight, nothing queued, no SQPOLL thread to hand calls to,
    /// so an op submitted now would be alone in its `io_uring_enter`. Counts the attempts
    /// that did the op.
    ///
    /// [`OpCode::try_inline`]: crate::op::OpCode::try_inline
    #[inline]
    pub(crate) fn inline_if_idle(&self, attempt: impl FnOnce() -> Option<u32>) -> Option<u32> {
        {
            let inner = self.inner.borrow();
            if inner.slots.len() != 0 || inner.flags.sqpoll || inner.state != State::Running {
                return None;
            }
        }
        let done = attempt();
        if done.is_some() {
            self.inner.borrow_mut().metrics.ops_inline += 1;
        }
        done
    }

    /// Whether new ops are accepted (the runtime is not shutting down).
    pub(crate) fn accepts_ops(&self) -> bool {
        self.inner.borrow().state == State::Running
    }

    /// Pushes `entry` for an op nobody awaits; `data` is completed as an orphan.
    /// Check [`accepts_ops`](Driver::accepts_ops) first: a closing driver refuses it.
    pub(crate) fn submit_orphan(&self, entry: squeue::Entry, data: Box<dyn Orphan>) {
        // An error here only means the driver is closing; `data` was dropped with the
        // refused slot, which never reached the kernel.
        let _ = self.submit_with(entry, Lifecycle::Orphaned(data), false);
    }

    /// Hands the kernel everything queued on this ring, now, without waiting: for an entry
    /// whose effect another thread or process waits for (a close the peer must see, a
    /// wake-up message to another ring), which must not wait for this thread's next park.
    /// That thread may block or compute first; std and tokio close and wake at once too.
    ///
    /// Submitting early reorders nothing: entries reach the kernel in the order they were
    /// queued, the backlog first, and released file-table slots are closed first, as a park
    /// does. Returns whether the kernel has taken every entry; when it has not (the kernel
    /// refused the call for now, or with SQPOLL the backlog waits for the SQ thread, which
    /// only a park waits for), the rest goes with the next park.
    pub(crate) fn flush(&self) -> bool {
        // Callers never hold the driver's borrow (every path that drops a descriptor or wakes
        // a task under it defers that work); refusing rather than panicking costs nothing.
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return false;
        };
        if let Some(files) = self.files.get() {
            inner.close_released_files(files);
        }
        inner.flush_backlog();
        if !inner.backlog.is_empty() && !inner.flags.sqpoll {
            inner.make_sq_room();
            inner.flush_backlog();
        }
        inner.submit_now()
    }

    fn submit_with(
        &self,
        entry: squeue::Entry,
        lifecycle: Lifecycle,
        eager: bool,
    ) -> io::Result<OpKey> {
        let mut inner = self.inner.borrow_mut();
        if inner.state != State::Running {
            return Err(shutting_down());
        }
        let key = inner.slots.insert(lifecycle);
        trace!(target: "coring::op", opcode = entry.get_opcode(), op = key.user_data(), "submit");
        inner.push(entry.user_data(key.user_data()));
        if eager || inner.eager_submit {
            let _ = inner.submit_now();
        }
        Ok(key)
    }

    /// Pushes `entry` linked (`IOSQE_IO_LINK`) to a second entry nobody awaits, typically an
    /// `IORING_OP_LINK_TIMEOUT` whose memory is `linked_data`. Returns the first op's key.
    pub(crate) fn submit_linked(
        &self,
        entry: squeue::Entry,
        linked: squeue::Entry,
        linked_data: Box<dyn Orphan>,
    ) -> io::Result<OpKey> {
        let mut inner = self.inner.borrow_mut();
        if inner.state != State::Running {
            return Err(shutting_down());
        }
        let key = inner.slots.insert(Lifecycle::Submitted);
        let linked_key = inner.slots.insert(Lifecycle::Orphaned(linked_data));
        let first = entry
            .flags(squeue::Flags::IO_LINK)
            .user_data(key.user_data());
        inner.push_group(&[first, linked.user_data(linked_key.user_data())]);
        Ok(key)
    }

    /// Pushes a multishot entry: its completions queue up in the slot until taken with
    /// [`poll_stream`](Driver::poll_stream).
    pub(crate) fn submit_multishot(&self, entry: squeue::Entry) -> io::Result<OpKey> {
        self.submit_with(entry, Lifecycle::Streaming(Box::default()), false)
    }

    /// Takes the next completion of a multishot op; `None` once its last one was taken.
    pub(crate) fn poll_stream(&self, key: OpKey, cx: &mut Context<'_>) -> Poll<Option<Cqe>> {
        let mut inner = self.inner.borrow_mut();
        let Some(Lifecycle::Streaming(stream)) = inner.slots.get_mut(key) else {
            return Poll::Ready(None);
        };
        if let Some(cqe) = stream.ready.pop_front() {
            if stream.finished && stream.ready.is_empty() {
                inner.slots.remove(key);
            }
            return Poll::Ready(Some(cqe));
        }
        let stale = match &mut stream.waker {
            Some(waker) if waker.will_wake(cx.waker()) => None,
            waker => waker.replace(cx.waker().clone()),
        };
        drop(inner);
        drop(stale);
        Poll::Pending
    }

    /// A multishot op's stream was dropped: hand the completions nobody took to `data`, and
    /// cancel the op if the kernel still runs it.
    pub(crate) fn drop_stream(&self, key: OpKey, mut data: Box<dyn Orphan>) {
        let mut inner = self.inner.borrow_mut();
        let Some(Lifecycle::Streaming(stream)) = inner.slots.get_mut(key) else {
            drop(inner);
            drop(data);
            return;
        };
        let untaken: Vec<Cqe> = stream.ready.drain(..).collect();
        if stream.finished {
            inner.slots.remove(key);
            drop(inner);
            let (last, rest) = untaken
                .split_last()
                .expect("a finished stream holds its end");
            rest.iter().for_each(|cqe| data.intermediate(*cqe));
            data.complete(*last);
            return;
        }
        untaken.iter().for_each(|cqe| data.intermediate(*cqe));
        let previous = mem::replace(
            inner.slots.get_mut(key).expect("slot seen above"),
            Lifecycle::Orphaned(data),
        );
        if inner.state != State::Closed {
            inner.push_cancel(key.user_data());
        }
        drop(inner);
        drop(previous);
    }

    /// Collects the op's completion, or leaves `cx`'s waker for it.
    #[inline]
    pub(crate) fn poll_op(&self, key: OpKey, cx: &mut Context<'_>) -> Poll<Cqe> {
        let (poll, stale) = self.inner.borrow_mut().slots.poll(key, cx.waker());
        drop(stale);
        poll
    }

    /// The op's future was dropped: keep `data` until the terminal completion.
    pub(crate) fn drop_op(&self, key: OpKey, data: Box<dyn Orphan>) {
        let mut inner = self.inner.borrow_mut();
        let Some(lifecycle) = inner.slots.get_mut(key) else {
            // The slot is gone, so the kernel is done with the op's memory.
            drop(inner);
            drop(data);
            return;
        };
        if matches!(lifecycle, Lifecycle::Completed(_)) {
            let Some(Lifecycle::Completed(c)) = inner.slots.remove(key) else {
                unreachable!("slot was just seen completed")
            };
            drop(inner);
            data.complete(c);
            return;
        }
        let previous = mem::replace(lifecycle, Lifecycle::Orphaned(data));
        if inner.state != State::Closed {
            inner.push_cancel(key.user_data());
        }
        drop(inner);
        drop(previous);
    }

    /// Submits pending entries and reaps completions, blocking for at least one completion
    /// when `wait` is set (at most `timeout`, if given). Wakes the tasks whose ops completed.
    pub(crate) fn park(&self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        let mut may_wait = wait;
        for _ in 0..64 {
            let mut inner = self.inner.borrow_mut();
            if let Some(files) = self.files.get() {
                inner.close_released_files(files);
            }
            inner.flush_backlog();
            if !inner.backlog.is_empty() {
                inner.make_sq_room();
                inner.flush_backlog();
            }
            let mut deferred = self.deferred.borrow_mut();
            let has_deferred = !deferred.is_empty();
            // Never sleep while entries wait in the backlog: the completions this thread would
            // wait for may depend on them (a read whose data a queued write sends), and nothing
            // wakes it when the SQ frees room.
            let block = may_wait
                && !has_deferred
                && inner.ring.completion().is_empty()
                && inner.backlog.is_empty();
            let result = inner.enter(block, timeout);
            may_wait = false;
            inner.reap(&mut deferred);
            let again = inner.ring.submission().cq_overflow() || !inner.backlog.is_empty();
            drop(deferred);
            drop(inner);
            self.run_deferred();
            match result {
                Ok(()) => {}
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
            if !again {
                break;
            }
        }
        Ok(())
    }

    fn run_deferred(&self) {
        if self.running_deferred.replace(true) {
            return;
        }
        // Swap the collected work into `spare`, whose emptied vectors keep their capacity, so a
        // park allocates nothing once they have grown. `spare` stays borrowed while the batch
        // runs: a nested park finds `running_deferred` set and leaves its work in `deferred`
        // for the next round of this loop.
        // Each waker and orphan is user-reachable code (a foreign waker, a buffer's `Drop`):
        // one that panics must not cost the rest of the batch its wake-up, nor leave the
        // driver believing it is still running this loop. The first panic is re-raised once
        // the batch is done and the driver is consistent.
        let mut panic = None;
        while !self.deferred.borrow().is_empty() {
            self.deferred.swap(&self.spare);
            let mut batch = self.spare.borrow_mut();
            for waker in batch.wakers.drain(..) {
                super::catch_first_panic(&mut panic, || waker.wake());
            }
            // Orphans are rare, and an empty drain still costs its setup and drop per park.
            if !batch.orphans.is_empty() {
                for (orphan, completion) in batch.orphans.drain(..) {
                    super::catch_first_panic(&mut panic, || orphan.complete(completion));
                }
            }
        }
        self.running_deferred.set(false);
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
    }

    /// Cancels every op in flight and waits, at most [`SHUTDOWN_GRACE`], for their terminal
    /// completions. Returns the number of ops that did not finish in time (their memory is
    /// leaked rather than freed under the kernel).
    pub(crate) fn shutdown(&self) -> usize {
        {
            let mut inner = self.inner.borrow_mut();
            if inner.state == State::Closed {
                return inner.slots.in_flight();
            }
            inner.state = State::ShuttingDown;
            for key in inner.slots.in_flight_keys() {
                inner.push_cancel(key.user_data());
            }
            if inner.wake_armed {
                inner.push_cancel(TOKEN_WAKE);
            }
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        loop {
            let busy = {
                let inner = self.inner.borrow();
                inner.slots.in_flight() > 0 || inner.wake_armed
            };
            let now = Instant::now();
            if !busy || now >= deadline {
                break;
            }
            let slice = (deadline - now).min(Duration::from_millis(50));
            if self.park(true, Some(slice)).is_err() {
                break;
            }
        }
        let mut inner = self.inner.borrow_mut();
        inner.state = State::Closed;
        inner.slots.retain_in_flight();
        let stuck = inner.slots.in_flight() + usize::from(inner.wake_armed);
        if stuck > 0 {
            eprintln!(
                "coring: {stuck} io_uring ops did not finish within {SHUTDOWN_GRACE:?} of \
                 shutdown; their buffers are leaked so the kernel cannot write into freed memory"
            );
        }
        stuck
    }
}

impl Drop for UringDriver {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(files) = self.files.get() {
            files.close();
        }
        let inner = self.inner.get_mut();
        if inner.slots.in_flight() > 0 {
            // The kernel may still write into these ops' memory: never free it.
            mem::forget(mem::take(&mut inner.slots));
        }
        if inner.wake_armed {
            mem::forget(mem::replace(&mut inner.wake_buf, Box::new(0)));
        }
    }
}

impl Inner {
    /// Pushes an entry into the submission queue, flushing it when full; what still does not
    /// fit waits in the backlog. Never fails.
    fn push(&mut self, entry: squeue::Entry) {
        // The common case, without the group's bookkeeping: nothing waits, and there is room.
        if self.backlog.is_empty() {
            // SAFETY: as in `try_push_group`: the entry's memory is owned by its slot (or is
            // `'static`) until its completion is reaped.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                self.metrics.sqes += 1;
                return;
            }
        }
        self.push_group(std::slice::from_ref(&entry));
    }

    /// Pushes entries that must reach the kernel in one batch, in order (a linked chain):
    /// all of them go into the SQ, or all of them wait in the backlog.
    fn push_group(&mut self, group: &[squeue::Entry]) {
        if self.backlog.is_empty() {
            if self.try_push_group(group) {
                return;
            }
            // Without SQPOLL, hand the full queue to the kernel and try once more. With it,
            // waiting for the SQ thread here would stall the task being polled: the park
            // does that.
            if !self.flags.sqpoll {
                self.make_sq_room();
                if self.try_push_group(group) {
                    return;
                }
            }
        }
        let last = group.len() - 1;
        for (i, entry) in group.iter().enumerate() {
            self.backlog.push_back((entry.clone(), i < last));
        }
    }

    fn try_push_group(&mut self, group: &[squeue::Entry]) -> bool {
        let mut sq = self.ring.submission();
        if sq.capacity() - sq.len() < group.len() {
            return false;
        }
        for entry in group {
            // SAFETY: every entry pushed here comes from an `OpCode` whose memory is owned by
            // a slot (or is `'static`, for cancel and the wake-up read) until its completion
            // is reaped.
            let pushed = unsafe { sq.push(entry) };
            debug_assert!(pushed.is_ok(), "room was checked above");
        }
        self.metrics.sqes += group.len() as u64;
        true
    }

    fn push_cancel(&mut self, user_data: u64) {
        self.metrics.ops_cancelled += 1;
        let entry = opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(TOKEN_IGNORE);
        self.push(entry);
    }

    /// Hands the queued entries to the kernel now, without waiting or reaping. With SQPOLL
    /// the kernel's SQ thread picks them up by itself; it is only woken if it sleeps.
    ///
    /// Returns whether the kernel has taken every entry. It has not when the backlog holds
    /// entries (the caller flushes it first) or the kernel refused the call for now (`EBUSY`,
    /// `EAGAIN`; `EINTR` is retried): the entries then go with the next park.
    fn submit_now(&mut self) -> bool {
        if !self.backlog.is_empty() {
            return false;
        }
        let sq = self.ring.submission();
        let to_submit = sq.len() as u32;
        if self.flags.sqpoll {
            let asleep = to_submit > 0 && sq.need_wakeup();
            drop(sq);
            return !asleep || self.enter_raw(0, 0, IORING_ENTER_SQ_WAKEUP, None).is_ok();
        }
        drop(sq);
        if to_submit == 0 {
            return true;
        }
        for _ in 0..3 {
            match self.enter_raw(to_submit, 0, 0, None) {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(_) => return false,
                Ok(_) => return self.ring.submission().is_empty(),
            }
        }
        false
    }

    /// Empties the file-table slots whose descriptors were dropped (on any thread).
    fn close_released_files(&mut self, files: &FileTable) {
        let mut released = mem::take(&mut self.released_files);
        files.take_released(&mut released);
        for slot in released.drain(..) {
            let entry = opcode::Close::new(types::Fixed(slot))
                .build()
                .user_data(TOKEN_IGNORE);
            self.push(entry);
        }
        self.released_files = released;
    }

    /// Makes room in a full SQ for the backlog. With SQPOLL the kernel's SQ thread takes the
    /// entries: wait until it has taken some (`IORING_ENTER_SQ_WAIT`, waking it if it sleeps).
    /// Otherwise submit them. A failure (`EINTR`, `EBUSY`) leaves the backlog for the next
    /// round of the park.
    fn make_sq_room(&mut self) {
        let sq = self.ring.submission();
        let _ = if self.flags.sqpoll {
            let wakeup = if sq.need_wakeup() {
                IORING_ENTER_SQ_WAKEUP
            } else {
                0
            };
            drop(sq);
            self.enter_raw(0, 0, IORING_ENTER_SQ_WAIT | wakeup, None)
        } else {
            let pending = sq.len() as u32;
            drop(sq);
            self.enter_raw(pending, 0, 0, None)
        };
    }

    fn flush_backlog(&mut self) {
        while !self.backlog.is_empty() {
            let len = 1 + self
                .backlog
                .iter()
                .take_while(|(_, linked)| *linked)
                .count();
            let group: Vec<squeue::Entry> = self
                .backlog
                .iter()
                .take(len)
                .map(|(e, _)| e.clone())
                .collect();
            if !self.try_push_group(&group) {
                break;
            }
            self.backlog.drain(..len);
        }
    }

    fn arm_wake(&mut self) {
        if self.wake_armed || self.state != State::Running {
            return;
        }
        let fd = self.unparker.eventfd();
        let buf: *mut u64 = &mut *self.wake_buf;
        let entry = opcode::Read::new(types::Fd(fd), buf.cast(), 8)
            .build()
            .user_data(TOKEN_WAKE);
        self.wake_armed = true;
        self.push(entry);
    }

    /// Enters the ring when there is something to submit, completions to flush or run, or when
    /// asked to block.
    fn enter(&mut self, block: bool, timeout: Option<Duration>) -> io::Result<()> {
        let sq = self.ring.submission();
        let to_submit = sq.len() as u32;
        let overflow = sq.cq_overflow();
        self.metrics.cq_overflows += u64::from(overflow);
        let taskrun = sq.taskrun();
        let sqpoll_asleep = self.flags.sqpoll && sq.need_wakeup();
        drop(sq);
        let submit_needs_enter = to_submit > 0 && (!self.flags.sqpoll || sqpoll_asleep);
        if !(block || overflow || taskrun || submit_needs_enter) {
            return Ok(());
        }
        let mut flags = IORING_ENTER_GETEVENTS;
        if sqpoll_asleep {
            flags |= IORING_ENTER_SQ_WAKEUP;
        }
        let timespec = timeout.filter(|_| block).map(|t| Timespec {
            tv_sec: t.as_secs() as i64,
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        match self.enter_raw(to_submit, u32::from(block), flags, timespec.as_ref()) {
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
            other => other.map(drop),
        }
    }

    /// `io_uring_enter`, through the registered ring index when there is one, with an
    /// optional wait timeout (`IORING_ENTER_EXT_ARG`).
    fn enter_raw(
        &mut self,
        to_submit: u32,
        min_complete: u32,
        flags: u32,
        timeout: Option<&Timespec>,
    ) -> io::Result<usize> {
        #[cfg(feature = "test-util")]
        if let Some(errno) = super::fault::take_enter_error() {
            self.metrics.enters += 1;
            return Err(io::Error::from_raw_os_error(errno));
        }
        let (fd, mut flags) = match self.ring_index {
            Some(index) => (index as RawFd, flags | IORING_ENTER_REGISTERED_RING),
            None => (self.ring.as_raw_fd(), flags),
        };
        let ext_arg = timeout.map(|ts| GeteventsArg {
            sigmask: 0,
            sigmask_sz: 0,
            min_wait_usec: 0,
            ts: ts as *const Timespec as u64,
        });
        let (arg, arg_size) = match &ext_arg {
            Some(ext) => {
                flags |= IORING_ENTER_EXT_ARG;
                (
                    (ext as *const GeteventsArg).cast(),
                    mem::size_of::<GeteventsArg>(),
                )
            }
            None => (std::ptr::null::<libc::c_void>(), 0),
        };
        self.metrics.enters += 1;
        // SAFETY: the fd (or registered index) is our ring's; `arg` is null or points to a
        // `GeteventsArg` (and its timespec) that live on our stack across the call; every
        // published entry's memory is owned by its slot.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                fd,
                to_submit,
                min_complete,
                flags,
                arg,
                arg_size,
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret as usize)
        }
    }

    /// Moves every available completion to its slot, collecting wakers and orphans.
    fn reap(&mut self, deferred: &mut Deferred) {
        let Inner {
            ring,
            slots,
            wake_armed,
            metrics,
            ..
        } = self;
        for cqe in ring.completion() {
            metrics.cqes += 1;
            trace!(
                target: "coring::op",
                op = cqe.user_data(),
                result = cqe.result(),
                flags = cqe.flags(),
                "complete"
            );
            let completion = Cqe {
                result: cqe.result(),
                flags: cqe.flags(),
            };
            match cqe.user_data() {
                TOKEN_IGNORE => {}
                TOKEN_WAKE => *wake_armed = false,
                user_data => {
                    let key = OpKey::from_user_data(user_data);
                    let more = cqueue::more(completion.flags);
                    let Some(lifecycle) = slots.get_mut(key) else {
                        continue; // stray: its slot is gone; nobody may be woken by it
                    };
                    match lifecycle {
                        Lifecycle::Orphaned(orphan) if more => orphan.intermediate(completion),
                        Lifecycle::Orphaned(_) => {
                            if let Some(Lifecycle::Orphaned(orphan)) = slots.remove(key) {
                                deferred.orphans.push((orphan, completion));
                            }
                        }
                        Lifecycle::Streaming(stream) => {
                            stream.ready.push_back(completion);
                            stream.finished |= !more;
                            if let Some(waker) = stream.waker.take() {
                                deferred.wakers.push(waker);
                            }
                        }
                        _ => {
                            let previous =
                                mem::replace(lifecycle, Lifecycle::Completed(completion));
                            if let Lifecycle::Waiting(waker) = previous {
                                deferred.wakers.push(waker);
                            }
                        }
                    }
                }
            }
        }
        self.arm_wake();
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY)
    )
}

/// Registers the ring fd so `io_uring_enter` skips the fd lookup (Linux 5.18+). Optional.
fn register_ring_fd(ring: &IoUring) -> Option<u32> {
    #[repr(C)]
    struct RsrcUpdate {
        offset: u32,
        resv: u32,
        data: u64,
    }
    let mut update = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: ring.as_raw_fd() as u64,
    };
    // SAFETY: IORING_REGISTER_RING_FDS reads and writes back one `io_uring_rsrc_update`, which
    // lives on our stack for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            IORING_REGISTER_RING_FDS,
            &mut update as *mut RsrcUpdate,
            1u32,
        )
    };
    (ret == 1).then_some(update.offset)
}
