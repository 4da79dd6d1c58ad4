//! # flagyard-storage
//!
//! [`Store`](flagyard_core::Store) implementations: where a provider keeps the
//! last good flag document so it can start without its source.
//!
//! - [`MemoryStore`]: in process, for tests and for sharing between providers.
//! - [`DiskStore`] (feature `disk`, default): one file, atomic writes, coalesced.
//! - [`SqliteStore`] (feature `sqlite`): a SQLite file; [`SqliteDocuments`] is the
//!   versioned document with history that the flag server keeps in the same format;
//!   [`SqliteEvents`] the events its collector keeps.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "sqlite", feature = "redis"))]
mod credentials;
#[cfg(feature = "disk")]
mod disk;
mod documents;
mod events;
#[cfg(any(feature = "sqlite", feature = "redis"))]
pub mod experiments;
mod memory;
#[cfg(feature = "pancake")]
pub mod pancake;
mod paths;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(any(feature = "sqlite", feature = "redis"))]
pub use credentials::StoredCredential;
#[cfg(feature = "disk")]
pub use disk::{DEFAULT_COALESCE, DiskStore, DiskStoreBuilder, default_directory};
pub use documents::{
    Change, DEFAULT_ENVIRONMENT, DEFAULT_HISTORY_KEEP, EnvironmentName, HistoryEntry,
    InvalidEnvironmentName, StoredDocument,
};
#[cfg(feature = "redis")]
pub use events::redis::RedisEvents;
#[cfg(feature = "sqlite")]
pub use events::sqlite::SqliteEvents;
pub use events::{EventQuery, Ingested, Retention, StoredEvent};
pub use memory::MemoryStore;
pub use paths::data_directory;
#[cfg(feature = "redis")]
pub use redis_store::{RedisDocuments, RedisStore, masked_url};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteDocuments, SqliteStore};
