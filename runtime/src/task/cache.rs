//! Freed task allocations, kept by the scheduler for the next spawn.
//!
//! A program spawns few kinds of tasks, many times each, often in bursts (a batch of requests,
//! a fan-out). The allocator's own per-thread cache holds only a handful of blocks per size, so
//! a burst of frees goes to its slower paths. Here a task's block is rounded up to a size class
//! (multiples of [`GRANULE`] up to [`MAX_SIZE`] bytes, aligned to [`ALIGN`]); when the task is
//! freed on a thread that runs a coring runtime the block goes to that runtime's cache, and
//! the next spawn of any task of the same class takes it back. The cache keeps at most
//! [`BUDGET`] bytes per runtime and frees the rest, and everything when the runtime goes.
//!
//! Blocks are plain global-allocator memory with a fixed layout per class, so a block freed on
//! one runtime's thread may serve a task of another: only the layout matters.
//!
//! Debug builds (and so the AddressSanitizer run, `.ci/asan`) skip the cache: every task goes
//! back to the allocator, so a use after free of a task is reported, not hidden by reuse.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;

/// Size classes are multiples of this.
const GRANULE: usize = 64;
/// The largest task kept.
const MAX_SIZE: usize = 1024;
const CLASSES: usize = MAX_SIZE / GRANULE;
/// Alignment of every cached block (tasks needing more are not cached).
const ALIGN: usize = 16;
/// Bytes of freed tasks a runtime keeps.
const BUDGET: usize = 256 * 1024;
const ENABLED: bool = !cfg!(debug_assertions);

/// How a task of a given layout is allocated.
#[derive(Clone, Copy)]
pub(crate) struct Block {
    layout: Layout,
    class: Option<usize>,
}

impl Block {
    /// The block for a task whose allocation has `layout`.
    pub(crate) const fn for_layout(layout: Layout) -> Block {
        if !ENABLED || layout.align() > ALIGN || layout.size() > MAX_SIZE || layout.size() == 0 {
            return Block {
                layout,
                class: None,
            };
        }
        let class = (layout.size() - 1) / GRANULE;
        let Ok(layout) = Layout::from_size_align((class + 1) * GRANULE, ALIGN) else {
            panic!("size classes are valid layouts");
        };
        Block {
            layout,
            class: Some(class),
        }
    }

    /// A block from `cache` or, failing that, from the global allocator.
    pub(crate) fn allocate(self, cache: &TaskCache) -> NonNull<u8> {
        if let Some(block) = self.class.and_then(|class| cache.take(class)) {
            return block;
        }
        // SAFETY: the layout's size is not zero (a task has a header).
        NonNull::new(unsafe { alloc(self.layout) })
            .unwrap_or_else(|| handle_alloc_error(self.layout))
    }

    /// Gives `block` back: to the current runtime's cache if there is room, else to the
    /// allocator.
    ///
    /// # Safety
    /// `block` came from [`allocate`](Block::allocate) on a `Block` for the same layout, and
    /// nothing refers to it any more.
    pub(crate) unsafe fn release(self, block: NonNull<u8>) {
        if let Some(class) = self.class {
            let kept = crate::runtime::context::with_core(|core| {
                core.scheduler
                    .cache()
                    .give(class, block, self.layout.size())
            });
            if kept == Some(true) {
                return;
            }
        }
        // SAFETY: per the contract, allocated with `self.layout` and unused.
        unsafe { dealloc(block.as_ptr(), self.layout) };
    }
}

/// One runtime's freed task blocks, by size class.
pub(crate) struct TaskCache {
    free: RefCell<[Vec<NonNull<u8>>; CLASSES]>,
    bytes: Cell<usize>,
}

impl TaskCache {
    pub(crate) fn new() -> Self {
        TaskCache {
            free: RefCell::new(std::array::from_fn(|_| Vec::new())),
            bytes: Cell::new(0),
        }
    }

    pub(super) fn take(&self, class: usize) -> Option<NonNull<u8>> {
        let block = self.free.borrow_mut()[class].pop()?;
        self.bytes.set(self.bytes.get() - (class + 1) * GRANULE);
        Some(block)
    }

    pub(super) fn give(&self, class: usize, block: NonNull<u8>, size: usize) -> bool {
        if self.bytes.get() + size > BUDGET {
            return false;
        }
        self.free.borrow_mut()[class].push(block);
        self.bytes.set(self.bytes.get() + size);
        true
    }
}

impl Drop for TaskCache {
    fn drop(&mut self) {
        for (class, blocks) in self.free.get_mut().iter_mut().enumerate() {
            let Ok(layout) = Layout::from_size_align((class + 1) * GRANULE, ALIGN) else {
                continue;
            };
            for block in blocks.drain(..) {
                // SAFETY: every cached block of this class was allocated with this layout and
                // is unused.
                unsafe { dealloc(block.as_ptr(), layout) };
            }
        }
    }
}
