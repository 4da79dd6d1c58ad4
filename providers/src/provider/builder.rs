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

    flagyard_core::setters! {
        /// Where the last good document is kept and read back at start-up. A shared
        /// store (`Arc<S>`, `Arc<dyn Store>`) is a store too.
        store(store: impl Store) => store = Some(Arc::new(store));

        /// Where exposure and tracking events go. A shared sink (`Arc<S>`) is a sink too.
        sink(sink: impl Sink) => sink = Some(Arc::new(sink));

        /// Called for every error: a bad document, an unavailable source, a failed
        /// cache write. Runs on the thread that found it; keep it short.
        on_error(hook: impl Fn(&ProviderError) + Send + Sync + 'static)
            => on_error = Some(Arc::new(hook));

        /// `true` (default): `build()` serves the store's (or bootstrap) document at
        /// once and starts the sources in the background. `false`: lazy — nothing
        /// starts until the first read, OpenFeature's `initialize`, or `start()`.
        preload(preload: bool) => preload = preload;

        /// Never start sources (no network, no file watching): serve only the store
        /// or the bootstrap document.
        offline(offline: bool) => offline = offline;

        /// A document served at start-up when the store has none.
        bootstrap_document(document: impl Into<String>) => bootstrap = Some(document.into());

        /// A file holding the bootstrap document, read by [`build`](Self::build)
        /// (an unreadable file is the build's error).
        bootstrap_file(path: impl Into<PathBuf>) => bootstrap_file = Some(path.into());

        /// The `fractional` hashing (v2 by default).
        fractional(version: FractionalVersion) => options.fractional = version;

        /// All compile options (fractional version, size and depth limits).
        compile_options(options: CompileOptions) => options = options;

        /// Which exposure events reads produce: [`ExposureMode::Full`] (an event
        /// per evaluation), [`ExposureMode::Summary`] (counts per interval plus
        /// the first exposure of each flag, variant and user) or
        /// [`ExposureMode::Off`]. By default the sink's preference: `Summary` for
        /// `HttpSink`, `Full` for the others.
        exposures(mode: ExposureMode) => mode = Some(mode);

        /// How often a summary is sent in summary mode (default 10 s; also on
        /// `close()`).
        summary_interval(every: std::time::Duration)
            => events.summary_every = every.max(crate::recorder::DRAIN_EVERY);

        /// Capacity of each reading thread's event queue in 64-byte slots
        /// (default 1,024; an event takes one when its strings come to 35 bytes,
        /// one more per further 63; drained every 10 ms; when full the newest
        /// event is dropped and counted).
        exposure_queue(capacity: usize) => events.per_thread = capacity;

        /// `true` (default): in full mode, an exposure already recorded recently
        /// on the same thread for the same flag, variant and targeting key is not
        /// recorded again (a per-thread table of 16,384 recent exposures).
        /// `false`: every evaluation is an exposure event.
        dedup_exposures(dedup: bool) => events.dedup = dedup;

        /// `true` (default): evaluations and `track` calls whose context's
        /// `$userAgent` ([`USER_AGENT_ATTRIBUTE`](crate::USER_AGENT_ATTRIBUTE))
        /// is a known bot produce no events (counted in
        /// [`event_stats`](FlagyardProvider::event_stats)).
        filter_bots(filter: bool) => events.bots.filter = filter;

        /// `true`: bots are served the code default (reason `DEFAULT`, no
        /// variant), as SignaKit serves them its off variation. Default `false`.
        serve_bots_default(serve_default: bool) => events.bots.serve_default = serve_default;
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
