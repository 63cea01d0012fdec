//! The engines measured in-process: coring (plain, fixed buffers, registered file), monoio,
//! glommio and tokio. Each runs one job (`Job`) on one thread and returns operations per
//! second in the measured window.
//!
//! Every engine runs the same user loop: `qd` tasks, each owning one `bs`-byte buffer (4 KiB
//! aligned, which O_DIRECT needs), each a loop of "take the next offset, read or write the
//! whole buffer there, check the length". An operation counts when it completes inside the
//! window (after the warm-up, before the end). Offsets come from `Offsets`: random blocks for
//! random reads, one shared cursor for sequential ones, so QD tasks keep QD operations in
//! flight at consecutive offsets, wrapping at the end of the file.
//!
//! What each engine cannot do like the others is said where it happens: tokio has no
//! positional file I/O (it runs `pread`/`pwrite` on its blocking pool, which is what
//! `tokio::fs` does inside), glommio allocates a buffer per operation (its API hands buffers
//! out and takes them back).

use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the operations do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// 4 KiB reads at random 4 KiB-aligned offsets.
    RandRead4k,
    /// 1 MiB reads at consecutive offsets.
    SeqRead1m,
    /// 1 MiB writes at consecutive offsets (no fsync).
    SeqWrite1m,
}

impl Workload {
    /// All of them, in the order of the grid.
    pub const ALL: [Workload; 3] = [
        Workload::RandRead4k,
        Workload::SeqRead1m,
        Workload::SeqWrite1m,
    ];

    /// The name on the command line and in the outputs.
    pub fn name(self) -> &'static str {
        match self {
            Workload::RandRead4k => "randread4k",
            Workload::SeqRead1m => "seqread1m",
            Workload::SeqWrite1m => "seqwrite1m",
        }
    }

    /// Parses a name given by `name`.
    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Bytes per operation.
    pub fn bs(self) -> usize {
        match self {
            Workload::RandRead4k => 4096,
            Workload::SeqRead1m | Workload::SeqWrite1m => 1 << 20,
        }
    }

    /// Whether the operations write.
    pub fn writes(self) -> bool {
        self == Workload::SeqWrite1m
    }

    /// Whether the offsets are random.
    pub fn random(self) -> bool {
        self == Workload::RandRead4k
    }
}

/// One measurement: a workload on a file, buffered or direct, at a queue depth.
#[derive(Clone, Debug)]
pub struct Job {
    pub workload: Workload,
    pub path: PathBuf,
    /// Size of the file in bytes.
    pub size: u64,
    pub direct: bool,
    pub qd: usize,
    pub warm: Duration,
    pub secs: Duration,
    /// The CPU the engine's thread runs on (glommio pins its own thread to it).
    pub cpu: usize,
}

impl Job {
    fn bs(&self) -> usize {
        self.workload.bs()
    }

    fn window(&self) -> Window {
        let start = Instant::now() + self.warm;
        Window {
            start,
            end: start + self.secs,
        }
    }

    /// Offsets for each of the `qd` tasks: independent random streams, or one shared cursor.
    fn offsets(&self) -> Vec<Offsets> {
        let blocks = self.size / self.bs() as u64;
        let cursor = Arc::new(AtomicU64::new(0));
        (0..self.qd)
            .map(|t| Offsets {
                bs: self.bs() as u64,
                blocks,
                kind: if self.workload.random() {
                    Kind::Random(Rng(0x9e37_79b9_7f4a_7c15 ^ ((t as u64 + 1) * 7919)))
                } else {
                    Kind::Sequential(cursor.clone())
                },
            })
            .collect()
    }

    /// The file opened the way the engine needs it, through std (for the engines that take
    /// a std file).
    fn open_std(&self) -> std::fs::File {
        let mut o = std::fs::OpenOptions::new();
        if self.workload.writes() {
            o.write(true);
        } else {
            o.read(true);
        }
        if self.direct {
            o.custom_flags(libc::O_DIRECT);
        }
        o.open(&self.path)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.path.display()))
    }

    /// The run's result from the operations each task completed in the window.
    fn result(&self, task_ops: &[u64]) -> Run {
        Run {
            ops_per_s: task_ops.iter().sum::<u64>() as f64 / self.secs.as_secs_f64(),
            task_ops: task_ops
                .iter()
                .min()
                .zip(task_ops.iter().max())
                .map(|(a, b)| (*a, *b)),
        }
    }
}

