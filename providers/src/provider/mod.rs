//! [`FlagyardProvider`]: the runtime that serves flags from a snapshot, keeps it
//! fresh from its sources, and implements OpenFeature's `FeatureProvider`.

mod builder;
mod exec;
mod read;
mod state;
mod tracking;

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use flagyard_core::{CompileOptions, DocumentError, Evaluator, Snapshot};

pub use builder::FlagyardProviderBuilder;
pub(crate) use state::State;
use state::{StateInit, Updates};

use crate::events::{ProviderEvent, ProviderStatus, Subscription};
/// The outcome of [`FlagyardProvider::wait_until_ready`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyResult {
    /// Whether the provider is serving a document (`Ready` or `Stale`).
    pub success: bool,
    /// Why not, or `"ready"`.
    pub reason: String,
}

/// A feature-flag provider composed of a source, a store and a sink, evaluating
/// locally. Cloning is cheap and clones share everything, so keep one clone for
/// the synchronous getters and give another to OpenFeature.
///
/// # Example
/// ```no_run
/// use flagyard::{FileSource, FlagyardProvider, DiskStore};
/// use flagyard::core::EvaluationContext;
///
/// # async fn demo() -> Result<(), flagyard::BuildError> {
/// let provider = FlagyardProvider::builder()
///     .source(FileSource::new("flags.json"))
///     .store(DiskStore::new())
///     .on_error(|e| eprintln!("flagyard: {e}"))
///     .build()?;
/// let mut api = open_feature::OpenFeature::singleton_mut().await;
/// api.set_provider(provider.clone()).await;
///
/// let ctx = EvaluationContext::new().with_targeting_key("user-1");
/// let on = provider.get_bool("new-checkout", false, &ctx);
/// # Ok(()) }
/// ```
///
/// `E` is the compiled document reads evaluate through: flagd's
/// ([`Snapshot`]) unless the builder was given another
/// [`Evaluator`](flagyard_core::Evaluator). Reads call it directly (static
/// dispatch), so the choice costs the read path nothing.
pub struct FlagyardProvider<E: Evaluator = Snapshot> {
    state: Arc<State<E>>,
    metadata: Arc<open_feature::provider::ProviderMetadata>,
}

impl<E: Evaluator> Clone for FlagyardProvider<E> {
    fn clone(&self) -> Self {
        FlagyardProvider {
            state: Arc::clone(&self.state),
            metadata: Arc::clone(&self.metadata),
        }
    }
}

impl<E: Evaluator> std::fmt::Debug for FlagyardProvider<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagyardProvider")
            .field("status", &self.status())
            .field(
                "flags",
                &self
                    .state
                    .snapshot
                    .load()
                    .as_ref()
                    .map_or(0, |s| s.flag_keys().len()),
            )
            .finish()
    }
}

impl FlagyardProvider {
    /// A builder (for flagd documents; [`FlagyardProviderBuilder::evaluator`]
    /// chooses another evaluator).
    pub fn builder() -> FlagyardProviderBuilder {
        FlagyardProviderBuilder::default()
    }

    /// A provider serving one in-memory document, with no source: for tests.
    /// Ready at once.
    ///
    /// # Example
    /// ```
    /// use flagyard::FlagyardProvider;
    ///
    /// let provider = FlagyardProvider::from_document(
    ///     r#"{"flags": {"beta": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}}}"#,
    /// ).unwrap();
    /// assert!(provider.get_bool("beta", false, &()));
    /// ```
    pub fn from_document(document: &str) -> Result<FlagyardProvider, DocumentError> {
        // Parsed once, here: the provider serves this snapshot.
        let snapshot = Snapshot::parse(document)?;
        let init = FlagyardProvider::builder().offline(true).into_init(None);
        let provider = FlagyardProvider::from_init(init, true);
        provider.state.apply_snapshot(snapshot, "document");
        Ok(provider)
    }
}

impl<E: Evaluator> FlagyardProvider<E> {
    pub(super) fn from_init(init: StateInit, preload: bool) -> FlagyardProvider<E> {
        let provider = FlagyardProvider {
            state: Arc::new(State::new(init)),
            metadata: Arc::new(open_feature::provider::ProviderMetadata::new("flagyard")),
        };
        if let Some(sink) = &provider.state.sink {
            // What goes wrong in the sink later reaches `on_error` (weakly: the
            // sink must not keep the provider alive).
            let state = Arc::downgrade(&provider.state);
            sink.report_to(Arc::new(move |error| {
                if let Some(state) = state.upgrade() {
                    state.report(error);
                }
            }));
        }
        if preload {
            provider.start();
        }
        provider
    }

    /// Starts the provider if it has not started: serves the store's cached
    /// document (or the bootstrap document) at once, then runs the sources in the
    /// background. Idempotent; called by `build()` when preloading, by OpenFeature's
    /// `initialize`, and by the first read in lazy mode.
    pub fn start(&self) {
        if self.state.started.swap(true, Ordering::AcqRel) {
            return;
        }
        self.load_cached();
        self.spawn_background();
    }

    fn load_cached(&self) {
        let state = &self.state;
        let mut served = false;
        if let Some(store) = &state.store {
            match store.load() {
                Ok(Some(text)) => {
                    served = state.apply_document(
                        &text,
                        &format!("store {}", store.describe()),
                        false,
                        None,
                    );
                }
                Ok(None) => {}
                Err(e) => state.report(&e.into_provider_error()),
            }
        }
        if !served && let Some(text) = &state.bootstrap {
            state.apply_document(text, "bootstrap document", false, None);
        }
    }

