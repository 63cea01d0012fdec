//! A model-based fuzz test of op sequences (proptest): random programs of submits (a runtime
//! sleep, a kernel timeout, a read and a write on a pipe), drops of op futures mid-flight,
//! task aborts and early shutdowns, run on a tiny ring or on the epoll backend, checked against
//! a simple model:
//! - every op resolves exactly once: it completes (its output is checked) or it is cancelled
//!   (its future dropped), never both, never twice, never neither;
//! - no timer completes early;
//! - bytes are conserved through the pipe: what completed reads got plus what is left in the
//!   pipe equals what completed writes put in, give or take what cancelled reads and writes
//!   may have moved in the kernel before their cancellation (that is completion-based I/O,
//!   not a loss), and exactly when nothing was cancelled;
//! - nothing leaks: `shutdown() == 0`, no op slot left, and the fd table as it was.
//!
//! `PROPTEST_CASES` raises the case count (default 256, about two seconds).

mod common;

use std::cell::RefCell;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{assert_same_fds, fd_lock, open_fds, poll_once, watchdog};
use coring::fs::File;
use coring::op::timeout::Timeout;
use coring::op::Op;
use coring::runtime::{DriverPolicy, Runtime};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `coring::time::sleep` of this many milliseconds.
    Sleep(u8),
    /// A kernel timeout (`IORING_OP_TIMEOUT`) of this many milliseconds.
    Timeout(u8),
    /// A read of up to this many bytes from the shared pipe.
    PipeRead(u16),
    /// A write of this many bytes into the shared pipe.
    PipeWrite(u16),
}

#[derive(Debug, Clone, Copy)]
enum Action {
    /// Spawn a task running one op.
    Spawn(Kind),
    /// Poll an op once in place, then drop its future.
    DropOp(Kind),
    /// Abort the task spawned `n` spawns ago (modulo the number spawned).
    Abort(u8),
    /// Let the runtime run for this many milliseconds.
    Run(u8),
    /// Shut the runtime down now (the rest of the program is skipped).
    Shutdown,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (0u8..6).prop_map(Kind::Sleep),
        (0u8..6).prop_map(Kind::Timeout),
        (1u16..512).prop_map(Kind::PipeRead),
        (1u16..512).prop_map(Kind::PipeWrite),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => kind().prop_map(Action::Spawn),
        3 => kind().prop_map(Action::DropOp),
        2 => any::<u8>().prop_map(Action::Abort),
        2 => (0u8..4).prop_map(Action::Run),
        1 => Just(Action::Shutdown),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    Cancelled,
}

/// What the model records.
#[derive(Default)]
struct Log {
    outcomes: Vec<Vec<Outcome>>,
    kinds: Vec<Kind>,
    bytes_read: usize,
    bytes_written: usize,
    /// Capacity of cancelled reads, and length of cancelled writes: what they may have
    /// moved in the kernel before their cancellation.
    cancelled_read_bytes: usize,
    cancelled_write_bytes: usize,
    early: Vec<String>,
}

/// One op's proof of resolution: `complete` records a completion; dropping it unresolved
/// records a cancellation.
struct Token {
    id: usize,
    log: Rc<RefCell<Log>>,
    resolved: bool,
}

impl Token {
    fn new(log: &Rc<RefCell<Log>>, kind: Kind) -> Token {
        let mut l = log.borrow_mut();
        l.outcomes.push(Vec::new());
        l.kinds.push(kind);
        Token {
            id: l.outcomes.len() - 1,
            log: log.clone(),
            resolved: false,
        }
    }

    fn complete(mut self) {
        self.log.borrow_mut().outcomes[self.id].push(Outcome::Completed);
        self.resolved = true;
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if !self.resolved {
            let mut log = self.log.borrow_mut();
            log.outcomes[self.id].push(Outcome::Cancelled);
            match log.kinds[self.id] {
                Kind::PipeRead(n) => log.cancelled_read_bytes += usize::from(n),
                Kind::PipeWrite(n) => log.cancelled_write_bytes += usize::from(n),
                _ => {}
            }
        }
    }
}

