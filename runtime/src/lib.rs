//! The core of coring: the io_uring driver, the op lifecycle, the local executor and owned
//! buffers. Applications use it through the `coring` facade crate.
//!
//! Read `docs/ARCHITECTURE.md` in the repository for the design; each module opens with its
//! own invariants.

/// `tracing::trace!` with the `tracing` feature; nothing (not even argument evaluation)
/// without it.
macro_rules! trace {
    ($($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::trace!($($arg)*);
    };
}

pub mod buf;
pub mod driver;
pub mod fd;
pub mod io;
pub mod op;
pub mod runtime;
pub mod signal;
pub mod task;
pub mod time;

pub use task::spawn;
