//! An owned descriptor that closes through the ring.

use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock};

use crate::driver::{Driver, FileTable};
use crate::op::openclose::{close_on_drop, Close, RegisterFile};
use crate::op::{FileRef, Op};

/// An open descriptor owned by a coring socket or file.
///
/// Dropping it closes the descriptor at once: through the ring when a runtime is running on
/// this thread (an `IORING_OP_CLOSE` that enters the kernel with the drop, ordered after the
/// entries this ring queued before it), else with `close(2)`. A peer sees end of stream even
/// if the dropping thread blocks right after. (A descriptor registered with another
/// worker's ring is also held by that ring's table slot, which that worker empties at its
/// next turn; the release wakes it for that.) [`close`](Fd::close) closes through the ring
/// too and reports the result.
///
/// A descriptor can also be [registered](Fd::register) in its ring's file table, after which
/// that ring's ops name it by its slot.
pub struct Fd {
    raw: RawFd,
    registered: OnceLock<Registration>,
}

/// A descriptor's slot in one ring's registered file table.
struct Registration {
    slot: u32,
    table: Arc<FileTable>,
}

impl Fd {
    /// Takes ownership of `fd`.
    pub fn from_owned(fd: OwnedFd) -> Self {
        Fd {
            raw: fd.into_raw_fd(),
            registered: OnceLock::new(),
        }
    }

    /// What an op should name: the descriptor's slot when it is registered with this
    /// thread's ring, else the descriptor itself.
    #[inline]
    pub fn file_ref(&self) -> FileRef {
        match self.registered.get() {
            Some(reg) if reg.table.is_current() => FileRef::registered(self.raw, reg.slot),
            _ => FileRef::from(self.raw),
        }
    }

    /// Registers the descriptor in this thread's ring's file table
    /// (`IORING_OP_FILES_UPDATE`), so the ring's ops on it skip the per-op file lookup and
    /// reference count. The descriptor stays an ordinary fd as well; it leaves the table when
    /// it is closed.
    ///
    /// Registering twice with the same ring does nothing. The registration belongs to the
    /// ring that made it: moved to another worker, the descriptor is used by its fd there.
    /// On the epoll backend there is no table and this does nothing.
    ///
    /// # Errors
    /// No runtime on this thread; the table is full (see `Builder::fixed_files`) or turned
    /// off; the descriptor is already registered with another worker's ring.
    pub async fn register(&self) -> io::Result<()> {
        let driver = crate::runtime::context::driver()?;
        let Driver::Uring(ring) = &*driver else {
            return Ok(());
        };
        if let Some(reg) = self.registered.get() {
            return if reg.table.is_current() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "coring: the descriptor is registered with another worker's ring",
                ))
            };
        }
        let table = ring.file_table()?.clone();
        drop(driver);
        let slot = Op::submit(RegisterFile::new(self.raw, table.clone())).await?;
        if let Err(lost) = self.registered.set(Registration { slot, table }) {
            // A concurrent `register` of the same descriptor finished first.
            lost.table.release(lost.slot);
        }
        Ok(())
    }

    /// Whether the descriptor is registered with this thread's ring.
    pub fn is_registered(&self) -> bool {
        self.registered
            .get()
            .is_some_and(|reg| reg.table.is_current())
    }

    /// Closes the descriptor and reports errors (`IORING_OP_CLOSE`).
    pub async fn close(self) -> io::Result<()> {
        let raw = self.into_unregistered();
        Op::submit(Close::new(raw)).await
    }

    /// Gives the table slot back, if any, and the descriptor up.
    fn into_unregistered(self) -> RawFd {
        let mut this = ManuallyDrop::new(self);
        if let Some(reg) = this.registered.take() {
            reg.table.release(reg.slot);
        }
        this.raw
    }
}

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.raw
    }
}

impl AsFd for Fd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor is open and owned by `self` for the borrow's lifetime.
        unsafe { BorrowedFd::borrow_raw(self.raw) }
    }
}

impl IntoRawFd for Fd {
    fn into_raw_fd(self) -> RawFd {
        let raw = self.into_unregistered();
        crate::driver::forget_fd(raw);
        raw
    }
}

impl FromRawFd for Fd {
    unsafe fn from_raw_fd(raw: RawFd) -> Self {
        Fd {
            raw,
            registered: OnceLock::new(),
        }
    }
}

impl fmt::Debug for Fd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Fd");
        debug.field("raw", &self.raw);
        if let Some(reg) = self.registered.get() {
            debug.field("slot", &reg.slot);
        }
        debug.finish()
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        if let Some(reg) = self.registered.take() {
            reg.table.release(reg.slot);
        }
        close_on_drop(self.raw);
    }
}
