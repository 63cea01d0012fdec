//! hyper 1.x on coring: [`CoringExecutor`] (`hyper::rt::Executor`, on [`coring::spawn`]),
//! [`CoringTimer`] (`hyper::rt::Timer`, on [`coring::time`]), and
//! [`Compat`](crate::compat::Compat) as hyper's `Read`/`Write` for any coring stream.
//! The `hyper` feature turns this on, with hyper's `http1`, `server` and `client` features.
//!
//! A hello-world HTTP/1.1 server (keep-alive is hyper's default); `examples/http.rs` is the
//! same as a program:
//!
//! ```no_run
//! use std::convert::Infallible;
//! use coring::compat::CompatIo;
//! use coring::hyper::CoringTimer;
//! use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response};
//!
//! async fn hello(_: Request<Incoming>) -> Result<Response<String>, Infallible> {
//!     Ok(Response::new("Hello, World!".to_string()))
//! }
//!
//! #[coring::main]
//! async fn main() -> std::io::Result<()> {
//!     let listener = coring::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         coring::spawn(async move {
//!             let served = http1::Builder::new()
//!                 .timer(CoringTimer)
//!                 .serve_connection(stream.compat(), service_fn(hello))
//!                 .await;
//!             if let Err(e) = served {
//!                 eprintln!("connection: {e}");
//!             }
//!         });
//!     }
//! }
//! ```
//!
//! A client is the same pieces the other way round: `hyper::client::conn::http1::handshake`
//! on `TcpStream::connect(..).await?.compat()`, with the connection future given to
//! `coring::spawn` (or [`CoringExecutor`]).
//!
//! # Threads
//! Everything here runs on the thread of the runtime that created it: coring tasks need not
//! be `Send`, and neither do the services. hyper requires its sleep futures to be
//! `Send + Sync`; coring's timers belong to one thread, so a [`CoringTimer`] sleep panics if
//! polled on another thread (hyper never does that: it polls them in the connection's task).
//!
//! [`coring::spawn`]: crate::spawn
//! [`coring::time`]: crate::time

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// `hyper::rt::Executor` that spawns on the current thread's coring runtime, for hyper's
/// background tasks (HTTP/2 streams, client connections). The futures need not be `Send`.
///
/// ```no_run
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// use hyper::rt::Executor;
/// coring::hyper::CoringExecutor.execute(async { println!("on coring") });
/// # });
/// ```
///
/// # Panics
/// `execute` panics outside a coring runtime, as [`coring::spawn`](crate::spawn) does.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoringExecutor;

impl<F> hyper::rt::Executor<F> for CoringExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        // Dropping the handle detaches the task.
        drop(crate::spawn(future));
    }
}

/// `hyper::rt::Timer` on coring's timers ([`coring::time::sleep_until`](crate::time)), for
/// hyper's timeouts (`header_read_timeout`, keep-alive, HTTP/2 pings). Set it with
/// `http1::Builder::timer(CoringTimer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoringTimer;

impl hyper::rt::Timer for CoringTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep::new(crate::time::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep::new(crate::time::sleep_until(deadline)))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Sleep>() {
            Some(mine) => mine.get_mut().reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// The current thread's id, cached (`thread::current()` clones an `Arc` each call); `None`
/// while the thread's locals are being destroyed. Thread ids are never reused.
fn this_thread() -> Option<ThreadId> {
    thread_local! {
        static ID: ThreadId = thread::current().id();
    }
    ID.try_with(|id| *id).ok()
}

/// A coring sleep that hyper may hold in a `Send + Sync` box: it is only ever polled or
/// dropped on the thread that made it.
struct Sleep {
    inner: ManuallyDrop<crate::time::Sleep>,
    owner: Option<ThreadId>,
}

impl Sleep {
    fn new(inner: crate::time::Sleep) -> Sleep {
        Sleep {
            inner: ManuallyDrop::new(inner),
            owner: this_thread(),
        }
    }

    fn check_thread(&self) {
        assert!(
            self.owner.is_some() && this_thread() == self.owner,
            "coring::hyper: a CoringTimer sleep was used on a thread other than its runtime's"
        );
    }

    fn reset(&mut self, deadline: Instant) {
        self.check_thread();
        self.inner.reset(deadline);
    }
}

// SAFETY: the inner sleep (which holds an `Rc` of its runtime's timer queue) is touched only
// on `owner`, the thread that created it: `poll` and `reset` check the thread first and panic
// elsewhere, and `drop` on another thread leaks it instead of dropping it. Moving the wrapper
// between threads moves only its bytes, which is harmless.
unsafe impl Send for Sleep {}
// SAFETY: `&Sleep` gives no access to the inner sleep at all.
unsafe impl Sync for Sleep {}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.check_thread();
        Pin::new(&mut *this.inner).poll(cx)
    }
}

impl hyper::rt::Sleep for Sleep {}

impl Drop for Sleep {
    fn drop(&mut self) {
        if self.owner.is_some() && this_thread() == self.owner {
            // SAFETY: dropped once, here, on the owning thread; `inner` is not used again.
            unsafe { ManuallyDrop::drop(&mut self.inner) }
        }
        // On another thread: leaked. Its timer entry fires (waking nobody useful) or goes
        // away with the runtime.
    }
}
