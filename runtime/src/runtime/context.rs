//! The thread's current runtime, set while `block_on` (or the runtime's drop) runs.

use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::ptr;
use std::rc::Rc;

use super::Core;
use crate::driver::Driver;

thread_local! {
    static CURRENT: Cell<*const Core> = const { Cell::new(ptr::null()) };
}

/// Restores the previous current runtime when dropped.
pub(crate) struct EnterGuard<'a> {
    previous: *const Core,
    _core: PhantomData<&'a Core>,
}

/// Makes `core` the thread's current runtime for the guard's lifetime.
pub(crate) fn enter(core: &Core) -> EnterGuard<'_> {
    let previous = CURRENT.with(|c| c.replace(core));
    EnterGuard {
        previous,
        _core: PhantomData,
    }
}

impl Drop for EnterGuard<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

pub(crate) fn is_entered() -> bool {
    CURRENT.with(|c| !c.get().is_null())
}

/// Runs `f` with the current runtime, if there is one.
pub(crate) fn with_core<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    let core = CURRENT.with(Cell::get);
    // SAFETY: CURRENT is non-null only while an `EnterGuard` lives, and the guard borrows the
    // `Core` it points to, so the `Core` is alive for this call.
    unsafe { core.as_ref() }.map(f)
}

/// Whether tasks wait in the current runtime's run queue: the ops they are about to start
/// would join the batch this thread submits when it parks.
pub(crate) fn tasks_ready() -> bool {
    with_core(|core| core.scheduler.has_ready()).unwrap_or(false)
}

/// The current thread's driver, or an error naming the mistake.
#[inline]
pub(crate) fn driver() -> io::Result<Rc<Driver>> {
    with_core(|core| core.driver.clone()).ok_or_else(|| {
        io::Error::other(
            "coring: I/O needs a coring runtime on this thread; \
             run it inside Runtime::block_on or #[coring::main]",
        )
    })
}
