//! [`keep_connected`]: the one connection-keeping loop of the sources that
//! hold a connection (SSE, WebSocket, Redis, pancake) and of the flag server's
//! Redis follower — connect, follow, report why it ended, back off, again.

#[cfg(any(feature = "sse", feature = "ws", feature = "redis", feature = "grpc"))]
use std::sync::Arc;

use flagyard_core::ProviderError;
#[cfg(any(feature = "sse", feature = "ws", feature = "redis", feature = "grpc"))]
use flagyard_core::{Source, SourceUpdates};

use super::backoff::{Backoff, ReconnectPolicy};

/// Why one connection ended, and so how long until the next attempt.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionEnd {
    /// The connection failed or was lost (or delivered something unusable):
    /// the next attempt waits the backoff (1 s doubling to 30 s, with jitter).
    Lost(ProviderError),
    /// The server refused the credentials: the next attempt waits the slow
    /// retry (5 min by default).
    Refused(ProviderError),
}

impl SessionEnd {
    /// The connection to `from` was lost for `cause` (a transient error:
    /// the next attempt waits the backoff).
    #[cfg(any(feature = "sse", feature = "ws", feature = "redis", feature = "grpc"))]
    pub(crate) fn lost(from: &str, cause: impl Into<super::BoxError>) -> SessionEnd {
        SessionEnd::Lost(super::network_error(from, true, cause))
    }

    /// The error that ended the session.
    pub fn error(&self) -> &ProviderError {
        match self {
            SessionEnd::Lost(e) | SessionEnd::Refused(e) => e,
        }
    }
}

/// One connection of something that keeps one: connect, follow until it
/// ends, say why. [`keep_connected`] runs it again and again with the backoff
/// between; a session calls [`Backoff::connected`] once connected, so one that
/// stayed healthy for `reset_after` starts over from the first delay.
pub trait Session: Send {
    /// Runs one connection until it ends; returns why.
    fn run(&mut self, backoff: &mut Backoff) -> impl Future<Output = SessionEnd> + Send;
}

/// Keeps a connection for as long as the returned future runs (drop it to
/// stop): runs the `session`, hands the error that ended it to `report`,
/// waits out the backoff, and starts again.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use flagyard::core::{ErrorOrigin, ProviderError};
/// use flagyard::{Backoff, ReconnectPolicy, Session, SessionEnd, keep_connected};
///
/// struct Flaky { attempts: u32 }
///
/// impl Session for Flaky {
///     async fn run(&mut self, backoff: &mut Backoff) -> SessionEnd {
///         self.attempts += 1;
///         backoff.connected();
///         SessionEnd::Lost(ProviderError::new(ErrorOrigin::Network, true, "closed"))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut flaky = Flaky { attempts: 0 };
/// let follow = keep_connected(
///     ReconnectPolicy::fast(Duration::from_millis(1)),
///     |e| eprintln!("lost: {e}"),
///     &mut flaky,
/// );
/// let _ = tokio::time::timeout(Duration::from_millis(50), follow).await;
/// assert!(flaky.attempts > 1);
/// # }
/// ```
pub async fn keep_connected<S: Session>(
    policy: ReconnectPolicy,
    mut report: impl FnMut(ProviderError) + Send,
    mut session: S,
) {
    let mut backoff = Backoff::new(policy);
    loop {
        let wait = match session.run(&mut backoff).await {
            SessionEnd::Lost(e) => {
                report(e);
                backoff.failed()
            }
            SessionEnd::Refused(e) => {
                report(e);
                backoff.refused()
            }
        };
        tokio::time::sleep(wait).await;
    }
}

impl<S: Session> Session for &mut S {
    fn run(&mut self, backoff: &mut Backoff) -> impl Future<Output = SessionEnd> + Send {
        (**self).run(backoff)
    }
}

#[cfg(any(feature = "sse", feature = "ws", feature = "redis", feature = "grpc"))]
/// A source that holds a connection (SSE, WebSocket, Redis, pancake): what
/// one connection does. [`follow`] runs it on [`keep_connected`].
pub(crate) trait Connects: Source + Sync {
    /// What one run's connections share (the last version seen, a mirror).
    type Shared: Send;
    /// One connection, until it ends; returns why.
    fn connection(&self, link: Link<'_, Self::Shared>) -> impl Future<Output = SessionEnd> + Send;
}

#[cfg(any(feature = "sse", feature = "ws", feature = "redis", feature = "grpc"))]
/// What one connection of a [`Connects`] source works with.
pub(crate) struct Link<'a, T> {
    /// Where documents and errors go.
    pub(crate) updates: &'a dyn SourceUpdates,
    /// The source's description, for errors and logs.
    pub(crate) from: &'a str,
    /// Told once connected ([`Backoff::connected`]).
    pub(crate) backoff: &'a mut Backoff,
    /// What the run's connections share.
    #[cfg_attr(
        not(feature = "redis"),
        expect(
            dead_code,
            reason = "only the Redis sources share state between connections"
        )
    )]
    pub(crate) shared: &'a mut T,
}

#[cfg(feature = "redis")]
impl<'a, T> Link<'a, T> {
    /// Follows with `follow` until it fails: the session was lost for its
    /// error (the sources that follow until an error, as Redis's do).
    pub(crate) async fn follow_until_lost<F, E>(self, follow: impl FnOnce(Self) -> F) -> SessionEnd
    where
        F: Future<Output = Result<std::convert::Infallible, E>>,
        E: Into<super::BoxError>,
    {
        let from = self.from;
        let Err(why) = follow(self).await;
        SessionEnd::lost(from, why)
    }
}

#[cfg(any(feature = "sse", feature = "ws", feature = "redis", feature = "grpc"))]
/// Runs a connecting source until the future is dropped: its connections one
/// after another, with the backoff between and every end reported to `updates`.
pub(crate) async fn follow<S: Connects>(
    policy: ReconnectPolicy,
    source: S,
    updates: Arc<dyn SourceUpdates>,
    shared: S::Shared,
) {
    let report = Arc::clone(&updates);
    let running = Running {
        from: source.describe(),
        source,
        updates,
        shared,
    };
    keep_connected(policy, move |e| report.error(e), running).await;
}

#[cfg(any(feature = "sse", feature = "ws", feature = "redis", feature = "grpc"))]
/// A connecting source, running.
struct Running<S: Connects> {
    source: S,
    updates: Arc<dyn SourceUpdates>,
    from: String,
    shared: S::Shared,
}

#[cfg(any(feature = "sse", feature = "ws", feature = "redis", feature = "grpc"))]
impl<S: Connects> Session for Running<S> {
    async fn run(&mut self, backoff: &mut Backoff) -> SessionEnd {
        let link = Link {
            updates: &*self.updates,
            from: &self.from,
            backoff,
            shared: &mut self.shared,
        };
        self.source.connection(link).await
    }
}
