//! File I/O: 4 KiB random reads of a 1 GiB file, one thread pinned to one CPU.
//!
//! `fs-bench [--file PATH] [--size-mib 1024] [--secs 5] [--qd 1,32] [--modes buffered,direct]
//!           [--engines fio,coring,monoio,tokio] [--cpu 1] [--out DIR]`
//!
//! - `coring`: QD tasks, each a loop of `File::read_at` into its own 4 KiB buffer (4 KiB
//!   aligned, as O_DIRECT needs).
//! - `monoio`: the same with `monoio::fs::File::read_at`.
//! - `tokio`: tokio has no positional read in `tokio::fs`; QD tasks each run
//!   `spawn_blocking(pread)` (what `tokio::fs` does inside), on a current_thread runtime. The
//!   blocking pool threads inherit the CPU pinning.
//! - `fio`: `fio --ioengine=io_uring --rw=randread --bs=4k --iodepth=QD`, `--invalidate=0` so
//!   buffered runs read the page cache (the file is pre-read first), `--direct=1` for O_DIRECT.
//!
//! Output: IOPS per engine, mode and queue depth on stdout, and `DIR/fs.{csv,md}`.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use coring_bench::{die, Args};

const BS: usize = 4096;

/// 4 KiB of 4 KiB-aligned memory.
struct AlignedBuf {
    ptr: *mut u8,
    init: usize,
}

impl AlignedBuf {
    fn layout() -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(BS, BS).expect("layout")
    }

    fn new() -> AlignedBuf {
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(Self::layout()) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(Self::layout());
        }
        AlignedBuf { ptr, init: BS }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout.
        unsafe { std::alloc::dealloc(self.ptr, Self::layout()) };
    }
}

impl Unpin for AlignedBuf {}

// SAFETY: the allocation is BS bytes, zero-initialized, owned, and never moves.
unsafe impl coring::buf::IoBuf for AlignedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr
    }
    fn bytes_init(&self) -> usize {
        self.init
    }
    fn bytes_total(&self) -> usize {
        BS
    }
}

// SAFETY: as above, writable for BS bytes.
unsafe impl coring::buf::IoBufMut for AlignedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }
    unsafe fn set_init(&mut self, pos: usize) {
        self.init = self.init.max(pos);
    }
}

// SAFETY: as above.
unsafe impl monoio::buf::IoBuf for AlignedBuf {
    fn read_ptr(&self) -> *const u8 {
        self.ptr
    }
    fn bytes_init(&self) -> usize {
        self.init
    }
}

// SAFETY: as above, writable for BS bytes.
unsafe impl monoio::buf::IoBufMut for AlignedBuf {
    fn write_ptr(&mut self) -> *mut u8 {
        self.ptr
    }
    fn bytes_total(&mut self) -> usize {
        BS
    }
    unsafe fn set_init(&mut self, pos: usize) {
        self.init = self.init.max(pos);
    }
}

// SAFETY: the buffer is plain owned memory; moving it to a blocking thread is fine.
unsafe impl Send for AlignedBuf {}

/// xorshift64*: a block index in `0..blocks`.
struct Rng(u64);

impl Rng {
    fn block(&mut self, blocks: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) % blocks
    }
}

fn open(path: &Path, direct: bool) -> std::fs::File {
    let mut o = OpenOptions::new();
    o.read(true);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path)
        .unwrap_or_else(|e| die(&format!("open {}: {e}", path.display())))
}

struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn new(warm: Duration, secs: Duration) -> Window {
        let start = Instant::now() + warm;
        Window {
            start,
            end: start + secs,
        }
    }
}

/// Shared counter for the tasks of one run: (ops in window, done).
#[derive(Default)]
struct Count {
    ops: std::cell::Cell<u64>,
}

