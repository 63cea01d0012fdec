//! `IoBuf`/`IoBufMut` for the standard owned byte containers (and `bytes`, behind a feature).

use super::{IoBuf, IoBufMut};

// SAFETY: a Vec's bytes live on the heap and do not move when the Vec moves; the buffer is
// never reallocated while an op owns it (ops only read its pointer and call `set_init`).
unsafe impl IoBuf for Vec<u8> {
    #[inline]
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    #[inline]
    fn bytes_init(&self) -> usize {
        self.len()
    }
    #[inline]
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as above; the kernel may write up to the capacity, and `set_init` only grows `len`
// over bytes the kernel initialized.
unsafe impl IoBufMut for Vec<u8> {
    #[inline]
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    #[inline]
    unsafe fn set_init(&mut self, pos: usize) {
        if self.len() < pos {
            // SAFETY: the caller guarantees the first `pos` bytes are initialized, and
            // `pos <= capacity` since ops never report more than `bytes_total`.
            unsafe { self.set_len(pos) };
        }
    }
}

// SAFETY: a boxed slice's bytes live on the heap, fully initialized, and never move.
unsafe impl IoBuf for Box<[u8]> {
    #[inline]
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    #[inline]
    fn bytes_init(&self) -> usize {
        self.len()
    }
    #[inline]
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: as above; every byte is always initialized, so `set_init` has nothing to record.
unsafe impl IoBufMut for Box<[u8]> {
    #[inline]
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    #[inline]
    unsafe fn set_init(&mut self, _pos: usize) {}
}

// SAFETY: `'static` memory is valid for the whole program and never moves.
unsafe impl IoBuf for &'static [u8] {
    #[inline]
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    #[inline]
    fn bytes_init(&self) -> usize {
        self.len()
    }
    #[inline]
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: `'static` memory is valid for the whole program and never moves.
unsafe impl<const N: usize> IoBuf for &'static [u8; N] {
    #[inline]
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    #[inline]
    fn bytes_init(&self) -> usize {
        N
    }
    #[inline]
    fn bytes_total(&self) -> usize {
        N
    }
}

// SAFETY: `'static` memory is valid for the whole program and never moves.
unsafe impl IoBuf for &'static str {
    #[inline]
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    #[inline]
    fn bytes_init(&self) -> usize {
        self.len()
    }
    #[inline]
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: a String's bytes live on the heap and do not move when the String moves. Only
// `IoBuf` (write source) is implemented: a read could break UTF-8.
unsafe impl IoBuf for String {
    #[inline]
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    #[inline]
    fn bytes_init(&self) -> usize {
        self.len()
    }
    #[inline]
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

#[cfg(feature = "bytes")]
mod bytes_impls {
    use super::{IoBuf, IoBufMut};

    // SAFETY: `Bytes` is an immutable, reference-counted heap (or static) region; moving the
    // handle does not move the bytes.
    unsafe impl IoBuf for bytes::Bytes {
        #[inline]
        fn stable_ptr(&self) -> *const u8 {
            self.as_ptr()
        }
        #[inline]
        fn bytes_init(&self) -> usize {
            self.len()
        }
        #[inline]
        fn bytes_total(&self) -> usize {
            self.len()
        }
    }

    // SAFETY: a `BytesMut` uniquely owns its heap region, which does not move with the handle
    // and is not reallocated while an op owns it.
    unsafe impl IoBuf for bytes::BytesMut {
        #[inline]
        fn stable_ptr(&self) -> *const u8 {
            self.as_ptr()
        }
        #[inline]
        fn bytes_init(&self) -> usize {
            self.len()
        }
        #[inline]
        fn bytes_total(&self) -> usize {
            self.capacity()
        }
    }

    // SAFETY: as above; the kernel may write up to the capacity.
    unsafe impl IoBufMut for bytes::BytesMut {
        #[inline]
        fn stable_mut_ptr(&mut self) -> *mut u8 {
            self.as_mut_ptr()
        }
        #[inline]
        unsafe fn set_init(&mut self, pos: usize) {
            if self.len() < pos {
                // SAFETY: the caller guarantees the first `pos` bytes are initialized.
                unsafe { self.set_len(pos) };
            }
        }
    }
}
