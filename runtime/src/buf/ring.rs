//! Provided buffer rings (`IORING_REGISTER_PBUF_RING`, Linux 5.19+): the kernel picks a
//! buffer when data arrives, so a connection that is idle holds no buffer at all.
//!
//! A [`BufRing`] is registered with the current thread's ring under a buffer group id. A
//! multishot receive (see `TcpStream::recv_multishot` in `coring::net`) names the group; each
//! completion says which buffer the kernel filled, and hands it out as a [`ProvidedBuf`],
//! which returns the buffer to the ring when dropped.
//!
//! # Memory
//! The ring's entries and buffers are freed only when the last reference goes: the `BufRing`
//! itself, every `ProvidedBuf`, and every op that names the group (ops keep an `Rc`), and
//! only after the group was unregistered from the kernel. So the kernel never writes into
//! freed memory, even when a stream is dropped with a receive in flight.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::fmt;
use std::io;
use std::ops::Deref;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::{Context, Poll, Waker};

use io_uring::types::BufRingEntry;

use crate::driver::Driver;

/// A ring of equally sized buffers the kernel fills on demand.
///
/// ```
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let ring = coring::buf::BufRing::new(64, 4096)?;
/// assert_eq!(ring.buf_len(), 4096);
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
#[derive(Clone)]
pub struct BufRing {
    inner: Rc<Inner>,
}

struct Inner {
    driver: Rc<Driver>,
    /// The kernel's buffer group, or `None` on the epoll backend, where buffers are handed
    /// out in user space from `free`.
    group: Option<u16>,
    free: std::cell::RefCell<Vec<u16>>,
    entries: NonNull<BufRingEntry>,
    entries_layout: Layout,
    buffers: NonNull<u8>,
    buffers_layout: Layout,
    count: u16,
    buf_len: u32,
    /// Our copy of the tail; published to the kernel with a release store.
    tail: Cell<u16>,
    /// Buffers given back so far (a generation: a receive that found the ring empty waits
    /// until this moves).
    returned: Cell<u64>,
    /// Tasks waiting for a buffer to come back.
    waiters: std::cell::RefCell<Vec<Waker>>,
}

impl BufRing {
    /// Registers `count` buffers of `buf_len` bytes with the current thread's ring.
    /// `count` must be a power of two up to 32768.
    pub fn new(count: u16, buf_len: u32) -> io::Result<BufRing> {
        if !count.is_power_of_two() || count > 32768 {
            return Err(invalid("buffer count must be a power of two up to 32768"));
        }
        if buf_len == 0 {
            return Err(invalid("buffers must not be empty"));
        }
        let driver = crate::runtime::context::driver()?;
        let entries_layout = Layout::from_size_align(
            usize::from(count) * std::mem::size_of::<BufRingEntry>(),
            4096,
        )
        .map_err(|_| invalid("buffer ring too large"))?;
        let buffers_layout = Layout::from_size_align(usize::from(count) * buf_len as usize, 64)
            .map_err(|_| invalid("buffer ring too large"))?;
        // SAFETY: both layouts have a non-zero size (count >= 1, buf_len >= 1).
        let (entries, buffers) = unsafe {
            (
                alloc::alloc_zeroed(entries_layout).cast::<BufRingEntry>(),
                alloc::alloc(buffers_layout),
            )
        };
        let (Some(entries), Some(buffers)) = (NonNull::new(entries), NonNull::new(buffers)) else {
            alloc::handle_alloc_error(entries_layout);
        };
        let group = match &*driver {
            Driver::Uring(ring) => ring
                .register_buf_ring(entries.as_ptr() as u64, count)
                .map(Some)
                .map_err(|e| super::explain_pinning_error(e, "buffer ring")),
            Driver::Epoll(_) => Ok(None),
        };
        let group = match group {
            Ok(group) => group,
            Err(e) => {
                // SAFETY: allocated above with these layouts, never shared with the kernel.
                unsafe {
                    alloc::dealloc(entries.as_ptr().cast(), entries_layout);
                    alloc::dealloc(buffers.as_ptr(), buffers_layout);
                }
                return Err(e);
            }
        };
        let inner = Inner {
            driver,
            group,
            free: Default::default(),
            entries,
            entries_layout,
            buffers,
            buffers_layout,
            count,
            buf_len,
            tail: Cell::new(0),
            returned: Cell::new(0),
            waiters: Default::default(),
        };
        for bid in 0..count {
            inner.push(bid);
        }
        inner.publish();
        Ok(BufRing {
            inner: Rc::new(inner),
        })
    }

    /// The buffer group id to name in ops (`None` on the epoll backend).
    pub fn group(&self) -> Option<u16> {
        self.inner.group
    }

    /// Takes a free buffer in user space (the epoll backend's stand-in for the kernel's
    /// buffer selection): its id and a pointer to its `buf_len` bytes.
    pub(crate) fn pop_free(&self) -> Option<(u16, *mut u8)> {
        let bid = self.inner.free.borrow_mut().pop()?;
        Some((bid, self.inner.buffer(bid)))
    }

    /// Size of each buffer.
    pub fn buf_len(&self) -> u32 {
        self.inner.buf_len
    }

    /// Number of buffers.
    pub fn count(&self) -> u16 {
        self.inner.count
    }

