//! [`FlagyardProvider`]: the runtime that serves flags from a snapshot, keeps it
//! fresh from its sources, and implements OpenFeature's `FeatureProvider`.

mod builder;
mod exec;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use flagyard_core::{
    CompileOptions, Context, DocumentError, ErrorCode, EvalError, FlagMetadata, FlagType,
    FlagValue, Reason, Resolution, Snapshot,
};
use serde_json::Value;

pub use builder::FlagyardProviderBuilder;
pub(crate) use state::State;
use state::{StateInit, Updates};

use crate::details::Details;
use crate::events::{ProviderEvent, ProviderStatus, Subscription};
use crate::exposure::{InlineStr, RawExposure};

static EMPTY_METADATA: FlagMetadata = FlagMetadata::new();

/// How often exposure events are handed to the sink, and the resolution of
/// their timestamps.
const EXPOSURE_TICK: Duration = Duration::from_millis(10);

const NOT_READY: EvalError = EvalError {
    code: ErrorCode::ProviderNotReady,
    message: flagyard_core::ErrorMessage::Static("no flag document has been loaded yet"),
};
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
/// use flagyard::{FileSource, FlagyardProvider, DiskCache};
/// use flagyard::core::EvaluationContext;
///
/// # async fn demo() {
/// let provider = FlagyardProvider::builder()
///     .source(FileSource::new("flags.json"))
///     .store(DiskCache::new())
///     .on_error(|e| eprintln!("flagyard: {e}"))
///     .build();
/// let mut api = open_feature::OpenFeature::singleton_mut().await;
/// api.set_provider(provider.clone()).await;
///
/// let ctx = EvaluationContext::new().with_targeting_key("user-1");
/// let on = provider.get_bool("new-checkout", false, &ctx);
/// # }
/// ```
#[derive(Clone)]
pub struct FlagyardProvider {
    state: Arc<State>,
    metadata: Arc<open_feature::provider::ProviderMetadata>,
}

impl std::fmt::Debug for FlagyardProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagyardProvider")
            .field("status", &self.status())
            .field(
                "flags",
                &self.state.snapshot.load().as_ref().map_or(0, |s| s.len()),
            )
            .finish()
    }
}

