//! [`FlagyardProviderBuilder`].

use std::path::PathBuf;
use std::sync::Arc;

use std::marker::PhantomData;

use flagyard_core::{
    CompileOptions, Evaluator, ExposureMode, FractionalVersion, ProviderError, Sink, Snapshot,
    Source, Store,
};

use super::FlagyardProvider;
use super::state::StateInit;
use crate::BuildError;
use crate::recorder::{BotPolicy, RecorderOptions};

/// How events are recorded unless the builder says otherwise: 1,024 events
/// per thread's queue (drained every 10 ms), de-duplication on, bots
/// filtered but served normally, a summary every 10 s (the mode itself comes
/// from the sink).
const DEFAULT_EVENTS: RecorderOptions = RecorderOptions {
    mode: ExposureMode::Full,
    per_thread: 1024,
    dedup: true,
    bots: BotPolicy {
        filter: true,
        serve_default: false,
    },
    summary_every: std::time::Duration::from_secs(10),
};

/// Builds a [`FlagyardProvider`], in the manner of `reqwest::ClientBuilder`.
///
/// # Example
/// ```
/// use flagyard::{FlagyardProvider, MemoryStore};
///
/// let provider = FlagyardProvider::builder()
///     .store(MemoryStore::with_document(r#"{"flags": {}}"#))
///     .offline(true)
///     .build()?;
/// assert_eq!(provider.status(), flagyard::ProviderStatus::Ready);
/// # Ok::<(), flagyard::BuildError>(())
/// ```
pub struct FlagyardProviderBuilder<E: Evaluator = Snapshot> {
    evaluator: PhantomData<fn() -> E>,
    sources: Vec<Box<dyn Source>>,
    store: Option<Arc<dyn Store>>,
    sink: Option<Arc<dyn Sink>>,
    on_error: Option<super::state::ErrorHook>,
    preload: bool,
    offline: bool,
    bootstrap: Option<String>,
    bootstrap_file: Option<PathBuf>,
    options: CompileOptions,
    events: RecorderOptions,
    mode: Option<ExposureMode>,
}

impl<E: Evaluator> std::fmt::Debug for FlagyardProviderBuilder<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sources: Vec<String> = self.sources.iter().map(|s| s.describe()).collect();
        f.debug_struct("FlagyardProviderBuilder")
            .field("sources", &sources)
            .field("store", &self.store.as_ref().map(|s| s.describe()))
            .field("sink", &self.sink.is_some())
            .field("preload", &self.preload)
            .field("offline", &self.offline)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for FlagyardProviderBuilder {
    fn default() -> Self {
        FlagyardProviderBuilder {
            evaluator: PhantomData,
            sources: Vec::new(),
            store: None,
            sink: None,
            on_error: None,
            preload: true,
            offline: false,
            bootstrap: None,
            bootstrap_file: None,
            options: CompileOptions::default(),
            events: DEFAULT_EVENTS,
            mode: None,
        }
    }
}

impl FlagyardProviderBuilder {
    /// Evaluates through `E2` instead of flagd's evaluator: documents are
    /// compiled by `E2::compile` and every read calls `E2::evaluate`.
    pub fn evaluator<E2: Evaluator>(self) -> FlagyardProviderBuilder<E2> {
        FlagyardProviderBuilder {
            evaluator: PhantomData,
            sources: self.sources,
            store: self.store,
            sink: self.sink,
            on_error: self.on_error,
            preload: self.preload,
            offline: self.offline,
            bootstrap: self.bootstrap,
            bootstrap_file: self.bootstrap_file,
            options: self.options,
            events: self.events,
            mode: self.mode,
        }
    }
}

impl<E: Evaluator> FlagyardProviderBuilder<E> {
    /// Adds a source of flag documents (several may be added; the newest document wins).
    pub fn source(mut self, source: impl Source) -> Self {
        self.sources.push(Box::new(source));
        self
    }

