//! Bare io_uring echo loops: no runtime, no tasks, no wakers. What a runtime's echo server
//! cannot do with less user-space work (for the same ops).
//!
//! - [`run_simple`] with `tuned = false` (`floor-default`): default ring flags; accept, then
//!   per connection recv → send (→ send rest) → recv, keyed by slab index.
//! - [`run_simple`] with `tuned = true` (`floor-tuned`): the same loop on a ring set up with
//!   `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN`. This is the reference of the grid.
//! - [`run_best`] (`floor-best`): multishot accept into fixed-file slots, multishot recv
//!   selecting from a provided buffer ring, sends on the fixed slot, a registered ring fd.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use slab::Slab;

const BUF_SIZE: usize = 4096;
const ACCEPT: u64 = u64::MAX;

struct Conn {
    fd: i32,
    buf: Box<[u8]>,
    len: usize,
    off: usize,
    sending: bool,
}

fn push(
    sq: &mut io_uring::SubmissionQueue<'_>,
    submitter: &io_uring::Submitter<'_>,
    e: squeue::Entry,
) {
    // SAFETY: every entry points into memory owned by a connection in the slab (or the
    // listener), which stays put until its op completes.
    while unsafe { sq.push(&e) }.is_err() {
        sq.sync();
        submitter.submit().expect("submit");
        sq.sync();
    }
}

