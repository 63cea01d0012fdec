//! Item 12: files at and beyond end of file, short reads, and misaligned `O_DIRECT`, with the
//! exact results `File::read_at` documents ("`Ok(0)` means `pos` is at or past the end of the
//! file ...; fewer bytes than asked is a short read"). Buffered EOF reads, buffered reads far
//! beyond EOF and misaligned direct I/O in the middle of a file are covered by
//! `tests/file_io.rs`, `tests/fs_functions.rs` and `tests/fs_direct.rs`; this adds:
//! - `O_DIRECT` on a file whose size is not a multiple of the block size: the short read of
//!   the tail returns exactly the bytes that exist, aligned reads at and past EOF give
//!   `Ok(0)`, and a misaligned read that reaches past EOF is either `Ok(0)`/short with the
//!   right bytes or the explained alignment error, never anything else;
//! - a write beyond EOF (a hole reads back as zeros, the size is exact);
//! - vectored reads at and across EOF;
//! - short reads from a pipe (only what is there, never waiting for the buffer to fill).

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::{watchdog, TempDir};
use crate::{finish, serial};
use coring::buf::IoBuf;
use coring::fs::{AlignedBuf, File, OpenOptions};
use coring::runtime::Runtime;

/// A directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh directory whose file system takes `O_DIRECT` (tmpfs before 6.6 does not).
fn direct_dir() -> Scratch {
    let name = format!("coring-reliability-direct-{}", std::process::id());
    for base in [
        std::env::temp_dir(),
        PathBuf::from("/var/tmp"),
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
    ] {
        let scratch = Scratch(base.join(&name));
        if std::fs::create_dir_all(&scratch.0).is_err() {
            continue;
        }
        let ok = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .custom_flags(libc::O_DIRECT)
            .open(scratch.0.join("probe"))
            .is_ok();
        if ok {
            return scratch;
        }
    }
    panic!("no directory takes O_DIRECT");
}

fn run<Fut: std::future::Future<Output = ()>>(body: impl FnOnce() -> Fut + Send + 'static) {
    let _serial = serial();
    watchdog(30, move || {
        let rt = Runtime::new().unwrap();
        rt.block_on(body());
        finish(&rt);
    });
}

const SIZE: usize = 5000;

fn content() -> Vec<u8> {
    (0..SIZE).map(|i| (i % 241) as u8).collect()
}

#[test]
fn direct_reads_at_the_tail_and_beyond_eof() {
    run(|| async {
        let dir = direct_dir();
        let path = dir.0.join("tail");
        std::fs::write(&path, content()).unwrap();
        let file = OpenOptions::new()
            .read(true)
            .direct(true)
            .open(&path)
            .await
            .unwrap();
        // The whole file, through a buffer larger than it: exactly the bytes that exist.
        let (res, buf) = file.read_at(AlignedBuf::new(8192, 4096), 0).await;
        assert_eq!(res.unwrap(), SIZE, "short read of the whole file");
        assert!(buf[..SIZE] == content()[..]);
        // The tail block: 5000 - 4096 bytes.
        let (res, buf) = file.read_at(AlignedBuf::new(4096, 4096), 4096).await;
        assert_eq!(res.unwrap(), SIZE - 4096, "short read of the tail block");
        assert!(buf[..SIZE - 4096] == content()[4096..]);
        // Aligned reads at the first block past EOF and far beyond: Ok(0).
        for pos in [8192u64, 1 << 20, 1 << 40] {
            let (res, _) = file.read_at(AlignedBuf::new(4096, 4096), pos).await;
            assert_eq!(res.unwrap(), 0, "direct read at {pos}");
        }
        // read_exact_at over the tail: UnexpectedEof, with the bytes that exist kept.
        let (res, buf) = file.read_exact_at(AlignedBuf::new(8192, 4096), 0).await;
        let err = res.unwrap_err();
        assert!(
            err.kind() == std::io::ErrorKind::UnexpectedEof
                || err.kind() == std::io::ErrorKind::InvalidInput,
            "{err}"
        );
        assert!(buf[..SIZE] == content()[..]);
        // A misaligned read reaching past EOF: the file system decides whether alignment or
        // EOF is checked first, but the answer is one of these two.
        let (res, buf) = file.read_at(AlignedBuf::new(4096, 4096), 4999).await;
        match res {
            Ok(n) => {
                assert!(n <= 1, "misaligned read at 4999 gave {n} bytes");
                if n == 1 {
                    assert_eq!(buf[0], content()[4999]);
                }
            }
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
                assert!(e.to_string().contains("O_DIRECT"), "unexplained: {e}");
            }
        }
        // The size is unchanged by all of it.
        assert_eq!(file.metadata().await.unwrap().len(), SIZE as u64);
    });
}

