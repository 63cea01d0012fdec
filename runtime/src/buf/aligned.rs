//! [`AlignedBuf`]: heap memory at a chosen alignment, for direct (`O_DIRECT`) I/O.
//!
//! With `O_DIRECT` the kernel moves data between the device and the user's memory without the
//! page cache, so the buffer's address, the transfer length and the file offset must each be
//! a multiple of the device's logical block size (see `open(2)`, "O_DIRECT"; since Linux 6.1
//! `statx(2)` reports the exact rules as `stx_dio_mem_align` and `stx_dio_offset_align`).
//! A `Vec<u8>` gives no such guarantee; this buffer does.
//!
//! It never reallocates: the capacity is fixed at creation, so the address the kernel was
//! given stays valid for as long as the buffer lives. Where the memory comes from depends on
//! the size:
//! - under 128 KiB: [`std::alloc::alloc_zeroed`] with the requested alignment;
//! - from 128 KiB: blocks of a transparent huge page shared with other large buffers, or
//!   huge pages of its own past 2 MiB (`arena.rs`). A device takes a bounded number of
//!   physically contiguous pieces per request, and a 1 MiB buffer on scattered 4 KiB pages
//!   is 256 of them: two requests or more per op. On a huge page it is one piece and one
//!   request.
//!
//! [`FixedBufPool`](super::FixedBufPool) buffers are on huge pages too, and registered, which
//! also saves the kernel pinning the pages on each op.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use super::arena::{self, Span};
use super::{IoBuf, IoBufMut};

/// A fixed-capacity byte buffer whose first byte sits at a multiple of `align`.
///
/// It behaves like a `Vec<u8>` that cannot grow: [`len`](AlignedBuf::len) bytes hold data
/// (what a write sends; what `Deref` shows), [`capacity`](AlignedBuf::capacity) bytes may be
/// filled by a read. [`new`](AlignedBuf::new) gives `len` zero bytes, ready for either.
///
/// ```
/// use coring::buf::IoBuf;
/// use coring::fs::AlignedBuf;
///
/// let mut buf = AlignedBuf::new(4096, 4096);
/// assert_eq!(buf.stable_ptr() as usize % 4096, 0);
/// buf[..5].copy_from_slice(b"hello");
/// assert_eq!(&buf[..5], b"hello");
/// ```
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    capacity: usize,
    alignment: usize,
    memory: Memory,
}

/// Where the bytes live; each kind frees itself in its own way.
enum Memory {
    /// `alloc_zeroed` with this layout: `capacity` bytes (at least one) at the alignment.
    Heap(Layout),
    /// Part of a huge page, or huge pages of its own; given back when dropped.
    Span(#[allow(dead_code)] Span),
}

// SAFETY: the buffer owns its allocation outright, like a `Vec<u8>` (a span's blocks are its
// own until it is dropped); nothing else points to it, so moving it to another thread or
// sharing `&AlignedBuf` is as safe as for a Vec.
unsafe impl Send for AlignedBuf {}
// SAFETY: as above; `&AlignedBuf` gives only read access to initialized bytes.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// `len` zero bytes at an address that is a multiple of `align`; capacity `len`.
    ///
    /// # Panics
    /// When `align` is not a power of two, or `len` rounded up to `align` overflows `isize`.
    pub fn new(len: usize, align: usize) -> AlignedBuf {
        let mut buf = AlignedBuf::with_capacity(len, align);
        buf.len = len;
        buf
    }

