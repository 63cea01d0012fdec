//! One spawned task in one allocation: a [`Header`], then the future, later its output.
//!
//! The header is what every reference points to: the scheduler's run queue and task list,
//! the [`JoinHandle`](super::JoinHandle), and the task's [`Waker`]s (the waker's data pointer
//! *is* the header, so polling builds a waker without allocating or counting). A `'static`
//! [`Vtable`] per future type gives the typed operations (poll, take the output, free). The
//! allocation is a block of the runtime's [`TaskCache`] when one of the right size class was
//! freed before.
//!
//! # Two reference counts
//! Wakers are `Send + Sync` and may be cloned, woken and dropped on any thread; everything
//! else that points to a task lives on the task's own (owner) thread. So:
//! - `local_refs` (a `Cell`, owner thread only) counts the owner thread's references: the
//!   scheduler's task list, each run-queue entry, the `JoinHandle`;
//! - `refs` (atomic) counts each owned waker, each entry in the runtime's remote inbox, and
//!   one unit for all the local references together, released when `local_refs` reaches 0.
//!
//! The allocation is freed when `refs` reaches 0. A spawn-and-join that never clones its
//! waker does no atomic read-modify-write on `refs` at all: when the last local reference
//! goes and `refs` reads 1, nothing else can exist (a new reference is only made from an
//! existing one), so the owner frees the task directly.
//!
//! # What may run where
//! The future (not `Send`) is polled and dropped on the owner thread only, and so is the
//! output (the `JoinHandle` is not `Send`). Invariant: **when `local_refs` reaches 0 the
//! stage is `Consumed`** (the scheduler holds a local reference until the task finished,
//! which drops the future; the output is dropped at once when no handle is left, else by the
//! handle). A waker dropped last on another thread therefore frees only `Send` data (the
//! join waker) and memory.
//!
//! # The `queued` flag
//! Set by the wake that queues the task, cleared (with an acquiring read-modify-write) just
//! before each poll, and set for good when the task finishes: a wake of a queued or finished
//! task is one atomic swap and nothing else. A task is thus in at most one queue entry while
//! it runs; entries left behind by a task that then finished are skipped.
//!
//! # The runtime's `Remote`
//! A wake from another thread (or from another runtime on this thread) goes through the
//! owner's [`Remote`]. The header keeps a raw pointer to it; the scheduler's `Arc` keeps it
//! alive while the task is unfinished. Owned wakers can outlive the runtime, so the first
//! waker clone takes one `Arc` count for the task (`holds_remote`), released when the task is
//! freed. Every owned waker comes from a clone, and the first clone is made while a waker is
//! borrowed for a poll (the runtime is alive then), so the count is taken in time.

use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::cache::{Block, TaskCache};
use super::coop;
use super::waker::Remote;
use super::JoinError;

/// The future is gone: it returned, panicked, was aborted or shut down.
const FINISHED: u8 = 1;
/// The result is stored in the stage for the `JoinHandle`.
const COMPLETE: u8 = 1 << 1;
/// `JoinHandle::abort` was called (or the runtime shut down while the task ran).
const ABORTED: u8 = 1 << 2;
/// The future is being polled: nothing else may touch the stage.
const RUNNING: u8 = 1 << 3;
/// A `JoinHandle` exists.
const JOIN_INTEREST: u8 = 1 << 4;
/// The `JoinHandle` took the result.
const TAKEN: u8 = 1 << 5;
/// The task is in its scheduler's task list.
const LINKED: u8 = 1 << 6;

/// What every reference to a task points to; first field of the task's allocation.
pub(crate) struct Header {
    /// Owned wakers + remote-inbox entries + 1 while `local_refs > 0`.
    refs: AtomicU32,
    queued: AtomicBool,
    /// Whether this task holds a count of `remote`'s `Arc` (taken by the first waker clone).
    holds_remote: AtomicBool,
    /// The owner runtime's inbox; fixed at spawn.
    remote: *const Remote,
    vtable: &'static Vtable,
    // Owner thread only from here on.
    local_refs: Cell<u32>,
    flags: Cell<u8>,
    join_waker: Cell<Option<Waker>>,
    /// The scheduler's intrusive task list.
    prev: Cell<Option<NonNull<Header>>>,
    next: Cell<Option<NonNull<Header>>>,
}

