//! The tokio bridge ([`Builder::tokio_bridge`](super::Builder::tokio_bridge), cargo feature
//! `tokio-bridge`): a tokio runtime with its I/O and time drivers on a thread of its own,
//! entered on every coring worker while it runs, so crates built on tokio's reactor
//! (`tokio::time`, `tokio::net`, tower's timeouts, database, Redis and HTTP clients) work
//! inside coring tasks.
//!
//! # How it works
//! tokio's reactor types find their driver through the thread's tokio context, which
//! `Handle::enter` sets. A coring worker enters the bridge's runtime for as long as its
//! loop runs, so a `tokio::time::sleep` or a `tokio::net::TcpStream` created in a coring
//! task registers with the bridge's drivers. Those drivers run on the bridge's one worker
//! thread, which wakes the coring task through its `Waker` when the timer fires or the socket
//! is ready: an ordinary cross-thread wake, which coring delivers at once. `tokio::spawn`
//! from a coring task runs the (`Send`) task on the bridge's thread, as libraries that spawn
//! their connection drivers expect.
//!
//! The price is that of tokio's own reactor: each readiness event or timer crosses from the
//! bridge's thread to the worker (a wake-up), where a native coring socket completes in the
//! worker's own ring. Prefer coring's types where they exist; the bridge is for the crates
//! that only speak tokio.

#[cfg(feature = "tokio-bridge")]
mod imp {
    use std::io;

    /// Owns the bridge's tokio runtime (held by the coring `Runtime`).
    pub(crate) struct Bridge(Option<tokio::runtime::Runtime>);

    /// What a worker needs to enter the bridge (held by every worker).
    #[derive(Clone)]
    pub(crate) struct BridgeHandle(Option<tokio::runtime::Handle>);

    impl Bridge {
        /// Starts the bridge's runtime when `enabled`.
        pub(crate) fn start(enabled: bool) -> io::Result<Bridge> {
            if !enabled {
                return Ok(Bridge(None));
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("coring-tokio-bridge")
                .enable_all()
                .build()
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("coring: starting the tokio bridge: {e}"))
                })?;
            Ok(Bridge(Some(runtime)))
        }

        pub(crate) fn handle(&self) -> BridgeHandle {
            BridgeHandle(self.0.as_ref().map(|rt| rt.handle().clone()))
        }
    }

    impl Drop for Bridge {
        fn drop(&mut self) {
            // Without waiting: a blocking shutdown panics when the coring runtime is dropped
            // inside an async context. Tasks left on the bridge are dropped on its thread.
            if let Some(runtime) = self.0.take() {
                runtime.shutdown_background();
            }
        }
    }

    impl BridgeHandle {
        /// Enters the bridge's runtime on this thread until the guard is dropped.
        pub(crate) fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
            self.0.as_ref().map(tokio::runtime::Handle::enter)
        }
    }
}

#[cfg(not(feature = "tokio-bridge"))]
mod imp {
    use std::io;

    /// Without the `tokio-bridge` feature there is no bridge.
    pub(crate) struct Bridge;

    #[derive(Clone)]
    pub(crate) struct BridgeHandle;

    impl Bridge {
        pub(crate) fn start(_enabled: bool) -> io::Result<Bridge> {
            Ok(Bridge)
        }

        pub(crate) fn handle(&self) -> BridgeHandle {
            BridgeHandle
        }
    }

    impl BridgeHandle {
        pub(crate) fn enter(&self) {}
    }
}

pub(crate) use imp::{Bridge, BridgeHandle};
