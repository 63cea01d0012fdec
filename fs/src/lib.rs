//! Files and directories on io_uring: a replacement for `std::fs` / `tokio::fs`.
//!
//! - [`File`], [`OpenOptions`], [`Metadata`], [`FileType`]: open files. Every read and write
//!   is positional (`read_at`, `write_at`): there is no shared cursor, so concurrent ops on
//!   one file never race over a position.
//! - Whole-file and path functions: [`read`], [`read_to_string`], [`write`](fn@write), [`copy`],
//!   [`rename`], [`remove_file`], [`hard_link`], [`symlink`], [`metadata`],
//!   [`symlink_metadata`], [`try_exists`], [`canonicalize`], [`read_link`],
//!   [`set_permissions`].
//! - Directories: [`read_dir`] ([`ReadDir`], [`DirEntry`]), [`create_dir`],
//!   [`create_dir_all`], [`DirBuilder`], [`remove_dir`], [`remove_dir_all`].
//! - Direct I/O: [`OpenOptions::direct`] and [`AlignedBuf`].
//!
//! # Ring or blocking pool
//! Whatever the kernel has an io_uring op for goes through the ring: open, close, read,
//! write (and vectored), fsync, statx (by descriptor and by path), ftruncate (6.9+),
//! fallocate, sync_file_range, renameat, unlinkat, mkdirat, linkat, symlinkat. The rest runs
//! on the blocking pool ([`coring::task::spawn_blocking`]): listing directories (no getdents
//! op), `remove_dir_all`, `canonicalize`, `read_link`, `set_permissions`.
//!
//! An op the running kernel lacks also falls back to the blocking pool. Whether it has one is
//! asked once per process with `IORING_REGISTER_PROBE` on a throwaway ring
//! ([`coring::op::fs::kernel_supports`]), not guessed from `EINVAL`, which these ops also
//! return for ordinary bad arguments. The pool is used too when the thread's driver refuses
//! an op (`Unsupported` with no OS error: a driver without io_uring). Setting the environment
//! variable `CORING_FS_BLOCKING=1` (read once per process) forces every fallback, to test
//! them on a kernel that has every op.
//!
//! [`coring::task::spawn_blocking`]: coring_runtime::task::spawn_blocking
//! [`coring::op::fs::kernel_supports`]: coring_runtime::op::fs::kernel_supports

mod dir;
mod direct;
mod file;
mod functions;
mod metadata;
mod open_options;
mod sys;

pub use coring_runtime::buf::AlignedBuf;
pub use dir::{
    create_dir, create_dir_all, read_dir, remove_dir, remove_dir_all, DirBuilder, DirEntry,
    ReadDir, BATCH as READ_DIR_BATCH,
};
pub use file::File;
pub use functions::{
    canonicalize, copy, hard_link, metadata, read, read_link, read_to_string, remove_file, rename,
    set_permissions, symlink, symlink_metadata, try_exists, write,
};
pub use metadata::{FileType, Metadata};
pub use open_options::OpenOptions;
