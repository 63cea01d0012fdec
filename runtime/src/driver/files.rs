//! The ring's registered file table: descriptors the kernel looks up once, when they are
//! registered, instead of at every op (`IOSQE_FIXED_FILE`, "direct descriptors").
//!
//! A registered descriptor saves each op the file-table lookup and the reference count
//! taken and dropped on the `struct file` (two atomic operations on a cache line that other
//! threads of the process may share).
//!
//! The table is registered sparse, the first time a descriptor asks for a slot. Slots are
//! taken and given back by entries in the submission queue, never by `io_uring_register`:
//! `IORING_OP_FILES_UPDATE` with `IORING_FILE_INDEX_ALLOC` lets the kernel pick a free slot,
//! and `IORING_OP_CLOSE` on the slot empties it. Both are ordered with the ops around them,
//! so a slot cannot change hands while an entry submitted earlier may still name it.
//!
//! A descriptor keeps its ordinary fd too: socket options, the readiness fallback and
//! descriptors moved to another worker (whose ring has its own table) use that.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::Unparker;

/// Slots in a ring's file table when the builder does not say.
pub(crate) const DEFAULT_FIXED_FILES: u32 = 4096;

/// The part of a ring's file table that outlives the ring and is reachable from any thread:
/// where registered descriptors dropped elsewhere leave their slot to be emptied.
#[derive(Debug)]
pub(crate) struct FileTable {
    /// Slots whose descriptors are gone; the owning ring closes them at its next turn.
    released: Mutex<Vec<u32>>,
    has_released: AtomicBool,
    /// Cleared when the ring closes, taking its table (and every slot) with it.
    alive: AtomicBool,
    unparker: Arc<Unparker>,
    /// Slots in the table.
    size: u32,
}

impl FileTable {
    pub(super) fn new(unparker: Arc<Unparker>, size: u32) -> Self {
        FileTable {
            released: Mutex::new(Vec::new()),
            has_released: AtomicBool::new(false),
            alive: AtomicBool::new(true),
            unparker,
            size,
        }
    }

    /// Gives `slot` back: the owning ring closes it before its next submission. Called from
    /// any thread; wakes the ring when it may be parked.
    pub(crate) fn release(self: &Arc<Self>, slot: u32) {
        if !self.alive.load(Ordering::Acquire) {
            return; // the ring is closed: its table is gone, and with it the slot
        }
        self.released
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(slot);
        self.has_released.store(true, Ordering::Release);
        if !self.is_current() {
            self.unparker.unpark();
        }
    }

    /// Takes the released slots, if any (the owning ring only).
    pub(super) fn take_released(&self, into: &mut Vec<u32>) {
        // Checked on every park: a plain load first, the read-modify-write only when set.
        if !self.has_released.load(Ordering::Relaxed)
            || !self.has_released.swap(false, Ordering::Acquire)
        {
            return;
        }
        into.append(
            &mut self
                .released
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
    }

    /// Marks the table gone with its ring (the owning ring only, as it closes).
    pub(super) fn close(&self) {
        self.alive.store(false, Ordering::Release);
    }

    /// Whether this is the table of the ring running on this thread.
    pub(crate) fn is_current(self: &Arc<Self>) -> bool {
        crate::runtime::context::with_core(|core| {
            core.driver
                .uring()
                .and_then(|ring| ring.file_table_if_registered())
                .is_some_and(|table| Arc::ptr_eq(table, self))
        })
        .unwrap_or(false)
    }

    /// The error for a full table.
    pub(crate) fn full(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "coring: the ring's registered file table is full ({} slots); \
                 raise it with Builder::fixed_files, or leave more descriptors unregistered",
                self.size
            ),
        )
    }
}

/// The table size to register: what the builder asked for, at most the `RLIMIT_NOFILE` soft
/// limit (the kernel refuses a larger table with `EMFILE`).
pub(super) fn table_size(requested: u32) -> u32 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into our local.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if ok {
        requested.min(u32::try_from(limit.rlim_cur).unwrap_or(u32::MAX))
    } else {
        requested
    }
}
