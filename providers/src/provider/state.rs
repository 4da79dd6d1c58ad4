//! The shared state behind a provider: the current snapshot, status, overrides,
//! and how documents and source errors are applied.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption};
use flagyard_core::{
    CompileOptions, ErrorOrigin, Evaluator, FlagValue, ProviderError, Sink, Snapshot, Source,
    SourceUpdates, Store,
};

use super::exec::Exec;
use crate::events::{EventBus, ProviderEvent, ProviderStatus};
use crate::recorder::{Recorder, RecorderOptions};

/// The `on_error` hook.
pub(crate) type ErrorHook = Arc<dyn Fn(&ProviderError) + Send + Sync>;

/// `E` is the compiled document the runtime evaluates through.
pub(crate) struct State<E: Evaluator = Snapshot> {
    pub snapshot: ArcSwapOption<E>,
    pub overrides: ArcSwap<HashMap<String, FlagValue>>,
    pub has_overrides: AtomicBool,
    status: AtomicU8,
    status_tx: tokio::sync::watch::Sender<ProviderStatus>,
    pub last_error: Mutex<Option<String>>,
    pub options: CompileOptions,
    pub bus: Arc<EventBus>,
    pub on_error: Option<ErrorHook>,
    pub store: Option<Arc<dyn Store>>,
    pub sink: Option<Arc<dyn Sink>>,
    /// Records events when there is a sink.
    pub recorder: Option<Recorder>,
    /// Whether reads record exposures (a recorder whose mode is not `Off`).
    pub records_exposures: bool,
    /// Bots (see `recorder::is_bot`) are served the code default.
    pub serve_bots_default: bool,
    /// The served document's version when its source gave one (0: none).
    pub version: AtomicU64,
    pub sources: Mutex<Vec<Box<dyn Source>>>,
    pub bootstrap: Option<String>,
    pub offline: bool,
    pub started: AtomicBool,
    pub closed: AtomicBool,
    pub exec: Mutex<Option<Exec>>,
    pub tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Serializes document application so `flags_changed` is computed against
    /// the snapshot actually replaced. Holds the text of the document served
    /// (to restore a flag's last good definition from).
    apply: Mutex<Option<String>>,
}

pub(crate) struct StateInit {
    pub options: CompileOptions,
    pub on_error: Option<ErrorHook>,
    pub store: Option<Arc<dyn Store>>,
    pub sink: Option<Arc<dyn Sink>>,
    /// The recorder's options; `mode: None` takes the sink's preference.
    pub events: RecorderOptions,
    pub mode: Option<flagyard_core::ExposureMode>,
    pub sources: Vec<Box<dyn Source>>,
    pub bootstrap: Option<String>,
    pub offline: bool,
}

impl<E: Evaluator> State<E> {
    pub(crate) fn new(init: StateInit) -> State<E> {
        if let Some(store) = &init.store
            && !init.sources.is_empty()
        {
            let sources: Vec<String> = init.sources.iter().map(|s| s.describe()).collect();
            store.cache_for(&sources.join(", "));
        }
        let (status_tx, _) = tokio::sync::watch::channel(ProviderStatus::NotReady);
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let recorder = init.sink.as_ref().map(|sink| {
            let mut options = init.events;
            options.mode = init.mode.unwrap_or_else(|| sink.exposure_mode());
            Recorder::new(id, options)
        });
        let records_exposures = recorder
            .as_ref()
            .is_some_and(|r| r.mode() != flagyard_core::ExposureMode::Off);
        if init.events.bots.serve_default {
            crate::recorder::prepare_bots();
        }
        State {
            snapshot: ArcSwapOption::empty(),
            overrides: ArcSwap::from_pointee(HashMap::new()),
            has_overrides: AtomicBool::new(false),
            status: AtomicU8::new(ProviderStatus::NotReady.to_u8()),
            status_tx,
            last_error: Mutex::new(None),
            options: init.options,
            bus: Arc::new(EventBus::default()),
            on_error: init.on_error,
            store: init.store,
            sink: init.sink,
            recorder,
            records_exposures,
            serve_bots_default: init.events.bots.serve_default,
            version: AtomicU64::new(0),
            sources: Mutex::new(init.sources),
            bootstrap: init.bootstrap,
            offline: init.offline,
            started: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            exec: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            apply: Mutex::new(None),
        }
    }

    /// Shuts the sources' runtime down, when one was started.
    pub(crate) fn stop_runtime(&self) {
        let exec = self
            .exec
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(exec) = exec {
            exec.shutdown();
        }
    }

