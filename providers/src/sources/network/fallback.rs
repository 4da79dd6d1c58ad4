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

/// What the primary and the fallback share: the primary's health, and the
/// order of their deliveries. A document the fallback fetched is applied only
/// while the primary is down, checked under the same lock the primary takes
/// to deliver, so a poll that finishes just after the stream came back cannot
/// replace the stream's newer document.
struct Gate {
    inner: Arc<dyn SourceUpdates>,
    healthy: watch::Sender<bool>,
    order: std::sync::Mutex<()>,
}

impl Gate {
    /// Runs `deliver` in order with the other side's deliveries.
    fn ordered(&self, deliver: impl FnOnce()) {
        // A poisoned lock only means a delivery panicked; the order still holds.
        let _order = self
            .order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        deliver();
    }

    /// The primary delivers: it is healthy, and the fallback stops applying.
    fn primary_delivers(&self, deliver: impl FnOnce(&dyn SourceUpdates)) {
        self.ordered(|| {
            self.healthy.send_replace(true);
            deliver(self.inner.as_ref());
        });
    }

    /// The fallback delivers, if the primary is still down.
    fn fallback_delivers(&self, deliver: impl FnOnce(&dyn SourceUpdates)) {
        self.ordered(|| {
            if !*self.healthy.borrow() {
                deliver(self.inner.as_ref());
            }
        });
    }
}

/// One side's updates: the primary's are forwarded and publish its health;
/// the fallback's are applied only while the primary is down.
struct Side {
    gate: Arc<Gate>,
    primary: bool,
}

impl Side {
    fn deliver(&self, deliver: impl FnOnce(&dyn SourceUpdates)) {
        if self.primary {
            self.gate.primary_delivers(deliver);
        } else {
            self.gate.fallback_delivers(deliver);
        }
    }
}

impl SourceUpdates for Side {
    fn document(&self, document: String) {
        self.deliver(|updates| updates.document(document));
    }

    fn versioned_document(&self, document: String, version: u64) {
        self.deliver(|updates| updates.versioned_document(document, version));
    }

    fn error(&self, error: ProviderError) {
        if !self.primary {
            return self.deliver(|updates| updates.error(error));
        }
        let network = error.origin() == ErrorOrigin::Network;
        let was_healthy = self.gate.healthy.send_replace(!network);
        if was_healthy || !network {
            self.gate.inner.error(error);
        } else {
            tracing::debug!(error = %error, "stream still down; the fallback is serving");
        }
    }

    fn recovered(&self) {
        self.deliver(|updates| updates.recovered());
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
        let gate = Arc::new(Gate {
            inner: updates,
            healthy: healthy_tx,
            order: std::sync::Mutex::new(()),
        });
        let primary_run = self.primary.run(Arc::new(Side {
            gate: Arc::clone(&gate),
            primary: true,
        }));
        let fallback = self.fallback;
        let supervisor = async move {
            loop {
                // Wait for the stream to fail.
                if healthy.wait_for(|h| !*h).await.is_err() {
                    return;
                }
                let updates = Arc::new(Side {
                    gate: Arc::clone(&gate),
                    primary: false,
                });
                let task = AbortOnDrop(tokio::spawn((fallback)().run(updates)));
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc;

    use super::*;

    /// Records the documents it is given.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl SourceUpdates for Recorder {
        fn document(&self, document: String) {
            self.0.lock().expect("not poisoned").push(document);
        }
        fn error(&self, _: ProviderError) {}
    }

    /// Fails once, then, when released, delivers "stream" and lets the
    /// fallback's late poll go.
    struct FlakyStream {
        release: tokio::sync::oneshot::Receiver<()>,
        delivered: mpsc::Sender<()>,
    }

    impl Source for FlakyStream {
        fn describe(&self) -> String {
            "flaky stream".into()
        }
        fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
            Box::pin(async move {
                updates.error(ProviderError::new(ErrorOrigin::Network, true, "down"));
                let _ = self.release.await;
                updates.document("stream".into());
                let _ = self.delivered.send(());
                std::future::pending::<()>().await;
            })
        }
    }

    /// Polls once, then finishes a second poll only after the stream
    /// delivered: the poll that was in flight when the stream came back.
    #[derive(Clone)]
    struct LatePoll(Arc<Mutex<Option<mpsc::Receiver<()>>>>);

    impl Source for LatePoll {
        fn describe(&self) -> String {
            "late poll".into()
        }
        fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
            Box::pin(async move {
                updates.document("poll".into());
                let delivered = self.0.lock().expect("not poisoned").take();
                if let Some(delivered) = delivered {
                    // A thread of its own, so aborting the task cannot stop it.
                    std::thread::spawn(move || {
                        if delivered.recv().is_ok() {
                            updates.document("late poll".into());
                        }
                    });
                }
                std::future::pending::<()>().await;
            })
        }
    }

    #[tokio::test]
    async fn a_poll_finishing_after_the_stream_came_back_is_not_applied() {
        let (release_tx, release) = tokio::sync::oneshot::channel();
        let (delivered, delivered_rx) = mpsc::channel();
        let source = FallbackSource::new(
            FlakyStream { release, delivered },
            LatePoll(Arc::new(Mutex::new(Some(delivered_rx)))),
        );
        let recorder = Arc::new(Recorder::default());
        let updates: Arc<dyn SourceUpdates> = recorder.clone();
        let run = tokio::spawn(Box::new(source).run(updates));
        let seen = |recorder: &Recorder| recorder.0.lock().expect("not poisoned").clone();
        while seen(&recorder).is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        release_tx.send(()).expect("stream waits");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(seen(&recorder), ["poll", "stream"]);
        run.abort();
    }
}