impl FlagyardProvider {
    /// A builder.
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
        Snapshot::parse(document)?;
        let provider = FlagyardProvider::builder()
            .offline(true)
            .bootstrap_document(document)
            .build();
        Ok(provider)
    }

    fn from_init(init: StateInit, preload: bool) -> FlagyardProvider {
        let provider = FlagyardProvider {
            state: Arc::new(State::new(init)),
            metadata: Arc::new(open_feature::provider::ProviderMetadata::new("flagyard")),
        };
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
                Err(e) => state.report(&e.to_provider_error()),
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
                let mut tick = tokio::time::interval(EXPOSURE_TICK);
                loop {
                    tick.tick().await;
                    let Some(state) = weak.upgrade() else { return };
                    state.clock_ms.store(unix_millis(), Ordering::Relaxed);
                    drain_exposures(&state);
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
            ProviderStatus::Error | ProviderStatus::Fatal => {
                Some(ProviderEvent::Error { message: last() })
            }
            ProviderStatus::NotReady => None,
        };
        if let Some(event) = now {
            crate::events::call(&handler, &event);
        }
        subscription
    }

    /// Stops the sources, flushes exposure events to the sink and the store to
    /// disk. Idempotent; reads keep answering from the last document.
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
        if let Some(exec) = state
            .exec
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            exec.shutdown();
        }
        drain_exposures(state);
        if let Some(exposures) = &state.exposures {
            exposures.close();
        }
        if let Some(sink) = &state.sink
            && let Err(e) = sink.close()
        {
            state.report(&flagyard_core::ProviderError::new(
                flagyard_core::ErrorOrigin::Sink,
                false,
                e.to_string(),
            ));
        }
        if let Some(store) = &state.store
            && let Err(e) = store.flush()
        {
            state.report(&e.to_provider_error());
        }
    }

    /// The current snapshot, for zero-copy reads (`None` before the first document).
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.ensure_started();
        self.state.snapshot.load_full()
    }

    /// The served document's version, when its source reported one (the flag
    /// server does); `None` for files, caches and bootstrap documents.
    pub fn document_version(&self) -> Option<u64> {
        Some(self.state.version.load(Ordering::Acquire)).filter(|v| *v > 0)
    }

    /// How many exposure events were dropped because the queue was full.
    pub fn exposures_dropped(&self) -> u64 {
        self.state.exposures.as_ref().map_or(0, |e| e.dropped())
    }

    // ---- overrides -------------------------------------------------------

    /// Forces a flag's value for every context (tests, local development). Both
    /// the synchronous getters and the OpenFeature path see it.
    pub fn set_override(&self, key: impl Into<String>, value: impl Into<FlagValue>) {
        let (key, value) = (key.into(), value.into());
        self.state.overrides.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(key.clone(), value.clone());
            next
        });
        self.state.has_overrides.store(true, Ordering::Release);
    }

    /// Removes one override.
    pub fn clear_override(&self, key: &str) {
        let next = self.state.overrides.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.remove(key);
            next
        });
        let empty = self.state.overrides.load().is_empty();
        drop(next);
        self.state.has_overrides.store(!empty, Ordering::Release);
    }

    /// Removes every override.
    pub fn clear_all_overrides(&self) {
        self.state.overrides.store(Arc::new(HashMap::new()));
        self.state.has_overrides.store(false, Ordering::Release);
    }

    // ---- the read path ---------------------------------------------------

    /// Resolves a flag and hands the borrowed resolution to `finish`. Never
    /// blocks, never panics, never fails.
    #[inline]
    pub(crate) fn with_resolution<U, C, R>(
        &self,
        key: &str,
        default: U,
        ctx: &C,
        convert: impl FnOnce(&FlagValue) -> Option<U>,
        finish: impl FnOnce(Resolution<'_, U>) -> R,
    ) -> R
    where
        C: Context + ?Sized,
    {
        self.ensure_started();
        if self.state.has_overrides.load(Ordering::Acquire) {
            let overrides = self.state.overrides.load();
            if let Some(value) = overrides.get(key) {
                return finish(override_resolution(value, default, convert));
            }
        }
        let guard = self.state.snapshot.load();
        let Some(snapshot) = guard.as_ref() else {
            return finish(Resolution {
                value: default,
                variant: None,
                reason: Reason::Error,
                error: Some(NOT_READY),
                metadata: &EMPTY_METADATA,
            });
        };
        let resolution = snapshot.resolve_with(key, default, ctx, convert);
        if let Some(exposures) = &self.state.exposures {
            exposures.record(key, resolution.variant, ctx.targeting_key(), || {
                RawExposure {
                    flag: InlineStr::new(key),
                    variant: resolution.variant.map(InlineStr::new),
                    reason: resolution.reason,
                    targeting_key: ctx.targeting_key().map(InlineStr::new),
                    at: self.state.exposure_clock(),
                }
            });
        }
        finish(resolution)
    }

    /// A boolean flag's value, or `default`.
    pub fn get_bool<C: Context + ?Sized>(&self, key: &str, default: bool, ctx: &C) -> bool {
        self.with_resolution(key, default, ctx, |v| bool::from_flag_value(v), |r| r.value)
    }
    /// A boolean flag's resolution details.
    pub fn get_bool_details<C: Context + ?Sized>(
        &self,
        key: &str,
        default: bool,
        ctx: &C,
    ) -> Details<bool> {
        self.with_resolution(
            key,
            default,
            ctx,
            |v| bool::from_flag_value(v),
            |r| Details::from(r),
        )
    }
    /// An integer flag's value, or `default`.
    pub fn get_i64<C: Context + ?Sized>(&self, key: &str, default: i64, ctx: &C) -> i64 {
        self.with_resolution(key, default, ctx, |v| i64::from_flag_value(v), |r| r.value)
    }
    /// An integer flag's resolution details.
    pub fn get_i64_details<C: Context + ?Sized>(
        &self,
        key: &str,
        default: i64,
        ctx: &C,
    ) -> Details<i64> {
        self.with_resolution(
            key,
            default,
            ctx,
            |v| i64::from_flag_value(v),
            |r| Details::from(r),
        )
    }
    /// A float flag's value, or `default`.
    pub fn get_f64<C: Context + ?Sized>(&self, key: &str, default: f64, ctx: &C) -> f64 {
        self.with_resolution(key, default, ctx, |v| f64::from_flag_value(v), |r| r.value)
    }
    /// A float flag's resolution details.
    pub fn get_f64_details<C: Context + ?Sized>(
        &self,
        key: &str,
        default: f64,
        ctx: &C,
    ) -> Details<f64> {
        self.with_resolution(
            key,
            default,
            ctx,
            |v| f64::from_flag_value(v),
            |r| Details::from(r),
        )
    }
    /// A string flag's value, or `default`.
    pub fn get_string<C: Context + ?Sized>(&self, key: &str, default: &str, ctx: &C) -> String {
        self.with_resolution(key, default.to_string(), ctx, string_value, |r| r.value)
    }
    /// A string flag's value (or `default`) lent to `f`, without copying it:
    /// the zero-allocation form of [`get_string`](Self::get_string) for hot loops.
    ///
    /// # Example
    /// ```
    /// use flagyard::FlagyardProvider;
    ///
    /// let provider = FlagyardProvider::from_document(
    ///     r#"{"flags": {"color": {"state": "ENABLED", "variants": {"r": "red"}, "defaultVariant": "r"}}}"#,
    /// ).unwrap();
    /// assert_eq!(provider.with_str("color", "none", &(), |c| c.len()), 3);
    /// ```
    pub fn with_str<C: Context + ?Sized, R>(
        &self,
        key: &str,
        default: &str,
        ctx: &C,
        f: impl FnOnce(&str) -> R,
    ) -> R {
        // `f` runs exactly once: on the variant's string inside the snapshot
        // (borrowed, not copied) when the flag serves a string, else on
        // `default`. `convert` calls it only when it returns `Some`, and then
        // `finish` sees `Some` and does not call it; when `convert` returns
        // `None` (or is not called) `f` is still there for `finish`. So `call`
        // returns `Some` on the one call made, and the `expect` cannot fire.
        let f = std::cell::Cell::new(Some(f));
        let call = |s: &str| f.take().map(|f| f(s));
        self.with_resolution(
            key,
            None,
            ctx,
            |v| match v {
                FlagValue::String(s) => Some(call(s)),
                _ => None,
            },
            |r| match r.value {
                Some(result) => Some(result),
                None => call(default),
            },
        )
        .expect("with_str calls its closure exactly once")
    }

    /// A string flag's resolution details.
    pub fn get_string_details<C: Context + ?Sized>(
        &self,
        key: &str,
        default: &str,
        ctx: &C,
    ) -> Details<String> {
        self.with_resolution(key, default.to_string(), ctx, string_value, |r| {
            Details::from(r)
        })
    }
    /// A structured (JSON object) flag's value, or `default`.
    pub fn get_json<C: Context + ?Sized>(&self, key: &str, default: Value, ctx: &C) -> Value {
        self.with_resolution(key, default, ctx, json_value, |r| r.value)
    }
    /// A structured flag's resolution details.
    pub fn get_json_details<C: Context + ?Sized>(
        &self,
        key: &str,
        default: Value,
        ctx: &C,
    ) -> Details<Value> {
        self.with_resolution(key, default, ctx, json_value, |r| Details::from(r))
    }

    /// Every flag's resolution for one context, keyed by flag. The value is JSON,
    /// `null` where the code default would apply (disabled, no default variant).
    pub fn all_flags<C: Context + ?Sized>(&self, ctx: &C) -> BTreeMap<String, Details<Value>> {
        self.ensure_started();
        let guard = self.state.snapshot.load();
        let mut out = BTreeMap::new();
        if let Some(snapshot) = guard.as_ref() {
            for key in snapshot.keys() {
                let details = self.with_resolution(
                    key,
                    Value::Null,
                    ctx,
                    |v| Some(v.to_json()),
                    |r| Details::from(r),
                );
                out.insert(key.to_string(), details);
            }
        }
        let overrides = self.state.overrides.load();
        for (key, value) in overrides.iter() {
            out.insert(
                key.clone(),
                Details::from(override_resolution(value, Value::Null, |v| {
                    Some(v.to_json())
                })),
            );
        }
        out
    }

    /// The options documents are compiled with.
    pub fn compile_options(&self) -> &CompileOptions {
        &self.state.options
    }

    pub(crate) fn openfeature_metadata(&self) -> &open_feature::provider::ProviderMetadata {
        &self.metadata
    }
}