// The header fits one cache line: a poll, a wake and a join touch its first line only, plus
// whatever of the future they need.
const _: () = assert!(mem::size_of::<Header>() <= 64);

impl Header {
    fn has(&self, flag: u8) -> bool {
        self.flags.get() & flag != 0
    }

    fn set(&self, flag: u8) {
        self.flags.set(self.flags.get() | flag);
    }

    fn clear(&self, flag: u8) {
        self.flags.set(self.flags.get() & !flag);
    }
}

/// The typed operations of one future type.
struct Vtable {
    /// Polls once; true when the task finished.
    poll: unsafe fn(NonNull<Header>) -> bool,
    /// Finishes the task with a cancelled result, dropping the future.
    cancel: unsafe fn(NonNull<Header>),
    /// Moves the result into `*dst`, an `Option<Result<F::Output, JoinError>>`.
    take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Drops the result, if still stored.
    drop_output: unsafe fn(NonNull<Header>),
    /// Frees the allocation.
    dealloc: unsafe fn(NonNull<Header>),
}

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

#[repr(C)] // the header first, so a pointer to the cell is a pointer to its header
struct TaskCell<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

struct Typed<F>(PhantomData<F>);

impl<F: Future> Typed<F> {
    const BLOCK: Block = Block::for_layout(std::alloc::Layout::new::<TaskCell<F>>());
    const VTABLE: Vtable = Vtable {
        poll: poll::<F>,
        cancel: cancel::<F>,
        take_output: take_output::<F>,
        drop_output: drop_output::<F>,
        dealloc: dealloc::<F>,
    };
}

/// Allocates a task (queued, with a `JoinHandle`) owned by the runtime whose inbox is
/// `remote`, reusing a block from `cache` if one fits. Returns the owner thread's first
/// reference and the handle's.
pub(crate) fn new_task<F>(
    future: F,
    remote: &Arc<Remote>,
    cache: &TaskCache,
) -> (LocalTask, RawJoin<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let cell = TaskCell {
        header: Header {
            refs: AtomicU32::new(1),
            queued: AtomicBool::new(true),
            holds_remote: AtomicBool::new(false),
            remote: Arc::as_ptr(remote),
            vtable: &Typed::<F>::VTABLE,
            local_refs: Cell::new(2),
            flags: Cell::new(JOIN_INTEREST),
            join_waker: Cell::new(None),
            prev: Cell::new(None),
            next: Cell::new(None),
        },
        stage: UnsafeCell::new(Stage::Running(future)),
    };
    let block = Typed::<F>::BLOCK.allocate(cache).cast::<TaskCell<F>>();
    // SAFETY: the block is unused and at least as large and as aligned as a `TaskCell<F>`
    // (`Block::for_layout` of its layout).
    unsafe { block.as_ptr().write(cell) };
    let ptr = block.cast::<Header>();
    let join = RawJoin {
        task: LocalTask(ptr),
        _output: PhantomData,
    };
    (LocalTask(ptr), join)
}

/// One of the owner thread's references to a task (not `Send`: `NonNull` is not).
pub(crate) struct LocalTask(NonNull<Header>);

impl LocalTask {
    fn header(&self) -> &Header {
        // SAFETY: this reference is counted in `local_refs`, so the allocation is alive.
        unsafe { self.0.as_ref() }
    }

    /// A new local reference to the task behind `ptr`.
    ///
    /// # Safety
    /// On the task's owner thread, while the task is unfinished (so `local_refs > 0`).
    unsafe fn new_ref(ptr: NonNull<Header>) -> LocalTask {
        // SAFETY: the caller guarantees the task is alive and that this is its owner thread.
        let header = unsafe { ptr.as_ref() };
        header.local_refs.set(header.local_refs.get() + 1);
        LocalTask(ptr)
    }

