//! The readiness backend (epoll), for where io_uring is refused.
//!
//! Ops run their syscall themselves, without blocking ([`OpCode::fallback`]); this backend
//! only tells them when to try again: when their descriptor becomes readable or writable, or
//! when a deadline passes.
//!
//! Each descriptor is registered once, edge-triggered, for both directions, the first time an
//! op waits on it, and stays registered until it is closed ([`EpollDriver::forget_fd`], called
//! by every close path). An edge with no waiter is remembered as "ready", so the next op to
//! wait in that direction retries at once instead of missing it; an op that then gets
//! `EAGAIN` waits for the next edge. So the steady state costs no `epoll_ctl` at all.
//!
//! No kernel memory ownership is involved: dropping a waiting op just forgets its wait, and
//! shutdown has nothing to drain.
//!
//! [`OpCode::fallback`]: crate::op::OpCode::fallback

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::slots::{Cqe, Lifecycle, OpKey, Slots};
use super::{shutting_down, Metrics, State, Unparker};
use crate::op::Interest;

/// The epoll token of the wake-up eventfd.
const WAKE_TOKEN: u64 = u64::MAX;

#[derive(Default)]
struct Waiters {
    readable: Vec<OpKey>,
    writable: Vec<OpKey>,
    /// An edge arrived in this direction with nobody waiting.
    read_ready: bool,
    write_ready: bool,
    /// A stream read came back short and no read edge arrived since: the receive queue is
    /// empty, so the next read waits instead of trying.
    read_drained: bool,
    /// The peer closed its side, or the socket failed (`EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR`):
    /// final, and reported by one edge only, so from then on reads always try (they
    /// return end of stream or the error at once).
    read_closed: bool,
}

/// What an op waits for.
struct Registration {
    fd: Option<(RawFd, Interest)>,
    deadline: Option<(Instant, u64)>,
}

struct Inner {
    epfd: OwnedFd,
    slots: Slots,
    /// Per descriptor (indexed by fd number).
    waiters: DenseMap<Waiters>,
    /// Per waiting op (indexed by slot index).
    registrations: DenseMap<(OpKey, Registration)>,
    /// Scratch for the keys one event wakes.
    woken: Vec<OpKey>,
    /// Deadlines, with the result to deliver when one passes.
    deadlines: BTreeMap<(Instant, u64), (OpKey, i32)>,
    next_seq: u64,
    state: State,
    metrics: Metrics,
    events: Vec<libc::epoll_event>,
}

pub(crate) struct EpollDriver {
    inner: RefCell<Inner>,
    /// The wakers of one park, kept for their capacity.
    wake_scratch: RefCell<Vec<Waker>>,
    unparker: Arc<Unparker>,
}

