//! Sources of flag documents.

#[cfg(feature = "file")]
mod file;

#[cfg(feature = "file")]
pub use file::FileSource;
