//! `coring::fs` free functions and the new `File` methods: success and failure paths, EOF,
//! offsets past 4 GiB, concurrent writers, a 10 MiB copy, set_len / allocate / metadata
//! agreement, and opens cancelled mid-flight leaking no descriptor.
//!
//! Tests run as root, so permission failures use cases root cannot bypass: linking a
//! directory (`EPERM`), writing through a read-only descriptor (`EBADF`).

mod common;

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use common::{fd_lock, open_fds, poll_once, run_in_temp_dir, watchdog, Rng, TempDir};
use coring::fs::{self, File, OpenOptions};
use coring::runtime::{DriverKind, Runtime};

const GIB: u64 = 1 << 30;

#[test]
fn read_write_read_to_string() {
    run_in_temp_dir(30, |dir| async move {
        let path = dir.join("hello.txt");
        fs::write(&path, "héllo wörld").await.unwrap();
        assert_eq!(fs::read(&path).await.unwrap(), "héllo wörld".as_bytes());
        assert_eq!(fs::read_to_string(&path).await.unwrap(), "héllo wörld");

        // `write` truncates what was there.
        fs::write(&path, b"ab").await.unwrap();
        assert_eq!(fs::read(&path).await.unwrap(), b"ab");

        // Empty file, and a file larger than the first buffer guess.
        fs::write(dir.join("empty"), b"").await.unwrap();
        assert!(fs::read(dir.join("empty")).await.unwrap().is_empty());
        let big = Rng::new(1).bytes(300_000);
        fs::write(dir.join("big"), &big).await.unwrap();
        assert_eq!(fs::read(dir.join("big")).await.unwrap(), big);

        // Sizes around the first read (8 KiB), which decides whether `read` asks for the size.
        for len in [8191, 8192, 8193, 16384, 16385] {
            let data = Rng::new(len as u64).bytes(len);
            let path = dir.join(format!("len-{len}"));
            fs::write(&path, &data).await.unwrap();
            assert_eq!(
                fs::read(&path).await.unwrap(),
                data,
                "a file of {len} bytes"
            );
        }

        // A file whose size statx reports as 0 is still read to its end, past the first read.
        let status = fs::read_to_string("/proc/self/status").await.unwrap();
        assert!(status.contains("Pid:"), "got {status:?}");
        let smaps = fs::read_to_string("/proc/self/smaps").await.unwrap();
        assert!(smaps.len() > 8192, "smaps is {} bytes", smaps.len());
        assert!(
            smaps.ends_with('\n'),
            "smaps cut short: {:?}",
            &smaps[smaps.len() - 80..]
        );

        // Failures.
        let missing = dir.join("missing");
        assert_eq!(
            fs::read(&missing).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            fs::read_to_string(&missing).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            fs::write(dir.join("no/such/dir/f"), b"x")
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        std::fs::write(dir.join("latin1"), [0x68, 0xe9, 0xff]).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("latin1"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidData
        );
        assert_eq!(
            fs::write(&dir, b"x").await.unwrap_err().kind(),
            ErrorKind::IsADirectory
        );
        assert_eq!(
            fs::read(dir.join("nul\0byte")).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    });
}

#[test]
fn eof_and_reads_beyond_it() {
    run_in_temp_dir(30, |dir| async move {
        let path = dir.join("ten");
        fs::write(&path, b"0123456789").await.unwrap();
        let file = File::open(&path).await.unwrap();

        let (res, buf) = file.read_at(vec![0u8; 4], 8).await;
        assert_eq!(res.unwrap(), 2, "short read at the tail");
        assert_eq!(&buf[..2], b"89");
        let (res, _) = file.read_at(vec![0u8; 4], 10).await;
        assert_eq!(res.unwrap(), 0, "at EOF");
        let (res, _) = file.read_at(vec![0u8; 4], 10 * GIB).await;
        assert_eq!(res.unwrap(), 0, "far beyond EOF");

        let (res, buf) = file.read_exact_at(vec![0u8; 4], 6).await;
        res.unwrap();
        assert_eq!(buf, b"6789");
        let (res, _) = file.read_exact_at(vec![0u8; 4], 8).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::UnexpectedEof);

        // Vectored exact reads: whole, then across EOF.
        let (res, bufs) = file
            .readv_exact_at(vec![vec![0u8; 3], vec![0u8; 5]], 1)
            .await;
        res.unwrap();
        assert_eq!(bufs, [b"123".to_vec(), b"45678".to_vec()]);
        let (res, bufs) = file
            .readv_exact_at(vec![vec![0u8; 4], vec![0u8; 4]], 4)
            .await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::UnexpectedEof);
        assert_eq!(&bufs[0][..], b"4567");
        assert_eq!(&bufs[1][..2], b"89");
    });
}

