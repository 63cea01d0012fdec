//! [`Span`]: memory for large buffers, carved out of huge pages shared between buffers.
//!
//! A large buffer from the heap lies on 4 KiB pages scattered over physical memory, and a
//! direct read or write into it reaches the device as several requests (`region.rs` explains
//! why). A [`Region`] of its own fixes that only for buffers of 2 MiB and more: a 1 MiB buffer
//! cannot fill a huge page, and a mapping that does not cover a whole aligned 2 MiB is never
//! given one. So buffers of at least [`MIN_LEN`] share regions of one huge page each
//! (*chunks*), cut into [`BLOCK`]-sized blocks: a buffer takes a run of consecutive blocks
//! (first fit) and gives it back when dropped. A buffer larger than a chunk gets a region of
//! its own.
//!
//! The chunks are shared by every thread (buffers are `Send`) behind one mutex, held for a few
//! bit operations once per buffer, never per op. A chunk whose blocks are all free is unmapped,
//! except one, kept for the next buffer, so that a loop that makes and drops one buffer does
//! not map and fault a huge page each time round.
//!
//! Memory handed out is zeroed: a chunk comes zeroed from the kernel, and blocks used before
//! are cleared when they are handed out again.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::{Mutex, MutexGuard};

use super::region::{Region, HUGE_PAGE};

/// The unit a chunk is cut into; every span starts on a multiple of it.
pub(crate) const BLOCK: usize = 32 << 10;

/// Blocks per chunk: one bit each in a `u64`.
const BLOCKS: u32 = (HUGE_PAGE / BLOCK) as u32;

/// The smallest buffer worth a span: below it the heap wastes less (a span rounds up to whole
/// blocks, here at most a fifth more) and a few scattered pages cost a device little.
pub(crate) const MIN_LEN: usize = 4 * BLOCK;

/// Zeroed memory of at least `len` bytes, starting on a multiple of [`BLOCK`], that does not
/// move while the span lives.
pub(crate) struct Span {
    ptr: NonNull<u8>,
    home: Home,
}

enum Home {
    /// `blocks` blocks of a shared chunk.
    Chunk { blocks: u32 },
    /// A region of its own, unmapped when dropped.
    Own(#[allow(dead_code)] Region),
}

/// A huge page's worth of blocks and which of them are taken.
struct Chunk {
    region: Region,
    /// Bit `i` set: block `i` belongs to a live span.
    used: u64,
    /// Bit `i` set: block `i` was handed out before and may hold data.
    dirty: u64,
}

static CHUNKS: Mutex<Vec<Chunk>> = Mutex::new(Vec::new());

fn chunks() -> MutexGuard<'static, Vec<Chunk>> {
    // Every update of the list completes before the lock is released, so a panic elsewhere
    // under it leaves the list consistent.
    CHUNKS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Span {
    /// A span of `len` bytes (at least [`MIN_LEN`]).
    pub(crate) fn new(len: usize) -> io::Result<Span> {
        debug_assert!(len >= MIN_LEN);
        if len > HUGE_PAGE {
            let region = Region::new(len)?;
            return Ok(Span {
                ptr: NonNull::new(region.as_ptr()).expect("a region is never at null"),
                home: Home::Own(region),
            });
        }
        let blocks = len.div_ceil(BLOCK) as u32;
        let mut chunks = chunks();
        let found = chunks
            .iter()
            .enumerate()
            .find_map(|(i, chunk)| Some((i, first_free_run(chunk.used, blocks)?)));
        let (index, first) = match found {
            Some(found) => found,
            None => {
                chunks.push(Chunk {
                    region: Region::new(HUGE_PAGE)?,
                    used: 0,
                    dirty: 0,
                });
                (chunks.len() - 1, 0)
            }
        };
        let chunk = &mut chunks[index];
        let mask = run_mask(first, blocks);
        chunk.used |= mask;
        let was_dirty = chunk.dirty & mask != 0;
        chunk.dirty |= mask;
        // SAFETY: `first + blocks <= BLOCKS`, so the offset stays inside the chunk's region.
        let ptr = unsafe { chunk.region.as_ptr().add(first as usize * BLOCK) };
        drop(chunks);
        if was_dirty {
            // SAFETY: the blocks `first..first + blocks` (at least `len` bytes) were just
            // marked used, so they belong to this span alone.
            unsafe { ptr::write_bytes(ptr, 0, len) };
        }
        Ok(Span {
            ptr: NonNull::new(ptr).expect("a region is never at null"),
            home: Home::Chunk { blocks },
        })
    }

    /// The first byte.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        let Home::Chunk { blocks } = self.home else {
            return; // an own region unmaps itself
        };
        let mut chunks = chunks();
        let index = chunks
            .iter()
            .position(|chunk| chunk.region.contains(self.ptr.as_ptr()))
            .expect("a span's chunk lives while the span does");
        let chunk = &mut chunks[index];
        let first = ((self.ptr.as_ptr() as usize - chunk.region.as_ptr() as usize) / BLOCK) as u32;
        chunk.used &= !run_mask(first, blocks);
        let spare_elsewhere = || {
            chunks
                .iter()
                .enumerate()
                .any(|(i, other)| i != index && other.used == 0)
        };
        if chunks[index].used == 0 && spare_elsewhere() {
            let unused = chunks.swap_remove(index);
            drop(chunks);
            drop(unused); // unmapped outside the lock
        }
    }
}

