//! # flagyard-storage
//!
//! [`Store`](flagyard_core::Store) implementations: where a provider keeps the
//! last good flag document so it can start without its source.
//!
//! - [`MemoryStore`]: in process, for tests and for sharing between providers.
//! - [`DiskCache`] (feature `disk`, default): one file, atomic writes, coalesced.

#![warn(missing_docs)]

#[cfg(feature = "disk")]
mod disk;
mod memory;

#[cfg(feature = "disk")]
pub use disk::{DEFAULT_COALESCE, DiskCache, DiskCacheBuilder, default_directory};
pub use memory::MemoryStore;
