//! Sources of flag documents.

#[cfg(feature = "file")]
mod file;
#[cfg(feature = "network")]
mod network;
#[cfg(feature = "pancake")]
mod pancake;

#[cfg(feature = "file")]
pub use file::FileSource;
#[cfg(feature = "http")]
pub use network::PollingSource;
#[cfg(feature = "redis")]
pub use network::RedisSource;
#[cfg(feature = "sse")]
pub use network::SseSource;
#[cfg(feature = "ws")]
pub use network::WebSocketSource;
#[cfg(feature = "network")]
pub use network::{
    Backoff, DEFAULT_MAX_PAYLOAD, FallbackSource, NetworkOptions, ReconnectPolicy, Session,
    SessionEnd, keep_connected,
};
#[cfg(feature = "pancake")]
pub use pancake::PancakeSource;
