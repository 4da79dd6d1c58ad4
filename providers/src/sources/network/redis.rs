//! [`RedisSource`]: the document in Redis, followed through pub/sub.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use flagyard_core::BoxFuture;
use flagyard_core::{BoxError, Source, SourceUpdates, StoreError};
use flagyard_storage::RedisDocuments;
use futures_util::StreamExt;

use super::{Connects, Link, ReconnectPolicy, SessionEnd, check_redis_url, follow};
use crate::BuildError;

/// Follows the flag document that flag servers keep in Redis (the layout of
/// [`RedisDocuments`]): loads it, then applies every version announced on the
/// `{prefix}:changes` channel, with a periodic version check (default 5 s) in
/// case a message was missed. Reconnects like the other network sources; while
/// Redis is down the provider keeps its last good document (status `Stale`).
///
/// Needs the crate feature `redis`.
///
/// # Example
/// ```
/// use flagyard::RedisSource;
///
/// let source = RedisSource::builder("redis://127.0.0.1:6379", "flagyard").build()?;
/// # Ok::<(), flagyard::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RedisSource {
    url: String,
    prefix: String,
    check_every: Duration,
    reconnect: ReconnectPolicy,
}

/// Configures a [`RedisSource`]; [`build`](Self::build) checks the URL.
#[derive(Debug, Clone)]
pub struct RedisSourceBuilder(RedisSource);

impl RedisSource {
    /// Follows the document under `prefix` at `url`.
    pub fn builder(url: impl Into<String>, prefix: impl Into<String>) -> RedisSourceBuilder {
        RedisSourceBuilder(RedisSource {
            url: url.into(),
            prefix: prefix.into(),
            check_every: Duration::from_secs(5),
            reconnect: ReconnectPolicy::default(),
        })
    }
}

impl RedisSourceBuilder {
    /// How often to compare versions in case a pub/sub message was missed
    /// (default 5 s).
    pub fn check_every(mut self, interval: Duration) -> Self {
        self.0.check_every = interval;
        self
    }

    /// Reconnection timing.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.0.reconnect = policy;
        self
    }

    /// The source, or what is wrong with its URL (nothing is connected yet).
    pub fn build(self) -> Result<RedisSource, BuildError> {
        check_redis_url(&self.0.describe(), &self.0.url)?;
        Ok(self.0)
    }
}

impl RedisSource {
    /// One connection: subscribe, load, follow. Returns why it ended.
    async fn follow_changes(&self, link: Link<'_, u64>) -> Result<Infallible, BoxError> {
        let (updates, last) = (link.updates, link.shared);
        let docs = RedisDocuments::open(&self.url, &self.prefix).await?;
        // Subscribe first, then load: nothing published in between is missed.
        let mut pubsub = docs.subscribe().await?;
        self.load(&docs, updates, last).await?;
        link.backoff.connected();
        let mut messages = pubsub.on_message();
        let mut check = tokio::time::interval(self.check_every);
        check.tick().await;
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else {
                        return Err("the pub/sub connection closed".into());
                    };
                    let announced: u64 = message.get_payload().unwrap_or(0);
                    if announced > *last {
                        self.load(&docs, updates, last).await?;
                    }
                }
                _ = check.tick() => {
                    let version = docs.version().await?;
                    if version > *last {
                        tracing::debug!(source = link.from, version, "version check found a missed change");
                        self.load(&docs, updates, last).await?;
                    }
                }
            }
        }
    }

    async fn load(
        &self,
        docs: &RedisDocuments,
        updates: &dyn SourceUpdates,
        last: &mut u64,
    ) -> Result<(), StoreError> {
        match docs.current().await? {
            Some(doc) if doc.version != *last => {
                *last = doc.version;
                updates.versioned_document(doc.body, doc.version);
            }
            Some(_) => updates.recovered(),
            None => {}
        }
        Ok(())
    }
}

impl Connects for RedisSource {
    /// The last version applied.
    type Shared = u64;

    async fn connection(&self, link: Link<'_, u64>) -> SessionEnd {
        link.follow_until_lost(|link| self.follow_changes(link))
            .await
    }
}

impl Source for RedisSource {
    fn describe(&self) -> String {
        format!(
            "redis:{} ({})",
            flagyard_storage::masked_url(&self.url),
            self.prefix
        )
    }

    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
        Box::pin(follow(self.reconnect.clone(), *self, updates, 0))
    }
}