    /// An address that identifies the task while it lives (for traces).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn id(&self) -> usize {
        self.0.as_ptr() as usize
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.header().has(FINISHED)
    }

    /// Polls the task once (it must not be finished); true when it finished now.
    pub(crate) fn run(&self) -> bool {
        debug_assert!(!self.is_finished());
        // SAFETY: the task is alive (counted by `self`), unfinished, and this is its owner
        // thread; `poll` is the vtable entry of the task's own future type.
        unsafe { (self.header().vtable.poll)(self.0) }
    }

    /// Drops the future now (runtime shutdown, `cancel_all`), unless it is being polled: then
    /// it is marked aborted and finishes when its poll returns. True when it is finished.
    pub(crate) fn cancel(&self) -> bool {
        let header = self.header();
        if header.has(RUNNING) {
            header.set(ABORTED);
            return false;
        }
        if !header.has(FINISHED) {
            // SAFETY: owner thread, task alive and not being polled.
            unsafe { (header.vtable.cancel)(self.0) };
        }
        true
    }

    /// Pushes `self` onto the front of the intrusive list starting at `head`.
    pub(crate) fn link(self, head: &Cell<Option<NonNull<Header>>>) {
        let header = self.header();
        debug_assert!(!header.has(LINKED));
        header.set(LINKED);
        header.prev.set(None);
        header.next.set(head.get());
        if let Some(first) = head.get() {
            // SAFETY: linked tasks are alive (the list holds a reference to each).
            unsafe { first.as_ref() }.prev.set(Some(self.0));
        }
        head.set(Some(self.0));
        // The list keeps this reference.
        mem::forget(self);
    }

    /// Removes the task from the list at `head`, returning the list's reference; `None` if the
    /// task is not linked.
    pub(crate) fn unlink(&self, head: &Cell<Option<NonNull<Header>>>) -> Option<LocalTask> {
        let header = self.header();
        if !header.has(LINKED) {
            return None;
        }
        header.clear(LINKED);
        let (prev, next) = (header.prev.take(), header.next.take());
        match prev {
            // SAFETY: linked tasks are alive (the list holds a reference to each).
            Some(prev) => unsafe { prev.as_ref() }.next.set(next),
            None => head.set(next),
        }
        if let Some(next) = next {
            // SAFETY: as above.
            unsafe { next.as_ref() }.prev.set(prev);
        }
        Some(LocalTask(self.0))
    }

    /// Removes the first task of the list at `head`, with the list's reference.
    pub(crate) fn pop_list(head: &Cell<Option<NonNull<Header>>>) -> Option<LocalTask> {
        // SAFETY: linked tasks are alive; this borrowed view is not counted, so it is
        // forgotten and the list's own reference is returned.
        let first = ManuallyDrop::new(LocalTask(head.get()?));
        first.unlink(head)
    }
}

impl Clone for LocalTask {
    fn clone(&self) -> Self {
        // SAFETY: `self` proves the task alive, and a `LocalTask` exists only on the owner
        // thread (it is not `Send`).
        unsafe { LocalTask::new_ref(self.0) }
    }
}

impl Drop for LocalTask {
    fn drop(&mut self) {
        let header = self.header();
        let left = header.local_refs.get() - 1;
        header.local_refs.set(left);
        if left == 0 {
            debug_assert!(header.has(FINISHED), "a task freed before it finished");
            // SAFETY: this was the last local reference; its unit of `refs` is released here.
            unsafe { release_local_unit(self.0) };
        }
    }
}

/// Releases the local references' unit of `refs`, freeing the task if it was the last count.
///
/// # Safety
/// `local_refs` just reached 0 (on the owner thread), so the unit is still held.
unsafe fn release_local_unit(ptr: NonNull<Header>) {
    // SAFETY: the unit being released keeps the allocation alive until here.
    let header = unsafe { ptr.as_ref() };
    // Reading 1 means no waker or inbox entry exists, and none can be made without one, so
    // no read-modify-write is needed; `Acquire` pairs with the `Release` decrement of a
    // waker last dropped on another thread.
    if header.refs.load(Ordering::Acquire) == 1 || header.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
        // SAFETY: no reference is left; `dealloc` is the entry for the task's own type.
        unsafe { (header.vtable.dealloc)(ptr) };
    }
}

/// Releases one count of `refs` (a waker's or an inbox entry's), freeing the task if it was
/// the last one.
///
/// # Safety
/// The caller owns one count of `refs`, which it gives up.
unsafe fn release_shared(ptr: NonNull<Header>) {
    // SAFETY: the count being released keeps the allocation alive until the decrement.
    let header = unsafe { ptr.as_ref() };
    if header.refs.fetch_sub(1, Ordering::Release) == 1 {
        fence(Ordering::Acquire);
        // SAFETY: this was the last count (so `local_refs` is 0 and, by the module's
        // invariant, the stage is `Consumed`: only `Send` data is left to drop here).
        unsafe { (header.vtable.dealloc)(ptr) };
    }
}

