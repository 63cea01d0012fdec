//! Files on io_uring: [`File`], [`OpenOptions`], [`Metadata`].
//!
//! Every read and write is positional (`read_at`, `write_at`): there is no shared cursor, so
//! concurrent ops on one file never race over a position.

mod file;
mod metadata;
mod open_options;

pub use file::File;
pub use metadata::Metadata;
pub use open_options::OpenOptions;
