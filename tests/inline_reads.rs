//! Buffered file reads done by `preadv2(RWF_NOWAIT)` when the ring is idle
//! (`Op::inline_or_submit`): when that happens, when it must not, and that the results are
//! the ring's results either way.

mod common;

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use common::{watchdog, TempDir};
use coring::fs::{AlignedBuf, File, OpenOptions};
use coring::op::rw::{Read, CURRENT_POSITION};
use coring::op::Op;
use coring::runtime::Runtime;

/// Runs `body` on a fresh runtime with a temp dir, under a watchdog; the op table must end
/// empty.
fn run<F, Fut>(body: F)
where
    F: FnOnce(Rc<Runtime>, PathBuf) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    watchdog(30, move || {
        let dir = TempDir::new();
        let rt = Rc::new(common::uring().build().unwrap());
        rt.block_on(body(rt.clone(), dir.path().to_path_buf()));
        assert_eq!(rt.shutdown(), 0);
        assert_eq!(rt.op_slots(), 0);
    });
}

/// A file of `len` bytes where byte `i` is `i % 251`, written with std (so it is cached).
fn pattern_file(path: &Path, len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(path, &data).unwrap();
    data
}

#[test]
fn cached_reads_on_an_idle_ring_are_done_inline() {
    run(|rt, dir| async move {
        let path = dir.join("cached");
        let data = pattern_file(&path, 3 * 4096 + 100);
        let file = File::open(&path).await.unwrap();
        let before = rt.metrics();
        for (pos, len, want) in [
            (0, 4096, 4096),
            (4096 + 7, 100, 100),
            (2 * 4096, 4096, 4096),
            // Across the end: a short read, as from the ring.
            (3 * 4096, 4096, 100),
        ] {
            let (res, buf) = file.read_at(vec![0u8; len], pos).await;
            assert_eq!(res.unwrap(), want, "read of {len} at {pos}");
            assert_eq!(buf[..want], data[pos as usize..pos as usize + want]);
        }
        // Vectored reads too.
        let (res, bufs) = file.readv_at(vec![vec![0u8; 10], vec![0u8; 20]], 5).await;
        assert_eq!(res.unwrap(), 30);
        assert_eq!([&bufs[0][..], &bufs[1][..]].concat(), data[5..35]);
        // At and past the end of the file: 0 bytes.
        let (res, _) = file.read_at(vec![0u8; 16], data.len() as u64).await;
        assert_eq!(res.unwrap(), 0);
        let (res, _) = file.read_at(vec![0u8; 16], 1 << 40).await;
        assert_eq!(res.unwrap(), 0);
        let after = rt.metrics();
        assert_eq!(
            after.ops_inline - before.ops_inline,
            7,
            "every read done inline"
        );
        assert_eq!(after.enters, before.enters, "no read entered the ring");
        assert_eq!(after.sqes, before.sqes, "no read was pushed to the ring");
    });
}

#[test]
fn reads_join_the_batch_when_the_ring_is_busy() {
    run(|rt, dir| async move {
        let path = dir.join("busy");
        let data = pattern_file(&path, 8192);
        let file = File::open(&path).await.unwrap();
        // A read of an empty pipe stays in flight until we write to it.
        let (reader, mut writer) = std::io::pipe().unwrap();
        let pending = Op::submit(Read::new(
            reader.as_raw_fd(),
            vec![0u8; 1],
            CURRENT_POSITION,
        ));
        let before = rt.metrics();
        let (res, buf) = file.read_at(vec![0u8; 4096], 4096).await;
        assert_eq!(res.unwrap(), 4096);
        assert_eq!(buf[..], data[4096..]);
        let after = rt.metrics();
        assert_eq!(
            after.ops_inline, before.ops_inline,
            "not inline with an op in flight"
        );
        assert!(after.sqes > before.sqes, "the read went through the ring");
        std::io::Write::write_all(&mut writer, b"x").unwrap();
        assert_eq!(pending.await.0.unwrap(), 1);

        // Tasks reading side by side take turns through the ring: the first finds the second
        // ready, the second finds the first's read in flight.
        let file = Rc::new(file);
        let before = rt.metrics();
        let readers: Vec<_> = (0..2)
            .map(|i| {
                let file = file.clone();
                coring::spawn(async move { file.read_at(vec![0u8; 4096], i * 4096).await })
            })
            .collect();
        for (i, reader) in readers.into_iter().enumerate() {
            let (res, buf) = reader.await.unwrap();
            assert_eq!(res.unwrap(), 4096);
            assert_eq!(buf[..], data[i * 4096..(i + 1) * 4096]);
        }
        let after = rt.metrics();
        assert_eq!(
            after.ops_inline, before.ops_inline,
            "not inline beside a ready task"
        );
        assert_eq!(
            after.sqes - before.sqes,
            2,
            "both reads went through the ring"
        );
    });
}

