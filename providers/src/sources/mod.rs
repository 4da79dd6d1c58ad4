//! Sources of flag documents.

#[cfg(feature = "file")]
mod file;
#[cfg(feature = "network")]
mod network;
#[cfg(feature = "pancake")]
mod pancake;

#[cfg(feature = "file")]
pub use file::FileSource;
#[cfg(any(feature = "http", feature = "ws", feature = "grpc"))]
pub(crate) use network::connection_builder_methods;
#[cfg(feature = "network")]
pub use network::*;
#[cfg(feature = "http-sink")]
pub(crate) use network::{is_auth_status, retry_after};
#[cfg(feature = "pancake")]
pub use pancake::{PancakeSource, PancakeSourceBuilder};
