//! Helpers shared by the integration tests: a watchdog so nothing hangs, process fd
//! accounting, temp dirs, a tiny PRNG, manual polling, `timeout`/`join` combinators, and
//! re-executing the test binary as a child process.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::{pin, Pin};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `f` on its own thread and panics if it has not returned after `secs` seconds, so a
/// hung runtime fails the test instead of hanging CI. A panic in `f` is propagated.
///
/// The hung thread (if any) is leaked; the process exits when the harness is done.
pub fn watchdog<R, F>(secs: u64, f: F) -> R
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let name = thread::current().name().unwrap_or("test").to_string();
    let handle = thread::Builder::new()
        .name(format!("{name}-body"))
        .spawn(move || {
            let out = f();
            let _ = tx.send(());
            out
        })
        .expect("spawn test body thread");
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(out) => out,
            Err(payload) => std::panic::resume_unwind(payload),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: test body did not finish within {secs} s (hang?)")
        }
    }
}

/// Runs `f` on a fresh runtime under a [`watchdog`] of `secs` seconds, then shuts the runtime
/// down and asserts that every op it started has ended (the op table is empty).
pub fn run<F, Fut>(secs: u64, f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    watchdog(secs, move || on_fresh_runtime(f()));
}

/// [`run`], with a fresh [`TempDir`] (removed afterwards) whose path `body` gets.
pub fn run_in_temp_dir<F, Fut>(secs: u64, body: F)
where
    F: FnOnce(PathBuf) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    watchdog(secs, move || {
        let dir = TempDir::new();
        on_fresh_runtime(body(dir.path().to_path_buf()));
    });
}

/// Runs `fut` to completion on a fresh runtime, then [`assert_drained`].
fn on_fresh_runtime(fut: impl Future<Output = ()>) {
    let rt = coring::runtime::Runtime::new().unwrap();
    rt.block_on(fut);
    assert_drained(&rt);
}

/// Shuts `rt` down and asserts that no op was left in flight or in the op table.
pub fn assert_drained(rt: &coring::runtime::Runtime) {
    assert_eq!(rt.shutdown(), 0, "ops still in flight at shutdown");
    assert_eq!(rt.op_slots(), 0, "op slots left after shutdown");
}

static FD_LOCK: Mutex<()> = Mutex::new(());

/// Serializes the tests of one binary that count process fds.
pub fn fd_lock() -> MutexGuard<'static, ()> {
    FD_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The process's open descriptors and what they point to.
pub fn open_fds() -> BTreeMap<i32, String> {
    let mut fds = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd") {
        let entry = entry.expect("fd entry");
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // The directory fd of this very listing (or another thread's listing) is not the
        // process's own: it points at /proc/<pid>/fd, or is gone before readlink. Skip it.
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.to_string_lossy().into_owned();
            if target.starts_with("/proc/") && target.ends_with("/fd") {
                continue;
            }
            fds.insert(fd, target);
        }
    }
    fds
}

/// Asserts that the process holds the same descriptors as in `before`.
pub fn assert_same_fds(before: &BTreeMap<i32, String>, context: &str) {
    // Closes submitted through a ring or by another thread may need a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let after = open_fds();
        if &after == before {
            return;
        }
        if Instant::now() >= deadline {
            let leaked: Vec<_> = after
                .iter()
                .filter(|(k, _)| !before.contains_key(k))
                .collect();
            let closed: Vec<_> = before
                .iter()
                .filter(|(k, _)| !after.contains_key(k))
                .collect();
            panic!(
                "{context}: fd table changed: {} before, {} after; new: {leaked:?}; gone: {closed:?}",
                before.len(),
                after.len()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `fd` is an open descriptor of this process.
pub fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD takes no pointer and only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// A directory removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path =
            std::env::temp_dir().join(format!("coring-test-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// xorshift64*: deterministic pseudo-random numbers without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

fn noop_raw() -> RawWaker {
    fn no(_: *const ()) {}
    fn clone(_: *const ()) -> RawWaker {
        noop_raw()
    }
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, no, no, no);
    RawWaker::new(std::ptr::null(), &VTABLE)
}

/// A waker that does nothing.
pub fn noop_waker() -> Waker {
    // SAFETY: every vtable function ignores the (null) data pointer.
    unsafe { Waker::from_raw(noop_raw()) }
}

/// Polls `fut` once with a no-op waker.
pub fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    fut.poll(&mut cx)
}

struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor with no coring runtime on the thread; panics after `limit`.
pub fn plain_block_on<F: Future>(fut: F, limit: Duration) -> F::Output {
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + limit;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        let now = Instant::now();
        assert!(
            now < deadline,
            "plain_block_on: future still pending after {limit:?}"
        );
        thread::park_timeout(deadline - now);
    }
}

/// `coring::time::timeout` that panics with `what` on expiry.
pub async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match coring::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not finish within {limit:?}"),
    }
}

