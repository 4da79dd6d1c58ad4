//! Sources of flag documents.

#[cfg(feature = "file")]
mod file;
#[cfg(feature = "network")]
mod network;
#[cfg(feature = "pancake")]
mod pancake;

#[cfg(feature = "file")]
pub use file::FileSource;
#[cfg(feature = "network")]
pub use network::{
    Backoff, DEFAULT_MAX_PAYLOAD, FallbackSource, NetworkOptions, ReconnectPolicy, Session,
    SessionEnd, keep_connected,
};
#[cfg(feature = "http")]
pub use network::{PollingSource, PollingSourceBuilder};
#[cfg(feature = "redis")]
pub use network::{RedisSource, RedisSourceBuilder};
#[cfg(feature = "sse")]
pub use network::{SseSource, SseSourceBuilder};
#[cfg(feature = "ws")]
pub use network::{WebSocketSource, WebSocketSourceBuilder};
#[cfg(feature = "pancake")]
pub use pancake::{PancakeSource, PancakeSourceBuilder};
