//! Direct I/O: `AlignedBuf`, `OpenOptions::direct`, aligned round trips (also past 4 GiB and
//! vectored), and misaligned ops failing with an error that explains the alignment rule.
//!
//! The files live in a fresh directory under `std::env::temp_dir()` when that file system
//! accepts `O_DIRECT`; tmpfs before Linux 6.6 refuses it (`EINVAL` on open), so then the test
//! falls back to `/var/tmp` and then to Cargo's per-target temp dir, and says which it used.

mod common;

use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use common::{watchdog, Rng};
use coring::buf::{FixedBufPool, IoBuf};
use coring::fs::{AlignedBuf, File, OpenOptions};
use coring::op::rw::{Read, CURRENT_POSITION};
use coring::op::Op;
use coring::runtime::Runtime;

/// The file's direct-I/O rules, as `statx(STATX_DIOALIGN)` reports them: (memory, offset).
fn dio_align(path: &Path) -> Option<(u32, u32)> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statx is plain data; all-zero is a valid value for the kernel to overwrite.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a writable statx, both alive across the call.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            0,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    (rc == 0 && stx.stx_mask & libc::STATX_DIOALIGN != 0 && stx.stx_dio_offset_align != 0)
        .then_some((stx.stx_dio_mem_align, stx.stx_dio_offset_align))
}

/// A directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh directory on a file system that supports `O_DIRECT`.
fn direct_dir() -> Scratch {
    static N: AtomicU64 = AtomicU64::new(0);
    let candidates = [
        std::env::temp_dir(),
        PathBuf::from("/var/tmp"),
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
    ];
    for base in candidates {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("coring-direct-{}-{n}", std::process::id()));
        if std::fs::create_dir_all(&dir).is_err() {
            continue;
        }
        let scratch = Scratch(dir);
        let probe = scratch.0.join("probe");
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe);
        match opened {
            Ok(_) => {
                eprintln!("O_DIRECT test files under {}", scratch.0.display());
                return scratch;
            }
            Err(e) => eprintln!(
                "{} does not take O_DIRECT ({e}); trying the next candidate",
                base.display()
            ),
        }
    }
    panic!("no candidate directory supports O_DIRECT");
}