#[test]
fn reads_the_kernel_will_not_do_without_waiting_go_to_the_ring() {
    run(|rt, _dir| async move {
        // Nothing to read yet (an empty pipe, at its position): RWF_NOWAIT answers EAGAIN,
        // and the read waits in the ring until the data comes.
        let (reader, mut writer) = std::io::pipe().unwrap();
        let empty = File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
        let before = rt.metrics();
        let mut read = std::pin::pin!(empty.read_at(vec![0u8; 16], CURRENT_POSITION));
        assert!(
            common::poll_once(read.as_mut()).is_pending(),
            "nothing to read yet"
        );
        std::io::Write::write_all(&mut writer, b"later").unwrap();
        let (res, buf) = read.await;
        assert_eq!(res.unwrap(), 5);
        assert_eq!(&buf[..5], b"later");
        assert_eq!(rt.metrics().ops_inline, before.ops_inline);

        // Pages not in the page cache (written with O_DIRECT, under target/ where the
        // filesystem has it): RWF_NOWAIT answers EAGAIN, or starts the readahead and finds
        // the page already read (a fast disk), as io_uring's own first attempt would.
        // Either way the bytes are the file's.
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("coring-inline-cold-{}", std::process::id()));
        let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let direct = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .direct(true)
            .open(&path)
            .await
            .unwrap();
        let mut aligned = AlignedBuf::with_capacity(data.len(), 4096);
        aligned.extend_from_slice(&data);
        let (res, _) = direct.write_all_at(aligned, 0).await;
        res.unwrap();
        direct.close().await.unwrap();
        let file = File::open(&path).await.unwrap();
        std::fs::remove_file(&path).unwrap();
        let (res, buf) = file.read_at(vec![0u8; 4096], 32 * 1024).await;
        assert_eq!(res.unwrap(), 4096);
        assert_eq!(buf[..], data[32 * 1024..36 * 1024]);

        // procfs has no RWF_NOWAIT (EOPNOTSUPP): read through the ring.
        let proc_file = File::open("/proc/self/stat").await.unwrap();
        let before = rt.metrics();
        let (res, buf) = proc_file.read_at(vec![0u8; 4096], 0).await;
        let n = res.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            text.starts_with(&format!("{} (", std::process::id())),
            "{text}"
        );
        assert_eq!(rt.metrics().ops_inline, before.ops_inline);

        // A pipe read at an offset: preadv2 answers ESPIPE, the ring ignores the offset.
        let (reader, mut writer) = std::io::pipe().unwrap();
        std::io::Write::write_all(&mut writer, b"piped").unwrap();
        let pipe = File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
        let before = rt.metrics();
        let (res, buf) = pipe.read_at(vec![0u8; 16], 0).await;
        assert_eq!(res.unwrap(), 5);
        assert_eq!(&buf[..5], b"piped");
        assert_eq!(rt.metrics().ops_inline, before.ops_inline);

        // An offset past what a signed 64-bit offset holds: the ring's EINVAL.
        let (res, _) = file.read_at(vec![0u8; 16], 1 << 63).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EINVAL));
    });
}

