//! Ops: one type per io_uring operation, modelled on the kernel's `io_issue_defs` table.
//!
//! Each op is a small struct that **owns everything the kernel touches** (buffers, iovecs,
//! sockaddrs, paths) and has two halves, like the kernel's `io_<op>_prep` / `io_<op>` pair:
//! [`OpCode::sqe`] builds the submission entry and [`OpCode::complete`] turns the completion into
//! the user's result (usually handing the buffer back). One module per op family: [`rw`],
//! [`net`], [`openclose`], [`fs`], [`timeout`], [`poll`]; cancellation is built by the driver.
//!
//! # Lifecycle
//! [`Op::submit`] pushes the entry and parks the op in a driver slot keyed by `user_data`.
//! Polling the [`Op`] either finds the completion or leaves the task's waker in the slot.
//! Dropping the `Op` early moves the op struct (and so every resource the kernel may still
//! write to) into the slot and asks the kernel to cancel; the resources are released only when
//! the terminal completion arrives, through [`OpCode::complete_orphan`]. `mem::forget` of an
//! `Op` leaks its resources, which is safe: the kernel writes into memory nobody frees.
//!
//! A readiness-based driver can implement the same op structs: the struct already carries all
//! the inputs of the syscall, and `complete` already maps a raw result to the user's output.

/// Builds an entry on `$file` (a [`FileRef`]): on its registered slot (`IOSQE_FIXED_FILE`)
/// when it has one, else on its descriptor. `$fd` is bound to `types::Fixed` or `types::Fd`.
macro_rules! on_file {
    ($file:expr, |$fd:ident| $build:expr) => {
        match $file.slot() {
            Some(slot) => {
                let $fd = io_uring::types::Fixed(slot);
                $build
            }
            None => {
                let $fd = io_uring::types::Fd($file.raw());
                $build
            }
        }
    };
}

mod fallback;
pub mod fs;
pub mod msg;
pub(crate) mod msg_ring;
pub mod multishot;
pub mod net;
pub mod openclose;
pub mod path;
pub mod poll;
pub mod rw;
pub mod splice;
pub mod timeout;

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use io_uring::squeue;

pub use fallback::{Fallback, Interest};

use crate::driver::{Cqe, Driver, OpKey};
use crate::task::coop;

/// The descriptor an op works on: its fd, and its slot in the ring's registered file table
/// when it has one there (the ring then uses the slot; the readiness fallback uses the fd).
///
/// Any `RawFd` converts into one; [`Fd::file_ref`](crate::fd::Fd::file_ref) adds the slot of
/// a registered descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef {
    raw: RawFd,
    slot: Option<u32>,
}

impl FileRef {
    /// `raw`, also known to this thread's ring as `slot` of its registered file table.
    pub(crate) fn registered(raw: RawFd, slot: u32) -> Self {
        FileRef {
            raw,
            slot: Some(slot),
        }
    }

    /// The descriptor.
    pub fn raw(self) -> RawFd {
        self.raw
    }

    /// The slot in this thread's ring's registered file table, if it has one.
    pub fn slot(self) -> Option<u32> {
        self.slot
    }
}

impl From<RawFd> for FileRef {
    fn from(raw: RawFd) -> Self {
        FileRef { raw, slot: None }
    }
}

/// The kernel's answer to one submission, as an op sees it.
#[derive(Debug)]
pub struct Completion {
    /// The CQE's `res`: a non-negative value, or the error (a negated `errno`, or a submission
    /// failure such as "no runtime on this thread").
    pub result: io::Result<u32>,
    /// The CQE flags (`IORING_CQE_F_*`).
    pub flags: u32,
    /// Whether the op ran (in the ring, or as its readiness fallback). False when it never
    /// started (no runtime, the runtime shutting down) or its result was known up front.
    pub from_kernel: bool,
}

impl From<Cqe> for Completion {
    fn from(cqe: Cqe) -> Self {
        let result = if cqe.result < 0 {
            Err(io::Error::from_raw_os_error(-cqe.result))
        } else {
            Ok(cqe.result as u32)
        };
        Completion {
            result,
            flags: cqe.flags,
            from_kernel: true,
        }
    }
}