    /// Where the last good document is kept and read back at start-up. A shared
    /// store (`Arc<S>`, `Arc<dyn Store>`) is a store too.
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Where exposure and tracking events go. A shared sink (`Arc<S>`) is a sink too.
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// Called for every error: a bad document, an unavailable source, a failed
    /// cache write. Runs on the thread that found it; keep it short.
    pub fn on_error(mut self, hook: impl Fn(&ProviderError) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(hook));
        self
    }

    /// `true` (default): `build()` serves the store's (or bootstrap) document at
    /// once and starts the sources in the background. `false`: lazy — nothing
    /// starts until the first read, OpenFeature's `initialize`, or `start()`.
    pub fn preload(mut self, preload: bool) -> Self {
        self.preload = preload;
        self
    }

    /// Never start sources (no network, no file watching): serve only the store
    /// or the bootstrap document.
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// A document served at start-up when the store has none.
    pub fn bootstrap_document(mut self, document: impl Into<String>) -> Self {
        self.bootstrap = Some(document.into());
        self
    }

    /// A file holding the bootstrap document, read by [`build`](Self::build)
    /// (an unreadable file is the build's error).
    pub fn bootstrap_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.bootstrap_file = Some(path.into());
        self
    }

    /// The `fractional` hashing (v2 by default).
    pub fn fractional(mut self, version: FractionalVersion) -> Self {
        self.options.fractional = version;
        self
    }

    /// All compile options (fractional version, size and depth limits).
    pub fn compile_options(mut self, options: CompileOptions) -> Self {
        self.options = options;
        self
    }

    /// Which exposure events reads produce: [`ExposureMode::Full`] (an event
    /// per evaluation), [`ExposureMode::Summary`] (counts per interval plus
    /// the first exposure of each flag, variant and user) or
    /// [`ExposureMode::Off`]. By default the sink's preference: `Summary` for
    /// `HttpSink`, `Full` for the others.
    pub fn exposures(mut self, mode: ExposureMode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// How often a summary is sent in summary mode (default 10 s; also on
    /// `close()`).
    pub fn summary_interval(mut self, every: std::time::Duration) -> Self {
        self.events.summary_every = every.max(crate::recorder::DRAIN_EVERY);
        self
    }

    /// Capacity of each reading thread's event queue (default 1,024; drained
    /// every 10 ms; when full the newest event is dropped and counted).
    pub fn exposure_queue(mut self, capacity: usize) -> Self {
        self.events.per_thread = capacity;
        self
    }

    /// `true` (default): in full mode, an exposure already recorded recently
    /// on the same thread for the same flag, variant and targeting key is not
    /// recorded again (a per-thread table of 16,384 recent exposures).
    /// `false`: every evaluation is an exposure event.
    pub fn dedup_exposures(mut self, dedup: bool) -> Self {
        self.events.dedup = dedup;
        self
    }

    /// `true` (default): evaluations and `track` calls whose context's
    /// `$userAgent` ([`USER_AGENT_ATTRIBUTE`](crate::USER_AGENT_ATTRIBUTE))
    /// is a known bot produce no events (counted in
    /// [`event_stats`](FlagyardProvider::event_stats)).
    pub fn filter_bots(mut self, filter: bool) -> Self {
        self.events.bots.filter = filter;
        self
    }

    /// `true`: bots are served the code default (reason `DEFAULT`, no
    /// variant), as SignaKit serves them its off variation. Default `false`.
    pub fn serve_bots_default(mut self, serve_default: bool) -> Self {
        self.events.bots.serve_default = serve_default;
        self
    }

    /// Builds the provider (and, when preloading, starts it), or says what in
    /// its configuration cannot be used.
    pub fn build(mut self) -> Result<FlagyardProvider<E>, BuildError> {
        let bootstrap = match &self.bootstrap_file {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|cause| BuildError::Bootstrap {
                        path: path.clone(),
                        cause,
                    })?,
                )
            }
            None => self.bootstrap.take(),
        };
        let preload = self.preload;
        Ok(FlagyardProvider::from_init(
            self.into_init(bootstrap),
            preload,
        ))
    }

    /// The runtime's state from this configuration, with `bootstrap` as the
    /// bootstrap document (already read).
    pub(super) fn into_init(self, bootstrap: Option<String>) -> StateInit {
        StateInit {
            options: self.options,
            on_error: self.on_error,
            store: self.store,
            sink: self.sink,
            events: self.events,
            mode: self.mode,
            sources: self.sources,
            bootstrap,
            offline: self.offline,
        }
    }
}