/// Runs `body` with an O_DIRECT-capable directory on a fresh runtime, under a watchdog.
fn run<F, Fut>(body: F)
where
    F: FnOnce(PathBuf) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    watchdog(60, move || {
        let dir = direct_dir();
        let rt = Runtime::new().unwrap();
        rt.block_on(body(dir.0.clone()));
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}

async fn open_direct(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .direct(true)
        .open(path)
        .await
        .unwrap()
}

fn filled(len: usize, seed: u64) -> AlignedBuf {
    let mut buf = AlignedBuf::with_capacity(len, 4096);
    buf.extend_from_slice(&Rng::new(seed).bytes(len));
    buf
}

#[test]
fn aligned_buf_basics() {
    for align in [1, 512, 4096, 1 << 16] {
        let buf = AlignedBuf::new(10_000, align);
        assert_eq!(buf.stable_ptr() as usize % align, 0);
        assert_eq!(
            (buf.len(), buf.capacity(), buf.alignment()),
            (10_000, 10_000, align)
        );
        assert!(buf.iter().all(|&b| b == 0), "new() is zeroed");
    }
    let mut buf = AlignedBuf::with_capacity(8, 512);
    assert!(buf.is_empty() && buf.bytes_total() == 8 && buf.bytes_init() == 0);
    buf.extend_from_slice(b"abc");
    buf.extend_from_slice(b"de");
    assert_eq!(&buf[..], b"abcde");
    let copy = buf.clone();
    assert_eq!(&copy[..], b"abcde");
    assert_eq!(copy.stable_ptr() as usize % 512, 0);
    buf.resize(8);
    assert_eq!(&buf[..], b"abcde\0\0\0");
    buf.clear();
    assert!(buf.is_empty());
    let zero = AlignedBuf::new(0, 4096);
    assert_eq!((zero.len(), zero.capacity()), (0, 0));
    // Sent to another thread and back.
    let moved = std::thread::spawn(move || copy).join().unwrap();
    assert_eq!(&moved[..], b"abcde");
}

/// From 128 KiB, buffers share huge pages (or get their own past 2 MiB): each is still zeroed,
/// aligned and its own, however many live at once and however they were used before.
#[test]
fn large_aligned_bufs_are_zeroed_aligned_and_disjoint() {
    let lens = [
        128 << 10,
        (128 << 10) + 1,
        300_000,
        1 << 20,
        2 << 20,
        (3 << 20) + 5,
    ];
    for round in 0..3u8 {
        let mut bufs: Vec<AlignedBuf> = lens
            .iter()
            .flat_map(|&len| [AlignedBuf::new(len, 4096), AlignedBuf::new(len, 1 << 16)])
            .collect();
        for buf in &mut bufs {
            assert_eq!(buf.stable_ptr() as usize % buf.alignment(), 0);
            assert!(
                buf.iter().all(|&b| b == 0),
                "round {round}: new() is zeroed"
            );
            buf.fill(round + 1);
        }
        assert!(bufs.iter().all(|b| b.iter().all(|&x| x == round + 1)));
        // Clones and buffers sent to other threads come and go between the rounds.
        let clones = std::thread::spawn(move || bufs.clone()).join().unwrap();
        assert!(clones.iter().all(|b| b.iter().all(|&x| x == round + 1)));
    }
}

/// Concurrent 1 MiB and odd-sized direct transfers from large buffers, all in flight at
/// once: each lands where it was written, none overwrites another's memory.
#[test]
fn large_aligned_bufs_round_trip_concurrently() {
    run(|dir| async move {
        let file = std::rc::Rc::new(open_direct(&dir.join("large")).await);
        let lens = [1 << 20, 1 << 20, 256 << 10, 3 << 20, 1 << 20, 132 << 10];
        let mut offset = 0;
        let mut tasks = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            let (file, at) = (file.clone(), offset);
            offset += len as u64;
            tasks.push(coring::spawn(async move {
                let (res, _) = file.write_all_at(filled(len, 100 + i as u64), at).await;
                res.unwrap();
                let (res, back) = file.read_exact_at(AlignedBuf::new(len, 4096), at).await;
                res.unwrap();
                assert!(back[..] == filled(len, 100 + i as u64)[..], "transfer {i}");
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
#[should_panic(expected = "power of two")]
fn aligned_buf_rejects_bad_alignment() {
    let _ = AlignedBuf::new(16, 3000);
}

#[test]
#[should_panic(expected = "cannot take")]
fn aligned_buf_does_not_grow() {
    let mut buf = AlignedBuf::with_capacity(4, 64);
    buf.extend_from_slice(b"12345");
}

#[test]
fn aligned_round_trip() {
    run(|dir| async move {
        let path = dir.join("data");
        let file = open_direct(&path).await;
        let data = filled(64 * 1024, 1);
        let (res, data) = file.write_all_at(data, 0).await;
        res.unwrap();
        let (res, data2) = file.write_all_at(filled(8192, 2), 64 * 1024).await;
        res.unwrap();

        let (res, back) = file
            .read_exact_at(AlignedBuf::new(64 * 1024, 4096), 0)
            .await;
        res.unwrap();
        assert!(back[..] == data[..]);
        // Reads at and past the end of file.
        let (res, back) = file
            .read_at(AlignedBuf::with_capacity(16384, 4096), 64 * 1024)
            .await;
        assert_eq!(res.unwrap(), 8192, "short read at the end");
        assert!(back[..] == data2[..]);
        let (res, _) = file
            .read_at(AlignedBuf::with_capacity(4096, 4096), 72 * 1024)
            .await;
        assert_eq!(res.unwrap(), 0);
        file.sync_all().await.unwrap();
        // What a buffered reader sees agrees.
        let mut all = data.to_vec();
        all.extend_from_slice(&data2);
        assert!(std::fs::read(&path).unwrap() == all);

        // Vectored, aligned.
        let parts = vec![filled(4096, 3), filled(8192, 4)];
        let (res, parts) = file.writev_all_at(parts, 1 << 20).await;
        res.unwrap();
        let (res, back) = file
            .readv_exact_at(
                vec![AlignedBuf::new(8192, 4096), AlignedBuf::new(4096, 4096)],
                1 << 20,
            )
            .await;
        res.unwrap();
        let written: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        let read: Vec<u8> = back.iter().flat_map(|p| p.iter().copied()).collect();
        assert!(written == read);

        // Past 4 GiB.
        let far = 5 << 30;
        let (res, _) = file.write_all_at(filled(4096, 5), far).await;
        res.unwrap();
        let (res, back) = file.read_exact_at(AlignedBuf::new(4096, 4096), far).await;
        res.unwrap();
        assert!(back[..] == filled(4096, 5)[..]);
        assert_eq!(file.metadata().await.unwrap().len(), far + 4096);

        // custom_flags(O_DIRECT) is the same thing.
        let again = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .await
            .unwrap();
        let (res, back) = again.read_exact_at(AlignedBuf::new(4096, 4096), 0).await;
        res.unwrap();
        assert!(back[..] == data[..4096]);
    });
}

/// Registered buffers with O_DIRECT: the kernel reads and writes their pages without pinning
/// them per op (`READ_FIXED`, `WRITE_FIXED`), byte-exact.
#[test]
fn direct_round_trip_through_fixed_buffers() {
    run(|dir| async move {
        let path = dir.join("fixed");
        let file = open_direct(&path).await;
        let pool = FixedBufPool::new(2, 64 * 1024).unwrap();
        let mut out = pool.try_take().unwrap();
        out.set_len(64 * 1024);
        out.copy_from_slice(&Rng::new(6).bytes(64 * 1024));
        let expected = out.to_vec();
        let (res, out) = file.write_all_at(out, 1 << 20).await;
        res.unwrap();
        drop(out);

        let input = pool.try_take().unwrap();
        let (res, input) = file.read_exact_at(input, 1 << 20).await;
        res.unwrap();
        assert!(input[..] == expected[..], "read back what was written");
        file.sync_all().await.unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert!(
            on_disk[1 << 20..] == expected[..],
            "a buffered reader agrees"
        );
    });
}

/// Asserts `err` is the explanatory direct-I/O error naming `culprit`.
fn assert_explained(err: &std::io::Error, culprit: &str) {
    let msg = err.to_string();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{msg}");
    assert!(msg.contains("O_DIRECT"), "{msg}");
    assert!(msg.contains("multiple of the logical block size"), "{msg}");
    assert!(msg.contains("usually 512 or 4096"), "{msg}");
    assert!(msg.contains(culprit), "{culprit:?} not in {msg}");
    let source = err
        .get_ref()
        .and_then(|e| e.source())
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("the OS error is the source");
    assert_eq!(source.raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn misaligned_direct_io_is_explained() {
    run(|dir| async move {
        let path = dir.join("data");
        let file = open_direct(&path).await;
        let (res, _) = file.write_all_at(filled(16384, 1), 0).await;
        res.unwrap();
        let rules = dio_align(&path);
        eprintln!("STATX_DIOALIGN (memory, offset): {rules:?}");

        // Misaligned file offset, on a write and on a read.
        let (res, buf) = file.write_at(AlignedBuf::new(4096, 4096), 1).await;
        let err = res.unwrap_err();
        eprintln!("misaligned write: {err}");
        assert_explained(&err, "file offset 1");
        assert_eq!(buf.len(), 4096, "the buffer comes back");
        if rules.is_some() {
            assert!(
                err.to_string().contains("not aligned: the file offset"),
                "{err}"
            );
        }
        let (res, _) = file.read_at(AlignedBuf::new(4096, 4096), 100).await;
        assert_explained(&res.unwrap_err(), "file offset 100");

        // Misaligned length.
        let (res, _) = file.write_at(AlignedBuf::new(100, 4096), 0).await;
        let err = res.unwrap_err();
        assert_explained(&err, "length 100");
        if rules.is_some() {
            assert!(err.to_string().contains("not aligned: the length"), "{err}");
        }
        // A Vec: its address and length are whatever the allocator gave.
        let (res, _) = file.read_at(vec![0u8; 1000], 0).await;
        assert_explained(&res.unwrap_err(), "length 1000");
        // Vectored, one bad length among good ones.
        let (res, _) = file
            .writev_at(
                vec![AlignedBuf::new(4096, 4096), AlignedBuf::new(10, 4096)],
                0,
            )
            .await;
        assert_explained(&res.unwrap_err(), "length 10 ");

        // Misaligned buffer address. Since Linux 6.0 some devices accept memory aligned only
        // to their DMA alignment (as little as 4 bytes), so one byte off may even succeed.
        let off_by_one = AlignedBuf::new(8192, 4096).slice(1..4097);
        let (res, _) = file.read_at(off_by_one, 0).await;
        match (res, rules) {
            (Ok(n), Some((mem, _))) => assert!(
                mem <= 1,
                "read {n} bytes though memory must be aligned to {mem}"
            ),
            (Ok(_), None) => eprintln!("misaligned address accepted by this device"),
            (Err(e), _) => {
                assert_explained(&e, "buffer address");
                if rules.is_some_and(|(mem, _)| mem > 1) {
                    assert!(
                        e.to_string().contains("not aligned: the buffer address"),
                        "{e}"
                    );
                }
            }
        }
        // The file is unchanged by all of the above.
        let (res, back) = file.read_exact_at(AlignedBuf::new(16384, 4096), 0).await;
        res.unwrap();
        assert!(back[..] == filled(16384, 1)[..]);
    });
}

#[test]
fn einval_without_o_direct_is_left_alone() {
    run(|dir| async move {
        let path = dir.join("buffered");
        let file = File::create(&path).await.unwrap();
        // Buffered I/O has no alignment rule: odd offsets and lengths just work.
        let (res, _) = file.write_all_at(b"odd".to_vec(), 1).await;
        res.unwrap();
        // An EINVAL from a buffered file keeps its OS error.
        let err = file.allocate(0, 0).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        assert!(!err.to_string().contains("O_DIRECT"));
    });
}

/// `io_uring_enter` calls made while one read of `file` is created and first polled, on the
/// default (batching) io_uring runtime `rt`, and whether that first poll finished it.
async fn enters_for_one_read(rt: &Runtime, file: &File) -> (u64, bool) {
    let before = rt.metrics().enters;
    let mut read = std::pin::pin!(file.read_at(AlignedBuf::with_capacity(4096, 4096), 0));
    let first = common::poll_once(read.as_mut());
    let spent = rt.metrics().enters - before;
    let done_at_once = first.is_ready();
    let (res, _) = match first {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => read.await,
    };
    assert_eq!(res.unwrap(), 4096);
    (spent, done_at_once)
}

#[test]
fn direct_io_enters_at_once_beside_ready_tasks_and_buffered_io_at_the_park() {
    watchdog(60, || {
        let dir = direct_dir();
        let path = dir.0.join("eager.dat");
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        let rt = common::uring().build().unwrap();
        let rt_ref = &rt;
        rt.block_on(async move {
            let direct = OpenOptions::new()
                .read(true)
                .direct(true)
                .open(&path)
                .await
                .unwrap();
            // A std file opened with O_DIRECT is recognized too.
            let from_std = File::from_std(
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(&path)
                    .unwrap(),
            );
            let buffered = File::open(&path).await.unwrap();
            // Beside a task ready to run, a direct read reaches the device at once.
            for (file, what) in [(&direct, "O_DIRECT"), (&from_std, "from_std with O_DIRECT")] {
                let other = coring::spawn(async {});
                let (enters, _) = enters_for_one_read(rt_ref, file).await;
                assert_eq!(enters, 1, "{what} beside a ready task: entered at once");
                other.await.unwrap();
            }
            // Alone, it is submitted by the park, in the call that waits for it.
            let (direct_alone, _) = enters_for_one_read(rt_ref, &direct).await;
            assert_eq!(direct_alone, 0, "O_DIRECT alone: batched until the park");
            // With another op in the ring, a buffered read joins the batch of the park.
            let (reader, mut writer) = std::io::pipe().unwrap();
            let pending = Op::submit(Read::new(
                reader.as_raw_fd(),
                vec![0u8; 1],
                CURRENT_POSITION,
            ));
            let (buffered_enters, done_at_once) = enters_for_one_read(rt_ref, &buffered).await;
            assert_eq!(buffered_enters, 0, "buffered: batched until the park");
            assert!(!done_at_once, "buffered with an op in flight: batched");
            writer.write_all(b"x").unwrap();
            assert_eq!(pending.await.0.unwrap(), 1);
            // With the ring idle, it is done by preadv2 at once, without entering the ring.
            let (idle_enters, done_at_once) = enters_for_one_read(rt_ref, &buffered).await;
            assert_eq!(idle_enters, 0, "buffered on an idle ring: no enter");
            assert!(done_at_once, "buffered on an idle ring: done inline");
        });
        assert_eq!(rt.shutdown(), 0);
    });
}