    /// An empty buffer (length 0) with room for `capacity` bytes at a multiple of `align`:
    /// the target of a read, or filled with [`extend_from_slice`](AlignedBuf::extend_from_slice).
    ///
    /// # Panics
    /// As [`new`](AlignedBuf::new).
    pub fn with_capacity(capacity: usize, align: usize) -> AlignedBuf {
        // A zero-size allocation is not allowed; one byte of room is harmless.
        let layout = Layout::from_size_align(capacity.max(1), align).unwrap_or_else(|_| {
            panic!(
                "coring: AlignedBuf of {capacity} bytes at alignment {align}: the alignment \
                 must be a power of two and the size fit in isize"
            )
        });
        // A span starts on a block boundary, which serves every alignment up to a block. If
        // no huge page can be mapped (out of memory or address space), the heap may still
        // have room.
        if capacity >= arena::MIN_LEN && align <= arena::BLOCK {
            if let Ok(span) = Span::new(capacity) {
                return AlignedBuf {
                    ptr: NonNull::new(span.as_ptr()).expect("a span is never at null"),
                    len: 0,
                    capacity,
                    alignment: align,
                    memory: Memory::Span(span),
                };
            }
        }
        // SAFETY: `layout` has a non-zero size. Zeroed memory makes every byte initialized,
        // which `new` relies on (spans are zeroed too).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        AlignedBuf {
            ptr,
            len: 0,
            capacity,
            alignment: align,
            memory: Memory::Heap(layout),
        }
    }

    /// Bytes that hold data.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte holds data.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of room; fixed at creation.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The alignment of the first byte (as asked for; the address may be aligned further).
    pub fn alignment(&self) -> usize {
        self.alignment
    }

    /// Sets the length to `len`, at most the capacity. Every byte is always initialized (the
    /// memory starts zeroed), so growing exposes zeros or whatever a read left there.
    ///
    /// # Panics
    /// When `len` exceeds the capacity.
    pub fn resize(&mut self, len: usize) {
        assert!(
            len <= self.capacity(),
            "coring: AlignedBuf::resize to {len} beyond its capacity {}",
            self.capacity()
        );
        self.len = len;
    }

    /// Empties the buffer (length 0); the capacity stays.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `bytes`.
    ///
    /// # Panics
    /// When they do not fit in the remaining capacity.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let end = self
            .len
            .checked_add(bytes.len())
            .filter(|&end| end <= self.capacity())
            .unwrap_or_else(|| {
                panic!(
                    "coring: AlignedBuf of capacity {} cannot take {} more bytes after {}",
                    self.capacity(),
                    bytes.len(),
                    self.len
                )
            });
        // SAFETY: `len..end` lies inside the allocation (checked above) and cannot overlap
        // `bytes`, which the caller borrows from elsewhere while we hold `&mut self`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                bytes.len(),
            )
        };
        self.len = end;
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if let Memory::Heap(layout) = self.memory {
            // SAFETY: `ptr` came from `alloc_zeroed(layout)` and is freed only here, once.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
        // A span gives its memory back when the field is dropped, after this.
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len <= capacity` bytes are allocated and initialized (the memory
        // started zeroed); `&self` keeps them from being written meanwhile.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Clone for AlignedBuf {
    /// A new allocation with the same capacity, alignment and contents.
    fn clone(&self) -> AlignedBuf {
        let mut copy = AlignedBuf::with_capacity(self.capacity(), self.alignment());
        copy.extend_from_slice(self);
        copy
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .field("alignment", &self.alignment())
            .finish()
    }
}

// SAFETY: the bytes live in an allocation owned by the buffer (heap or span), which never
// reallocates and does not move when the buffer moves; all `capacity` bytes are allocated and (zeroed at
// creation) initialized, so the first `len` certainly are.
unsafe impl IoBuf for AlignedBuf {
    #[inline]
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    #[inline]
    fn bytes_init(&self) -> usize {
        self.len
    }

    #[inline]
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: the same allocation, writable for all `capacity` bytes; `set_init` only grows the
// length, never past the capacity.
unsafe impl IoBufMut for AlignedBuf {
    #[inline]
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    #[inline]
    unsafe fn set_init(&mut self, pos: usize) {
        if self.len < pos {
            self.len = pos.min(self.capacity());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::region::{anon_huge_kib, huge_pages_on};
    use super::*;

    #[test]
    fn a_one_mib_buffer_is_on_a_huge_page_and_a_small_one_on_the_heap() {
        let small = AlignedBuf::new(arena::MIN_LEN - 1, 4096);
        assert!(matches!(small.memory, Memory::Heap(_)));
        let mut large = AlignedBuf::new(1 << 20, 4096);
        assert!(matches!(large.memory, Memory::Span(_)));
        if !huge_pages_on() {
            eprintln!("transparent huge pages are off here: the placement is all to check");
            return;
        }
        large.fill(1);
        let kib = anon_huge_kib(large.stable_ptr() as usize).expect("the buffer in smaps");
        assert!(kib >= 2048, "{kib} KiB of huge pages under a 1 MiB buffer");
    }
}
