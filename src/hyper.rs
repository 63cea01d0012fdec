//! hyper 1.x on coring: [`CoringExecutor`] (`hyper::rt::Executor`, on [`coring::spawn`]),
//! [`CoringTimer`] (`hyper::rt::Timer`, on [`coring::time`]), and
//! [`Compat`](crate::compat::Compat) as hyper's `Read`/`Write` for any coring stream.
//! The `hyper` feature turns this on, with hyper's `http1`, `http2`, `server` and `client`
//! features.
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
//! HTTP/2 (h2c, prior knowledge) is the same with
//! `hyper::server::conn::http2::Builder::new(CoringExecutor)`, which runs each stream as a
//! coring task, and `hyper::client::conn::http2::handshake(CoringExecutor, io)` for a client.
//!
//! # Threads
//! Everything here runs on the thread of the runtime that created it: coring tasks need not
//! be `Send`, and neither do the services. hyper requires its sleep futures to be
//! `Send + Sync`, which coring's are; a sleep's timer belongs to the worker that first polls
//! it, and hyper polls it in the connection's task, on that worker.
//!
//! [`coring::spawn`]: crate::spawn
//! [`coring::time`]: crate::time

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
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

/// A coring sleep as hyper's `Sleep` (a local type, so hyper's trait can be implemented for
/// it). coring's sleeps are `Send + Sync`, as hyper requires.
struct Sleep(crate::time::Sleep);

impl Sleep {
    fn new(inner: crate::time::Sleep) -> Sleep {
        Sleep(inner)
    }

    fn reset(&mut self, deadline: Instant) {
        self.0.reset(deadline);
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx)
    }
}

impl hyper::rt::Sleep for Sleep {}