    /// Takes buffer `bid`, which the kernel filled with `len` bytes (from a completion's
    /// `IORING_CQE_F_BUFFER` flag).
    ///
    /// # Safety
    /// The kernel must have handed out `bid` from this ring, with `len` bytes initialized, and
    /// it must not be taken twice.
    pub unsafe fn take(&self, bid: u16, len: u32) -> ProvidedBuf {
        ProvidedBuf {
            ring: self.clone(),
            bid,
            len: len.min(self.inner.buf_len),
        }
    }

    /// Gives buffer `bid` back to the kernel without looking at it.
    ///
    /// # Safety
    /// As for [`take`](BufRing::take).
    pub unsafe fn recycle(&self, bid: u16) {
        self.inner.give_back(bid);
    }

    /// How many buffers have been given back so far: a receive that failed with `ENOBUFS`
    /// (the ring ran dry) remembers this when it is armed, and waits with
    /// [`poll_returned`](BufRing::poll_returned) instead of re-arming in a loop.
    pub fn returned(&self) -> u64 {
        self.inner.returned.get()
    }

    /// Ready once a buffer was given back after [`returned`](BufRing::returned) read `since`;
    /// else the task is woken when one is.
    pub fn poll_returned(&self, since: u64, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.returned.get() != since {
            return Poll::Ready(());
        }
        let mut waiters = self.inner.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Inner {
    fn buffer(&self, bid: u16) -> *mut u8 {
        // SAFETY: `bid < count`, so the buffer lies within the buffers allocation.
        unsafe {
            self.buffers
                .as_ptr()
                .add(usize::from(bid) * self.buf_len as usize)
        }
    }

    fn push(&self, bid: u16) {
        if self.group.is_none() {
            self.free.borrow_mut().push(bid);
            return;
        }
        let tail = self.tail.get();
        let index = usize::from(tail & (self.count - 1));
        // SAFETY: `index` is within the `count` entries we allocated; the kernel only reads
        // entries between its head and our published tail, and this one is past the tail.
        let entry = unsafe { &mut *self.entries.as_ptr().add(index) };
        // SAFETY: `bid < count`, so the buffer lies within the buffers allocation.
        let addr = unsafe {
            self.buffers
                .as_ptr()
                .add(usize::from(bid) * self.buf_len as usize)
        };
        entry.set_addr(addr as u64);
        entry.set_len(self.buf_len);
        entry.set_bid(bid);
        self.tail.set(tail.wrapping_add(1));
    }

    /// Returns a buffer that was handed out, and wakes whoever waits for one.
    fn give_back(&self, bid: u16) {
        self.push(bid);
        self.publish();
        self.returned.set(self.returned.get() + 1);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waiter in waiters {
            waiter.wake();
        }
    }

    fn publish(&self) {
        if self.group.is_none() {
            return;
        }
        // SAFETY: the tail field lives inside the first entry of our allocation; the kernel
        // reads it with acquire ordering, so a release store publishes the entries above.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.as_ptr()) as *const AtomicU16;
            (*tail).store(self.tail.get(), Ordering::Release);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // No op names the group any more (each holds an `Rc`), and the ring is still open
        // (we hold its driver), so once unregistered the kernel cannot touch this memory. If
        // unregistering fails, leak the memory rather than free it under the kernel.
        if let (Some(group), Driver::Uring(ring)) = (self.group, &*self.driver) {
            if ring.unregister_buf_ring(group).is_err() {
                return;
            }
        }
        // SAFETY: allocated in `BufRing::new` with these layouts; the kernel no longer uses
        // them (see above) and no `ProvidedBuf` is left (each holds an `Rc`).
        unsafe {
            alloc::dealloc(self.entries.as_ptr().cast(), self.entries_layout);
            alloc::dealloc(self.buffers.as_ptr(), self.buffers_layout);
        }
    }
}

impl fmt::Debug for BufRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufRing")
            .field("group", &self.inner.group)
            .field("count", &self.inner.count)
            .field("buf_len", &self.inner.buf_len)
            .finish()
    }
}

/// A buffer the kernel filled from a [`BufRing`]; returns to the ring when dropped.
pub struct ProvidedBuf {
    ring: BufRing,
    bid: u16,
    len: u32,
}

impl ProvidedBuf {
    /// The buffer id within its ring.
    pub fn bid(&self) -> u16 {
        self.bid
    }
}

impl Deref for ProvidedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let inner = &self.ring.inner;
        // SAFETY: buffer `bid` is ours until dropped (the kernel handed it out and will not
        // reuse it before we push it back), and the kernel initialized `len` bytes.
        unsafe {
            std::slice::from_raw_parts(
                inner
                    .buffers
                    .as_ptr()
                    .add(usize::from(self.bid) * inner.buf_len as usize),
                self.len as usize,
            )
        }
    }
}

// SAFETY: the buffer lies in the ring's heap allocation, which does not move and stays alive
// while this `ProvidedBuf` (holding an `Rc` to the ring) exists; `len` bytes are initialized.
// So it can be the source of a write (echoing what was received without a copy).
unsafe impl super::IoBuf for ProvidedBuf {
    #[inline]
    fn stable_ptr(&self) -> *const u8 {
        self.deref().as_ptr()
    }

    #[inline]
    fn bytes_init(&self) -> usize {
        self.len as usize
    }

    #[inline]
    fn bytes_total(&self) -> usize {
        self.len as usize
    }
}

impl fmt::Debug for ProvidedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvidedBuf")
            .field("bid", &self.bid)
            .field("len", &self.len)
            .finish()
    }
}

impl Drop for ProvidedBuf {
    fn drop(&mut self) {
        self.ring.inner.give_back(self.bid);
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("coring: {msg}"))
}
