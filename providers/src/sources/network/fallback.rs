//! [`FallbackSource`]: a stream, with polling while the stream is down.

use std::sync::Arc;

use flagyard_core::BoxFuture;
use flagyard_core::{ErrorOrigin, ProviderError, Source, SourceUpdates};
use tokio::sync::watch;

/// Runs a streaming source and, while it cannot connect, a polling source
/// beside it; polling stops as soon as the stream delivers again.
///
/// While the fallback runs, the stream's repeated connection errors are logged
/// rather than reported, so the provider's status follows the fallback.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use flagyard::{FallbackSource, PollingSource, SseSource};
///
/// let source = FallbackSource::new(
///     SseSource::builder("http://127.0.0.1:8013/v1/stream").build()?,
///     PollingSource::builder("http://127.0.0.1:8013/v1/flags").interval(Duration::from_secs(15)).build()?,
/// );
/// # Ok::<(), flagyard::BuildError>(())
/// ```
pub struct FallbackSource {
    primary: Box<dyn Source>,
    fallback: Arc<dyn Fn() -> Box<dyn Source> + Send + Sync>,
    describe: String,
}

impl std::fmt::Debug for FallbackSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl FallbackSource {
    /// `primary` (usually SSE or WebSocket), with `fallback` (usually polling)
    /// while it is down.
    pub fn new(primary: impl Source, fallback: impl Source + Clone + Sync) -> Self {
        let describe = format!("{} (fallback {})", primary.describe(), fallback.describe());
        FallbackSource {
            primary: Box::new(primary),
            fallback: Arc::new(move || Box::new(fallback.clone()) as Box<dyn Source>),
            describe,
        }
    }
}

/// The primary's updates: forwarded, and its health published.
struct Primary {
    inner: Arc<dyn SourceUpdates>,
    healthy: watch::Sender<bool>,
}

impl SourceUpdates for Primary {
    fn document(&self, document: String) {
        self.healthy.send_replace(true);
        self.inner.document(document);
    }

    fn versioned_document(&self, document: String, version: u64) {
        self.healthy.send_replace(true);
        self.inner.versioned_document(document, version);
    }

    fn error(&self, error: ProviderError) {
        let was_healthy = self
            .healthy
            .send_replace(error.origin() != ErrorOrigin::Network);
        if was_healthy || error.origin() != ErrorOrigin::Network {
            self.inner.error(error);
        } else {
            tracing::debug!(error = %error, "stream still down; the fallback is serving");
        }
    }

    fn recovered(&self) {
        self.healthy.send_replace(true);
        self.inner.recovered();
    }
}

/// Aborts a task when dropped (the source's future is dropped on close).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl FallbackSource {
    async fn supervise(self, updates: Arc<dyn SourceUpdates>) {
        let (healthy_tx, mut healthy) = watch::channel(true);
        let primary = Arc::new(Primary {
            inner: Arc::clone(&updates),
            healthy: healthy_tx,
        });
        let primary_run = self.primary.run(primary);
        let fallback = self.fallback;
        let supervisor = async move {
            loop {
                // Wait for the stream to fail.
                if healthy.wait_for(|h| !*h).await.is_err() {
                    return;
                }
                let task = AbortOnDrop(tokio::spawn((fallback)().run(Arc::clone(&updates))));
                // Wait for it to deliver again, then stop polling.
                if healthy.wait_for(|h| *h).await.is_err() {
                    return;
                }
                drop(task);
            }
        };
        tokio::select! {
            () = primary_run => {}
            () = supervisor => {}
        }
    }
}

impl Source for FallbackSource {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
        Box::pin(self.supervise(updates))
    }
}