fn run_coring(path: &Path, direct: bool, qd: usize, warm: Duration, secs: Duration) -> f64 {
    let file = open(path, direct);
    let blocks = file.metadata().expect("metadata").len() / BS as u64;
    let rt = coring::runtime::Runtime::new().expect("coring runtime");
    rt.block_on(async move {
        let file = Rc::new(coring::fs::File::from_std(file));
        let w = Rc::new(Window::new(warm, secs));
        let count = Rc::new(Count::default());
        let mut handles = Vec::new();
        for t in 0..qd {
            let (file, w, count) = (file.clone(), w.clone(), count.clone());
            handles.push(coring::spawn(async move {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((t as u64 + 1) * 7919));
                let mut buf = AlignedBuf::new();
                loop {
                    let pos = rng.block(blocks) * BS as u64;
                    let (res, b) = file.read_at(buf, pos).await;
                    buf = b;
                    if res.expect("read_at") != BS {
                        die("short read");
                    }
                    let now = Instant::now();
                    if now >= w.end {
                        return;
                    }
                    if now >= w.start {
                        count.ops.set(count.ops.get() + 1);
                    }
                }
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
        count.ops.get() as f64 / secs.as_secs_f64()
    })
}

fn run_monoio(path: &Path, direct: bool, qd: usize, warm: Duration, secs: Duration) -> f64 {
    let file = open(path, direct);
    let blocks = file.metadata().expect("metadata").len() / BS as u64;
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .build()
        .expect("monoio runtime");
    rt.block_on(async move {
        let file = Rc::new(monoio::fs::File::from_std(file).expect("from_std"));
        let w = Rc::new(Window::new(warm, secs));
        let count = Rc::new(Count::default());
        let mut handles = Vec::new();
        for t in 0..qd {
            let (file, w, count) = (file.clone(), w.clone(), count.clone());
            handles.push(monoio::spawn(async move {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((t as u64 + 1) * 7919));
                let mut buf = AlignedBuf::new();
                loop {
                    let pos = rng.block(blocks) * BS as u64;
                    let (res, b) = file.read_at(buf, pos).await;
                    buf = b;
                    if res.expect("read_at") != BS {
                        die("short read");
                    }
                    let now = Instant::now();
                    if now >= w.end {
                        return;
                    }
                    if now >= w.start {
                        count.ops.set(count.ops.get() + 1);
                    }
                }
            }));
        }
        for h in handles {
            h.await;
        }
        count.ops.get() as f64 / secs.as_secs_f64()
    })
}

fn run_tokio(path: &Path, direct: bool, qd: usize, warm: Duration, secs: Duration) -> f64 {
    let file = std::sync::Arc::new(open(path, direct));
    let blocks = file.metadata().expect("metadata").len() / BS as u64;
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(qd.max(1))
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let w = std::sync::Arc::new(Window::new(warm, secs));
        let mut handles = Vec::new();
        for t in 0..qd {
            let (file, w) = (file.clone(), w.clone());
            handles.push(tokio::spawn(async move {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((t as u64 + 1) * 7919));
                let mut buf = AlignedBuf::new();
                let mut ops = 0u64;
                loop {
                    let pos = rng.block(blocks) * BS as u64;
                    let f = file.clone();
                    let (res, b) = tokio::task::spawn_blocking(move || {
                        // SAFETY: the buffer is BS bytes of owned memory.
                        let s = unsafe { std::slice::from_raw_parts_mut(buf.ptr, BS) };
                        (f.read_at(s, pos), buf)
                    })
                    .await
                    .expect("blocking task");
                    buf = b;
                    if res.expect("pread") != BS {
                        die("short read");
                    }
                    let now = Instant::now();
                    if now >= w.end {
                        return ops;
                    }
                    if now >= w.start {
                        ops += 1;
                    }
                }
            }));
        }
        let mut total = 0;
        for h in handles {
            total += h.await.expect("task");
        }
        total as f64 / secs.as_secs_f64()
    })
}