/// What one run of an engine measured.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Operations completed in the measured window, per second (NaN when the run failed).
    pub ops_per_s: f64,
    /// The fewest and the most operations one of the QD tasks completed in the window: how
    /// evenly the engine served them (`None` for fio, which does not say).
    pub task_ops: Option<(u64, u64)>,
}

/// The measured window.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    /// Called after each completed operation: counts it if it is inside the window; false
    /// once the window is over.
    fn tick(&self, ops: &mut u64) -> bool {
        let now = Instant::now();
        if now >= self.end {
            return false;
        }
        if now >= self.start {
            *ops += 1;
        }
        true
    }
}

/// Where a task's next operation goes.
struct Offsets {
    bs: u64,
    blocks: u64,
    kind: Kind,
}

enum Kind {
    Random(Rng),
    /// The index of the next block, shared by the tasks of one run.
    Sequential(Arc<AtomicU64>),
}

impl Offsets {
    fn next(&mut self) -> u64 {
        let block = match &mut self.kind {
            Kind::Random(rng) => rng.below(self.blocks),
            Kind::Sequential(next) => next.fetch_add(1, Ordering::Relaxed) % self.blocks,
        };
        block * self.bs
    }
}

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) % n
    }
}

fn check(res: std::io::Result<usize>, bs: usize, what: &str) {
    match res {
        Ok(n) if n == bs => {}
        Ok(n) => panic!("{what}: {n} bytes instead of {bs}"),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// A byte that makes written data not all zeros.
const FILL: u8 = 0x5a;

/// Which coring variant runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoringVariant {
    /// `coring::fs::File` with `read_at`/`write_at` into `coring::fs::AlignedBuf`.
    Plain,
    /// The same with buffers from a `coring::buf::FixedBufPool` (`READ_FIXED`, and
    /// `WRITE_FIXED` for direct writes: `File` sends buffered writes by address).
    Fixed,
    /// Plain buffers, the file registered with the ring (`File::register`: ops name a slot
    /// of the ring's file table, `IOSQE_FIXED_FILE`).
    RegFile,
    /// Plain buffers on a runtime that submits each op at once (`Builder::eager_submit`).
    Eager,
}

/// coring: `OpenOptions` (with `direct`), QD tasks of `read_at`/`write_at`.
pub fn run_coring(job: &Job, variant: CoringVariant) -> Result<Run, String> {
    let rt = coring::runtime::Runtime::builder()
        .eager_submit(variant == CoringVariant::Eager)
        .build()
        .map_err(|e| format!("coring runtime: {e}"))?;
    rt.block_on(async {
        let mut o = coring::fs::OpenOptions::new();
        if job.workload.writes() {
            o.write(true);
        } else {
            o.read(true);
        }
        let file = o
            .direct(job.direct)
            .open(&job.path)
            .await
            .map_err(|e| format!("coring open: {e}"))?;
        if variant == CoringVariant::RegFile {
            file.register()
                .await
                .map_err(|e| format!("File::register: {e}"))?;
        }
        let file = Rc::new(file);
        let (bs, w) = (job.bs(), job.window());
        let pool = match variant {
            CoringVariant::Plain | CoringVariant::RegFile | CoringVariant::Eager => None,
            CoringVariant::Fixed => Some(
                coring::buf::FixedBufPool::new(job.qd as u16, bs)
                    .map_err(|e| format!("FixedBufPool::new({}, {bs}): {e}", job.qd))?,
            ),
        };
        let mut handles = Vec::new();
        for at in job.offsets() {
            let file = file.clone();
            let writes = job.workload.writes();
            handles.push(match &pool {
                None => {
                    let mut buf = coring::fs::AlignedBuf::new(bs, 4096);
                    buf.fill(FILL);
                    coring::spawn(coring_task(file, buf, at, writes, w))
                }
                Some(pool) => {
                    let mut buf = pool.try_take().expect("one fixed buffer per task");
                    buf.set_len(bs);
                    buf.fill(FILL);
                    coring::spawn(coring_task(file, buf, at, writes, w))
                }
            });
        }
        let mut task_ops = Vec::new();
        for h in handles {
            task_ops.push(h.await.map_err(|e| format!("coring task: {e}"))?);
        }
        Ok(job.result(&task_ops))
    })
    .inspect(|_| {
        let m = rt.metrics();
        eprintln!(
            "  coring: {:.3} io_uring_enter per SQE, {} SQEs, {} io-wq workers",
            m.enters as f64 / m.sqes.max(1) as f64,
            m.sqes,
            m.io_wq_workers
        );
    })
}

async fn coring_task<B: coring::buf::IoBufMut>(
    file: Rc<coring::fs::File>,
    mut buf: B,
    mut at: Offsets,
    writes: bool,
    w: Window,
) -> u64 {
    let bs = buf.bytes_total();
    let mut ops = 0;
    loop {
        let pos = at.next();
        let (res, b) = if writes {
            file.write_at(buf, pos).await
        } else {
            file.read_at(buf, pos).await
        };
        buf = b;
        check(res, bs, "coring");
        if !w.tick(&mut ops) {
            return ops;
        }
    }
}

/// monoio: a std file handed to `monoio::fs::File::from_std`, `read_at`/`write_at` into
/// owned aligned buffers.
pub fn run_monoio(job: &Job) -> Result<Run, String> {
    let file = job.open_std();
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .build()
        .map_err(|e| format!("monoio runtime: {e}"))?;
    rt.block_on(async {
        let file = Rc::new(monoio::fs::File::from_std(file).map_err(|e| e.to_string())?);
        let (bs, w, writes) = (job.bs(), job.window(), job.workload.writes());
        let mut handles = Vec::new();
        for mut at in job.offsets() {
            let file = file.clone();
            handles.push(monoio::spawn(async move {
                let mut buf = OwnedAligned::new(bs);
                let mut ops = 0;
                loop {
                    let pos = at.next();
                    let (res, b) = if writes {
                        file.write_at(buf, pos).await
                    } else {
                        file.read_at(buf, pos).await
                    };
                    buf = b;
                    check(res, bs, "monoio");
                    if !w.tick(&mut ops) {
                        return ops;
                    }
                }
            }));
        }
        let mut task_ops = Vec::new();
        for h in handles {
            task_ops.push(h.await);
        }
        Ok(job.result(&task_ops))
    })
}

/// tokio: `tokio::fs::File` has no positional read or write, so each operation is
/// `spawn_blocking(pread/pwrite)` (what `tokio::fs` runs inside) from QD tasks on a
/// current_thread runtime. The blocking threads inherit the CPU pinning.
pub fn run_tokio(job: &Job) -> Result<Run, String> {
    let file = Arc::new(job.open_std());
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(job.qd.max(1))
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async {
        let (bs, w, writes) = (job.bs(), job.window(), job.workload.writes());
        let mut handles = Vec::new();
        for mut at in job.offsets() {
            let file = file.clone();
            handles.push(tokio::spawn(async move {
                let mut buf = OwnedAligned::new(bs);
                let mut ops = 0;
                loop {
                    let pos = at.next();
                    let f = file.clone();
                    let (res, b) = tokio::task::spawn_blocking(move || {
                        let res = if writes {
                            f.write_at(buf.as_slice(), pos)
                        } else {
                            f.read_at(buf.as_mut_slice(), pos)
                        };
                        (res, buf)
                    })
                    .await
                    .expect("blocking task");
                    buf = b;
                    check(res, bs, "tokio");
                    if !w.tick(&mut ops) {
                        return ops;
                    }
                }
            }));
        }
        let mut task_ops = Vec::new();
        for h in handles {
            task_ops.push(h.await.map_err(|e| format!("tokio task: {e}"))?);
        }
        Ok(job.result(&task_ops))
    })
}

