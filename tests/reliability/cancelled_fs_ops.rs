//! Item 4: a cancelled open or statx whose operation completes anyway. Extends
//! `tests/fs_functions.rs::cancelled_open_leaks_no_fd` (which counts only descriptors that
//! point into its directory) with the whole fd table, with statx by descriptor and by path,
//! and with opens the kernel cannot finish inline: a FIFO opened for reading waits for a
//! writer, so its `openat` sits in io-wq when the future is dropped, and a writer then
//! arrives while the cancel races it. Whichever wins, the orphaned op must close whatever it
//! opened: the fd table ends exactly as it began.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::pin::pin;
use std::time::Duration;

use crate::common::{assert_same_fds, open_fds, poll_once, watchdog, TempDir};
use crate::{finish, serial, uring};
use coring::fs::File;
use coring::op::openclose::OpenAt;
use coring::op::path::StatxAt;
use coring::op::Op;

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

#[test]
fn cancelled_opens_and_statx_leave_the_fd_table_unchanged() {
    let _serial = serial();
    watchdog(60, || {
        let dir = TempDir::new();
        let root = dir.path().to_path_buf();
        for i in 0..50 {
            std::fs::write(root.join(format!("f{i}")), b"data").unwrap();
        }
        let fifo = root.join("fifo");
        mkfifo(&fifo);
        let before = open_fds();
        let rt = uring().build().unwrap();
        let (mut opened_by_orphans, mut statx_dropped) = (0, 0);
        rt.block_on(async {
            let file = File::open(root.join("f0")).await.unwrap();
            for round in 0..200 {
                let path = root.join(format!("f{}", round % 50));
                // An open that the kernel completes inline, at submission: the orphan owns a
                // descriptor it must close.
                {
                    let op = OpenAt::new(&path, libc::O_RDONLY, 0).unwrap();
                    let mut open = pin!(Op::submit(op));
                    if poll_once(open.as_mut()).is_pending() {
                        opened_by_orphans += 1;
                    }
                }
                // statx by descriptor and by path, dropped after one poll.
                {
                    let mut stat = pin!(file.metadata());
                    if poll_once(stat.as_mut()).is_pending() {
                        statx_dropped += 1;
                    }
                }
                {
                    let mut stat = pin!(Op::submit(StatxAt::path(&path, true).unwrap()));
                    let _ = poll_once(stat.as_mut());
                }
                if round % 10 == 0 {
                    // A FIFO open: blocks in io-wq until a writer comes.
                    {
                        let op = OpenAt::new(&fifo, libc::O_RDONLY, 0).unwrap();
                        let mut open = pin!(Op::submit(op));
                        assert!(poll_once(open.as_mut()).is_pending(), "FIFO open returned");
                        coring::time::sleep(Duration::from_millis(2)).await;
                    }
                    // The cancel is queued; a writer now races it. If the open wins, the
                    // orphan gets a descriptor and closes it.
                    let writer = std::fs::OpenOptions::new()
                        .write(true)
                        .custom_flags_nonblock()
                        .open(&fifo);
                    coring::time::sleep(Duration::from_millis(2)).await;
                    drop(writer);
                }
                if round % 20 == 0 {
                    coring::task::yield_now().await;
                }
            }
            // Let every orphan's completion, and the closes it causes, go through.
            coring::time::sleep(Duration::from_millis(100)).await;
            drop(file);
            coring::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(rt.op_slots(), 0, "orphaned opens or statx still hold slots");
        });
        eprintln!(
            "cancelled opens pending at drop: {opened_by_orphans}/200, statx: {statx_dropped}/200"
        );
        finish(&rt);
        drop(rt);
        assert_same_fds(&before, "after cancelled opens and statx");
    });
}

/// `O_NONBLOCK` for the FIFO writer: without a reader it fails at once (`ENXIO`) rather than
/// blocking the test; with the orphaned reader's open in progress it succeeds.
trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

#[test]
fn cancelled_opens_on_the_default_backend() {
    // The same through the public API on whatever backend runs by default.
    let _serial = serial();
    watchdog(60, || {
        let dir = TempDir::new();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("x"), b"x").unwrap();
        let before = open_fds();
        let rt = coring::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            for i in 0..300 {
                let path = if i % 2 == 0 {
                    root.join("x")
                } else {
                    root.join(format!("new{i}"))
                };
                let mut options = coring::fs::OpenOptions::new();
                options.read(true).write(true).create(true);
                let mut open = pin!(options.open(path));
                let _ = poll_once(open.as_mut());
                let mut meta = pin!(coring::fs::metadata(root.join("x")));
                let _ = poll_once(meta.as_mut());
            }
            coring::time::sleep(Duration::from_millis(100)).await;
        });
        finish(&rt);
        drop(rt);
        assert_same_fds(&before, "after cancelled opens (default backend)");
    });
}