impl EpollDriver {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new fd we own.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: just created, owned by nobody else.
        let epfd = unsafe { OwnedFd::from_raw_fd(epfd) };
        let unparker = Arc::new(Unparker::new(None)?);
        let mut wake = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: WAKE_TOKEN,
        };
        // SAFETY: both fds are open; `wake` lives across the call.
        if unsafe {
            libc::epoll_ctl(
                epfd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                unparker.eventfd(),
                &mut wake,
            )
        } < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(EpollDriver {
            inner: RefCell::new(Inner {
                epfd,
                slots: Slots::default(),
                waiters: DenseMap::default(),
                registrations: DenseMap::default(),
                woken: Vec::new(),
                deadlines: BTreeMap::new(),
                next_seq: 0,
                state: State::Running,
                metrics: Metrics::default(),
                events: Vec::with_capacity(256),
            }),
            unparker,
            wake_scratch: RefCell::default(),
        })
    }

    pub(crate) fn unparker(&self) -> Arc<Unparker> {
        self.unparker.clone()
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let inner = self.inner.borrow();
        Metrics {
            ops_in_flight: inner.slots.in_flight(),
            ..inner.metrics
        }
    }

    /// [`metrics`](EpollDriver::metrics) without `ops_in_flight` (0), which walks the op table.
    pub(crate) fn counters(&self) -> Metrics {
        self.inner.borrow().metrics
    }

    pub(crate) fn slots_len(&self) -> usize {
        self.inner.borrow().slots.len()
    }

    pub(crate) fn accepts_ops(&self) -> bool {
        self.inner.borrow().state == State::Running
    }

    /// Parks an op until `fd` is ready for `interest`, or until `deadline` passes (then it
    /// completes with `on_deadline` as its result: 0 to retry, or a negated errno).
    pub(crate) fn wait(
        &self,
        fd: Option<(RawFd, Interest)>,
        deadline: Option<(Instant, i32)>,
    ) -> io::Result<OpKey> {
        let mut inner = self.inner.borrow_mut();
        if inner.state != State::Running {
            return Err(shutting_down());
        }
        let key = inner.slots.insert(Lifecycle::Submitted);
        if let Some((fd, interest)) = fd {
            match inner.add_waiter(fd, interest, key) {
                Ok(false) => {}
                Ok(true) => {
                    // An edge nobody claimed: ready now, the op retries at once.
                    inner.slots.complete(
                        key,
                        Cqe {
                            result: 0,
                            flags: 0,
                        },
                    );
                    return Ok(key);
                }
                Err(e) => {
                    inner.slots.remove(key);
                    return Err(e);
                }
            }
        }
        let deadline = deadline.map(|(at, on_deadline)| {
            let seq = inner.next_seq;
            inner.next_seq += 1;
            inner.deadlines.insert((at, seq), (key, on_deadline));
            (at, seq)
        });
        inner.metrics.sqes += 1;
        inner
            .registrations
            .insert(key.index(), (key, Registration { fd, deadline }));
        Ok(key)
    }

    pub(crate) fn poll_op(&self, key: OpKey, cx: &mut Context<'_>) -> Poll<Cqe> {
        let (poll, stale) = self.inner.borrow_mut().slots.poll(key, cx.waker());
        drop(stale);
        poll
    }

    /// Forgets a waiting op (its future was dropped, or it is about to wait again).
    pub(crate) fn drop_op(&self, key: OpKey) {
        let mut inner = self.inner.borrow_mut();
        inner.unregister(key);
        let removed = inner.slots.remove(key);
        drop(inner);
        drop(removed);
    }

    /// Whether a short read drained `fd` and no data arrived since.
    pub(crate) fn is_drained(&self, fd: RawFd) -> bool {
        let mut inner = self.inner.borrow_mut();
        inner
            .waiters
            .get_mut(fd as usize)
            .is_some_and(|waiters| waiters.read_drained && !waiters.read_closed)
    }

    /// A read of `fd` came back short: its receive queue is empty now. Any edge reported
    /// before this read announced data the read took, so it is consumed too. Only for a
    /// registered descriptor: an unregistered one has no edge to wait for yet.
    pub(crate) fn mark_drained(&self, fd: RawFd) {
        let mut inner = self.inner.borrow_mut();
        if let Some(waiters) = inner.waiters.get_mut(fd as usize) {
            waiters.read_drained = true;
            waiters.read_ready = false;
        }
    }

    /// Forgets `fd` (it is being closed): epoll drops a closed descriptor by itself, and the
    /// number may be reused by a descriptor that must be registered afresh.
    pub(crate) fn forget_fd(&self, fd: RawFd) {
        let mut inner = self.inner.borrow_mut();
        if inner.waiters.remove(fd as usize).is_some() {
            let epfd = inner.epfd.as_raw_fd();
            // SAFETY: plain integers; a null event is allowed for DEL.
            unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
        }
    }

    pub(crate) fn park(&self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        let mut wakers = std::mem::take(&mut *self.wake_scratch.borrow_mut());
        {
            let mut inner = self.inner.borrow_mut();
            let now = Instant::now();
            let until_deadline = inner
                .deadlines
                .keys()
                .next()
                .map(|(at, _)| at.saturating_duration_since(now));
            let timeout = match (wait, timeout, until_deadline) {
                (false, _, _) => Some(Duration::ZERO),
                (true, a, b) => a.into_iter().chain(b).min(),
            };
            // Round up, so a deadline is never reported before it passed.
            let timeout_ms = timeout.map_or(-1, |t| {
                let ms = t.as_nanos().div_ceil(1_000_000);
                ms.min(i32::MAX as u128) as i32
            });
            inner.events.clear();
            let capacity = inner.events.capacity() as i32;
            inner.metrics.enters += 1;
            let epfd = inner.epfd.as_raw_fd();
            let events = inner.events.as_mut_ptr();
            // SAFETY: `events` has room for `capacity` entries; the kernel fills at most that.
            let n = unsafe { libc::epoll_wait(epfd, events, capacity, timeout_ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            } else {
                // SAFETY: the kernel initialized the first `n` entries.
                unsafe { inner.events.set_len(n as usize) };
            }
            let events = std::mem::take(&mut inner.events);
            for event in &events {
                let token = event.u64;
                if token == WAKE_TOKEN {
                    self.drain_wake();
                    continue;
                }
                inner.metrics.cqes += 1;
                inner.ready(token as RawFd, event.events, &mut wakers);
            }
            inner.events = events;
            let now = Instant::now();
            while let Some(entry) = inner.deadlines.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let (key, on_deadline) = entry.remove();
                inner.unregister(key);
                let cqe = Cqe {
                    result: on_deadline,
                    flags: 0,
                };
                wakers.extend(inner.slots.complete(key, cqe));
            }
        }
        // A panicking waker must not cost the others their wake-up (see the uring backend).
        let mut panic = None;
        for waker in wakers.drain(..) {
            super::catch_first_panic(&mut panic, || waker.wake());
        }
        *self.wake_scratch.borrow_mut() = wakers;
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
        Ok(())
    }

    fn drain_wake(&self) {
        let mut value = 0u64;
        // SAFETY: reads 8 bytes into a live local from our eventfd; it is readable (epoll said
        // so), so this does not block.
        unsafe {
            libc::read(
                self.unparker.eventfd(),
                (&mut value as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    pub(crate) fn shutdown(&self) -> usize {
        let mut inner = self.inner.borrow_mut();
        inner.state = State::Closed;
        // Nothing is owned by the kernel: waiting ops are simply forgotten.
        let keys = inner.slots.in_flight_keys();
        for key in keys {
            inner.unregister(key);
            inner.slots.remove(key);
        }
        inner.slots.retain_in_flight();
        0
    }
}

impl Inner {
    /// Adds a waiter; returns true if the fd already had an unclaimed edge in that direction
    /// (the op should retry at once).
    fn add_waiter(&mut self, fd: RawFd, interest: Interest, key: OpKey) -> io::Result<bool> {
        if self.waiters.get_mut(fd as usize).is_none() {
            register(self.epfd.as_raw_fd(), fd)?;
        }
        let waiters = self.waiters.get_or_default(fd as usize);
        let ready = match interest {
            Interest::Readable => std::mem::take(&mut waiters.read_ready),
            Interest::Writable => std::mem::take(&mut waiters.write_ready),
        };
        if !ready {
            match interest {
                Interest::Readable => waiters.readable.push(key),
                Interest::Writable => waiters.writable.push(key),
            }
        }
        Ok(ready)
    }

    fn unregister(&mut self, key: OpKey) {
        let registration = match self.registrations.remove(key.index()) {
            Some((owner, registration)) if owner == key => registration,
            Some(other) => {
                self.registrations.insert(key.index(), other);
                return;
            }
            None => return,
        };
        if let Some(deadline) = registration.deadline {
            self.deadlines.remove(&deadline);
        }
        if let Some((fd, _)) = registration.fd {
            if let Some(waiters) = self.waiters.get_mut(fd as usize) {
                waiters.readable.retain(|k| *k != key);
                waiters.writable.retain(|k| *k != key);
            }
        }
    }

    /// `fd` reported `events`: complete every op waiting for a direction it reported, or
    /// remember the edge for the next one.
    fn ready(&mut self, fd: RawFd, events: u32, wakers: &mut Vec<Waker>) {
        let Some(waiters) = self.waiters.get_mut(fd as usize) else {
            return;
        };
        let failed = events & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0;
        if failed || events & libc::EPOLLRDHUP as u32 != 0 {
            waiters.read_closed = true;
        }
        let mut woken = std::mem::take(&mut self.woken);
        if failed || events & (libc::EPOLLIN | libc::EPOLLRDHUP) as u32 != 0 {
            waiters.read_drained = false;
            if waiters.readable.is_empty() {
                waiters.read_ready = true;
            }
            woken.append(&mut waiters.readable);
        }
        if failed || events & libc::EPOLLOUT as u32 != 0 {
            if waiters.writable.is_empty() {
                waiters.write_ready = true;
            }
            woken.append(&mut waiters.writable);
        }
        for key in woken.drain(..) {
            if let Some((owner, registration)) = self.registrations.remove(key.index()) {
                debug_assert!(owner == key, "a waiter's registration is its own");
                if let Some(deadline) = registration.deadline {
                    self.deadlines.remove(&deadline);
                }
            }
            // Ready: the op tries its syscall again.
            let ready = Cqe {
                result: 0,
                flags: 0,
            };
            wakers.extend(self.slots.complete(key, ready));
        }
        self.woken = woken;
    }
}

/// Registers `fd` for both directions, edge-triggered, for as long as it stays open.
fn register(epfd: RawFd, fd: RawFd) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
        u64: fd as u64,
    };
    // SAFETY: `event` lives across the call; the fds are plain integers to the kernel.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut event) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EEXIST) {
        return Err(e);
    }
    // Still registered from an earlier life of this fd number: refresh it.
    // SAFETY: as above.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_MOD, fd, &mut event) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A map keyed by small integers (descriptor numbers, slot indexes): a vector, no hashing.
struct DenseMap<V> {
    entries: Vec<Option<V>>,
}

impl<V> Default for DenseMap<V> {
    fn default() -> Self {
        DenseMap {
            entries: Vec::new(),
        }
    }
}

impl<V> DenseMap<V> {
    fn get_mut(&mut self, index: usize) -> Option<&mut V> {
        self.entries.get_mut(index).and_then(Option::as_mut)
    }

    fn insert(&mut self, index: usize, value: V) {
        if index >= self.entries.len() {
            self.entries.resize_with(index + 1, || None);
        }
        self.entries[index] = Some(value);
    }

    fn remove(&mut self, index: usize) -> Option<V> {
        self.entries.get_mut(index).and_then(Option::take)
    }

    fn get_or_default(&mut self, index: usize) -> &mut V
    where
        V: Default,
    {
        if self.get_mut(index).is_none() {
            self.insert(index, V::default());
        }
        self.get_mut(index).expect("inserted above")
    }
}