/// glommio: `DmaFile` (`read_at_aligned`, `write_at` of a `DmaBuffer`) for direct I/O,
/// `BufferedFile` (`read_at`, `write_at` of a `Vec<u8>`) for buffered I/O, on a
/// `LocalExecutor` pinned to the job's CPU. Its API hands out a fresh buffer for each read
/// and consumes the buffer of each write, so every operation allocates one: the DMA buffers
/// come from its registered `io_memory` area (sized here to hold every in-flight buffer
/// twice), buffered writes allocate a `Vec`.
pub fn run_glommio(job: &Job) -> Result<Run, String> {
    use glommio::{LocalExecutorBuilder, Placement};
    let job = job.clone();
    let io_memory = (2 * job.qd * job.bs()).max(10 << 20);
    let handle = LocalExecutorBuilder::new(Placement::Fixed(job.cpu))
        .name("glommio-fs")
        .io_memory(io_memory)
        .spawn(move || async move { glommio_job(&job).await })
        .map_err(|e| format!("glommio executor: {e}"))?;
    handle
        .join()
        .map_err(|e| format!("glommio executor: {e}"))?
}

async fn glommio_job(job: &Job) -> Result<Run, String> {
    use glommio::io::{BufferedFile, DmaFile, OpenOptions};
    let (bs, w, writes) = (job.bs(), job.window(), job.workload.writes());
    let mut o = OpenOptions::new();
    if writes {
        o.write(true);
    } else {
        o.read(true);
    }
    let mut tasks = Vec::new();
    if job.direct {
        let file: Rc<DmaFile> = Rc::new(
            o.dma_open(&job.path)
                .await
                .map_err(|e| format!("glommio dma_open: {e}"))?,
        );
        for mut at in job.offsets() {
            let file = file.clone();
            tasks.push(glommio::spawn_local(async move {
                let mut ops = 0;
                loop {
                    let pos = at.next();
                    let res = if writes {
                        // Written as allocated: filling it would cost a copy per op
                        // that the other engines (which reuse their buffer) do not pay.
                        file.write_at(file.alloc_dma_buffer(bs), pos).await
                    } else {
                        file.read_at_aligned(pos, bs).await.map(|r| r.len())
                    };
                    check(res.map_err(Into::into), bs, "glommio dma");
                    if !w.tick(&mut ops) {
                        return ops;
                    }
                }
            }));
        }
    } else {
        let file: Rc<BufferedFile> = Rc::new(
            o.buffered_open(&job.path)
                .await
                .map_err(|e| format!("glommio buffered_open: {e}"))?,
        );
        for mut at in job.offsets() {
            let file = file.clone();
            tasks.push(glommio::spawn_local(async move {
                let mut ops = 0;
                loop {
                    let pos = at.next();
                    let res = if writes {
                        file.write_at(vec![0; bs], pos).await
                    } else {
                        file.read_at(pos, bs).await.map(|r| r.len())
                    };
                    check(res.map_err(Into::into), bs, "glommio buffered");
                    if !w.tick(&mut ops) {
                        return ops;
                    }
                }
            }));
        }
    }
    let mut task_ops = Vec::new();
    for t in tasks {
        task_ops.push(t.await);
    }
    Ok(job.result(&task_ops))
}