/// The op of `kind`, resolving `token` when it completes.
async fn op(kind: Kind, token: Token, pipe: (Rc<File>, Rc<File>)) {
    let log = token.log.clone();
    match kind {
        Kind::Sleep(ms) => {
            let (start, wait) = (Instant::now(), Duration::from_millis(ms.into()));
            coring::time::sleep(wait).await;
            if start.elapsed() < wait {
                log.borrow_mut().early.push(format!("sleep {wait:?}"));
            }
        }
        Kind::Timeout(ms) => {
            let (start, wait) = (Instant::now(), Duration::from_millis(ms.into()));
            Op::submit(Timeout::new(wait)).await.unwrap();
            if start.elapsed() < wait {
                log.borrow_mut().early.push(format!("timeout {wait:?}"));
            }
        }
        Kind::PipeRead(len) => {
            let (res, buf) = pipe.0.read_at(vec![0u8; len.into()], 0).await;
            let n = res.unwrap();
            assert!(
                buf[..n].iter().all(|&b| b == 0xA5),
                "bytes changed in the pipe"
            );
            log.borrow_mut().bytes_read += n;
        }
        Kind::PipeWrite(len) => {
            let (res, _) = pipe.1.write_at(vec![0xA5u8; len.into()], 0).await;
            log.borrow_mut().bytes_written += res.unwrap();
        }
    }
    token.complete();
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just created both descriptors; nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn run_program(uring: bool, program: &[Action]) -> Result<(), TestCaseError> {
    let before = open_fds();
    let builder = if uring {
        Runtime::builder()
            .driver(DriverPolicy::IoUring)
            .entries(4)
            .cq_entries(8)
    } else {
        Runtime::builder().driver(DriverPolicy::Epoll)
    };
    let rt = builder.build().unwrap();
    let log = Rc::new(RefCell::new(Log::default()));
    let (r, w) = pipe();
    // A duplicate of the read end, to drain what is left after the runtime is gone.
    let leftover = r.try_clone().unwrap();
    let files = (
        Rc::new(File::from_std(std::fs::File::from(r))),
        Rc::new(File::from_std(std::fs::File::from(w))),
    );
    let mut shut_early = false;
    rt.block_on(async {
        let mut tasks = Vec::new();
        for action in program {
            match *action {
                Action::Spawn(kind) => {
                    let token = Token::new(&log, kind);
                    tasks.push(coring::spawn(op(kind, token, files.clone())));
                }
                Action::DropOp(kind) => {
                    let token = Token::new(&log, kind);
                    let mut fut = pin!(op(kind, token, files.clone()));
                    let _ = poll_once(fut.as_mut());
                }
                Action::Abort(n) if !tasks.is_empty() => {
                    let i = tasks.len() - 1 - (n as usize % tasks.len());
                    tasks[i].abort();
                }
                Action::Abort(_) => {}
                Action::Run(ms) => {
                    coring::time::sleep(Duration::from_millis(ms.into())).await;
                }
                Action::Shutdown => {
                    shut_early = true;
                    return;
                }
            }
        }
        // Let what can finish finish.
        coring::time::sleep(Duration::from_millis(8)).await;
    });
    let stuck = rt.shutdown();
    let slots = rt.op_slots();
    drop(rt);
    drop(files);
    // What the completed writes left in the pipe.
    let mut left = Vec::new();
    let mut leftover = std::fs::File::from(leftover);
    // SAFETY: F_SETFL with O_NONBLOCK on a descriptor we own.
    unsafe { libc::fcntl(leftover.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let _ = leftover.read_to_end(&mut left);
    drop(leftover);
    let log = log.borrow();
    prop_assert_eq!(stuck, 0, "ops the kernel did not finish at shutdown");
    prop_assert_eq!(slots, 0, "op slots left after shutdown");
    for (id, outcomes) in log.outcomes.iter().enumerate() {
        prop_assert_eq!(
            outcomes.len(),
            1,
            "op {} ({:?}) resolved {:?}",
            id,
            log.kinds[id],
            outcomes
        );
    }
    prop_assert!(log.early.is_empty(), "early timers: {:?}", log.early);
    // Reads and writes that completed account for the pipe's traffic exactly, up to what
    // cancelled ones may have moved before their cancellation.
    let accounted = log.bytes_read + left.len();
    prop_assert!(
        accounted <= log.bytes_written + log.cancelled_write_bytes,
        "{} bytes read + {} left > {} written (+ at most {} by cancelled writes)",
        log.bytes_read,
        left.len(),
        log.bytes_written,
        log.cancelled_write_bytes
    );
    prop_assert!(
        accounted + log.cancelled_read_bytes >= log.bytes_written,
        "{} bytes read + {} left (+ at most {} by cancelled reads) < {} written: bytes lost",
        log.bytes_read,
        left.len(),
        log.cancelled_read_bytes,
        log.bytes_written
    );
    let _ = shut_early;
    assert_same_fds(&before, "after one program");
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

#[test]
fn op_sequences_match_the_model() {
    let _lock = fd_lock();
    watchdog(120, || {
        let config = ProptestConfig {
            cases: cases(),
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        proptest!(config, |(uring in any::<bool>(), program in prop::collection::vec(action(), 1..40))| {
            run_program(uring, &program)?;
        });
    });
}