    pub(crate) fn status(&self) -> ProviderStatus {
        ProviderStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    pub(crate) fn watch_status(&self) -> tokio::sync::watch::Receiver<ProviderStatus> {
        self.status_tx.subscribe()
    }

    /// Sets the status; returns whether it changed.
    fn set_status(&self, status: ProviderStatus) -> bool {
        let old = self.status.swap(status.to_u8(), Ordering::AcqRel);
        if old != status.to_u8() {
            self.status_tx.send_replace(status);
            tracing::debug!(?status, "flagyard provider status");
            true
        } else {
            false
        }
    }

    /// Reports an error to the hook and the log, and remembers it for `wait_until_ready`.
    pub(crate) fn report(&self, error: &ProviderError) {
        tracing::warn!(origin = %error.origin(), transient = error.is_transient(), "{}", error.message());
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
        if let Some(hook) = &self.on_error {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(error)));
            if result.is_err() {
                tracing::error!("the flagyard on_error hook panicked");
            }
        }
    }

    /// Compiles and serves a document. `from` names where it came from; `save`
    /// says whether to keep it in the store (not when it came from the store).
    /// Returns whether the document was accepted.
    pub(crate) fn apply_document(
        &self,
        text: &str,
        from: &str,
        save: bool,
        version: Option<u64>,
    ) -> bool {
        let mut last_text = self.apply.lock().unwrap_or_else(PoisonError::into_inner);
        // Versions never go backwards: an older document (a lagging replica,
        // a stale poll) is reported and ignored.
        let served = self.version.load(Ordering::Acquire);
        if let Some(version) = version
            && version < served
        {
            self.report(&ProviderError::new(
                ErrorOrigin::Network,
                false,
                format!(
                    "{from}: version {version} is older than the served version {served}; ignored"
                ),
            ));
            return false;
        }
        let snapshot = match E::compile(text, &self.options) {
            Ok(snapshot) => snapshot,
            Err(e) => {
                let origin = if from.starts_with("store") {
                    ErrorOrigin::Disk
                } else {
                    ErrorOrigin::Parser
                };
                let error = ProviderError::new(
                    origin,
                    false,
                    format!("{from}: document rejected, keeping the last good one: {e}"),
                );
                self.report(&error);
                self.bus.emit(&ProviderEvent::Error {
                    message: error.message().to_string(),
                });
                return false;
            }
        };
        let (snapshot, text) = self.keep_last_good(snapshot, text, last_text.as_deref(), from);
        self.serve(snapshot, from, save.then_some(&text), version);
        *last_text = Some(text);
        true
    }

    /// A flag the new document breaks (its definition or targeting invalid)
    /// keeps the definition it had in the served document, when that one was
    /// good; the rest of the new document applies. Reported per flag. Returns
    /// the snapshot and the text it was compiled from.
    fn keep_last_good(
        &self,
        snapshot: E,
        text: &str,
        last_text: Option<&str>,
        from: &str,
    ) -> (E, String) {
        let unchanged = |snapshot| (snapshot, text.to_string());
        let broken = snapshot.broken_flags();
        let (Some(previous), Some(last_text)) = (self.snapshot.load_full(), last_text) else {
            return unchanged(snapshot);
        };
        if broken.is_empty() {
            return unchanged(snapshot);
        }
        // Binary searches: both lists are sorted.
        let (known, broken_before) = (previous.flag_keys(), previous.broken_flags());
        let keep: Vec<String> = broken
            .iter()
            .filter(|key| {
                known.binary_search(key).is_ok() && broken_before.binary_search(key).is_err()
            })
            .map(|key| key.to_string())
            .collect();
        if keep.is_empty() {
            return unchanged(snapshot);
        }
        let (Ok(mut next), Ok(last)) = (
            serde_json::from_str::<serde_json::Value>(text),
            serde_json::from_str::<serde_json::Value>(last_text),
        ) else {
            return unchanged(snapshot);
        };
        for key in &keep {
            if let (Some(flags), Some(good)) = (
                next.get_mut("flags")
                    .and_then(serde_json::Value::as_object_mut),
                last["flags"].get(key.as_str()),
            ) {
                flags.insert(key.clone(), good.clone());
            }
        }
        let merged = next.to_string();
        let Ok(kept) = E::compile(&merged, &self.options) else {
            return unchanged(snapshot);
        };
        for key in &keep {
            let why: Vec<String> = snapshot
                .problems()
                .iter()
                .filter(|p| p.flag.as_deref() == Some(key.as_str()))
                .map(ToString::to_string)
                .collect();
            self.report(&ProviderError::new(
                ErrorOrigin::Parser,
                false,
                format!(
                    "{from}: flag {key}: {}; its last good definition stays",
                    why.join("; ")
                ),
            ));
        }
        (kept, merged)
    }

    /// Serves a document compiled elsewhere (`from_document`), not saved.
    pub(crate) fn apply_snapshot(&self, snapshot: E, from: &str) {
        let mut last_text = self.apply.lock().unwrap_or_else(PoisonError::into_inner);
        *last_text = None;
        self.serve(snapshot, from, None, None);
    }

    /// Publishes a compiled document (the caller holds `apply`): reports its
    /// problems, keeps `text` in the store, updates the status, tells the
    /// subscribers what changed.
    fn serve(&self, snapshot: E, from: &str, text: Option<&str>, version: Option<u64>) {
        if !snapshot.problems().is_empty() {
            self.report(&ProviderError::new(
                ErrorOrigin::Parser,
                false,
                format!(
                    "{from}: {} problem(s), other flags loaded: {}",
                    snapshot.problems().len(),
                    flagyard_core::Problem::join(snapshot.problems())
                ),
            ));
        }
        let previous = self.snapshot.load_full();
        // The first document is announced as Ready, not as a change.
        let changed = match &previous {
            Some(old) => snapshot.changed_flags(old),
            None => Vec::new(),
        };
        self.snapshot.store(Some(Arc::new(snapshot)));
        self.version.store(version.unwrap_or(0), Ordering::Release);
        if let (Some(text), Some(store)) = (text, &self.store)
            && let Err(e) = store.save(text)
        {
            self.report(&e.into_provider_error());
        }
        let became_ready = self.set_status(ProviderStatus::Ready);
        if became_ready {
            self.bus.emit(&ProviderEvent::Ready);
        }
        if previous.is_some() && !changed.is_empty() {
            self.bus.emit(&ProviderEvent::ConfigurationChanged {
                flags_changed: changed,
            });
        }
    }

    /// A source could not deliver. A bad payload (origin `Parser`) is reported
    /// and changes no status; a refusal (not transient, such as 401/403) makes
    /// the status `Error`; otherwise `Stale` with a document, `Error` without.
    pub(crate) fn source_failed(&self, error: &ProviderError) {
        self.report(error);
        if error.origin() == ErrorOrigin::Parser {
            self.bus.emit(&ProviderEvent::Error {
                message: error.message().to_string(),
            });
            return;
        }
        let has_document = self.snapshot.load().is_some();
        let (status, event) = if has_document && error.is_transient() {
            (
                ProviderStatus::Stale,
                ProviderEvent::Stale {
                    message: error.message().to_string(),
                },
            )
        } else {
            (
                ProviderStatus::Error,
                ProviderEvent::Error {
                    message: error.message().to_string(),
                },
            )
        };
        if self.set_status(status) {
            self.bus.emit(&event);
        }
    }

    /// Hands the recorded events to the sink (the drain task every
    /// [`DRAIN_EVERY`](crate::recorder::DRAIN_EVERY), and `close()` with
    /// `last`, which also sends the summary so far).
    pub(crate) fn drain_events(&self, last: bool) {
        if let (Some(recorder), Some(sink)) = (&self.recorder, &self.sink) {
            let snapshot = self.snapshot.load();
            let set_id = |flag: &str| {
                snapshot
                    .as_ref()
                    .and_then(|s| s.flag_set_id(flag))
                    .map(str::to_string)
            };
            recorder.drain(sink.as_ref(), last, &|e| self.report(e), &set_id);
        }
    }

    /// The source works again and has nothing new.
    pub(crate) fn source_recovered(&self) {
        if self.snapshot.load().is_some()
            && self.status() == ProviderStatus::Stale
            && self.set_status(ProviderStatus::Ready)
        {
            self.bus.emit(&ProviderEvent::Ready);
        }
    }
}

/// The runtime's end of a source.
pub(crate) struct Updates<E: Evaluator> {
    pub state: Arc<State<E>>,
    pub from: String,
}

impl<E: Evaluator> SourceUpdates for Updates<E> {
    fn document(&self, document: String) {
        if self.state.closed.load(Ordering::Acquire) {
            return;
        }
        self.state.apply_document(&document, &self.from, true, None);
    }

    fn versioned_document(&self, document: String, version: u64) {
        if self.state.closed.load(Ordering::Acquire) {
            return;
        }
        self.state
            .apply_document(&document, &self.from, true, Some(version));
    }

    fn error(&self, error: ProviderError) {
        if self.state.closed.load(Ordering::Acquire) {
            return;
        }
        self.state.source_failed(&error);
    }

    fn recovered(&self) {
        self.state.source_recovered();
    }
}
