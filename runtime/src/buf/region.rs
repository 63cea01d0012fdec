//! [`Region`]: memory for I/O buffers, mapped on its own and backed by transparent huge pages
//! where the kernel grants them.
//!
//! A region is an anonymous mapping that starts on a 2 MiB boundary and is advised
//! `MADV_HUGEPAGE`, so each whole 2 MiB of it can be one physically contiguous page (when
//! `/sys/kernel/mm/transparent_hugepage/enabled` is `always` or `madvise`; otherwise it is
//! ordinary memory and works the same). That matters for direct I/O: the kernel builds a
//! request from the buffer's physically contiguous runs, and a device takes a bounded number
//! of them per request (`/sys/block/*/queue/max_segments`; 254 for this machine's virtio
//! disk). A 1 MiB buffer on 4 KiB pages is 256 runs, split into two requests or more; on a
//! huge page it is one run and one request. Registered with the ring, the kernel also keeps
//! one entry per huge page instead of 512 (`IORING_REGISTER_BUFFERS` coalesces them).
//!
//! The memory comes zeroed from the kernel and is unmapped on drop.

use std::io;
use std::ptr::{self, NonNull};

/// The size (and alignment) of a transparent huge page on x86-64: a page-table entry one
/// level up maps 2 MiB.
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// An anonymous, zeroed, page-aligned mapping of `len` bytes starting on a [`HUGE_PAGE`]
/// boundary. It does not move while it lives.
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a region owns its mapping outright and has no tie to the thread that made it: any
// thread may use the memory (under its owner's rules) or unmap it.
unsafe impl Send for Region {}

impl Region {
    /// Maps `len` (non-zero) bytes.
    pub(crate) fn new(len: usize) -> io::Result<Region> {
        assert!(len > 0, "a region holds at least one byte");
        let too_large = || io::Error::new(io::ErrorKind::InvalidInput, "coring: region too large");
        let mapped_len = round_up(len, page_size()).ok_or_else(too_large)?;
        // Map a huge page more than needed, then give back the ends around an aligned start.
        let span = mapped_len.checked_add(HUGE_PAGE).ok_or_else(too_large)?;
        // SAFETY: a new private anonymous mapping at an address the kernel picks; it replaces
        // nothing of ours. The result is checked for MAP_FAILED below.
        let raw = unsafe {
            libc::mmap(
                ptr::null_mut(),
                span,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let start = raw as usize;
        let aligned = round_up(start, HUGE_PAGE).expect("a mapped address leaves room to align");
        let end = aligned + mapped_len;
        // SAFETY: both ranges lie inside the mapping just made (`aligned - start < HUGE_PAGE`
        // and `end <= start + span`), are page aligned, and nothing points into them.
        unsafe {
            if aligned > start {
                libc::munmap(raw, aligned - start);
            }
            if start + span > end {
                libc::munmap(end as *mut libc::c_void, start + span - end);
            }
        }
        if mapped_len >= HUGE_PAGE {
            // Advice only: where transparent huge pages are off or compiled out, the region
            // stays on ordinary pages, which is still correct.
            // SAFETY: the range is the region's own mapping; the advice changes no contents.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    mapped_len,
                    libc::MADV_HUGEPAGE,
                )
            };
        }
        Ok(Region {
            ptr: NonNull::new(aligned as *mut u8).expect("mmap does not return null"),
            len: mapped_len,
        })
    }

    /// The first byte; the region's `len` bytes follow it.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Whether `addr` lies inside the region.
    pub(crate) fn contains(&self, addr: *const u8) -> bool {
        (self.ptr.as_ptr() as usize..self.ptr.as_ptr() as usize + self.len)
            .contains(&(addr as usize))
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once. Its owner guarantees that nothing
        // (neither the program nor the kernel) still uses it.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// `value` rounded up to a multiple of `to` (a power of two), unless that overflows.
fn round_up(value: usize, to: usize) -> Option<usize> {
    Some(value.checked_add(to - 1)? & !(to - 1))
}

/// `AnonHugePages` of the mapping that holds `addr`, from `/proc/self/smaps`, in KiB.
#[cfg(test)]
pub(crate) fn anon_huge_kib(addr: usize) -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for line in smaps.lines() {
        let range = line.split_whitespace().next().unwrap_or("");
        if let Some((from, to)) = range.split_once('-') {
            if let (Ok(from), Ok(to)) = (
                usize::from_str_radix(from, 16),
                usize::from_str_radix(to, 16),
            ) {
                inside = (from..to).contains(&addr);
                continue;
            }
        }
        if let Some(kib) = line.strip_prefix("AnonHugePages:").filter(|_| inside) {
            return kib.trim().trim_end_matches("kB").trim().parse().ok();
        }
    }
    None
}

/// Whether transparent huge pages can back an advised mapping here.
#[cfg(test)]
pub(crate) fn huge_pages_on() -> bool {
    let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
    mode.is_ok_and(|m| m.contains("[always]") || m.contains("[madvise]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_is_zeroed_aligned_and_writable() {
        for len in [1, 4096, 5000, HUGE_PAGE, HUGE_PAGE + 4096, 3 * HUGE_PAGE] {
            let region = Region::new(len).unwrap();
            assert_eq!(region.as_ptr() as usize % HUGE_PAGE, 0, "len {len}");
            // SAFETY: the region's `len` bytes are mapped, zeroed and ours.
            let bytes = unsafe { std::slice::from_raw_parts_mut(region.as_ptr(), len) };
            assert!(bytes.iter().all(|&b| b == 0));
            bytes.fill(0xa5);
            assert!(bytes.iter().all(|&b| b == 0xa5));
        }
    }

    #[test]
    fn a_large_region_is_on_huge_pages_where_the_kernel_grants_them() {
        if !huge_pages_on() {
            eprintln!("transparent huge pages are off here: nothing to check");
            return;
        }
        let region = Region::new(2 * HUGE_PAGE).unwrap();
        // SAFETY: the region's bytes are mapped and ours; touching them faults pages in.
        unsafe { ptr::write_bytes(region.as_ptr(), 1, 2 * HUGE_PAGE) };
        let kib = anon_huge_kib(region.as_ptr() as usize).expect("the region in smaps");
        assert!(kib >= 2048, "{kib} KiB of huge pages in a 4 MiB region");
    }
}