/// One count of `refs` held by an entry of a runtime's remote inbox.
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: a `TaskRef` only touches the header's atomics from a foreign thread, and when it
// frees the task only `Send` data is left (see the module's invariant).
unsafe impl Send for TaskRef {}

impl TaskRef {
    /// On the owner thread: a run-queue reference, or `None` if the task already finished.
    ///
    /// # Safety
    /// Called on the thread that owns the task (the inbox's runtime).
    pub(crate) unsafe fn into_local(self) -> Option<LocalTask> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `self`'s count keeps the allocation alive; the caller guarantees the owner
        // thread, so the `Cell` fields may be read.
        let header = unsafe { this.0.as_ref() };
        if header.has(FINISHED) {
            // SAFETY: gives up `self`'s count.
            unsafe { release_shared(this.0) };
            return None;
        }
        // SAFETY: owner thread, unfinished task (the scheduler's list reference keeps
        // `local_refs > 0`, hence the local unit keeps `refs` above this count).
        let local = unsafe { LocalTask::new_ref(this.0) };
        header.refs.fetch_sub(1, Ordering::Release);
        Some(local)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // SAFETY: a `TaskRef` owns one count of `refs`.
        unsafe { release_shared(self.0) };
    }
}

/// Queues the task unless it is queued or finished. With `owned`, the caller gives up one
/// count of `refs` (a waker woken by value), reused for an inbox entry.
///
/// # Safety
/// The task is alive for the call: the caller holds a waker for it (borrowed or owned).
unsafe fn schedule(ptr: NonNull<Header>, owned: bool) {
    // SAFETY: alive, per the caller.
    let header = unsafe { ptr.as_ref() };
    if header.queued.swap(true, Ordering::AcqRel) {
        if owned {
            // SAFETY: the caller gave up this count.
            unsafe { release_shared(ptr) };
        }
        return;
    }
    // Not queued, so not finished: its scheduler is alive, and so is `remote`.
    let pushed_locally = crate::runtime::context::with_core(|core| {
        let scheduler = &core.scheduler;
        if !ptr::eq(Arc::as_ptr(scheduler.remote()), header.remote) {
            return false;
        }
        // SAFETY: the current runtime owns the task, so this is its owner thread, and the
        // task is unfinished.
        scheduler.push(unsafe { LocalTask::new_ref(ptr) });
        true
    })
    .unwrap_or(false);
    if pushed_locally {
        if owned {
            // SAFETY: the caller gave up this count (not the last: the list holds the unit).
            unsafe { release_shared(ptr) };
        }
        return;
    }
    if !owned {
        add_shared(header);
    }
    // SAFETY: `remote` is alive: an owned waker's task holds a count of it (`holds_remote`);
    // a borrowed waker exists only while its task is polled, and a `JoinHandle` aborts only an
    // unfinished task: either way the runtime, whose scheduler holds an `Arc` of it, is alive.
    let remote = unsafe { &*header.remote };
    remote.push(TaskRef(ptr));
}

/// Takes one count of `refs` for a new waker or inbox entry (made from an existing reference,
/// so `Relaxed` is enough, as for `Arc::clone`).
fn add_shared(header: &Header) {
    if header.refs.fetch_add(1, Ordering::Relaxed) > i32::MAX as u32 {
        // Billions of wakers of one task: a leak; counting on would wrap.
        std::process::abort();
    }
}

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

fn raw_waker(ptr: NonNull<Header>) -> RawWaker {
    RawWaker::new(ptr.as_ptr().cast_const().cast(), &WAKER_VTABLE)
}

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a task header (see `raw_waker`), alive while this waker exists.
    let ptr = unsafe { NonNull::new_unchecked(data.cast_mut().cast::<Header>()) };
    // SAFETY: as above.
    let header = unsafe { ptr.as_ref() };
    if !header.holds_remote.load(Ordering::Relaxed)
        && !header.holds_remote.swap(true, Ordering::AcqRel)
    {
        // SAFETY: the first clone is made from a waker borrowed for a poll (every owned waker
        // is a clone), while the runtime, and so its `Remote`, is alive.
        unsafe { Arc::increment_strong_count(header.remote) };
    }
    add_shared(header);
    raw_waker(ptr)
}

