//! # flagyard-flagd-proto
//!
//! flagd's gRPC contracts, generated at build time from the `.proto` files in
//! `proto/` (copied from flagd-schemas, Apache-2.0): [`sync`]
//! (`flagd.sync.v1.FlagSyncService`, what in-process flagd providers follow)
//! and [`evaluation`] (`flagd.evaluation.v1.Service`, what RPC providers
//! call) with [`evaluation_v2`] (`flagd.evaluation.v2.Service`, the same
//! without `ResolveAll` and with optional values, what the Python and JS RPC
//! providers call), with clients and servers, and [`convert`] between
//! `google.protobuf.Struct` and JSON. `flagyard serve` implements the servers;
//! `GrpcSyncSource` uses the sync client.

#![allow(missing_docs, unreachable_pub, clippy::all)]

/// `flagd.sync.v1`: the whole flag document, streamed on connect and on
/// every change.
pub mod sync {
    tonic::include_proto!("flagd.sync.v1");
}

/// `flagd.evaluation.v1`: evaluation over RPC, and a stream of
/// `provider_ready` / `configuration_change` events.
pub mod evaluation {
    tonic::include_proto!("flagd.evaluation.v1");
}

/// `flagd.evaluation.v2`: as v1 without `ResolveAll`; a value or variant
/// may be absent (the caller's code default applies).
pub mod evaluation_v2 {
    tonic::include_proto!("flagd.evaluation.v2");
}

#[warn(missing_docs, clippy::all)]
pub mod convert;
