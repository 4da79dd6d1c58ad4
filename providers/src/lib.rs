//! # flagyard
//!
//! OpenFeature providers composed from small parts, evaluating flags locally:
//! a [`Source`](core::Source) delivers flagd documents, a [`Store`](core::Store)
//! keeps the last good one for cold starts, the compiled evaluator answers in
//! nanoseconds, and a [`Sink`](core::Sink) receives exposure events.
//!
//! ```no_run
//! use std::time::Duration;
//! use flagyard::{DiskCache, FileSource, FlagyardProvider};
//! use flagyard::core::EvaluationContext;
//!
//! # async fn demo() {
//! let provider = FlagyardProvider::builder()
//!     .source(FileSource::new("flags.json"))
//!     .store(DiskCache::new())
//!     .build();
//! provider.wait_until_ready(Duration::from_secs(2)).await;
//! let ctx = EvaluationContext::new().with_targeting_key("user-1");
//! let color = provider.get_string("banner-color", "red", &ctx);
//! # }
//! ```

#![warn(missing_docs)]

mod events;
mod exposure;
mod openfeature;
mod provider;
mod sinks;
mod sources;

/// The core crate: documents, the evaluator, the plug-in traits.
pub use flagyard_core as core;
/// The storage crate.
pub use flagyard_storage as storage;

pub use events::{ProviderEvent, ProviderStatus, Subscription};
pub use flagyard_core::Details;
#[cfg(feature = "redis")]
pub use flagyard_storage::RedisStore;
#[cfg(feature = "sqlite")]
pub use flagyard_storage::SqliteStore;
pub use openfeature::{OpenFeatureContext, json_to_struct};
pub use provider::{FlagyardProvider, FlagyardProviderBuilder, ReadyResult};
pub use sinks::{MemorySink, NoopSink};
#[cfg(feature = "file")]
pub use sources::FileSource;
#[cfg(feature = "pancake")]
pub use sources::PancakeSource;
#[cfg(feature = "http")]
pub use sources::PollingSource;
#[cfg(feature = "redis")]
pub use sources::RedisSource;
#[cfg(feature = "sse")]
pub use sources::SseSource;
#[cfg(feature = "ws")]
pub use sources::WebSocketSource;
#[cfg(feature = "network")]
pub use sources::{
    Backoff, DEFAULT_MAX_PAYLOAD, FallbackSource, NetworkOptions, ReconnectPolicy, Session,
    SessionEnd, keep_connected,
};

#[cfg(feature = "disk")]
pub use flagyard_storage::DiskCache;
pub use flagyard_storage::MemoryStore;