/// `len` bytes of 4 KiB-aligned owned memory, filled with `FILL`, for monoio and tokio.
struct OwnedAligned {
    ptr: *mut u8,
    len: usize,
}

impl OwnedAligned {
    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(len, 4096).expect("layout")
    }

    fn new(len: usize) -> OwnedAligned {
        // SAFETY: the layout has a non-zero size (every workload's block is).
        let ptr = unsafe { std::alloc::alloc(Self::layout(len)) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(Self::layout(len));
        }
        // SAFETY: `ptr` is valid for `len` bytes; this initializes all of them.
        unsafe { std::ptr::write_bytes(ptr, FILL, len) };
        OwnedAligned { ptr, len }
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` initialized bytes, owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for OwnedAligned {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout.
        unsafe { std::alloc::dealloc(self.ptr, Self::layout(self.len)) };
    }
}

// SAFETY: plain owned memory; nothing else points to it, so another thread may own it.
unsafe impl Send for OwnedAligned {}

// SAFETY: the allocation is `len` initialized bytes, owned, and never moves while the value
// lives (moving `OwnedAligned` moves only the pointer).
unsafe impl monoio::buf::IoBuf for OwnedAligned {
    fn read_ptr(&self) -> *const u8 {
        self.ptr
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
}

// SAFETY: as above, writable for `len` bytes.
unsafe impl monoio::buf::IoBufMut for OwnedAligned {
    fn write_ptr(&mut self) -> *mut u8 {
        self.ptr
    }
    fn bytes_total(&mut self) -> usize {
        self.len
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}