/// Polls both futures concurrently in the current task until both are done.
pub async fn join2<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let mut ra = None;
    let mut rb = None;
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// The environment variable telling a re-executed test binary which child role to play.
pub const CHILD_ENV: &str = "CORING_TEST_CHILD";

/// The child role this process was started for, if any.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Re-executes this test binary, running only the (ignored) test `test_name`, with
/// `CORING_TEST_CHILD=role`; returns its output. Bounded by `limit`.
pub fn run_child(test_name: &str, role: &str, limit: Duration) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args([
            test_name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, role)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child test process");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("child output");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("child output");
            panic!(
                "child {test_name} ({role}) did not exit within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Formats a child's output for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A connected loopback pair: (coring side accepted by `listener`, std client).
pub async fn tcp_pair() -> io::Result<(coring::net::TcpStream, std::net::TcpStream)> {
    let listener = coring::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // A loopback connect completes in the backlog before accept is called.
    let client = std::net::TcpStream::connect(addr)?;
    let (server, peer) = listener.accept().await?;
    assert_eq!(peer, client.local_addr()?);
    Ok((server, client))
}

/// A builder pinned to the io_uring backend, for tests of ring behaviour (CQE ordering, ring
/// sizes, SQPOLL, cancellation in the kernel) that must not run on the epoll fallback even
/// when `CORING_DRIVER=epoll` picks it for the rest of the suite.
#[allow(dead_code)]
pub fn uring() -> coring::runtime::Builder {
    coring::runtime::Runtime::builder().driver(coring::runtime::DriverPolicy::IoUring)
}

/// The calling thread's kernel thread id.
pub fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// The CPUs thread `tid` of this process (0: the calling thread) may run on.
pub fn cpu_affinity(tid: i32) -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let rc = libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        assert_eq!(
            rc,
            0,
            "sched_getaffinity({tid}): {}",
            io::Error::last_os_error()
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Whether thread `tid` still exists in this process.
pub fn thread_exists(tid: i32) -> bool {
    Path::new(&format!("/proc/self/task/{tid}")).exists()
}

/// The number of threads in this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .count()
}

/// Waits up to `limit` for `cond` to hold; returns whether it did.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// The `p`-th percentile (0..=100, nearest rank) of `sorted`, which must be sorted.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    assert!(!sorted.is_empty(), "percentile of nothing");
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Set by `.ci/run`, which installs every external program the tests drive (`.ci/packages`):
/// there a missing one fails its test.
pub const REQUIRE_CLIENTS: &str = "CORING_REQUIRE_CLIENTS";

/// The path of the external program `binary` (a real client or server the test drives), if it
/// is installed.
///
/// When it is not: under `.ci/run` (`CORING_REQUIRE_CLIENTS=1`) the test fails, naming the apt
/// package to install. Elsewhere (the README's `cargo test` on a fresh machine, which must pass
/// with only Rust installed) the test returns without running and says so loudly: the notice
/// goes straight to the terminal's standard error, past the test harness's output capture, so
/// it shows even though the test reports `ok`.
pub fn require_tool(binary: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        report_missing(binary, package);
    }
    found
}

/// What [`require_tool`] does when `what` (a program the test drives) is not installed: fails
/// the test under `.ci/run`, else prints the notice that the test does not run.
pub fn report_missing(binary: &str, package: &str) {
    use std::io::Write as _;
    let test = thread::current().name().unwrap_or("test").to_string();
    if std::env::var_os(REQUIRE_CLIENTS).is_some_and(|v| v != "0") {
        panic!(
            "`{binary}` is not installed: .ci/run must install the apt package `{package}` \
             (listed in .ci/packages): apt-get install -y {package}"
        );
    }
    let _ = writeln!(
        io::stderr(),
        "\n*** NOT RUN: {test} needs `{binary}`, which is not installed \
         (apt-get install -y {package}; .ci/run installs it and runs this test) ***\n"
    );
}
