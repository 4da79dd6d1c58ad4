//! Switches, flags and samples in Redis, in flask-pancake's key layout, so a
//! Flask app using flask-pancake and a Rust service using Flagyard read and
//! write the same state.
//!
//! | kind   | key                                         | value                 |
//! |--------|---------------------------------------------|-----------------------|
//! | switch | `SWITCH:{ext}:{NAME}`                       | `1` / `0`             |
//! | flag   | `FLAG:{ext}:{NAME}`                         | `1` / `0` (global)    |
//! | flag   | `FLAG:{ext}:k:{group}:{NAME}:{object_id}`   | `1` / `0` (override)  |
//! | flag   | `FLAG:{ext}:t:{group}:{NAME}`               | set of override keys  |
//! | sample | `SAMPLE:{ext}:{NAME}`                       | a ratio, `0`…`100`    |
//!
//! `ext` defaults to `pancake`; names are upper-cased. Flagyard's own writes
//! also append to `FLAGYARD:{ext}:history` (newest first, 1,000 kept) and
//! publish on `FLAGYARD:{ext}:changes`, so mirrors refresh at once; writes by
//! flask-pancake or redis-cli are seen through keyspace notifications or a rescan.

mod model;
mod redis;

pub use model::{
    DEFAULT_EXTENSION, DEFAULT_GROUP, FlagState, Kind, PancakeError, PancakeState, Problem,
    UnknownKind, validate_group, validate_name, validate_ratio,
};
pub use redis::Pancake;