/// The first block of the lowest run of `len` free blocks in a chunk whose taken blocks are
/// `used`, if it has one.
fn first_free_run(used: u64, len: u32) -> Option<u32> {
    let free = !used;
    // Bit `i` of `starts` stays set while blocks `i..i + k` are all free; shifting brings in
    // zeros, so a run never reaches past the last block.
    let starts = (1..len).fold(free, |starts, k| starts & (free >> k));
    (starts != 0).then(|| starts.trailing_zeros())
}

/// The bits of blocks `first..first + len`.
fn run_mask(first: u32, len: u32) -> u64 {
    debug_assert!(len >= 1 && first + len <= BLOCKS);
    (u64::MAX >> (BLOCKS - len)) << first
}

#[cfg(test)]
mod tests {
    use super::super::region::{anon_huge_kib, huge_pages_on};
    use super::*;

    #[test]
    fn free_runs_are_found_first_fit_and_never_past_the_chunk() {
        assert_eq!(first_free_run(0, 64), Some(0));
        assert_eq!(first_free_run(0, 4), Some(0));
        assert_eq!(first_free_run(0b1, 4), Some(1));
        assert_eq!(first_free_run(0b1111_0110, 2), Some(8));
        assert_eq!(first_free_run(0b1111_0110, 1), Some(0));
        assert_eq!(first_free_run(u64::MAX, 1), None);
        assert_eq!(first_free_run(1, 64), None);
        assert_eq!(first_free_run(u64::MAX >> 4, 4), Some(60));
        assert_eq!(first_free_run(u64::MAX >> 4, 5), None);
        assert_eq!(run_mask(0, 64), u64::MAX);
        assert_eq!(run_mask(60, 4), 0xf << 60);
        assert_eq!(run_mask(3, 1), 0b1000);
    }

    /// The spans of one test live together, so their blocks must not overlap, whatever other
    /// tests of this binary hold in the same chunks meanwhile.
    #[test]
    fn spans_are_zeroed_aligned_disjoint_and_reused_clean() {
        let lens = [
            MIN_LEN,
            1 << 20,
            MIN_LEN + 1,
            300_000,
            HUGE_PAGE,
            HUGE_PAGE + 1,
        ];
        for round in 0..3u8 {
            let spans: Vec<(Span, usize)> = lens
                .iter()
                .map(|&len| (Span::new(len).unwrap(), len))
                .collect();
            for (span, len) in &spans {
                assert_eq!(span.as_ptr() as usize % BLOCK, 0);
                // SAFETY: the span's `len` bytes are ours while it lives.
                let bytes = unsafe { std::slice::from_raw_parts_mut(span.as_ptr(), *len) };
                assert!(bytes.iter().all(|&b| b == 0), "round {round}, len {len}");
                bytes.fill(round + 1);
            }
            // Every span still holds its own fill: none wrote over another.
            for (span, len) in &spans {
                // SAFETY: as above.
                let bytes = unsafe { std::slice::from_raw_parts(span.as_ptr(), *len) };
                assert!(bytes.iter().all(|&b| b == round + 1), "len {len}");
            }
        }
    }

    #[test]
    fn a_one_mib_span_is_on_a_huge_page_where_the_kernel_grants_them() {
        if !huge_pages_on() {
            eprintln!("transparent huge pages are off here: nothing to check");
            return;
        }
        let span = Span::new(1 << 20).unwrap();
        // SAFETY: the span's bytes are ours; touching them faults the page in.
        unsafe { ptr::write_bytes(span.as_ptr(), 1, 1 << 20) };
        let kib = anon_huge_kib(span.as_ptr() as usize).expect("the span in smaps");
        assert!(kib >= 2048, "{kib} KiB of huge pages under a 1 MiB span");
    }

    #[test]
    fn empty_chunks_are_unmapped_but_one() {
        // Enough full-chunk spans that other tests' blocks cannot take them all.
        let spans: Vec<Span> = (0..4).map(|_| Span::new(HUGE_PAGE).unwrap()).collect();
        assert!(spans
            .iter()
            .all(|s| matches!(s.home, Home::Chunk { blocks: BLOCKS })));
        drop(spans);
        let empty = chunks().iter().filter(|c| c.used == 0).count();
        assert!(empty <= 1, "{empty} empty chunks kept");
    }
}