pub(crate) fn string_value(value: &FlagValue) -> Option<String> {
    <&str>::from_flag_value(value).map(str::to_string)
}

pub(crate) fn json_value(value: &FlagValue) -> Option<Value> {
    <&Value>::from_flag_value(value).cloned()
}

fn override_resolution<'m, U>(
    value: &FlagValue,
    default: U,
    convert: impl FnOnce(&FlagValue) -> Option<U>,
) -> Resolution<'m, U> {
    match convert(value) {
        Some(v) => Resolution {
            value: v,
            variant: None,
            reason: Reason::Static,
            error: None,
            metadata: &EMPTY_METADATA,
        },
        None => Resolution {
            value: default,
            variant: None,
            reason: Reason::Error,
            error: Some(flagyard_core::type_mismatch(value)),
            metadata: &EMPTY_METADATA,
        },
    }
}

/// Milliseconds since the Unix epoch.
fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl State {
    /// The exposure timestamp: the clock cached by the drain task (10 ms
    /// resolution, one atomic load) — `SystemTime::now` cost ~20 ns per event.
    #[inline]
    fn exposure_clock(&self) -> SystemTime {
        let mut ms = self.clock_ms.load(Ordering::Relaxed);
        if ms == 0 {
            ms = unix_millis();
            self.clock_ms.store(ms, Ordering::Relaxed);
        }
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }
}

fn drain_exposures(state: &State) {
    if let (Some(exposures), Some(sink)) = (&state.exposures, &state.sink) {
        exposures.drain(sink.as_ref());
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if let Some(exec) = self
            .exec
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            exec.shutdown();
        }
    }
}
