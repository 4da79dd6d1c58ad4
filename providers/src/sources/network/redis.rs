//! [`RedisSource`]: the document in Redis, followed through pub/sub.

use std::sync::Arc;
use std::time::Duration;

use flagyard_core::BoxFuture;
use flagyard_core::{Source, SourceUpdates};
use flagyard_storage::RedisDocuments;
use futures_util::StreamExt;

use super::{Backoff, ReconnectPolicy, retry_after};

/// Follows the flag document that flag servers keep in Redis (the layout of
/// [`RedisDocuments`]): loads it, then applies every version announced on the
/// `{prefix}:changes` channel, with a periodic version check (default 5 s) in
/// case a message was missed. Reconnects like the other network sources; while
/// Redis is down the provider keeps its last good document (status `Stale`).
///
/// # Example
/// ```
/// use flagyard::RedisSource;
///
/// let source = RedisSource::new("redis://127.0.0.1:6379", "flagyard");
/// ```
#[derive(Debug, Clone)]
pub struct RedisSource {
    url: String,
    prefix: String,
    check_every: Duration,
    reconnect: ReconnectPolicy,
}

impl RedisSource {
    /// Follows the document under `prefix` at `url`.
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        RedisSource {
            url: url.into(),
            prefix: prefix.into(),
            check_every: Duration::from_secs(5),
            reconnect: ReconnectPolicy::default(),
        }
    }

    /// How often to compare versions in case a pub/sub message was missed.
    pub fn check_every(mut self, interval: Duration) -> Self {
        self.check_every = interval;
        self
    }

    /// Reconnection timing.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    async fn follow(self, updates: Arc<dyn SourceUpdates>) {
        let from = self.describe();
        let mut backoff = Backoff::new(self.reconnect.clone());
        let mut last: u64 = 0;
        loop {
            let ended = self
                .session(&*updates, &from, &mut backoff, &mut last)
                .await;
            retry_after(&*updates, &from, &mut backoff, ended).await;
        }
    }

    /// One connection: load, subscribe, follow. Returns why it ended.
    async fn session(
        &self,
        updates: &dyn SourceUpdates,
        from: &str,
        backoff: &mut Backoff,
        last: &mut u64,
    ) -> Result<(), String> {
        let docs = RedisDocuments::open(&self.url, &self.prefix)
            .await
            .map_err(|e| e.to_string())?;
        let mut pubsub = docs
            .client()
            .get_async_pubsub()
            .await
            .map_err(|e| e.to_string())?;
        pubsub
            .subscribe(docs.changes_channel())
            .await
            .map_err(|e| e.to_string())?;
        // Subscribe first, then load: nothing published in between is missed.
        self.load(&docs, updates, last).await?;
        backoff.connected();
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
                    let version = docs.version().await.map_err(|e| e.to_string())?;
                    if version > *last {
                        tracing::debug!(source = from, version, "version check found a missed change");
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
    ) -> Result<(), String> {
        match docs.current().await.map_err(|e| e.to_string())? {
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

impl Source for RedisSource {
    fn describe(&self) -> String {
        format!("redis:{} ({})", self.url, self.prefix)
    }

    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
        Box::pin(self.follow(updates))
    }
}