#[test]
fn vectored_write_all() {
    run_in_temp_dir(30, |dir| async move {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(dir.join("v"))
            .await
            .unwrap();
        let parts = vec![
            b"alpha ".to_vec(),
            Vec::new(),
            b"beta ".to_vec(),
            b"gamma".to_vec(),
        ];
        let (res, back) = file.writev_all_at(parts.clone(), 3).await;
        res.unwrap();
        assert_eq!(back, parts, "buffers come back in order");
        let (res, buf) = file.read_at(Vec::with_capacity(64), 0).await;
        assert_eq!(res.unwrap(), 19);
        assert_eq!(buf, b"\0\0\0alpha beta gamma");
        // Through a read-only descriptor: the error comes back with the buffers.
        let ro = File::open(dir.join("v")).await.unwrap();
        let (res, back) = ro.writev_all_at(parts.clone(), 0).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
        assert_eq!(back.len(), 4);
    });
}

#[test]
fn offsets_past_4_gib() {
    run_in_temp_dir(60, |dir| async move {
        let path = dir.join("sparse");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(&path)
            .await
            .unwrap();
        let at = 5 * GIB + 123;
        let data = Rng::new(5).bytes(10_000);
        let (res, _) = file.write_all_at(data.clone(), at).await;
        res.unwrap();
        let meta = file.metadata().await.unwrap();
        assert_eq!(meta.len(), at + data.len() as u64);
        assert!(
            meta.blocks() * 512 < GIB,
            "the hole is not allocated: {} blocks",
            meta.blocks()
        );
        let (res, back) = file.read_exact_at(vec![0u8; data.len()], at).await;
        res.unwrap();
        assert_eq!(back, data);
        // The hole reads as zeros; the tail reads short, then EOF.
        let (res, zeros) = file.read_exact_at(vec![1u8; 4096], 4 * GIB).await;
        res.unwrap();
        assert!(zeros.iter().all(|&b| b == 0));
        let (res, _) = file.read_at(vec![0u8; 100], at + 9_990).await;
        assert_eq!(res.unwrap(), 10);
        let (res, _) = file.read_at(vec![0u8; 100], at + 10_000).await;
        assert_eq!(res.unwrap(), 0);
        // The same through std, to be sure the offset really was 5 GiB.
        let std_file = std::fs::File::open(&path).unwrap();
        let mut probe = [0u8; 16];
        std::os::unix::fs::FileExt::read_exact_at(&std_file, &mut probe, at).unwrap();
        assert_eq!(probe, data[..16]);
        fs::remove_file(&path).await.unwrap();
    });
}

