//! Streams of any Unix signal: [`signal`], [`Signal`], [`SignalKind`].

use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::op::rw::{Read, CURRENT_POSITION};
use crate::op::Op;

/// Listener slots: how many signal streams may exist at once in the process.
pub const MAX_LISTENERS: usize = 128;
const SIGNALS: usize = 65;

/// Per-signal delivery counters (index = signal number).
static COUNTS: [AtomicU64; SIGNALS] = [const { AtomicU64::new(0) }; SIGNALS];
/// Eventfds of the listener slots; -1 where no eventfd was created yet. Never closed.
static SLOT_FDS: [AtomicI32; MAX_LISTENERS] = [const { AtomicI32::new(-1) }; MAX_LISTENERS];
/// Which slots a listener holds.
static SLOT_USED: [AtomicBool; MAX_LISTENERS] = [const { AtomicBool::new(false) }; MAX_LISTENERS];
/// Signals whose handler is installed.
static INSTALLED: Mutex<[bool; SIGNALS]> = Mutex::new([false; SIGNALS]);

/// A signal number, with constructors for the common ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(libc::c_int);

impl SignalKind {
    /// Any signal number, such as `libc::SIGUSR2`.
    pub const fn from_raw(signum: libc::c_int) -> Self {
        SignalKind(signum)
    }
    /// The signal number.
    pub const fn as_raw_value(&self) -> libc::c_int {
        self.0
    }
    /// `SIGINT` (Ctrl-C).
    pub const fn interrupt() -> Self {
        SignalKind(libc::SIGINT)
    }
    /// `SIGTERM`.
    pub const fn terminate() -> Self {
        SignalKind(libc::SIGTERM)
    }
    /// `SIGHUP`.
    pub const fn hangup() -> Self {
        SignalKind(libc::SIGHUP)
    }
    /// `SIGQUIT`.
    pub const fn quit() -> Self {
        SignalKind(libc::SIGQUIT)
    }
    /// `SIGUSR1`.
    pub const fn user_defined1() -> Self {
        SignalKind(libc::SIGUSR1)
    }
    /// `SIGUSR2`.
    pub const fn user_defined2() -> Self {
        SignalKind(libc::SIGUSR2)
    }
    /// `SIGCHLD`.
    pub const fn child() -> Self {
        SignalKind(libc::SIGCHLD)
    }
    /// `SIGWINCH`.
    pub const fn window_change() -> Self {
        SignalKind(libc::SIGWINCH)
    }
    /// `SIGPIPE`.
    pub const fn pipe() -> Self {
        SignalKind(libc::SIGPIPE)
    }
    /// `SIGALRM`.
    pub const fn alarm() -> Self {
        SignalKind(libc::SIGALRM)
    }
}

extern "C" fn on_signal(signum: libc::c_int) {
    // Only async-signal-safe work: atomics and write(2). errno is saved and restored.
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    let errno = unsafe { *libc::__errno_location() };
    if let Some(count) = usize::try_from(signum).ok().and_then(|s| COUNTS.get(s)) {
        count.fetch_add(1, Ordering::SeqCst);
    }
    let one: u64 = 1;
    for slot in &SLOT_FDS {
        let fd = slot.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: slot fds are eventfds that are never closed; we write 8 bytes from a
            // live local. A full counter (EAGAIN) already means "wake up".
            unsafe { libc::write(fd, (&one as *const u64).cast(), mem::size_of::<u64>()) };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

fn install(signum: libc::c_int) -> io::Result<()> {
    let index = usize::try_from(signum)
        .ok()
        .filter(|&s| s > 0 && s < SIGNALS)
        .ok_or_else(|| invalid(format!("coring: {signum} is not a signal number")))?;
    if [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ]
    .contains(&signum)
    {
        return Err(invalid(format!(
            "coring: signal {signum} cannot be listened for (it cannot be caught safely)"
        )));
    }
    let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    if installed[index] {
        return Ok(());
    }
    // SAFETY: sigaction is plain data; we fill the handler, an empty mask and flags, and the
    // handler only does async-signal-safe work.
    unsafe {
        let mut action: libc::sigaction = mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signum, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    installed[index] = true;
    Ok(())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Takes a free listener slot, creating its eventfd the first time.
fn take_slot() -> io::Result<(usize, RawFd)> {
    for (index, used) in SLOT_USED.iter().enumerate() {
        if used
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            continue;
        }
        let mut fd = SLOT_FDS[index].load(Ordering::SeqCst);
        if fd < 0 {
            // SAFETY: eventfd takes no pointers; the fd it returns is kept for the life of the
            // process (the signal handler may write to it at any time).
            fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
            if fd < 0 {
                used.store(false, Ordering::SeqCst);
                return Err(io::Error::last_os_error());
            }
            SLOT_FDS[index].store(fd, Ordering::SeqCst);
        }
        return Ok((index, fd));
    }
    Err(io::Error::other(format!(
        "coring: more than {MAX_LISTENERS} signal streams exist at once"
    )))
}

/// Starts listening for `kind`; the stream yields once per delivery noticed (several
/// deliveries between two `recv` calls may yield once, as with tokio).
///
/// ```no_run
/// use coring::signal::unix::{signal, SignalKind};
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let mut hangups = signal(SignalKind::hangup())?;
/// while hangups.recv().await.is_some() {
///     println!("reloading");
/// }
/// # Ok::<(), std::io::Error>(())
/// # });
/// ```
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    install(kind.0)?;
    let (slot, fd) = take_slot()?;
    Ok(Signal {
        signum: kind.0 as usize,
        seen: COUNTS[kind.0 as usize].load(Ordering::SeqCst),
        slot,
        fd,
    })
}

/// A stream of one signal's deliveries; made by [`signal`].
#[derive(Debug)]
pub struct Signal {
    signum: usize,
    seen: u64,
    slot: usize,
    fd: RawFd,
}

impl Signal {
    /// Waits for the next delivery. Always `Some(())`: the stream does not end.
    pub async fn recv(&mut self) -> Option<()> {
        loop {
            let count = COUNTS[self.signum].load(Ordering::SeqCst);
            if count != self.seen {
                self.seen = count;
                return Some(());
            }
            // Wait for the handler's next write, through the ring.
            let (result, _) = Op::submit(Read::new(self.fd, vec![0u8; 8], CURRENT_POSITION)).await;
            if let Err(e) = result {
                if e.raw_os_error() != Some(libc::EINTR) {
                    panic!("coring::signal: waiting on the signal eventfd failed: {e}");
                }
            }
        }
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        // The eventfd stays open for the next listener; only the slot is released.
        SLOT_USED[self.slot].store(false, Ordering::SeqCst);
    }
}
