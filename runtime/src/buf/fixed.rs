//! Registered (fixed) buffers (`IORING_REGISTER_BUFFERS`): the kernel pins and maps them
//! once, so reads and writes into them skip the per-op page pinning.
//!
//! A [`FixedBufPool`] registers its buffers with the current thread's ring. A [`FixedBuf`]
//! checked out of it is an ordinary [`IoBuf`]/[`IoBufMut`]; file reads and writes notice
//! that it is registered and use `IORING_OP_READ_FIXED` / `WRITE_FIXED` by themselves,
//! except a write to a buffered (not `O_DIRECT`) file, which copies into the page cache
//! faster from the buffer's address (see `Write::by_address`). A buffer returns to its pool
//! when dropped.
//!
//! # Memory
//! The buffers are freed only when the pool and every `FixedBuf` (which an in-flight op
//! owns) are gone, and only after they were unregistered, so the kernel never touches freed
//! memory. One registration per ring: a second pool on the same thread fails with `EBUSY`.
//!
//! The pool's memory is one [`Region`]: on transparent huge pages where the kernel grants
//! them, which makes a large direct read or write one device request (see `region.rs`).
//!
//! On the epoll backend nothing is registered; the buffers work as plain memory.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use super::region::Region;
use super::{IoBuf, IoBufMut};
use crate::driver::Driver;

/// A set of equally sized buffers registered with the current thread's ring.
///
/// ```
/// use coring::buf::FixedBufPool;
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let pool = FixedBufPool::new(4, 4096)?;
/// let buf = pool.try_take().expect("a free buffer");
/// assert_eq!(buf.capacity(), 4096);
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
#[derive(Clone)]
pub struct FixedBufPool {
    inner: Rc<Pool>,
}

struct Pool {
    driver: Rc<Driver>,
    registered: bool,
    /// Unmapped by hand in `Drop`, only once the kernel let go of it.
    memory: ManuallyDrop<Region>,
    buf_len: usize,
    free: RefCell<Vec<u16>>,
}

impl FixedBufPool {
    /// Allocates `count` buffers of `buf_len` bytes (page aligned) and registers them.
    ///
    /// The buffers are one mapping, backed by transparent huge pages where the kernel grants
    /// them: for large O_DIRECT transfers, each buffer then reaches the device in few
    /// physically contiguous pieces (one request per 1 MiB op rather than several).
    pub fn new(count: u16, buf_len: usize) -> io::Result<FixedBufPool> {
        if count == 0 || buf_len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "coring: a fixed buffer pool needs at least one non-empty buffer",
            ));
        }
        let driver = crate::runtime::context::driver()?;
        let size = usize::from(count)
            .checked_mul(buf_len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "coring: pool too large"))?;
        let memory = ManuallyDrop::new(Region::new(size)?);
        let iovecs: Vec<libc::iovec> = (0..usize::from(count))
            .map(|i| libc::iovec {
                // SAFETY: `i * buf_len` is within the allocation.
                iov_base: unsafe { memory.as_ptr().add(i * buf_len) }.cast(),
                iov_len: buf_len,
            })
            .collect();
        let registered = match &*driver {
            Driver::Uring(ring) => match ring.register_buffers(&iovecs) {
                Ok(()) => true,
                Err(e) => {
                    // The kernel never took the memory.
                    drop(ManuallyDrop::into_inner(memory));
                    return Err(explain_register_error(e));
                }
            },
            Driver::Epoll(_) => false,
        };
        Ok(FixedBufPool {
            inner: Rc::new(Pool {
                driver,
                registered,
                memory,
                buf_len,
                free: RefCell::new((0..count).rev().collect()),
            }),
        })
    }

    /// Checks out a free buffer (empty: `len() == 0`, `capacity()` bytes of room), if any.
    pub fn try_take(&self) -> Option<FixedBuf> {
        let index = self.inner.free.borrow_mut().pop()?;
        Some(FixedBuf {
            pool: self.inner.clone(),
            index,
            len: 0,
        })
    }

    /// Size of each buffer.
    pub fn buf_len(&self) -> usize {
        self.inner.buf_len
    }

    /// Buffers not checked out.
    pub fn available(&self) -> usize {
        self.inner.free.borrow().len()
    }
}

fn explain_register_error(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EBUSY) => io::Error::new(
            e.kind(),
            format!(
                "coring: this thread's ring already has registered buffers: use one pool per \
                 thread ({e})"
            ),
        ),
        _ => super::explain_pinning_error(e, "fixed buffers"),
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // No `FixedBuf` is left (each holds an `Rc`), so no op uses the buffers. Unregister
        // first; if that fails while the ring is still open, leak rather than free.
        if self.registered {
            if let Driver::Uring(ring) = &*self.driver {
                if ring.unregister_buffers().is_err() {
                    return;
                }
            }
        }
        // SAFETY: dropped once, here; no longer registered, and no `FixedBuf` points into it.
        unsafe { ManuallyDrop::drop(&mut self.memory) };
    }
}

impl fmt::Debug for FixedBufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBufPool")
            .field("buf_len", &self.inner.buf_len)
            .field("available", &self.available())
            .field("registered", &self.inner.registered)
            .finish()
    }
}

/// A registered buffer checked out of a [`FixedBufPool`]; returns to it when dropped.
pub struct FixedBuf {
    pool: Rc<Pool>,
    index: u16,
    len: usize,
}

impl FixedBuf {
    /// Room in the buffer.
    pub fn capacity(&self) -> usize {
        self.pool.buf_len
    }

    /// Sets the number of initialized bytes to `len` (at most the capacity), e.g. to reuse
    /// the buffer: `set_len(0)`.
    pub fn set_len(&mut self, len: usize) {
        assert!(
            len <= self.capacity(),
            "coring: FixedBuf::set_len past capacity"
        );
        self.len = len;
    }

    fn ptr(&self) -> *mut u8 {
        // SAFETY: `index < count`, so the offset is within the pool's allocation.
        unsafe {
            self.pool
                .memory
                .as_ptr()
                .add(usize::from(self.index) * self.pool.buf_len)
        }
    }
}

impl Deref for FixedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: this buffer is ours while checked out; `len` bytes are initialized (the
        // memory was zeroed at allocation, so every byte is).
        unsafe { std::slice::from_raw_parts(self.ptr(), self.len) }
    }
}

impl DerefMut for FixedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and we hold it mutably.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.len) }
    }
}

impl Drop for FixedBuf {
    fn drop(&mut self) {
        self.pool.free.borrow_mut().push(self.index);
    }
}

impl fmt::Debug for FixedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBuf")
            .field("index", &self.index)
            .field("len", &self.len)
            .finish()
    }
}

// SAFETY: the buffer lies in the pool's heap allocation, which does not move and lives while
// this `FixedBuf` (holding an `Rc` to the pool) exists.
unsafe impl IoBuf for FixedBuf {
    #[inline]
    fn stable_ptr(&self) -> *const u8 {
        self.ptr()
    }

    #[inline]
    fn bytes_init(&self) -> usize {
        self.len
    }

    #[inline]
    fn bytes_total(&self) -> usize {
        self.pool.buf_len
    }

    #[inline]
    fn fixed_index(&self) -> Option<u16> {
        self.pool.registered.then_some(self.index)
    }
}

// SAFETY: as above; the whole capacity is writable.
unsafe impl IoBufMut for FixedBuf {
    #[inline]
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr()
    }

    #[inline]
    unsafe fn set_init(&mut self, pos: usize) {
        self.len = self.len.max(pos);
    }
}
