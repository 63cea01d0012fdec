//! An owned descriptor that closes through the ring.

use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use crate::op::openclose::{close_on_drop, Close};
use crate::op::Op;

/// An open descriptor owned by a coring socket or file.
///
/// Dropping it closes the descriptor: through the ring when a runtime is running on this
/// thread (an `IORING_OP_CLOSE` submitted with the next batch, even when no task awaits), else
/// at once with `close(2)`. [`close`](Fd::close) does the same and reports the result.
pub struct Fd {
    raw: RawFd,
}

impl Fd {
    /// Takes ownership of `fd`.
    pub fn from_owned(fd: OwnedFd) -> Self {
        Fd {
            raw: fd.into_raw_fd(),
        }
    }

    /// Closes the descriptor and reports errors (`IORING_OP_CLOSE`).
    pub async fn close(self) -> io::Result<()> {
        let raw = ManuallyDrop::new(self).raw;
        Op::submit(Close::new(raw)).await
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
        let raw = ManuallyDrop::new(self).raw;
        crate::driver::forget_fd(raw);
        raw
    }
}

impl FromRawFd for Fd {
    unsafe fn from_raw_fd(raw: RawFd) -> Self {
        Fd { raw }
    }
}

impl fmt::Debug for Fd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Fd").field(&self.raw).finish()
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        close_on_drop(self.raw);
    }
}
