//! io_uring refused by a seccomp filter: `Runtime::new()` must fail with an `io::Error` that
//! names the cause and carries a `SetupError` of the right kind.
//!
//! The filter cannot be removed once installed, so each case runs in a child process: the
//! test binary re-executes itself for the ignored test `seccomp_child` with
//! `CORING_TEST_CHILD=<case>`, and the parent checks its exit status and output.

mod common;

use std::time::Duration;

use common::{child_role, describe, run_child};
use coring::runtime::{DriverKind, DriverPolicy, Runtime, SetupError, SetupErrorKind};

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// Makes `io_uring_setup` (425 on x86_64 and aarch64) fail with `errno` on this thread and
/// every thread it creates afterwards; everything else is allowed.
fn refuse_io_uring_setup(errno: u32) {
    fn stmt(code: u32, k: u32) -> libc::sock_filter {
        libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        }
    }
    fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt,
            jf,
            k,
        }
    }
    let nr_offset = 0; // offsetof(struct seccomp_data, nr)
    let arch_offset = 4; // offsetof(struct seccomp_data, arch)
    let mut filter = [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, arch_offset),
        jeq(AUDIT_ARCH, 0, 3),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, nr_offset),
        jeq(libc::SYS_io_uring_setup as u32, 0, 1),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ERRNO | errno),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(
        rc,
        0,
        "PR_SET_NO_NEW_PRIVS: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `prog` points to `filter`, both alive for the call; the kernel copies them.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
            0,
            0,
        )
    };
    assert_eq!(rc, 0, "PR_SET_SECCOMP: {}", std::io::Error::last_os_error());
}

/// The child: installs the filter, tries to build a runtime, checks the error, and prints a
/// line the parent looks for.
#[test]
#[ignore = "child process of the setup_refused tests; runs only when re-executed by them"]
fn seccomp_child() {
    let Some(role) = child_role() else {
        return;
    };
    let (errno, sqpoll, expected_kind, expected_io_kind) = match role.as_str() {
        "eperm" => (
            libc::EPERM,
            false,
            SetupErrorKind::Forbidden,
            std::io::ErrorKind::PermissionDenied,
        ),
        "eperm-sqpoll" => (
            libc::EPERM,
            true,
            SetupErrorKind::Forbidden,
            std::io::ErrorKind::PermissionDenied,
        ),
        "enosys" => (
            libc::ENOSYS,
            false,
            SetupErrorKind::Unsupported,
            std::io::ErrorKind::Unsupported,
        ),
        other => panic!("unknown child role {other}"),
    };
    // Before the filter, io_uring works: the refusal below is the filter's doing.
    Runtime::new().expect("io_uring must work before the filter is installed");
    refuse_io_uring_setup(errno as u32);
    // The `Auto` policy (the default unless CORING_DRIVER says otherwise) falls back to epoll
    // and says why.
    let auto = Runtime::builder()
        .driver(DriverPolicy::Auto)
        .build()
        .expect("Auto falls back to the epoll driver");
    assert_eq!(auto.driver_kind(), DriverKind::Epoll);
    let reason = auto.fallback_reason().expect("the fallback reason is kept");
    assert!(
        reason.contains("seccomp"),
        "the reason must name seccomp: {reason}"
    );
    assert_eq!(
        auto.block_on(async { coring::spawn(async { 5 }).await.unwrap() }),
        5
    );
    drop(auto);
    // io_uring only: the typed error.
    let builder = if sqpoll {
        Runtime::builder().sqpoll(Duration::from_millis(10))
    } else {
        Runtime::builder()
    }
    .driver(DriverPolicy::IoUring);
    let err = match builder.build() {
        Ok(_) => panic!("the runtime started although io_uring_setup is refused"),
        Err(e) => e,
    };
    let message = err.to_string();
    println!("CHILD-MESSAGE: {message}");
    assert_eq!(err.kind(), expected_io_kind, "{message}");
    assert!(
        message.contains("seccomp"),
        "the message must name seccomp: {message}"
    );
    let setup = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<SetupError>())
        .unwrap_or_else(|| panic!("no SetupError inside: {err:?}"));
    assert_eq!(setup.kind(), &expected_kind, "{message}");
    assert_eq!(setup.raw_os_error(), Some(errno));
    let source = std::error::Error::source(setup).expect("the errno is the source");
    assert_eq!(
        source.to_string(),
        std::io::Error::from_raw_os_error(errno).to_string()
    );
    println!("CHILD-OK {role}");
}

fn check_case(role: &str) {
    let out = run_child("seccomp_child", role, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed\n{}", describe(&out));
    assert!(
        stdout.contains(&format!("CHILD-OK {role}")),
        "the child did not run its checks\n{}",
        describe(&out)
    );
    assert!(stdout.contains("1 passed"), "{}", describe(&out));
}

#[test]
fn seccomp_eperm_is_forbidden() {
    check_case("eperm");
}

#[test]
fn seccomp_eperm_with_sqpoll_is_forbidden() {
    check_case("eperm-sqpoll");
}

#[test]
fn seccomp_enosys_is_unsupported() {
    check_case("enosys");
}
