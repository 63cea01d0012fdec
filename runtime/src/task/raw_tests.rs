//! Edge cases of the raw task's references (run them under `.ci/asan` too): wakers that
//! outlive their runtime on other threads, wakes during a task's last poll, a task whose
//! future owns its own handle, outputs that outlive the runtime, and `cancel_all` from inside
//! a task's poll.

use std::cell::{Cell, RefCell};
use std::future::{pending, poll_fn};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use super::cache::TaskCache;
use super::{spawn, yield_now, JoinHandle};
use crate::runtime::Runtime;

fn runtime() -> Runtime {
    Runtime::new().expect("a runtime")
}

/// Stores a clone of the task's waker, then finishes or waits forever.
fn stash_waker(slot: &Arc<Mutex<Option<Waker>>>) -> impl FnMut(&mut std::task::Context<'_>) {
    let slot = slot.clone();
    move |cx| *slot.lock().unwrap() = Some(cx.waker().clone())
}

#[test]
fn a_finished_tasks_waker_outlives_its_runtime_on_another_thread() {
    let slot = Arc::new(Mutex::new(None));
    let rt = runtime();
    let mut stash = stash_waker(&slot);
    rt.block_on(async move {
        spawn(poll_fn(move |cx| {
            stash(cx);
            Poll::Ready(())
        }))
        .await
        .unwrap();
    });
    drop(rt);
    let waker = slot.lock().unwrap().take().unwrap();
    std::thread::spawn(move || {
        waker.wake_by_ref();
        let other = waker.clone();
        other.wake();
        drop(waker); // the last reference: the task is freed on this thread
    })
    .join()
    .unwrap();
}

#[test]
fn a_pending_tasks_waker_outlives_its_runtime_on_another_thread() {
    let slot = Arc::new(Mutex::new(None));
    let rt = runtime();
    let mut stash = stash_waker(&slot);
    // The future holds an `Rc`: it must be dropped on this thread, at shutdown.
    let local = Rc::new(());
    let held = local.clone();
    // The handle is returned out of `block_on` on purpose.
    #[allow(clippy::async_yields_async)]
    let handle = rt.block_on(async move {
        let handle = spawn(async move {
            let _held = held;
            poll_fn(|cx| {
                stash(cx);
                Poll::<()>::Pending
            })
            .await;
        });
        yield_now().await;
        handle
    });
    assert!(!handle.is_finished());
    drop(rt);
    assert!(handle.is_finished(), "shutdown finishes every task");
    assert_eq!(
        Rc::strong_count(&local),
        1,
        "the future was dropped at shutdown"
    );
    drop(handle);
    let waker = slot.lock().unwrap().take().unwrap();
    std::thread::spawn(move || {
        waker.wake_by_ref(); // finished: a no-op
        drop(waker);
    })
    .join()
    .unwrap();
}

#[test]
fn a_wake_from_another_thread_runs_the_task_again() {
    let slot = Arc::new(Mutex::new(None));
    let rt = runtime();
    let mut stash = stash_waker(&slot);
    let polls = rt.block_on(async move {
        let polls = Rc::new(Cell::new(0));
        let p = polls.clone();
        let handle = spawn(poll_fn(move |cx| {
            p.set(p.get() + 1);
            if p.get() == 3 {
                return Poll::Ready(());
            }
            stash(cx);
            Poll::Pending
        }));
        for _ in 0..2 {
            while slot.lock().unwrap().is_none() {
                yield_now().await;
            }
            let waker = slot.lock().unwrap().take().unwrap();
            std::thread::spawn(move || waker.wake()).join().unwrap();
        }
        handle.await.unwrap();
        polls.get()
    });
    assert_eq!(polls, 3);
    assert_eq!(rt.tasks(), 0);
}

#[test]
fn a_wake_during_the_last_poll_is_harmless() {
    let rt = runtime();
    let out = rt.block_on(async {
        let handle = spawn(poll_fn(|cx| {
            cx.waker().wake_by_ref();
            Poll::Ready(7)
        }));
        // Its stale run-queue entry is skipped.
        yield_now().await;
        handle.await.unwrap()
    });
    assert_eq!(out, 7);
    assert_eq!(rt.tasks(), 0);
}

#[test]
fn a_future_that_owns_its_own_handle() {
    let rt = runtime();
    rt.block_on(async {
        let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
        let inner = slot.clone();
        let handle = spawn(async move {
            let _inner = inner;
            pending::<()>().await;
        });
        *slot.borrow_mut() = Some(handle);
        drop(slot);
        yield_now().await;
    });
    // The handle is dropped while its task's future is dropped, at shutdown.
    assert_eq!(rt.tasks(), 1);
    drop(rt);
}

#[test]
fn a_task_aborted_while_its_handle_lives_in_its_future() {
    let rt = runtime();
    rt.block_on(async {
        let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
        let inner = slot.clone();
        let handle = spawn(async move {
            yield_now().await;
            // Aborts itself through the handle it owns, then drops it at the next await.
            inner.borrow().as_ref().unwrap().abort();
            drop(inner);
            yield_now().await;
            unreachable!("the task ran past its abort");
        });
        *slot.borrow_mut() = Some(handle);
        drop(slot);
        for _ in 0..4 {
            yield_now().await;
        }
    });
    assert_eq!(rt.tasks(), 0);
}

#[test]
fn an_output_outlives_its_runtime() {
    let rt = runtime();
    #[allow(clippy::async_yields_async)]
    let handle = rt.block_on(async {
        let handle = spawn(async { Rc::new(String::from("output")) });
        while !handle.is_finished() {
            yield_now().await;
        }
        handle
    });
    drop(rt);
    drop(handle); // drops the `Rc` output here, on its thread
}

#[test]
fn cancel_all_from_inside_a_poll_aborts_the_running_task() {
    let rt = runtime();
    rt.block_on(async {
        let other = spawn(pending::<()>());
        let reached = Rc::new(Cell::new(false));
        let r = reached.clone();
        let caller = spawn(async move {
            yield_now().await;
            crate::runtime::context::with_core(|core| core.scheduler.cancel_all());
            yield_now().await;
            r.set(true);
        });
        assert!(caller.await.unwrap_err().is_cancelled());
        assert!(other.await.unwrap_err().is_cancelled());
        assert!(!reached.get());
    });
    assert_eq!(rt.tasks(), 0);
}

#[test]
fn the_cache_keeps_blocks_within_its_budget() {
    use std::alloc::{alloc, Layout};
    use std::ptr::NonNull;
    let cache = TaskCache::new();
    let layout = Layout::from_size_align(64, 16).unwrap();
    let mut kept = 0;
    for _ in 0..10_000 {
        // SAFETY: a non-zero size.
        let block = NonNull::new(unsafe { alloc(layout) }).unwrap();
        if cache.give(0, block, 64) {
            kept += 1;
        } else {
            // SAFETY: allocated just above with `layout`, not kept.
            unsafe { std::alloc::dealloc(block.as_ptr(), layout) };
        }
    }
    assert!(kept > 0 && kept < 10_000);
    let block = cache.take(0).expect("a cached block");
    assert!(cache.give(0, block, 64));
    // Dropping the cache frees what it kept (ASan reports a double free or a bad layout).
    drop(cache);
}
