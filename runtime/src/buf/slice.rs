//! A range of an owned buffer.

use std::ops::{Deref, DerefMut};

use super::{IoBuf, IoBufMut};

/// A view of `begin..end` of an owned buffer, made by [`IoBuf::slice`].
///
/// Reads into a slice fill it from `begin`; writes from a slice send its initialized part.
#[derive(Debug)]
pub struct Slice<T> {
    buf: T,
    begin: usize,
    end: usize,
}

impl<T> Slice<T> {
    pub(crate) fn new(buf: T, begin: usize, end: usize) -> Self {
        Slice { buf, begin, end }
    }

    /// Offset of the view's first byte in the buffer.
    pub fn begin(&self) -> usize {
        self.begin
    }

    /// Offset one past the view's last byte.
    pub fn end(&self) -> usize {
        self.end
    }

    /// The whole buffer.
    pub fn get_ref(&self) -> &T {
        &self.buf
    }

    /// The whole buffer, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.buf
    }

    /// Gives the whole buffer back.
    pub fn into_inner(self) -> T {
        self.buf
    }
}

impl<T: IoBuf> Deref for Slice<T> {
    type Target = [u8];

    /// The initialized bytes of the view.
    fn deref(&self) -> &[u8] {
        let init = self.bytes_init();
        // SAFETY: `begin + init` is within the buffer's initialized bytes (see `bytes_init`),
        // and the memory is valid while `self.buf` is borrowed.
        unsafe { std::slice::from_raw_parts(self.buf.stable_ptr().add(self.begin), init) }
    }
}

impl<T: IoBufMut> DerefMut for Slice<T> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let init = self.bytes_init();
        let begin = self.begin;
        // SAFETY: as in `deref`, and `self.buf` is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.buf.stable_mut_ptr().add(begin), init) }
    }
}

// SAFETY: the view points into `T`'s stable memory, offset by `begin`, with its length
// clamped to `end`; `T`'s guarantees carry over.
unsafe impl<T: IoBuf> IoBuf for Slice<T> {
    #[inline]
    fn stable_ptr(&self) -> *const u8 {
        // SAFETY: `begin <= bytes_total`, checked when the slice was made.
        unsafe { self.buf.stable_ptr().add(self.begin) }
    }

    #[inline]
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init().clamp(self.begin, self.end) - self.begin
    }

    #[inline]
    fn bytes_total(&self) -> usize {
        self.end - self.begin
    }

    #[inline]
    fn fixed_index(&self) -> Option<u16> {
        // A part of a registered buffer is still inside it.
        self.buf.fixed_index()
    }
}

// SAFETY: as for `IoBuf`; `set_init` forwards the offset into the underlying buffer.
unsafe impl<T: IoBufMut> IoBufMut for Slice<T> {
    #[inline]
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: `begin <= bytes_total`, checked when the slice was made.
        unsafe { self.buf.stable_mut_ptr().add(self.begin) }
    }

    #[inline]
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: the caller guarantees `pos` bytes from `begin` are initialized, and bytes
        // before `begin` that the buffer counts as initialized stay so.
        unsafe { self.buf.set_init(self.begin + pos) }
    }
}