unsafe fn waker_wake(data: *const ()) {
    // SAFETY: an owned waker's data: a live task header whose count we now give up.
    unsafe { schedule(NonNull::new_unchecked(data.cast_mut().cast()), true) };
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: a waker's data: a task header kept alive by the waker for this call.
    unsafe { schedule(NonNull::new_unchecked(data.cast_mut().cast()), false) };
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: an owned waker's data: a task header and one count of `refs`, given up here.
    unsafe { release_shared(NonNull::new_unchecked(data.cast_mut().cast())) };
}

/// # Safety (all typed entries)
/// `ptr` is the header of a live `TaskCell<F>`, and the call is on its owner thread.
unsafe fn poll<F: Future>(ptr: NonNull<Header>) -> bool {
    // SAFETY: per this entry's contract.
    let cell = unsafe { ptr.cast::<TaskCell<F>>().as_ref() };
    let header = &cell.header;
    // Acquires what wakers published before they queued the task; a wake from here on
    // queues it again.
    header.queued.swap(false, Ordering::AcqRel);
    if header.has(ABORTED) {
        // SAFETY: per this entry's contract; the future is not being polled.
        unsafe { finish::<F>(ptr, Err(JoinError::cancelled())) };
        return true;
    }
    // SAFETY: unfinished, so the stage holds the future; no other reference into the stage
    // exists while RUNNING is set (every other path checks the flags first).
    let Stage::Running(future) = (unsafe { &mut *cell.stage.get() }) else {
        unreachable!("coring: an unfinished task without its future");
    };
    // SAFETY: the future lives in the task's allocation and is only ever dropped in place
    // (`finish`), never moved: it is pinned.
    let future = unsafe { Pin::new_unchecked(future) };
    // Borrowed, never dropped: it does not own a count.
    let waker = ManuallyDrop::new(
        // SAFETY: `WAKER_VTABLE` treats the data as this task's header; the poll's local
        // reference keeps it alive for the poll, and its functions are thread-safe.
        unsafe { Waker::from_raw(raw_waker(ptr)) },
    );
    let mut cx = Context::from_waker(&waker);
    header.set(RUNNING);
    let polled = catch_unwind(AssertUnwindSafe(|| {
        coop::with_budget(|| future.poll(&mut cx))
    }));
    header.clear(RUNNING);
    let result = match polled {
        Ok(Poll::Pending) if !header.has(ABORTED) => return false,
        Ok(Poll::Pending) => Err(JoinError::cancelled()),
        Ok(Poll::Ready(output)) => Ok(output),
        Err(payload) => Err(JoinError::panic(payload)),
    };
    // SAFETY: per this entry's contract; the poll is over.
    unsafe { finish::<F>(ptr, result) };
    true
}

/// See [`poll`]'s safety contract; the future must not be being polled.
unsafe fn cancel<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: per this entry's contract.
    unsafe { finish::<F>(ptr, Err(JoinError::cancelled())) };
}

/// Drops the future in place, then stores the result for the handle (or drops it if there is
/// none) and wakes the joiner.
///
/// # Safety
/// See [`poll`]; the task is unfinished and its future not being polled.
unsafe fn finish<F: Future>(ptr: NonNull<Header>, result: Result<F::Output, JoinError>) {
    // SAFETY: per the contract.
    let cell = unsafe { ptr.cast::<TaskCell<F>>().as_ref() };
    let header = &cell.header;
    header.set(FINISHED);
    // Wakes from now on are no-ops.
    header.queued.store(true, Ordering::Release);
    let stage = cell.stage.get();
    // The future's `Drop` may call back into the runtime (or into this task's handle); those
    // paths read FINISHED/COMPLETE and never touch the stage until COMPLETE is set.
    // SAFETY: the stage holds the running future, pinned in place: it is dropped in place,
    // once (FINISHED is set). A panic in its `Drop` still drops the rest of it (unwinding
    // drop glue) and is contained here, as a runtime must.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { ptr::drop_in_place(stage) }));
    if header.has(JOIN_INTEREST) {
        // SAFETY: the stage's previous value was dropped above; nothing else refers to it.
        unsafe { ptr::write(stage, Stage::Finished(result)) };
        header.set(COMPLETE);
        if let Some(waker) = header.join_waker.take() {
            waker.wake();
        }
    } else {
        // SAFETY: as above.
        unsafe { ptr::write(stage, Stage::Consumed) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(result)));
        drop(header.join_waker.take());
    }
}