#[test]
fn copy_ten_mib_byte_exact() {
    run_in_temp_dir(60, |dir| async move {
        let (from, to) = (dir.join("src.bin"), dir.join("dst.bin"));
        let data = Rng::new(10).bytes(10 * 1024 * 1024 + 17);
        std::fs::write(&from, &data).unwrap();
        std::fs::set_permissions(&from, std::fs::Permissions::from_mode(0o640)).unwrap();
        // A longer existing destination is truncated.
        std::fs::write(&to, vec![7u8; 11 * 1024 * 1024]).unwrap();

        assert_eq!(fs::copy(&from, &to).await.unwrap(), data.len() as u64);
        let copied = std::fs::read(&to).unwrap();
        assert!(copied == data, "copy differs");
        let mode = std::fs::metadata(&to).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "permissions copied");

        // A file whose size reads as 0 (so no larger than one buffer): the buffered copy
        // reads it to its end.
        let status = dir.join("status");
        let n = fs::copy("/proc/self/status", &status).await.unwrap();
        let copied = std::fs::read_to_string(&status).unwrap();
        assert_eq!(n, copied.len() as u64);
        assert!(copied.contains("Name:"), "got {copied:?}");

        // Onto another file system (tmpfs), where copy_file_range answers EXDEV: the buffered
        // copy does it all.
        let shm = std::path::Path::new("/dev/shm");
        if shm.is_dir() {
            let other = shm.join(format!("coring-copy-test-{}", std::process::id()));
            let copied = fs::copy(&from, &other).await;
            let back = std::fs::read(&other);
            let _ = std::fs::remove_file(&other);
            assert_eq!(copied.unwrap(), data.len() as u64);
            assert!(back.unwrap() == data, "copy across file systems differs");
        }

        // Empty file; missing source; a directory as source; a missing target directory.
        fs::write(dir.join("e"), b"").await.unwrap();
        assert_eq!(fs::copy(dir.join("e"), dir.join("e2")).await.unwrap(), 0);
        assert_eq!(
            fs::copy(dir.join("nope"), dir.join("x"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            fs::copy(&dir, dir.join("x")).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            fs::copy(&from, dir.join("no/dir/x"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
    });
}

#[test]
fn rename_and_remove_file() {
    run_in_temp_dir(30, |dir| async move {
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&a, b"A").await.unwrap();
        fs::write(&b, b"B").await.unwrap();
        fs::rename(&a, &b).await.unwrap();
        assert!(!fs::try_exists(&a).await.unwrap());
        assert_eq!(
            fs::read(&b).await.unwrap(),
            b"A",
            "rename replaces the target"
        );
        assert_eq!(
            fs::rename(&a, &b).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );

        // A directory onto a non-empty directory fails.
        fs::create_dir(dir.join("d1")).await.unwrap();
        fs::create_dir(dir.join("d2")).await.unwrap();
        fs::write(dir.join("d2/f"), b"").await.unwrap();
        assert_eq!(
            fs::rename(dir.join("d1"), dir.join("d2"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::DirectoryNotEmpty
        );

        fs::remove_file(&b).await.unwrap();
        assert_eq!(
            fs::remove_file(&b).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            fs::remove_file(dir.join("d1")).await.unwrap_err().kind(),
            ErrorKind::IsADirectory
        );
    });
}

#[test]
fn links_and_metadata() {
    run_in_temp_dir(30, |dir| async move {
        let file = dir.join("file");
        fs::write(&file, b"12345").await.unwrap();

        // Hard links.
        fs::hard_link(&file, dir.join("hard")).await.unwrap();
        assert_eq!(fs::metadata(&file).await.unwrap().nlink(), 2);
        assert_eq!(
            fs::metadata(dir.join("hard")).await.unwrap().ino(),
            fs::metadata(&file).await.unwrap().ino()
        );
        assert_eq!(
            fs::hard_link(&file, dir.join("hard"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            fs::hard_link(dir.join("nope"), dir.join("h2"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        // Not even root may hard-link a directory.
        assert_eq!(
            fs::hard_link(&dir, dir.join("dirlink"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::PermissionDenied
        );

        // Symbolic links: metadata follows, symlink_metadata does not.
        let link = dir.join("sym");
        fs::symlink("file", &link).await.unwrap();
        let followed = fs::metadata(&link).await.unwrap();
        assert!(followed.is_file() && followed.file_type().is_file());
        assert_eq!(followed.len(), 5);
        let itself = fs::symlink_metadata(&link).await.unwrap();
        assert!(itself.is_symlink() && itself.file_type().is_symlink());
        assert_eq!(itself.len(), 4, "a symlink's size is its target's length");
        assert_eq!(fs::read_link(&link).await.unwrap(), Path::new("file"));
        assert_eq!(
            fs::symlink("x", &link).await.unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );

        // Dangling link.
        let dangling = dir.join("dangling");
        fs::symlink(dir.join("nowhere"), &dangling).await.unwrap();
        assert_eq!(
            fs::metadata(&dangling).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert!(fs::symlink_metadata(&dangling).await.unwrap().is_symlink());
        assert!(!fs::try_exists(&dangling).await.unwrap());

        // metadata / try_exists / canonicalize / read_link.
        let meta = fs::metadata(&file).await.unwrap();
        assert!(meta.is_file() && !meta.is_dir() && meta.len() == 5);
        assert!(fs::metadata(&dir).await.unwrap().is_dir());
        assert_eq!(
            fs::metadata(dir.join("nope")).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            fs::symlink_metadata(dir.join("nope"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        assert!(fs::try_exists(&file).await.unwrap());
        assert!(!fs::try_exists(dir.join("nope")).await.unwrap());
        assert_eq!(
            fs::try_exists(file.join("under-a-file"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotADirectory,
            "only 'not found' means false"
        );
        let canon = fs::canonicalize(dir.join("./sym")).await.unwrap();
        assert_eq!(canon, std::fs::canonicalize(&file).unwrap());
        assert_eq!(
            fs::canonicalize(dir.join("nope")).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            fs::read_link(&file).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );

        // Permissions, by path and by descriptor.
        fs::set_permissions(&file, std::fs::Permissions::from_mode(0o604))
            .await
            .unwrap();
        assert_eq!(
            fs::metadata(&file).await.unwrap().permissions().mode(),
            0o604
        );
        let f = File::open(&file).await.unwrap();
        f.set_permissions(std::fs::Permissions::from_mode(0o640))
            .await
            .unwrap();
        assert_eq!(f.metadata().await.unwrap().permissions().mode(), 0o640);
        assert_eq!(
            fs::set_permissions(dir.join("nope"), std::fs::Permissions::from_mode(0o600))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
    });
}

#[test]
fn write_through_read_only_descriptor_fails() {
    run_in_temp_dir(30, |dir| async move {
        let path = dir.join("ro");
        fs::write(&path, b"keep").await.unwrap();
        let file = File::open(&path).await.unwrap();
        let (res, _) = file.write_all_at(b"over".to_vec(), 0).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
        // set_len needs a writable descriptor: EINVAL, left as it is (not O_DIRECT).
        let err = file.set_len(0).await.unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::EBADF)),
            "{err:?}"
        );
        let err = file.allocate(0, 4096).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert_eq!(fs::read(&path).await.unwrap(), b"keep");
    });
}

#[test]
fn set_len_allocate_and_metadata_agree() {
    run_in_temp_dir(30, |dir| async move {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(dir.join("sized"))
            .await
            .unwrap();
        // What std sees through the same descriptor.
        let len = |f: &File| {
            let fd = f.as_raw_fd();
            std::fs::metadata(format!("/proc/self/fd/{fd}"))
                .unwrap()
                .len()
        };
        file.set_len(100_000).await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 100_000);
        assert_eq!(len(&file), 100_000);
        let (res, buf) = file.read_exact_at(vec![1u8; 100], 99_900).await;
        res.unwrap();
        assert!(buf.iter().all(|&b| b == 0), "an extension reads as zeros");

        file.set_len(10).await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 10);
        file.set_len(6 * GIB).await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 6 * GIB);
        file.set_len(0).await.unwrap();

        // allocate grows the file and really reserves blocks.
        file.allocate(0, 1 << 20).await.unwrap();
        let meta = file.metadata().await.unwrap();
        assert_eq!(meta.len(), 1 << 20);
        assert!(meta.blocks() * 512 >= 1 << 20, "{} blocks", meta.blocks());
        // Within the file it changes nothing visible.
        file.allocate(4096, 4096).await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 1 << 20);
        // KEEP_SIZE reserves past the end without growing it.
        file.fallocate(libc::FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20)
            .await
            .unwrap();
        let meta = file.metadata().await.unwrap();
        assert_eq!(meta.len(), 1 << 20);
        assert!(meta.blocks() * 512 >= 2 << 20, "{} blocks", meta.blocks());
        // Punching a hole frees blocks and reads as zeros.
        let (res, _) = file.write_all_at(vec![9u8; 8192], 0).await;
        res.unwrap();
        file.fallocate(
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            0,
            8192,
        )
        .await
        .unwrap();
        let (res, buf) = file.read_exact_at(vec![1u8; 8192], 0).await;
        res.unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        assert_eq!(file.metadata().await.unwrap().len(), 1 << 20);
        // Bad arguments.
        assert_eq!(
            file.allocate(0, 0).await.unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
        assert_eq!(
            file.set_len(u64::MAX).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );

        // sync_range: the common flag sets, a range longer than 32 bits, and bad flags.
        let all = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        file.sync_range(0, 0, libc::SYNC_FILE_RANGE_WRITE)
            .await
            .unwrap();
        file.sync_range(0, 1 << 20, all).await.unwrap();
        file.sync_range(0, 9 * GIB, all).await.unwrap();
        assert_eq!(
            file.sync_range(0, 4096, 0x80)
                .await
                .unwrap_err()
                .raw_os_error(),
            Some(libc::EINVAL)
        );
        file.sync_data().await.unwrap();
    });
}

#[test]
fn concurrent_writers_at_different_offsets() {
    run_in_temp_dir(30, |dir| async move {
        const WRITERS: usize = 16;
        const CHUNK: usize = 64 * 1024;
        let path = dir.join("shared");
        let file = Rc::new(File::create(&path).await.unwrap());
        let mut handles = Vec::new();
        for i in 0..WRITERS {
            let file = file.clone();
            handles.push(coring::spawn(async move {
                // Each writer writes its chunk in four pieces, interleaving with the others.
                let data = vec![i as u8 + 1; CHUNK];
                for piece in 0..4 {
                    let start = piece * CHUNK / 4;
                    let at = (i * CHUNK + start) as u64;
                    let part = data[start..start + CHUNK / 4].to_vec();
                    let (res, _) = file.write_all_at(part, at).await;
                    res.unwrap();
                    coring::task::yield_now().await;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        file.sync_all().await.unwrap();
        let back = fs::read(&path).await.unwrap();
        assert_eq!(back.len(), WRITERS * CHUNK);
        for (i, chunk) in back.chunks(CHUNK).enumerate() {
            assert!(
                chunk.iter().all(|&b| b == i as u8 + 1),
                "chunk {i} mixed up"
            );
        }
    });
}

/// Descriptors of this process that point into `dir`.
fn fds_into(dir: &Path) -> Vec<(i32, String)> {
    let prefix = dir.to_string_lossy().into_owned();
    open_fds()
        .into_iter()
        .filter(|(_, target)| target.starts_with(&prefix))
        .collect()
}

#[test]
fn cancelled_open_leaks_no_fd() {
    let _serial = fd_lock();
    watchdog(30, || {
        let dir = TempDir::new();
        let root = dir.path().to_path_buf();
        let rt = Runtime::new().unwrap();
        let kind = rt.driver_kind();
        rt.block_on(async {
            // Existing files opened without O_CREAT: the kernel usually opens them inline
            // at submission, before the cancel arrives, so the orphan gets a descriptor it
            // must close. With O_CREAT the open is punted to io-wq and usually cancelled
            // before it runs. Both must leave nothing open.
            let mut existing = OpenOptions::new();
            existing.read(true);
            let mut creating = OpenOptions::new();
            creating.read(true).write(true).create(true);
            for i in 0..200 {
                let path = root.join(format!("f{i}"));
                let options = if i % 2 == 0 {
                    std::fs::write(&path, b"x").unwrap();
                    &existing
                } else {
                    &creating
                };
                let mut open = pin!(options.open(path));
                // One poll submits the openat; dropping the future orphans it. (The epoll
                // backend opens at once, so there the first poll may already be ready.)
                let pending = poll_once(open.as_mut()).is_pending();
                assert!(
                    pending || kind == DriverKind::Epoll,
                    "open {i} done at once"
                );
            }
            // A whole-file read dropped mid-way (after its open) leaks nothing either.
            std::fs::write(root.join("r"), vec![1u8; 1 << 20]).unwrap();
            for _ in 0..50 {
                let mut read = pin!(fs::read(root.join("r")));
                if poll_once(read.as_mut()).is_ready() {
                    continue; // the epoll backend may finish at once
                }
                coring::task::yield_now().await;
                let _ = poll_once(read.as_mut());
            }
            // Let the orphans' completions and the closes they cause go through.
            coring::time::sleep(Duration::from_millis(200)).await;
        });
        assert_eq!(rt.shutdown(), 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let leaked = fds_into(&root);
            if leaked.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "descriptors leaked by cancelled opens: {leaked:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

#[test]
fn free_functions_without_runtime_fail_cleanly() {
    let out = common::plain_block_on(fs::metadata("/"), Duration::from_secs(5));
    assert!(out.is_err(), "no runtime on this thread: {out:?}");
}

/// The blocking-pool fallbacks (used on kernels without an op) do what the ring ops do. The
/// fallbacks are forced with `CORING_FS_BLOCKING=1`, read once per process, so the scenario
/// runs in a child process of its own.
#[test]
fn blocking_pool_fallbacks() {
    let out = common::run_child(
        "blocking_pool_fallbacks_child",
        "fallbacks",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", common::describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("fallbacks ok"),
        "{}",
        common::describe(&out)
    );
}

#[test]
#[ignore = "run by blocking_pool_fallbacks in a child process"]
fn blocking_pool_fallbacks_child() {
    if common::child_role().as_deref() != Some("fallbacks") {
        return;
    }
    // Only this test runs in the child process, before any fs op: nothing reads the variable
    // concurrently.
    std::env::set_var("CORING_FS_BLOCKING", "1");
    run_in_temp_dir(60, |dir| async move {
        let pool_threads = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
                .filter(|name| name.trim() == "coring-blocking")
                .count()
        };
        assert_eq!(pool_threads(), 0);

        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(dir.join("f"))
            .await
            .unwrap();
        file.set_len(5 * GIB).await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 5 * GIB);
        file.set_len(0).await.unwrap();
        file.allocate(0, 65536).await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 65536);
        file.fallocate(libc::FALLOC_FL_KEEP_SIZE, 65536, 4096)
            .await
            .unwrap();
        assert_eq!(
            file.allocate(0, 0).await.unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
        file.sync_range(0, 0, libc::SYNC_FILE_RANGE_WRITE)
            .await
            .unwrap();
        assert!(pool_threads() > 0, "the fallbacks ran on the blocking pool");

        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&a, b"A").await.unwrap();
        fs::rename(&a, &b).await.unwrap();
        assert_eq!(
            fs::rename(&a, &b).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        fs::hard_link(&b, &a).await.unwrap();
        assert_eq!(fs::metadata(&a).await.unwrap().nlink(), 2);
        fs::symlink("b", dir.join("s")).await.unwrap();
        assert!(fs::symlink_metadata(dir.join("s"))
            .await
            .unwrap()
            .is_symlink());
        assert_eq!(fs::metadata(dir.join("s")).await.unwrap().len(), 1);
        assert_eq!(
            fs::metadata(dir.join("nope")).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        fs::remove_file(&a).await.unwrap();
        assert_eq!(
            fs::remove_file(&a).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        fs::create_dir_all(dir.join("x/y/z")).await.unwrap();
        assert_eq!(
            fs::create_dir(dir.join("x")).await.unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            fs::remove_dir(dir.join("x")).await.unwrap_err().kind(),
            ErrorKind::DirectoryNotEmpty
        );
        fs::remove_dir(dir.join("x/y/z")).await.unwrap();
        println!("fallbacks ok");
    });
}
