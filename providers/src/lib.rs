//! # flagyard
//!
//! OpenFeature providers composed from small parts, evaluating flags locally:
//! a [`Source`](core::Source) delivers flagd documents, a [`Store`](core::Store)
//! keeps the last good one for cold starts, the compiled evaluator answers in
//! nanoseconds without I/O, and a [`Sink`](core::Sink) receives exposure and
//! tracking events.
//!
//! Build a provider, hand a clone to OpenFeature, and keep one for the
//! synchronous fast path:
//!
//! ```no_run
//! use std::time::Duration;
//! use flagyard::{DiskStore, FlagyardProvider, SseSource};
//! use flagyard::core::EvaluationContext;
//!
//! # async fn demo() -> Result<(), flagyard::BuildError> {
//! let provider = FlagyardProvider::builder()
//!     .source(SseSource::builder("http://127.0.0.1:8013/v1/stream").build()?)
//!     .store(DiskStore::new())
//!     .build()?;
//! open_feature::OpenFeature::singleton_mut().await.set_provider(provider.clone()).await;
//!
//! provider.wait_until_ready(Duration::from_secs(2)).await;
//! let ctx = EvaluationContext::new().with_targeting_key("user-1");
//! let on = provider.get_bool("new-checkout", false, &ctx); // ~40 ns, no I/O
//! # Ok(()) }
//! ```
//!
//! ## Cargo features
//!
//! | feature | what it adds |
//! |---|---|
//! | `file` (default) | [`FileSource`]: a watched flag file |
//! | `disk` (default) | [`DiskStore`]: the last good document in a file |
//! | `http` (default) | [`PollingSource`]: HTTP polling with ETag |
//! | `sse` (default) | [`SseSource`]: Server-Sent Events |
//! | `ws` (default) | [`WebSocketSource`]: WebSocket |
//! | `sqlite` | [`SqliteStore`]: a SQLite cache (bundled SQLite) |
//! | `redis` | [`RedisSource`] and [`RedisStore`]: a document shared through Redis |
//! | `pancake` | [`PancakeSource`]: flask-pancake's switches, flags and samples |
//! | `bots` (default) | bot user agents kept out of events ([`FlagyardProviderBuilder::filter_bots`]) |
//! | `http-sink` | [`HttpSink`]: events in batches to a collector |
//! | `otel` | [`OtlpSink`]: exposures as OpenTelemetry log records (OTLP/HTTP) |
//!
//! Sources that hold a connection share [`keep_connected`] and its backoff;
//! `docs/ARCHITECTURE.md` in the repository describes the runtime.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod build_error;
mod events;
mod openfeature;
mod provider;
mod recorder;
mod sinks;
mod sources;

/// The core crate: documents, the evaluator, the plug-in traits.
pub use flagyard_core as core;
/// The storage crate.
pub use flagyard_storage as storage;

pub use build_error::BuildError;
pub use events::{ProviderEvent, ProviderStatus, Subscription};
pub use flagyard_core::Details;
#[cfg(feature = "redis")]
pub use flagyard_storage::RedisStore;
#[cfg(feature = "sqlite")]
pub use flagyard_storage::SqliteStore;
pub use openfeature::{OpenFeatureContext, json_to_struct};
pub use provider::{FlagyardProvider, FlagyardProviderBuilder, ReadyResult};
pub use recorder::{EventStats, MAX_TRACKING_DETAILS, MAX_TRACKING_NAME, USER_AGENT_ATTRIBUTE};
#[cfg(feature = "http-sink")]
pub use sinks::{HttpSink, HttpSinkBuilder, HttpSinkStats};
pub use sinks::{MemorySink, NoopSink};
#[cfg(feature = "otel")]
pub use sinks::{OtlpSink, OtlpSinkBuilder};
// Every source: each module re-exports only what its features build.
#[cfg(any(feature = "file", feature = "network"))]
pub use sources::*;

#[cfg(feature = "disk")]
pub use flagyard_storage::DiskStore;
pub use flagyard_storage::MemoryStore;
