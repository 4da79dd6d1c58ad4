//! The OFREP rate limit: one token bucket for all clients.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

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