fn wait(submitter: &io_uring::Submitter<'_>) -> io::Result<()> {
    match submitter.submit_and_wait(1) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The simple bare loop on a default (`tuned = false`) or tuned ring.
pub fn run_simple(listener: std::net::TcpListener, tuned: bool) -> io::Result<()> {
    let mut builder = IoUring::<squeue::Entry, cqueue::Entry>::builder();
    if tuned {
        builder
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_coop_taskrun();
    }
    builder.setup_cqsize(8192);
    let mut ring = builder.build(4096)?;
    let lfd = listener.as_raw_fd();
    let mut conns: Slab<Conn> = Slab::new();
    let (submitter, mut sq, mut cq) = ring.split();
    let accept = opcode::Accept::new(types::Fd(lfd), std::ptr::null_mut(), std::ptr::null_mut())
        .build()
        .user_data(ACCEPT);
    push(&mut sq, &submitter, accept.clone());
    loop {
        sq.sync();
        cq.sync();
        wait(&submitter)?;
        cq.sync();
        for cqe in &mut cq {
            let res = cqe.result();
            let key = cqe.user_data();
            if key == ACCEPT {
                if res >= 0 {
                    crate::set_nodelay(res);
                    let idx = conns.insert(Conn {
                        fd: res,
                        buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
                        len: 0,
                        off: 0,
                        sending: false,
                    });
                    let c = &mut conns[idx];
                    let e = opcode::Recv::new(types::Fd(c.fd), c.buf.as_mut_ptr(), BUF_SIZE as u32)
                        .build()
                        .user_data(idx as u64);
                    push(&mut sq, &submitter, e);
                }
                push(&mut sq, &submitter, accept.clone());
                continue;
            }
            let idx = key as usize;
            let c = &mut conns[idx];
            if res <= 0 {
                // EOF or error (on either op): the connection is done.
                // SAFETY: the fd is owned by this connection and has no op in flight.
                unsafe { libc::close(c.fd) };
                conns.remove(idx);
                continue;
            }
            if c.sending {
                c.off += res as usize;
            } else {
                c.len = res as usize;
                c.off = 0;
                c.sending = true;
            }
            let e = if c.off < c.len {
                opcode::Send::new(
                    types::Fd(c.fd),
                    c.buf[c.off..].as_ptr(),
                    (c.len - c.off) as u32,
                )
                .build()
            } else {
                c.sending = false;
                opcode::Recv::new(types::Fd(c.fd), c.buf.as_mut_ptr(), BUF_SIZE as u32).build()
            };
            push(&mut sq, &submitter, e.user_data(idx as u64));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// floor-best

/// Fixed-file slots: room for the 10,000 idle connections of `net-bench` (the sparse table
/// must not exceed RLIMIT_NOFILE, which `echo-server` raises to its hard limit).
const NFILES: u32 = 16384;
const NBUFS: u16 = 4096;
const BGID: u16 = 7;
const TAG_ACCEPT: u64 = 1;
const TAG_RECV: u64 = 2;
const TAG_SEND: u64 = 3;
const TAG_CLOSE: u64 = 4;

fn ud(tag: u64, gen: u32, slot: u32) -> u64 {
    (tag << 56) | ((gen as u64 & 0xff_ffff) << 32) | slot as u64
}

fn ud_parts(ud: u64) -> (u64, u32, u32) {
    (ud >> 56, ((ud >> 32) & 0xff_ffff) as u32, ud as u32)
}

/// A provided buffer ring of `count` buffers of `BUF_SIZE` bytes (group `bgid`).
pub struct BufRing {
    entries: *mut types::BufRingEntry,
    mem: Box<[u8]>,
    tail: u16,
    mask: u16,
}

impl BufRing {
    /// Maps and registers the ring and hands every buffer to the kernel.
    pub fn new(submitter: &io_uring::Submitter<'_>, count: u16, bgid: u16) -> io::Result<BufRing> {
        assert!(count.is_power_of_two());
        let bytes = count as usize * std::mem::size_of::<types::BufRingEntry>();
        // SAFETY: an anonymous private mapping; checked for failure below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut ring = BufRing {
            entries: ptr.cast(),
            mem: vec![0u8; count as usize * BUF_SIZE].into_boxed_slice(),
            tail: 0,
            mask: count - 1,
        };
        // SAFETY: the mapping lives for the whole process (never unmapped).
        unsafe { submitter.register_buf_ring_with_flags(ptr as u64, count, bgid, 0)? };
        for bid in 0..count {
            ring.add(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// The start of buffer `bid`.
    pub fn buf(&self, bid: u16) -> *const u8 {
        self.mem[bid as usize * BUF_SIZE..].as_ptr()
    }

    /// Queues buffer `bid` for the kernel (visible after [`publish`](Self::publish)).
    pub fn add(&mut self, bid: u16) {
        // SAFETY: the index is masked into the mapping of NBUFS entries.
        let e = unsafe { &mut *self.entries.add((self.tail & self.mask) as usize) };
        e.set_addr(self.buf(bid) as u64);
        e.set_len(BUF_SIZE as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the buffers added so far visible to the kernel.
    pub fn publish(&self) {
        // SAFETY: the tail field sits in the first entry of the live mapping; the kernel reads
        // it with acquire semantics.
        unsafe {
            let tail = types::BufRingEntry::tail(self.entries) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

#[derive(Default)]
struct BestConn {
    live: bool,
    gen: u32,
    /// Received buffers not yet sent back: (bid, len, sent so far).
    pending: VecDeque<(u16, usize, usize)>,
    sending: bool,
    recv_done: bool,
    closing: bool,
}

/// The tuned bare loop with every kernel-side saving this kernel offers.
pub fn run_best(listener: std::net::TcpListener) -> io::Result<()> {
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux (direct descriptors
    // cannot be setsockopt'ed by a plain syscall).
    crate::set_nodelay(listener.as_raw_fd());
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun()
        .setup_submit_all()
        .setup_cqsize(16384)
        .build(4096)?;
    let (mut submitter, mut sq, mut cq) = ring.split();
    submitter.register_files_sparse(NFILES)?;
    // Slot 0 holds the listener; accepted connections get the lowest free slot.
    submitter.register_files_update(0, &[listener.as_raw_fd()])?;
    submitter.register_ring_fd()?;
    let mut bufs = BufRing::new(&submitter, NBUFS, BGID)?;
    let mut conns: Vec<BestConn> = (0..NFILES).map(|_| BestConn::default()).collect();
    let accept = || {
        opcode::AcceptMulti::new(types::Fixed(0))
            .allocate_file_index(true)
            .build()
            .user_data(ud(TAG_ACCEPT, 0, 0))
    };
    let recv = |slot: u32, gen: u32| {
        opcode::RecvMulti::new(types::Fixed(slot), BGID)
            .build()
            .user_data(ud(TAG_RECV, gen, slot))
    };
    push(&mut sq, &submitter, accept());
    loop {
        bufs.publish();
        sq.sync();
        cq.sync();
        wait(&submitter)?;
        cq.sync();
        for cqe in &mut cq {
            let res = cqe.result();
            let flags = cqe.flags();
            let (tag, gen, slot) = ud_parts(cqe.user_data());
            match tag {
                TAG_ACCEPT => {
                    if res >= 0 {
                        let slot = res as u32;
                        let c = &mut conns[slot as usize];
                        c.gen = c.gen.wrapping_add(1) & 0xff_ffff;
                        c.live = true;
                        c.sending = false;
                        c.recv_done = false;
                        c.closing = false;
                        c.pending.clear();
                        push(&mut sq, &submitter, recv(slot, c.gen));
                    }
                    if !cqueue::more(flags) {
                        push(&mut sq, &submitter, accept());
                    }
                }
                TAG_RECV => {
                    let c = &mut conns[slot as usize];
                    if !c.live || c.gen != gen {
                        if let Some(bid) = cqueue::buffer_select(flags) {
                            bufs.add(bid);
                        }
                        continue;
                    }
                    if res > 0 {
                        let bid = cqueue::buffer_select(flags).expect("a selected buffer");
                        c.pending.push_back((bid, res as usize, 0));
                        if !c.sending {
                            c.sending = true;
                            let p = bufs.buf(bid);
                            let e = opcode::Send::new(types::Fixed(slot), p, res as u32)
                                .build()
                                .user_data(ud(TAG_SEND, gen, slot));
                            push(&mut sq, &submitter, e);
                        }
                        if !cqueue::more(flags) {
                            push(&mut sq, &submitter, recv(slot, gen));
                        }
                    } else if res == -libc::ENOBUFS {
                        push(&mut sq, &submitter, recv(slot, gen));
                    } else if !cqueue::more(flags) {
                        c.recv_done = true;
                        if !c.sending && !c.closing {
                            c.closing = true;
                            let e = opcode::Close::new(types::Fixed(slot))
                                .build()
                                .user_data(ud(TAG_CLOSE, gen, slot));
                            push(&mut sq, &submitter, e);
                        }
                    }
                }
                TAG_SEND => {
                    let c = &mut conns[slot as usize];
                    if !c.live || c.gen != gen {
                        continue;
                    }
                    c.sending = false;
                    if res < 0 {
                        for (bid, _, _) in c.pending.drain(..) {
                            bufs.add(bid);
                        }
                        // The peer is gone: the multishot recv ends with an error or EOF.
                        if c.recv_done && !c.closing {
                            c.closing = true;
                            let e = opcode::Close::new(types::Fixed(slot))
                                .build()
                                .user_data(ud(TAG_CLOSE, gen, slot));
                            push(&mut sq, &submitter, e);
                        }
                        continue;
                    }
                    let front = c.pending.front_mut().expect("a buffer in flight");
                    front.2 += res as usize;
                    if front.2 >= front.1 {
                        bufs.add(front.0);
                        c.pending.pop_front();
                    }
                    if let Some(&(bid, len, off)) = c.pending.front() {
                        c.sending = true;
                        // SAFETY: off < len <= BUF_SIZE inside buffer `bid`.
                        let p = unsafe { bufs.buf(bid).add(off) };
                        let e = opcode::Send::new(types::Fixed(slot), p, (len - off) as u32)
                            .build()
                            .user_data(ud(TAG_SEND, gen, slot));
                        push(&mut sq, &submitter, e);
                    } else if c.recv_done && !c.closing {
                        c.closing = true;
                        let e = opcode::Close::new(types::Fixed(slot))
                            .build()
                            .user_data(ud(TAG_CLOSE, gen, slot));
                        push(&mut sq, &submitter, e);
                    }
                }
                TAG_CLOSE => {
                    let c = &mut conns[slot as usize];
                    if c.gen == gen {
                        c.live = false;
                        for (bid, _, _) in c.pending.drain(..) {
                            bufs.add(bid);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
