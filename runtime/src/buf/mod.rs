//! Owned buffers: the kernel borrows them for the length of an op, so the op owns them.
//!
//! An I/O method takes a buffer by value and hands it back with the result,
//! `(io::Result<T>, B)`. While the op is in flight the buffer's memory must not move, so only
//! types whose bytes live at a stable address (on the heap, or `'static`) implement
//! [`IoBuf`] and [`IoBufMut`].
//!
//! [`IoBuf::slice`] narrows an op to part of a buffer; [`Slice::into_inner`] gets the whole
//! buffer back.
//!
//! ```
//! use coring::buf::IoBuf;
//!
//! let slice = b"hello world".to_vec().slice(..5);
//! assert_eq!(&slice[..], b"hello");
//! assert_eq!(slice.into_inner().len(), 11);
//! ```

mod aligned;
mod arena;
mod fixed;
mod impls;
mod region;
mod ring;
mod slice;

pub use aligned::AlignedBuf;
pub use fixed::{FixedBuf, FixedBufPool};
pub use ring::{BufRing, ProvidedBuf};
pub use slice::Slice;

use std::ops::{Bound, RangeBounds};

/// A buffer the kernel can read from (the source of a write).
///
/// # Safety
/// [`stable_ptr`](IoBuf::stable_ptr) must point to [`bytes_total`](IoBuf::bytes_total) bytes of
/// memory that stays valid and does not move while the value exists, even when the value itself
/// is moved, and whose first [`bytes_init`](IoBuf::bytes_init) bytes are initialized.
pub unsafe trait IoBuf: Unpin + 'static {
    /// Pointer to the first byte.
    fn stable_ptr(&self) -> *const u8;

    /// Bytes that hold data (a write sends this many).
    fn bytes_init(&self) -> usize;

    /// Bytes of capacity (a read may fill this many).
    fn bytes_total(&self) -> usize;

    /// The index of the registered buffer this memory lies in, for buffers from a
    /// [`FixedBufPool`]: file ops then use `READ_FIXED` / `WRITE_FIXED` (buffered file
    /// writes excepted: see [`Write::by_address`](crate::op::rw::Write::by_address)).
    /// `None` (the default) for ordinary memory. Zero-copy sends (`send_zc`) from such a
    /// buffer use its registered pages too.
    fn fixed_index(&self) -> Option<u16> {
        None
    }

    /// A view of `range` of this buffer; the range is checked against
    /// [`bytes_total`](IoBuf::bytes_total).
    ///
    /// # Panics
    /// When the range is out of bounds, as slice indexing does.
    fn slice(self, range: impl RangeBounds<usize>) -> Slice<Self>
    where
        Self: Sized,
    {
        let begin = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.checked_add(1).expect("range start overflows"),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n.checked_add(1).expect("range end overflows"),
            Bound::Excluded(&n) => n,
            Bound::Unbounded => self.bytes_total(),
        };
        assert!(
            begin <= end && end <= self.bytes_total(),
            "coring: slice {begin}..{end} out of bounds of a buffer of {} bytes",
            self.bytes_total()
        );
        Slice::new(self, begin, end)
    }
}

/// A buffer the kernel can write into (the target of a read).
///
/// # Safety
/// [`stable_mut_ptr`](IoBufMut::stable_mut_ptr) must point to the same memory as
/// [`stable_ptr`](IoBuf::stable_ptr), writable for [`bytes_total`](IoBuf::bytes_total) bytes.
pub unsafe trait IoBufMut: IoBuf {
    /// Mutable pointer to the first byte.
    fn stable_mut_ptr(&mut self) -> *mut u8;

    /// Records that the first `pos` bytes are initialized (a read filled them). Never shrinks
    /// the initialized part.
    ///
    /// # Safety
    /// The first `pos` bytes must really be initialized.
    unsafe fn set_init(&mut self, pos: usize);
}

/// Explains an error from registering memory with the kernel (fixed buffers, buffer rings):
/// the usual cause of `ENOMEM` is the memlock limit.
pub(crate) fn explain_pinning_error(e: std::io::Error, what: &str) -> std::io::Error {
    let advice = match e.raw_os_error() {
        Some(libc::ENOMEM) => format!(
            "the kernel could not pin the {what}: RLIMIT_MEMLOCK (`ulimit -l`) is too low for \
             their size (processes without CAP_IPC_LOCK are limited by it); raise it, or use \
             fewer or smaller buffers"
        ),
        Some(libc::EFAULT) => format!("the kernel refused the {what}' memory"),
        _ => format!("registering {what} failed"),
    };
    std::io::Error::new(e.kind(), format!("coring: {advice} ({e})"))
}