/// One io_uring operation: what it owns, how it is submitted, and what its completion means.
///
/// # Safety
/// The entry built by [`sqe`](OpCode::sqe) may only point into memory that `self` owns on the
/// heap (or into `'static` memory), never into `self` itself: the op struct is moved after the
/// entry is built (into the [`Op`] future, later perhaps into a driver slot), but its heap
/// allocations are not. That memory must stay valid for as long as `self` is alive.
pub unsafe trait OpCode: 'static {
    /// What the awaiting task receives.
    type Output;

    /// Builds the submission entry; `user_data` is set by the driver.
    fn sqe(&mut self) -> squeue::Entry;

    /// Turns the completion into the output, handing back owned resources.
    fn complete(self, completion: Completion) -> Self::Output;

    /// A result known without asking the kernel, for inputs where the kernel would answer at
    /// once anyway or, worse, wait (a zero-length `recv` on a socket waits for data). When
    /// `Some`, the op is not submitted and completes with it.
    fn short_circuit(&self) -> Option<u32> {
        None
    }

    /// The op done at once by a syscall that cannot block (`preadv2` with `RWF_NOWAIT` for a
    /// read), for [`Op::inline_or_submit`]: `Some` with its result when it succeeded, `None`
    /// when it would block, failed, or the op has no such form. On `None` the op goes to the
    /// ring as usual, which has the last word on errors.
    fn try_inline(&mut self) -> Option<u32> {
        None
    }

    /// The readiness fallback (the epoll backend): perform the op now, without blocking, or
    /// say what to wait for before trying again. Called again after each wait.
    fn fallback(&mut self) -> Fallback {
        Fallback::unsupported(std::any::type_name::<Self>())
    }

    /// For reads from a stream socket: the descriptor and how many bytes the read asks for.
    /// On the readiness backend, a read that returns fewer (but some) bytes has drained the
    /// socket, so the next read waits for readiness first instead of trying a `recv` that
    /// would only answer `EAGAIN`.
    fn stream_read(&self) -> Option<(RawFd, usize)> {
        None
    }

    /// Called instead of [`complete`](OpCode::complete) when the awaiting future is gone.
    /// The default drops `self`; ops whose success creates a resource (an accepted socket, an
    /// opened file) override it to release that resource.
    fn complete_orphan(self, completion: Completion)
    where
        Self: Sized,
    {
        let _ = completion;
    }
}

/// An op whose future was dropped: the driver keeps it alive until its terminal completion.
pub(crate) trait Orphan {
    /// The terminal completion: release everything.
    fn complete(self: Box<Self>, cqe: Cqe);

    /// A completion with `IORING_CQE_F_MORE` (multishot ops): release what it created.
    /// Called with the driver borrowed: must not call back into the runtime.
    fn intermediate(&mut self, cqe: Cqe) {
        let _ = cqe;
    }
}

impl<T: OpCode> Orphan for T {
    fn complete(self: Box<Self>, cqe: Cqe) {
        (*self).complete_orphan(Completion::from(cqe))
    }
}

/// A submitted operation: a future of the op's output.
///
/// Created by [`Op::submit`]. Dropping it before completion cancels the operation; the
/// resources it owns stay alive until the kernel is done with them.
#[must_use = "an op does nothing useful unless awaited; dropping it cancels it"]
pub struct Op<T: OpCode> {
    state: State,
    data: Option<T>,
    /// The op's deadline, kept across readiness retries (epoll backend only).
    deadline: Option<std::time::Instant>,
    /// Linked to an `IORING_OP_LINK_TIMEOUT`: `ECANCELED` then means "timed out".
    linked_timeout: bool,
    /// Times the op was submitted again after an `ECANCELED` nobody asked for.
    resubmits: u8,
}

/// How [`Op::start`] hands an op to the ring.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Handoff {
    /// Queued for the batch the worker submits when it parks.
    Batched,
    /// Queued, then the ring is entered at once if other tasks are ready (else batched).
    Eager,
    /// Done by [`OpCode::try_inline`] when the op would be alone in the ring, else batched.
    InlineWhenIdle,
}

/// How often an op is submitted again after the kernel cancelled it on its own.
const MAX_RESUBMITS: u8 = 3;

enum State {
    /// In the driver's op table (io_uring: in the kernel; epoll: waiting for readiness).
    Submitted(Rc<Driver>, OpKey),
    /// Known without waiting: the result (taken when polled), and whether the op ran (its
    /// readiness fallback did the work) rather than never starting.
    Immediate(Option<io::Result<u32>>, bool),
}

impl<T: OpCode> Op<T> {
    /// Submits `data` to the current thread's driver.
    ///
    /// When that is impossible (no coring runtime on this thread, or it is shutting down) the
    /// op completes at once with the error, still handing back its resources.
    pub fn submit(data: T) -> Self {
        Self::start(data, None, Handoff::Batched)
    }