/// See [`poll`]; `dst` points to an `Option<Result<F::Output, JoinError>>`.
unsafe fn take_output<F: Future>(ptr: NonNull<Header>, dst: *mut ()) {
    // SAFETY: per the contract; only the handle touches the stage once COMPLETE is set, and
    // nothing here calls out while the reference lives.
    let stage = unsafe { &mut *ptr.cast::<TaskCell<F>>().as_ref().stage.get() };
    if let Stage::Finished(_) = stage {
        if let Stage::Finished(result) = mem::replace(stage, Stage::Consumed) {
            // SAFETY: the handle's output type is `F::Output` (`new_task` made both).
            unsafe { *dst.cast::<Option<Result<F::Output, JoinError>>>() = Some(result) };
        }
    }
}

/// See [`poll`].
unsafe fn drop_output<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: per the contract; the reference ends before the old value is dropped.
    let stage = unsafe { &mut *ptr.cast::<TaskCell<F>>().as_ref().stage.get() };
    if let Stage::Finished(_) = stage {
        let old = mem::replace(stage, Stage::Consumed);
        let _ = catch_unwind(AssertUnwindSafe(move || drop(old)));
    }
}

/// Frees the task. `ptr` is the header of a `TaskCell<F>` with no reference left; may run on
/// any thread (its stage is `Consumed`, so only `Send` data is dropped).
unsafe fn dealloc<F: Future>(ptr: NonNull<Header>) {
    let cell = ptr.cast::<TaskCell<F>>();
    // SAFETY: no reference is left, so the cell is ours to read and drop.
    let header = unsafe { &cell.as_ref().header };
    let remote = header.remote;
    let holds_remote = header.holds_remote.load(Ordering::Relaxed);
    debug_assert!(matches!(
        // SAFETY: as above.
        unsafe { &*cell.as_ref().stage.get() },
        Stage::Consumed
    ));
    // SAFETY: as above; dropped once, then the block is released.
    unsafe { ptr::drop_in_place(cell.as_ptr()) };
    // SAFETY: the block came from `Typed::<F>::BLOCK.allocate` in `new_task`.
    unsafe { Typed::<F>::BLOCK.release(cell.cast()) };
    if holds_remote {
        // SAFETY: the count taken by the first waker clone (see `waker_clone`).
        unsafe { Arc::decrement_strong_count(remote) };
    }
}

/// The `JoinHandle`'s reference to a local task, typed by its output.
pub(crate) struct RawJoin<T> {
    task: LocalTask,
    _output: PhantomData<fn() -> T>,
}

impl<T> RawJoin<T> {
    pub(crate) fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let header = self.task.header();
        if header.has(COMPLETE) {
            let mut output: Option<Result<T, JoinError>> = None;
            // SAFETY: owner thread (a `RawJoin` is not `Send`), task alive; `output` has the
            // type `take_output` writes (this handle was made with the task).
            unsafe { (header.vtable.take_output)(self.task.0, ptr::addr_of_mut!(output).cast()) };
            header.clear(COMPLETE);
            header.set(TAKEN);
            return Poll::Ready(output.expect("a completed task has its result"));
        }
        assert!(
            !header.has(TAKEN),
            "coring: JoinHandle polled after it returned its result"
        );
        let waker = match header.join_waker.take() {
            Some(waker) if waker.will_wake(cx.waker()) => waker,
            _ => cx.waker().clone(),
        };
        header.join_waker.set(Some(waker));
        Poll::Pending
    }

    pub(crate) fn abort(&self) {
        let header = self.task.header();
        if header.has(FINISHED | ABORTED) {
            return;
        }
        header.set(ABORTED);
        // SAFETY: the handle's reference keeps the task alive.
        unsafe { schedule(self.task.0, false) };
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl<T> Drop for RawJoin<T> {
    fn drop(&mut self) {
        let header = self.task.header();
        header.clear(JOIN_INTEREST);
        if header.has(COMPLETE) {
            header.clear(COMPLETE);
            // SAFETY: owner thread, task alive (this handle's reference).
            unsafe { (header.vtable.drop_output)(self.task.0) };
        }
        drop(header.join_waker.take());
        // `self.task` releases the handle's reference.
    }
}

/// A panic payload, kept for [`JoinError::into_panic`](super::JoinError::into_panic).
pub(crate) type Payload = Box<dyn std::any::Any + Send + 'static>;