/// Drops `file`'s cached pages from `from` to the end (they must be clean: synced).
fn drop_cached(file: &std::fs::File, from: usize) {
    // SAFETY: fadvise takes no pointers; the descriptor is open.
    let rc = unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            from as libc::off_t,
            0,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    assert_eq!(rc, 0, "posix_fadvise(DONTNEED)");
}

/// A read whose range the page cache holds only in part: `RWF_NOWAIT` copies the cached part
/// and stops. The ring would finish a read of a regular file (io_uring retries a short read
/// there), and so must the inline path: a short count means the end of the file, nothing else.
#[test]
fn reads_the_page_cache_holds_in_part_are_not_cut_short() {
    run(|_rt, _dir| async move {
        // Large enough that dropping its second half drops whole page-cache folios (up to
        // 2 MiB each): fadvise leaves a folio that is only partly in the range.
        const LEN: usize = 8 << 20;
        const CACHED: usize = LEN / 2;
        // Under target/, where the filesystem drops clean pages on request (tmpfs would not).
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("coring-inline-part-{}", std::process::id()));
        let data = pattern_file(&path, LEN);
        let std_file = std::fs::File::open(&path).unwrap();
        std_file.sync_all().unwrap();
        let file = File::open(&path).await.unwrap();
        std::fs::remove_file(&path).unwrap();

        // The premise: with the second half dropped, RWF_NOWAIT stops short (at least once in
        // a few tries: readahead started by an earlier try may have refilled the pages).
        let mut probe = vec![0u8; LEN];
        let iov = libc::iovec {
            iov_base: probe.as_mut_ptr().cast(),
            iov_len: LEN,
        };
        let counts: Vec<isize> = (0..5)
            .map(|_| {
                drop_cached(&std_file, CACHED);
                // SAFETY: `iov` describes `probe`, writable for LEN bytes, which outlives
                // the call.
                unsafe { libc::preadv2(std_file.as_raw_fd(), &iov, 1, 0, libc::RWF_NOWAIT) }
            })
            .collect();
        assert!(
            counts.iter().any(|&n| n > 0 && (n as usize) < LEN),
            "premise: a RWF_NOWAIT read of a partly cached range returns part of it: {counts:?}"
        );

        for round in 0..3 {
            drop_cached(&std_file, CACHED);
            let (res, buf) = file.read_at(vec![0u8; LEN], 0).await;
            assert_eq!(res.unwrap(), LEN, "round {round}: read_at came back short");
            assert!(buf == data, "round {round}: read_at bytes differ");
            drop_cached(&std_file, CACHED);
            let bufs = vec![vec![0u8; CACHED], vec![0u8; LEN - CACHED]];
            let (res, bufs) = file.readv_at(bufs, 0).await;
            assert_eq!(res.unwrap(), LEN, "round {round}: readv_at came back short");
            assert!(
                bufs.concat() == data,
                "round {round}: readv_at bytes differ"
            );
        }
    });
}

#[test]
fn inline_reads_spend_the_task_budget() {
    run(|rt, dir| async move {
        let path = dir.join("budget");
        pattern_file(&path, 4096);
        let file = File::open(&path).await.unwrap();
        let other_ran = Rc::new(Cell::new(false));
        let flag = other_ran.clone();
        // Not ready while the reads start (a ready task would send them to the ring): it
        // sleeps, and timers only fire when this task gives the worker a turn.
        let other = coring::spawn(async move {
            coring::time::sleep(Duration::from_millis(1)).await;
            flag.set(true)
        });
        coring::task::yield_now().await;
        // Every read completes at its first poll; without a budget this task would never
        // give the timer, and so the spawned task, a turn.
        let mut reads = 0;
        while !other_ran.get() && reads < 100_000 {
            let (res, _) = file.read_at(vec![0u8; 64], 0).await;
            assert_eq!(res.unwrap(), 64);
            reads += 1;
        }
        assert!(
            other_ran.get(),
            "the spawned task never ran in {reads} inline reads"
        );
        assert!(rt.metrics().ops_inline >= 128, "the reads were done inline");
        other.await.unwrap();
    });
}
