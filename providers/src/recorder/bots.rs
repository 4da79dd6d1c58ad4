//! Bot user agents: a context whose `$userAgent` attribute names a known bot
//! (isbot's maintained pattern list) produces no events, and may be served the
//! code default.
//!
//! Verdicts are cached per thread (a direct-mapped table of 1,024 user-agent
//! hashes), so a read pays a hash of the user agent, and isbot's regular
//! expression (about 0.5 µs, lock-free: the regex crate's cache pool only
//! try-locks) runs once per new user agent and thread.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};

use flagyard_core::Context;

pub use flagyard_core::USER_AGENT_ATTRIBUTE;

const VERDICT_SLOTS: usize = 1024;

thread_local! {
    /// Per slot: the user agent's hash with bit 0 replaced by the verdict
    /// (0: never filled, as a hash always has bit 1 set).
    static VERDICTS: RefCell<Box<[u64]>> = RefCell::new(vec![0u64; VERDICT_SLOTS].into_boxed_slice());
}

#[cfg(feature = "bots")]
static BOTS: std::sync::LazyLock<isbot::Bots> = std::sync::LazyLock::new(isbot::Bots::default);

/// Compiles the bot list now (about 2 ms), so that no read pays for it.
pub(crate) fn prepare() {
    #[cfg(feature = "bots")]
    std::sync::LazyLock::force(&BOTS);
}

/// Whether `user_agent` is a known bot, without the per-thread cache.
pub(crate) fn is_bot_agent(user_agent: &str) -> bool {
    #[cfg(feature = "bots")]
    {
        BOTS.is_bot(user_agent)
    }
    #[cfg(not(feature = "bots"))]
    {
        let _ = user_agent;
        false
    }
}

/// Whether the context's `$userAgent` is a known bot (cached per thread).
#[inline]
pub(crate) fn is_bot<C: Context + ?Sized>(ctx: &C) -> bool {
    match ctx.user_agent() {
        Some(agent) => cached_verdict(agent),
        None => false,
    }
}

fn cached_verdict(agent: &str) -> bool {
    let mut h = super::seen::HASHER.build_hasher();
    h.write(agent.as_bytes());
    let tag = h.finish() | 2;
    let slot = (tag >> 2) as usize & (VERDICT_SLOTS - 1);
    VERDICTS.with(|verdicts| {
        let Ok(mut verdicts) = verdicts.try_borrow_mut() else {
            return is_bot_agent(agent);
        };
        let entry = verdicts[slot];
        if entry != 0 && entry | 1 == tag | 1 {
            return entry & 1 == 1;
        }
        let bot = is_bot_agent(agent);
        verdicts[slot] = (tag & !1) | u64::from(bot);
        bot
    })
}

#[cfg(all(test, feature = "bots"))]
mod tests {
    use super::*;
    use flagyard_core::EvaluationContext;

    #[test]
    fn known_bots_are_recognized_and_browsers_are_not() {
        let ctx = |ua: &str| EvaluationContext::new().with_attribute(USER_AGENT_ATTRIBUTE, ua);
        let google = ctx("Googlebot/2.1 (+http://www.google.com/bot.html)");
        let firefox = ctx("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
        for _ in 0..2 {
            // The second round answers from the cache.
            assert!(is_bot(&google));
            assert!(!is_bot(&firefox));
        }
        assert!(!is_bot(&EvaluationContext::new()), "no user agent, no bot");
        // Past eight attributes the context is searched, not scanned.
        let mut many =
            EvaluationContext::new().with_attribute(USER_AGENT_ATTRIBUTE, "Googlebot/2.1");
        for i in 0..12 {
            many = many.with_attribute(format!("a{i}"), i);
        }
        assert!(is_bot(&many));
        let few = EvaluationContext::new()
            .with_attribute("email", "ada@example.com")
            .with_attribute(USER_AGENT_ATTRIBUTE, "Googlebot/2.1");
        assert!(is_bot(&few));
    }
}
