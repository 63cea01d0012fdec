//! Item 19: io_uring under `RLIMIT_MEMLOCK` of 64 KiB, with a registered provided-buffer ring.
//! (Seccomp `EPERM` and `ENOSYS` are covered by `tests/setup_refused.rs`.)
//!
//! Since Linux 5.12 the rings themselves are charged to the memory cgroup, not to
//! `RLIMIT_MEMLOCK`; what may still be charged is memory the kernel pins for the process,
//! such as a provided-buffer ring's entries, and then only for processes without
//! `CAP_IPC_LOCK`. So the scenario runs in two child processes: one as it is (root, with
//! `CAP_IPC_LOCK`), one with `CAP_IPC_LOCK` dropped, as an ordinary user would be. In each,
//! the runtime and the buffer rings (one small, one whose 32768 entries take 512 KiB) either
//! work, and are then used for a real multishot receive, or fail with an error that names the
//! cause; nothing panics. The children print what happened.

use std::io::Write;
use std::time::Duration;

use crate::common::{child_role, run_child};
use crate::{assert_child_ok, set_soft_limit, uring};
use coring::buf::BufRing;
use coring::runtime::SetupError;

const CAP_IPC_LOCK: u32 = 14;

/// Drops `CAP_IPC_LOCK` from this (single-threaded part of the) process's effective and
/// permitted sets.
fn drop_cap_ipc_lock() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `Data` records for version 3; both structs are live.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_IPC_LOCK);
    data[0].permitted &= !(1 << CAP_IPC_LOCK);
    // SAFETY: as above; capset reads the two records.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

/// Whether `e` says what went wrong in terms a user can act on.
fn names_the_cause(e: &std::io::Error) -> bool {
    let msg = e.to_string().to_lowercase();
    msg.contains("memlock") || msg.contains("locked memory") || msg.contains("ulimit -l")
}

fn scenario(role: &str) {
    if role == "nocap" {
        drop_cap_ipc_lock();
    }
    set_soft_limit(libc::RLIMIT_MEMLOCK, 64 * 1024);
    let rt = match uring().entries(256).build() {
        Ok(rt) => {
            println!("{role}: an io_uring runtime builds under RLIMIT_MEMLOCK=64KiB");
            rt
        }
        Err(e) => {
            let setup = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<SetupError>())
                .unwrap_or_else(|| panic!("{role}: untyped setup error: {e}"));
            println!("{role}: setup refused: {:?}: {e}", setup.kind());
            assert!(
                names_the_cause(&e),
                "{role}: the error does not name the cause: {e}"
            );
            return;
        }
    };
    rt.block_on(async {
        for (count, len) in [(16u16, 4096u32), (32768, 64)] {
            match BufRing::new(count, len) {
                Ok(ring) => {
                    println!(
                        "{role}: a BufRing of {count} entries ({} bytes of entries) registered",
                        count as usize * 16
                    );
                    use_ring(&ring).await;
                }
                Err(e) => {
                    println!(
                        "{role}: BufRing of {count} entries refused: {e} (kind {:?}, errno {:?})",
                        e.kind(),
                        e.raw_os_error()
                    );
                    assert!(
                        names_the_cause(&e),
                        "{role}: the buffer ring's error does not name the cause: {e}"
                    );
                }
            }
        }
    });
    assert_eq!(rt.shutdown(), 0);
    assert_eq!(rt.op_slots(), 0);
}

/// Receives 64 KiB through `ring` with a multishot recv, byte-exact.
async fn use_ring(ring: &BufRing) {
    let listener = coring::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 199) as u8).collect();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(&sent).unwrap();
    });
    let (stream, _) = listener.accept().await.unwrap();
    let mut received = stream.recv_multishot(ring);
    let mut got = Vec::new();
    while let Some(buf) = received.next().await {
        got.extend_from_slice(&buf.unwrap());
    }
    writer.join().unwrap();
    assert!(got == data, "bytes received through the buffer ring differ");
}

#[test]
#[ignore = "child process of memlock_64k_with_a_buffer_ring; runs only when re-executed"]
fn memlock_child() {
    let Some(role) = child_role() else { return };
    scenario(&role);
    println!("memlock-ok");
}

#[test]
fn memlock_64k_with_a_buffer_ring() {
    let _serial = crate::serial();
    for role in ["root", "nocap"] {
        let out = run_child("memlock::memlock_child", role, Duration::from_secs(30));
        assert_child_ok(&out, "memlock-ok");
        eprint!("{}", String::from_utf8_lossy(&out.stdout));
    }
}
