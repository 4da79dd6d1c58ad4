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
pub use network::*;
#[cfg(feature = "pancake")]
pub use pancake::{PancakeSource, PancakeSourceBuilder};