    /// Submits `data` and, when other tasks are ready to run, enters the ring with it at
    /// once instead of in the batch the worker submits when it parks (what
    /// [`Builder::eager_submit`] does for every op, always).
    ///
    /// For ops served by a device, such as O_DIRECT reads and writes: the device starts on
    /// the op while the worker polls the other tasks. It costs one `io_uring_enter` per op,
    /// which ops completed inline (socket sends, page-cache reads) would only pay for. With
    /// no other task ready the worker parks right away, and the park submits the op in the
    /// same call that waits for it, so then it is batched. With SQPOLL, or on the readiness
    /// backend, it is the same as [`submit`](Op::submit).
    ///
    /// [`Builder::eager_submit`]: crate::runtime::Builder::eager_submit
    pub fn submit_eager(data: T) -> Self {
        Self::start(data, None, Handoff::Eager)
    }

    /// Does the op by a plain syscall that cannot block ([`OpCode::try_inline`]) when it
    /// would be alone in the ring; otherwise, or when that syscall would block, submits it as
    /// [`submit`](Op::submit) does.
    ///
    /// Alone means no op in flight or queued and no other task ready to run (whose ops would
    /// join the batch). The worker would then enter the kernel for this op only and wait for
    /// it: for a page-cache read, the same copy plus an SQE, a CQE and a trip through the
    /// scheduler, where `preadv2` does the copy alone. With company the op joins the batch,
    /// the cheaper path there, and concurrent tasks keep taking turns. Since every op this
    /// thread submitted earlier has completed, doing this one now reorders nothing. Never
    /// with SQPOLL, where the application asked the kernel thread to make the calls.
    pub fn inline_or_submit(data: T) -> Self {
        Self::start(data, None, Handoff::InlineWhenIdle)
    }

    /// Submits `data` with a deadline: if the op has not completed `timeout` from now, it is
    /// cancelled and completes with `ECANCELED`. On io_uring this is an
    /// `IORING_OP_LINK_TIMEOUT` linked to the op, so exactly one of the two happens, decided
    /// by the kernel: an op that completed (say, a `recv` that got data) is never reported as
    /// timed out.
    pub fn submit_with_timeout(data: T, timeout: std::time::Duration) -> Self {
        Self::start(data, Some(timeout), Handoff::Batched)
    }

    fn start(mut data: T, timeout: Option<std::time::Duration>, handoff: Handoff) -> Self {
        if let Some(result) = data.short_circuit() {
            return Op::immediate(data, Ok(result), false);
        }
        let driver = match crate::runtime::context::driver() {
            Ok(driver) => driver,
            Err(e) => return Op::immediate(data, Err(e), false),
        };
        let mut deadline = None;
        let submitted = match &*driver {
            Driver::Uring(ring) => match timeout {
                None if handoff == Handoff::Eager && crate::runtime::context::tasks_ready() => {
                    ring.submit_eager(data.sqe())
                }
                None if handoff == Handoff::InlineWhenIdle
                    && !crate::runtime::context::tasks_ready() =>
                {
                    match ring.inline_if_idle(|| data.try_inline()) {
                        Some(n) => return Op::immediate(data, Ok(n), true),
                        None => ring.submit(data.sqe()),
                    }
                }
                None => ring.submit(data.sqe()),
                Some(timeout) => {
                    let mut link = timeout::LinkTimeout::new(timeout);
                    let link_entry = link.sqe();
                    ring.submit_linked(data.sqe(), link_entry, Box::new(link))
                }
            },
            Driver::Epoll(epoll) if !epoll.accepts_ops() => Err(crate::driver::shutting_down()),
            Driver::Epoll(epoll) => {
                deadline = timeout.map(|t| std::time::Instant::now() + t);
                match fallback::attempt(epoll, &mut data, deadline) {
                    Ok(fallback::Attempt::Done(result, _)) => {
                        return Op::immediate(data, result, true)
                    }
                    Ok(fallback::Attempt::Waiting(key)) => Ok(key),
                    Err(e) => Err(e),
                }
            }
        };
        match submitted {
            Ok(key) => Op {
                state: State::Submitted(driver, key),
                data: Some(data),
                deadline,
                linked_timeout: timeout.is_some(),
                resubmits: 0,
            },
            Err(e) => Op::immediate(data, Err(e), false),
        }
    }

    fn immediate(data: T, result: io::Result<u32>, ran: bool) -> Self {
        Op {
            state: State::Immediate(Some(result), ran),
            data: Some(data),
            deadline: None,
            linked_timeout: false,
            resubmits: 0,
        }
    }

    /// Submits `data` and forgets about it: the driver completes it as an orphan.
    ///
    /// Used for fire-and-forget work such as closing a descriptor on drop. Gives `data` back
    /// when there is no running io_uring to submit it to.
    pub fn detach(data: T) -> Result<(), T> {
        Self::detach_then(data, |_| ())
    }

