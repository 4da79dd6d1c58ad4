//! The floor: each work item written by hand in Rust, the least a read can
//! cost (shared by the side-by-side run and the callgrind probe).

use flagyard::core::EvaluationContext;
use serde_json::Value;

/// A work item written by hand.
pub enum HandRule {
    /// Always true.
    Static,
    /// `email` ends with `@example.com`.
    EndsWith,
    /// A 50/50 split, hashed as fractional v3.
    Split,
}

/// The floor's answer for `rule` on flag `key`.
pub fn hand_written(rule: &HandRule, key: &str, ctx: &EvaluationContext) -> bool {
    match rule {
        HandRule::Static => true,
        HandRule::EndsWith => ctx
            .attributes()
            .get("email")
            .and_then(Value::as_str)
            .is_some_and(|e| e.ends_with("@example.com")),
        // The same work as the flag: fractional v3 hashes `[flagKey,
        // targetingKey]` as CBOR (keys shorter than 24 bytes here), then
        // buckets 50/50.
        HandRule::Split => {
            let (flag, user) = (
                key.as_bytes(),
                ctx.targeting_key().unwrap_or("").as_bytes(),
            );
            let mut buffer = [0u8; 64];
            buffer[0] = 0x82;
            buffer[1] = 0x60 | flag.len() as u8;
            buffer[2..2 + flag.len()].copy_from_slice(flag);
            let at = 2 + flag.len();
            buffer[at] = 0x60 | user.len() as u8;
            buffer[at + 1..at + 1 + user.len()].copy_from_slice(user);
            let mut h = flagyard::core::murmur3::Murmur3::new(0);
            h.write(&buffer[..at + 1 + user.len()]);
            ((u64::from(h.finish()) * 100) >> 32) < 50
        }
    }
}