    fn spawn_background(&self) {
        let state = &self.state;
        // A provider closed before it started (lazy mode) starts nothing.
        if state.closed.load(Ordering::Acquire) {
            return;
        }
        let sources: Vec<_> = if state.offline {
            Vec::new()
        } else {
            std::mem::take(&mut *state.sources.lock().unwrap_or_else(PoisonError::into_inner))
        };
        if sources.is_empty() && state.sink.is_none() {
            return;
        }
        let exec = match exec::Exec::obtain() {
            Ok(exec) => exec,
            Err(e) => {
                state.report(&flagyard_core::ProviderError::new(
                    flagyard_core::ErrorOrigin::Network,
                    false,
                    format!("cannot start a runtime for the sources: {e}"),
                ));
                return;
            }
        };
        let mut tasks = state.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        // close() takes this lock to abort the tasks: checking again under it
        // means no task can start after close() has run.
        if state.closed.load(Ordering::Acquire) {
            exec.shutdown();
            return;
        }
        for source in sources {
            let updates = Arc::new(Updates {
                state: Arc::clone(state),
                from: source.describe(),
            });
            tasks.push(exec.spawn(source.run(updates)));
        }
        if state.sink.is_some() {
            let weak = Arc::downgrade(state);
            tasks.push(exec.spawn(async move {
                let mut tick = tokio::time::interval(crate::recorder::DRAIN_EVERY);
                loop {
                    tick.tick().await;
                    let Some(state) = weak.upgrade() else { return };
                    state.drain_events(false);
                }
            }));
        }
        *state.exec.lock().unwrap_or_else(PoisonError::into_inner) = Some(exec);
    }

    #[inline]
    fn ensure_started(&self) {
        if !self.state.started.load(Ordering::Relaxed) {
            self.start_lazily();
        }
    }

    #[cold]
    fn start_lazily(&self) {
        // From the read path: never block on the store; load it in the background.
        if self.state.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let provider = self.clone();
        let spawned = std::thread::Builder::new()
            .name("flagyard-start".into())
            .spawn(move || {
                provider.load_cached();
                provider.spawn_background();
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the flagyard provider");
        }
    }

    /// The current status.
    pub fn status(&self) -> ProviderStatus {
        self.state.status()
    }

    /// Waits until a document is served (`Ready` or `Stale`), at most `timeout`.
    pub async fn wait_until_ready(&self, timeout: Duration) -> ReadyResult {
        self.ensure_started();
        let mut rx = self.state.watch_status();
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|s| matches!(s, ProviderStatus::Ready | ProviderStatus::Stale)),
        )
        .await;
        match waited {
            Ok(Ok(_)) => ReadyResult {
                success: true,
                reason: "ready".into(),
            },
            _ => {
                let last = self
                    .state
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                ReadyResult {
                    success: false,
                    reason: match last {
                        Some(e) => format!(
                            "not ready after {timeout:?} (status {:?}); last error: {e}",
                            self.status()
                        ),
                        None => format!("not ready after {timeout:?} (status {:?})", self.status()),
                    },
                }
            }
        }
    }

    /// Subscribes to events. If the provider is already `Ready`, `Stale` or in
    /// `Error`, the handler is told at once with the matching event.
    /// Dropping the returned [`Subscription`] unsubscribes.
    pub fn subscribe(
        &self,
        handler: impl Fn(&ProviderEvent) + Send + Sync + 'static,
    ) -> Subscription {
        let handler: Arc<dyn Fn(&ProviderEvent) + Send + Sync> = Arc::new(handler);
        let subscription = self.state.bus.add(Arc::clone(&handler));
        let last = || {
            self.state
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .unwrap_or_default()
        };
        let now = match self.status() {
            ProviderStatus::Ready => Some(ProviderEvent::Ready),
            ProviderStatus::Stale => Some(ProviderEvent::Stale { message: last() }),
            ProviderStatus::Error => Some(ProviderEvent::Error { message: last() }),
            ProviderStatus::NotReady => None,
        };
        if let Some(event) = now {
            crate::events::call(&handler, &event);
        }
        subscription
    }

    /// Stops the sources, hands the recorded events (and the summary so far)
    /// to the sink and closes it, and flushes the store to disk. Idempotent;
    /// reads keep answering from the last document.
    pub fn close(&self) {
        let state = &self.state;
        if state.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for task in state
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
        state.stop_runtime();
        state.drain_events(true);
        if let Some(recorder) = &state.recorder {
            recorder.close();
        }
        if let Some(sink) = &state.sink
            && let Err(e) = sink.close()
        {
            state.report(&e.into_provider_error());
        }
        if let Some(store) = &state.store
            && let Err(e) = store.flush()
        {
            state.report(&e.into_provider_error());
        }
    }

    /// The current compiled document, for zero-copy reads (`None` before the
    /// first document).
    pub fn snapshot(&self) -> Option<Arc<E>> {
        self.ensure_started();
        self.state.snapshot.load_full()
    }

    /// The served document's version, when its source reported one (the flag
    /// server does); `None` for files, caches and bootstrap documents.
    pub fn document_version(&self) -> Option<u64> {
        Some(self.state.version.load(Ordering::Acquire)).filter(|v| *v > 0)
    }

    /// The options documents are compiled with.
    pub fn compile_options(&self) -> &CompileOptions {
        &self.state.options
    }

    pub(crate) fn openfeature_metadata(&self) -> &open_feature::provider::ProviderMetadata {
        &self.metadata
    }
}

impl<E: Evaluator> Drop for State<E> {
    fn drop(&mut self) {
        self.stop_runtime();
    }
}
