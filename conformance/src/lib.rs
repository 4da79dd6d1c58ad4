//! # flagyard-conformance
//!
//! Conformance checks shared by every Flagyard composition:
//! - [`suite`]: scenarios every Source × Store composition must pass, driven
//!   through a [`suite::Harness`] that builds a provider, publishes documents,
//!   stops and restarts the source and injects bad payloads;
//! - [`testbed`]: the flagd-testbed evaluation cases (`flagd-eval-cases.jsonl`,
//!   see `../shared/conformance-data/SOURCES.md`) on both `fractional` profiles;
//! - [`fuzz`]: the fuzz targets' bodies, run by `conformance/fuzz` and replayed
//!   from the stored corpus by `tests/fuzz_corpus.rs`.

pub mod browser;
pub mod data;
pub mod fuzz;
pub mod redis_server;
pub mod suite;
pub mod testbed;
