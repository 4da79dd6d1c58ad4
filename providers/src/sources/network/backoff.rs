//! Reconnection timing (DESIGN §4): first retry after ~1 s, doubling to 30 s,
//! jitter between half and the full delay, reset after 60 s of health, and a
//! slow retry (5 min) after the server refused the credentials.

use std::time::{Duration, Instant};

/// When network sources retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// The first delay (default 1 s).
    pub initial: Duration,
    /// The longest delay (default 30 s).
    pub max: Duration,
    /// Healthy this long resets the delay to `initial` (default 60 s).
    pub reset_after: Duration,
    /// The delay after 401/403 (default 5 min).
    pub auth_retry: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
            auth_retry: Duration::from_secs(300),
        }
    }
}

impl ReconnectPolicy {
    /// Fast timings for tests: starts at `initial`, caps at ten times it.
    pub fn fast(initial: Duration) -> Self {
        ReconnectPolicy {
            initial,
            max: initial * 10,
            reset_after: initial * 20,
            auth_retry: initial * 10,
        }
    }
}

/// The state of one connection's retries under a [`ReconnectPolicy`]; see
/// [`keep_connected`](crate::keep_connected).
#[derive(Debug)]
pub struct Backoff {
    policy: ReconnectPolicy,
    next: Duration,
    healthy_since: Option<Instant>,
}

impl Backoff {
    /// Retries under `policy`, starting at its first delay.
    pub fn new(policy: ReconnectPolicy) -> Self {
        let next = policy.initial;
        Backoff {
            policy,
            next,
            healthy_since: None,
        }
    }

    /// The connection works (again).
    pub fn connected(&mut self) {
        if self.healthy_since.is_none() {
            self.healthy_since = Some(Instant::now());
        }
    }

    /// The delay before the next attempt, with jitter in [d/2, d].
    pub fn failed(&mut self) -> Duration {
        if let Some(since) = self.healthy_since.take()
            && since.elapsed() >= self.policy.reset_after
        {
            self.next = self.policy.initial;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.policy.max);
        jitter(delay)
    }

    /// The delay after the server refused the credentials.
    pub fn refused(&mut self) -> Duration {
        self.healthy_since = None;
        jitter(self.policy.auth_retry)
    }
}

fn jitter(delay: Duration) -> Duration {
    let half = delay / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap_and_resets_after_health() {
        let policy = ReconnectPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
            reset_after: Duration::from_millis(0),
            auth_retry: Duration::from_secs(5),
        };
        let mut b = Backoff::new(policy);
        let delays: Vec<Duration> = (0..5).map(|_| b.failed()).collect();
        let bounds = [100, 200, 400, 400, 400];
        for (d, full) in delays.iter().zip(bounds) {
            let full = Duration::from_millis(full);
            assert!(
                *d >= full / 2 && *d <= full,
                "{d:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
        b.connected();
        let after_reset = b.failed();
        assert!(
            after_reset <= Duration::from_millis(100),
            "reset after health: {after_reset:?}"
        );
        let refused = b.refused();
        assert!(refused >= Duration::from_millis(2500) && refused <= Duration::from_secs(5));
    }
}