#[test]
fn writes_beyond_eof_leave_a_hole_of_zeros() {
    run(|| async {
        let dir = TempDir::new();
        let file = File::create(dir.join("hole")).await.unwrap();
        let (res, _) = file.write_all_at(b"end".to_vec(), 1 << 20).await;
        res.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), (1 << 20) + 3);
        let reader = File::open(dir.join("hole")).await.unwrap();
        let (res, buf) = reader.read_exact_at(vec![0xFFu8; 4096], 4096).await;
        res.unwrap();
        assert!(buf.iter().all(|&b| b == 0), "a hole must read as zeros");
        let (res, buf) = reader.read_at(vec![0u8; 10], (1 << 20) + 1).await;
        assert_eq!(res.unwrap(), 2, "short read at the tail");
        assert_eq!(&buf[..2], b"nd");
        // Vectored: at EOF nothing, across EOF the bytes that exist, in order.
        let (res, _) = reader
            .readv_at(vec![vec![0u8; 4], vec![0u8; 4]], (1 << 20) + 3)
            .await;
        assert_eq!(res.unwrap(), 0);
        let (res, bufs) = reader
            .readv_at(vec![vec![0u8; 2], vec![0u8; 8]], (1 << 20) - 1)
            .await;
        assert_eq!(res.unwrap(), 4);
        assert_eq!(bufs[0], [0, b'e']);
        assert_eq!(&bufs[1][..2], b"nd");
    });
}

#[test]
fn pipe_reads_are_short_and_do_not_wait_to_fill_the_buffer() {
    run(|| async {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: pipe2 just created both descriptors; nothing else owns them.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let reader = File::from_std(std::fs::File::from(r));
        let mut writer = std::fs::File::from(w);
        for (round, len) in [1usize, 100, 4095, 4096, 5000].into_iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|i| (i + round) as u8).collect();
            writer.write_all(&data).unwrap();
            let mut got = Vec::new();
            while got.len() < len {
                let (res, buf) = coring::time::timeout(
                    Duration::from_secs(5),
                    reader.read_at(vec![0u8; 64 * 1024], 0),
                )
                .await
                .expect("a pipe read waited for more than was there");
                let n = res.unwrap();
                assert!(n > 0 && n <= len - got.len(), "read {n} of {len}");
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got == data, "round {round}");
        }
        // The writer closes: end of file.
        drop(writer);
        let (res, _) = reader.read_at(vec![0u8; 16], 0).await;
        assert_eq!(res.unwrap(), 0);
        // A slice of a buffer: only its range is written.
        let (r, w) = {
            let mut fds = [0; 2];
            // SAFETY: as above.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            // SAFETY: as above.
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
        };
        let reader = File::from_std(std::fs::File::from(r));
        std::fs::File::from(w).write_all(b"abc").unwrap();
        let (res, slice) = reader.read_at(vec![b'.'; 8].slice(2..6), 0).await;
        assert_eq!(res.unwrap(), 3);
        assert_eq!(slice.into_inner(), b"..abc...");
    });
}