fn run_fio(
    path: &Path,
    direct: bool,
    qd: usize,
    warm: Duration,
    secs: Duration,
    cpu: usize,
) -> f64 {
    let out = std::process::Command::new("fio")
        .args([
            "--name=randread",
            &format!("--filename={}", path.display()),
            "--rw=randread",
            "--bs=4k",
            "--ioengine=io_uring",
            &format!("--iodepth={qd}"),
            &format!("--direct={}", u8::from(direct)),
            "--invalidate=0",
            "--time_based",
            &format!("--ramp_time={}", warm.as_secs_f64().ceil() as u64),
            &format!("--runtime={}", secs.as_secs_f64().ceil() as u64),
            &format!("--cpus_allowed={cpu}"),
            "--norandommap",
            "--randrepeat=0",
            "--output-format=terse",
        ])
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!("fio failed: {}", String::from_utf8_lossy(&o.stderr));
            return f64::NAN;
        }
        Err(e) => {
            eprintln!("fio not runnable ({e}); apt-get install fio");
            return f64::NAN;
        }
    };
    // Terse v3: field 8 (1-based) is the read IOPS.
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("3;"))
        .and_then(|l| l.split(';').nth(7))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn ensure_file(path: &Path, size: u64) {
    if std::fs::metadata(path)
        .map(|m| m.len() == size)
        .unwrap_or(false)
    {
        return;
    }
    eprintln!("creating {} ({} MiB)", path.display(), size >> 20);
    let mut f = std::fs::File::create(path)
        .unwrap_or_else(|e| die(&format!("create {}: {e}", path.display())));
    let mut chunk = vec![0u8; 1 << 20];
    let mut rng = Rng(12345);
    for b in chunk.iter_mut() {
        *b = rng.block(256) as u8;
    }
    for _ in 0..size >> 20 {
        f.write_all(&chunk).expect("write");
    }
    f.sync_all().expect("fsync");
}

fn preread(path: &Path) {
    let mut f = std::fs::File::open(path).expect("open");
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf).expect("read") > 0 {}
}

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET and sched_setaffinity get pointers to it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn main() {
    let args = Args::parse(&[]);
    let path = PathBuf::from(args.get("file").unwrap_or("/var/tmp/coring-bench-1g.dat"));
    let size_mib: u64 = args.parse_or("size-mib", 1024);
    let secs = args.secs_or("secs", 5.0);
    let warm = args.secs_or("warmup", 1.0);
    let cpu: usize = args.parse_or("cpu", 1);
    let qds: Vec<usize> = args.list_or("qd", &[1, 32]);
    let modes: Vec<String> = args.list_or("modes", &["buffered".into(), "direct".into()]);
    let engines: Vec<String> = args.list_or(
        "engines",
        &[
            "fio".into(),
            "coring".into(),
            "monoio".into(),
            "tokio".into(),
        ],
    );
    let out = PathBuf::from(
        args.get("out")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/../docs/bench", env!("CARGO_MANIFEST_DIR"))),
    );
    ensure_file(&path, size_mib << 20);
    pin_to(cpu);
    let mut csv = String::from("mode,qd,engine,iops\n");
    let mut md = format!(
        "file I/O, 4 KiB random reads of a {size_mib} MiB file, {} UTC, kernel {}; one thread \
         pinned to CPU {cpu}; {} s per run after {} s warm-up; IOPS (thousands)\n\n\
         | mode | QD | {} |\n|---|---|{}\n",
        sh("date -u '+%Y-%m-%d %H:%M'"),
        sh("uname -r"),
        secs.as_secs_f64(),
        warm.as_secs_f64(),
        engines.join(" | "),
        "---|".repeat(engines.len()),
    );
    for mode in &modes {
        let direct = match mode.as_str() {
            "buffered" => false,
            "direct" => true,
            other => die(&format!("unknown mode {other}")),
        };
        for &qd in &qds {
            let mut row = format!("| {mode} | {qd} |");
            for e in &engines {
                if !direct {
                    preread(&path);
                }
                let iops = match e.as_str() {
                    "fio" => run_fio(&path, direct, qd, warm, secs, cpu),
                    "coring" => run_coring(&path, direct, qd, warm, secs),
                    "monoio" => run_monoio(&path, direct, qd, warm, secs),
                    "tokio" => run_tokio(&path, direct, qd, warm, secs),
                    other => die(&format!("unknown engine {other}")),
                };
                eprintln!("{mode:8} qd={qd:3} {e:7} {:8.1}k IOPS", iops / 1000.0);
                let _ = writeln!(csv, "{mode},{qd},{e},{iops:.0}");
                let _ = write!(row, " {:.1} |", iops / 1000.0);
            }
            md.push_str(&row);
            md.push('\n');
        }
    }
    println!("{md}");
    if std::fs::create_dir_all(&out).is_ok() {
        let _ = std::fs::write(out.join("fs.csv"), csv);
        let _ = std::fs::write(out.join("fs.md"), &md);
        eprintln!("wrote {}/fs.{{csv,md}}", out.display());
    }
}

fn sh(cmd: &str) -> String {
    std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