    /// [`detach`](Op::detach), then hands the ring's queued entries to the kernel at once,
    /// not with the batch the worker submits when it parks: for work whose effect someone
    /// else waits for, such as closing a dropped socket (the peer waits for end of stream) or
    /// waking another ring, which must not wait for whatever this thread does next.
    ///
    /// `Ok(true)` when the kernel has the entry, `Ok(false)` when it is queued for the next
    /// park (the kernel refused the call for now), `Err(data)` as for `detach`.
    pub(crate) fn detach_now(data: T) -> Result<bool, T> {
        Self::detach_then(data, crate::driver::uring::UringDriver::flush)
    }

    /// Submits `data` as an orphan to this thread's running ring, then runs `then` on it.
    fn detach_then<R>(
        mut data: T,
        then: impl FnOnce(&crate::driver::uring::UringDriver) -> R,
    ) -> Result<R, T> {
        let driver = match crate::runtime::context::driver() {
            Ok(driver) if driver.accepts_ops() => driver,
            _ => return Err(data),
        };
        let Driver::Uring(ring) = &*driver else {
            return Err(data);
        };
        let entry = data.sqe();
        ring.submit_orphan(entry, Box::new(data));
        Ok(then(ring))
    }
}

// An `Op` never points into itself: the kernel sees only the op struct's heap memory.
impl<T: OpCode> Unpin for Op<T> {}

impl<T: OpCode> Future for Op<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = self.get_mut();
        let completion = match &mut this.state {
            State::Submitted(driver, key) => {
                std::task::ready!(coop::poll_proceed(cx));
                let mut cqe = std::task::ready!(driver.poll_op(*key, cx));
                match &**driver {
                    Driver::Uring(ring) => {
                        // ECANCELED that nobody asked for: the kernel dropped the work before
                        // it ran (io-wq could not start a worker, say). Only a linked timeout
                        // or our own cancel means it; otherwise the op never happened, so
                        // submit it again.
                        while cqe.result == -libc::ECANCELED
                            && !this.linked_timeout
                            && this.resubmits < MAX_RESUBMITS
                        {
                            let data = this.data.as_mut().expect("data lives until completion");
                            this.resubmits += 1;
                            match ring.submit(data.sqe()) {
                                Ok(next) => {
                                    *key = next;
                                    cqe = std::task::ready!(driver.poll_op(next, cx));
                                }
                                Err(_) => break,
                            }
                        }
                        Completion::from(cqe)
                    }
                    Driver::Epoll(epoll) => {
                        let data = this.data.as_mut().expect("data lives until completion");
                        match fallback::resume(epoll, key, data, cqe, this.deadline, cx) {
                            Poll::Ready(completion) => completion,
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                }
            }
            State::Immediate(result, ran) => {
                // Done without waiting (epoll ops that were ready, short circuits, inline
                // reads): still spend budget, so a task looping on always-ready I/O yields.
                std::task::ready!(coop::poll_proceed(cx));
                Completion {
                    result: result.take().unwrap_or_else(|| {
                        Err(io::Error::other("coring: op polled after completion"))
                    }),
                    flags: 0,
                    from_kernel: *ran,
                }
            }
        };
        let data = this
            .data
            .take()
            .expect("coring: Op polled again after it completed");
        Poll::Ready(data.complete(completion))
    }
}

impl<T: OpCode> Drop for Op<T> {
    fn drop(&mut self) {
        let Some(data) = self.data.take() else {
            return;
        };
        match &mut self.state {
            State::Submitted(driver, key) => match &**driver {
                Driver::Uring(ring) => ring.drop_op(*key, Box::new(data)),
                // Nothing of the op is in the kernel: forget the wait, drop the data.
                Driver::Epoll(epoll) => {
                    epoll.drop_op(*key);
                    drop(data);
                }
            },
            // The op ran (its readiness fallback did the work) but nobody took the result:
            // release what it created, as for a ring op whose future was dropped.
            State::Immediate(Some(result), true) => {
                let result = std::mem::replace(result, Ok(0));
                data.complete_orphan(Completion {
                    result,
                    flags: 0,
                    from_kernel: true,
                });
            }
            State::Immediate(..) => drop(data),
        }
    }
}

/// A buffer length for the kernel's 32-bit length fields. Longer buffers are clamped, which
/// makes the op transfer less than asked (a short read or write), exactly as `read(2)` and
/// `write(2)` may; `read_exact` and `write_all` carry on with the rest.
pub(crate) fn clamp_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// `(result, buffer)`: every I/O method hands its buffer back with its result.
pub type BufResult<T, B> = (io::Result<T>, B);
