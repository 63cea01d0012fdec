//! # coring
//!
//! A completion-based, thread-per-core async runtime on Linux io_uring.
//!
//! Every thread owns one ring. Futures submit operations and park on a slot of the ring's op
//! table; the thread's driver drains completions and wakes exactly the task that waits.
//! Buffers are owned: each I/O method takes its buffer by value and hands it back with the
//! result, so the kernel never writes into memory the program freed, even when a future is
//! dropped mid-flight.
//!
//! ```no_run
//! use coring::buf::IoBuf;
//!
//! #[coring::main]
//! async fn main() -> std::io::Result<()> {
//!     let listener = coring::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     loop {
//!         let (stream, _peer) = listener.accept().await?;
//!         coring::spawn(async move {
//!             let mut buf = vec![0u8; 4096];
//!             loop {
//!                 let (res, b) = stream.read(buf).await;
//!                 let n = match res { Ok(0) | Err(_) => return, Ok(n) => n };
//!                 let (res, b) = stream.write_all(b.slice(..n)).await;
//!                 buf = b.into_inner();
//!                 if res.is_err() { return; }
//!             }
//!         });
//!     }
//! }
//! ```
//!
//! # Combinators: `select!`, `join!`
//! coring's futures (ops, [`JoinHandle`](task::JoinHandle)s, [`time::sleep`], channel
//! receives) are plain `std` futures, so the runtime-agnostic macros of `futures-util` work
//! on them: `futures::join!` polls several at once, `futures::select!` takes the first to
//! finish and drops the others, which cancels their I/O (a dropped op is cancelled in the
//! kernel and its buffer freed after the kernel is done with it). For a group of spawned
//! tasks, see [`task::JoinSet`].
//!
//! ```
//! use std::time::Duration;
//! use futures_util::{future::FutureExt, join, pin_mut, select};
//! # coring::runtime::Runtime::new().unwrap().block_on(async {
//! let (a, b) = join!(coring::spawn(async { 1 }), async { 2 });
//! assert_eq!((a.unwrap(), b), (1, 2));
//!
//! let (r, w) = coring::net::UnixStream::pair()?;
//! let read = r.read(vec![0u8; 16]).fuse(); // never completes: nobody writes
//! let timer = coring::time::sleep(Duration::from_millis(5)).fuse();
//! pin_mut!(read, timer);
//! let what = select! {
//!     _ = read => "data",
//!     () = timer => "timeout", // the read is dropped, so cancelled
//! };
//! assert_eq!(what, "timeout");
//! # drop(w);
//! # Ok::<(), std::io::Error>(())
//! # }).unwrap();
//! ```

pub use coring_macros::{main, test};
pub use coring_runtime::runtime::spawn_on;
pub use coring_runtime::{buf, io, op, signal, spawn, task, time};

#[cfg(any(feature = "compat", feature = "hyper"))]
pub mod compat;
#[cfg(feature = "hyper")]
pub mod hyper;

/// The runtime: [`Runtime`](runtime::Runtime), its [`Builder`](runtime::Builder), metrics and
/// setup errors.
pub mod runtime {
    pub use coring_runtime::driver::{
        DriverKind, DriverPolicy, Metrics, RingFlags, SetupError, SetupErrorKind,
    };
    pub use coring_runtime::runtime::{
        driver_kind, spawn_on, spawn_on_with, worker_index, Builder, Handle, Runtime,
        ShutdownHandle,
    };
}

/// Networking: TCP, UDP and Unix domain sockets.
pub mod net {
    pub use coring_net::unix;
    pub use coring_net::{OwnedReadHalf, OwnedWriteHalf, ReuniteError, SplitStream};
    pub use coring_net::{TcpListener, TcpStream, ToSocketAddrs};
    pub use coring_net::{UdpSocket, UnixDatagram, UnixListener, UnixStream};
}

/// Files and directories: a replacement for `std::fs` / `tokio::fs` (see [`coring_fs`]).
pub mod fs {
    pub use coring_fs::{
        canonicalize, copy, create_dir, create_dir_all, hard_link, metadata, read, read_dir,
        read_link, read_to_string, remove_dir, remove_dir_all, remove_file, rename,
        set_permissions, symlink, symlink_metadata, try_exists, write,
    };
    pub use coring_fs::{AlignedBuf, DirBuilder, DirEntry, FileType, ReadDir, READ_DIR_BATCH};
    pub use coring_fs::{File, Metadata, OpenOptions};
}

/// Synchronization for tasks on one worker, across workers and with plain threads: tokio's
/// `sync` module, re-exported whole.
///
/// `tokio::sync` needs no tokio runtime: its primitives wait and wake through `Waker`s,
/// which coring lets any thread use, so they work unchanged between coring tasks, between
/// workers and with threads that are not coring's. Re-exporting it gives a tokio user the
/// names, the behaviour and the documentation they already know, from the most used and
/// most reviewed implementation there is (checked with loom in tokio's own CI); writing our
/// own would add risk and nothing else. What it holds:
///
/// - [`Mutex`](sync::Mutex), [`RwLock`](sync::RwLock) (fair, FIFO), with owned guards;
/// - [`Semaphore`](sync::Semaphore), with [`OwnedSemaphorePermit`](sync::OwnedSemaphorePermit);
/// - [`Notify`](sync::Notify), [`Barrier`](sync::Barrier), [`OnceCell`](sync::OnceCell);
/// - channels: [`mpsc`](sync::mpsc) (many producers, one consumer; `channel(n)` with
///   back-pressure and `unbounded_channel()`), [`oneshot`](sync::oneshot),
///   [`watch`](sync::watch) (the latest value), [`broadcast`](sync::broadcast) (every
///   receiver gets every value).
///
/// A channel's waker is called after its lock is released, so a receiver woken on another
/// worker does not then wait for the sender's lock.
///
/// ```
/// use coring::sync::{mpsc, oneshot, Mutex};
/// use std::sync::Arc;
///
/// # coring::runtime::Runtime::new().unwrap().block_on(async {
/// let (tx, mut rx) = mpsc::channel(16);
/// coring::spawn(async move { tx.send(7).await.unwrap() });
/// assert_eq!(rx.recv().await, Some(7));
///
/// let (tx, rx) = oneshot::channel();
/// tx.send("done").unwrap();
/// assert_eq!(rx.await.unwrap(), "done");
///
/// let counter = Arc::new(Mutex::new(0));
/// *counter.lock().await += 1;
/// assert_eq!(*counter.lock().await, 1);
/// # });
/// ```
#[cfg(feature = "sync")]
pub mod sync {
    pub use tokio::sync::*;
}
