//! The OFREP rate limit (one token bucket for all clients) and the throttle on
//! failed admin logins (per client address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A global token bucket for OFREP requests.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub(crate) fn new(per_second: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_second.max(1)),
            state: Mutex::new((f64::from(per_second.max(1)), Instant::now())),
        }
    }

    /// `Ok` to proceed, or `Err(seconds to wait)`.
    pub(crate) fn check(&self) -> Result<(), u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let refill = now.duration_since(state.1).as_secs_f64() * self.per_second;
        state.0 = (state.0 + refill).min(self.per_second);
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - state.0) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

/// Failed admin logins allowed per client address in one window.
pub(crate) const LOGIN_FAILURES_ALLOWED: u32 = 5;
/// The window failed logins are counted in.
pub(crate) const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; older windows are dropped first.
const LOGIN_ADDRESSES: usize = 10_000;

/// Counts failed admin logins per client address: after
/// [`LOGIN_FAILURES_ALLOWED`] in [`LOGIN_WINDOW`], that address is refused
/// (429) until the window ends, even with the right token.
#[derive(Debug, Default)]
pub(crate) struct LoginThrottle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginThrottle {
    /// `Err(seconds to wait)` while `client` is throttled.
    pub(crate) fn check(&self, client: IpAddr) -> Result<(), u64> {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match failures.get(&client) {
            Some((count, since)) if *count >= LOGIN_FAILURES_ALLOWED => {
                let left = LOGIN_WINDOW.saturating_sub(since.elapsed());
                if left.is_zero() {
                    Ok(())
                } else {
                    Err(left.as_secs().max(1))
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts one failed login from `client`.
    pub(crate) fn failed(&self, client: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= LOGIN_ADDRESSES {
            failures.retain(|_, (_, since)| since.elapsed() < LOGIN_WINDOW);
        }
        let entry = failures.entry(client).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= LOGIN_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    /// A successful login from `client` clears its count.
    pub(crate) fn succeeded(&self, client: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&client);
    }
}
