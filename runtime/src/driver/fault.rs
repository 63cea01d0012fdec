//! Fault injection for tests (feature `test-util`): make this thread's next
//! `io_uring_enter` calls fail as the kernel may make them fail (`EINTR`, `EAGAIN`, `EBUSY`),
//! after the entries were published, without entering the kernel.

use std::cell::Cell;

thread_local! {
    static FAIL_ENTERS: Cell<(i32, u32)> = const { Cell::new((0, 0)) };
    static INJECTED: Cell<u64> = const { Cell::new(0) };
}

/// Makes the next `count` `io_uring_enter` calls on this thread fail with `errno`.
pub fn fail_next_enters(errno: i32, count: u32) {
    FAIL_ENTERS.with(|f| f.set((errno, count)));
}

/// How many failures were injected on this thread so far.
pub fn injected_failures() -> u64 {
    INJECTED.with(Cell::get)
}

pub(super) fn take_enter_error() -> Option<i32> {
    FAIL_ENTERS.with(|f| {
        let (errno, count) = f.get();
        (count > 0).then(|| {
            f.set((errno, count - 1));
            INJECTED.with(|n| n.set(n.get() + 1));
            errno
        })
    })
}
