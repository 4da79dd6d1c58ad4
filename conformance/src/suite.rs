//! Scenarios every composition must pass.
//!
//! A composition provides a [`Harness`]; [`run_all`] runs every scenario against
//! it and returns the failures, each naming the scenario and what was wrong.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use flagyard::core::{ErrorCode, ErrorOrigin, EvaluationContext, ProviderError, Reason};
use flagyard::{FlagyardProvider, ProviderEvent, ProviderStatus};

/// How long a scenario waits for something that should happen (a propagated
/// change, a status). Generous: this bounds waiting, it does not measure speed.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Errors reported through `on_error`, shared with the test.
pub type ErrorLog = Arc<Mutex<Vec<ProviderError>>>;

/// One composition under test: a source kind and a store kind.
pub trait Harness: Send {
    /// A name for reports (`file+disk`).
    fn name(&self) -> String;
    /// Builds (and starts) a provider of this composition. The store must persist
    /// across builds of the same harness, as a cache would across restarts.
    fn build(&mut self, errors: ErrorLog) -> FlagyardProvider;
    /// Makes `document` the source's current document.
    fn publish(&mut self, document: &str);
    /// Makes the source deliver `payload`, which is not a valid document.
    fn publish_bad(&mut self, payload: &str);
    /// Makes the source unavailable.
    fn stop_source(&mut self);
    /// Makes the source available again, with the document it had.
    fn restart_source(&mut self);
    /// The source's payload cap, when it has one (an oversized payload is then
    /// one of the bad payloads tried).
    fn payload_cap(&self) -> Option<usize> {
        None
    }
}

/// A document with the given `(key, bool value)` flags.
pub fn document(flags: &[(&str, bool)]) -> String {
    let flags: Vec<String> = flags
        .iter()
        .map(|(key, on)| {
            format!(
                r#""{key}": {{"state": "ENABLED", "variants": {{"on": true, "off": false}}, "defaultVariant": "{}"}}"#,
                if *on { "on" } else { "off" }
            )
        })
        .collect();
    format!(r#"{{"flags": {{{}}}}}"#, flags.join(", "))
}

/// The disk cache the harnesses use: in `dir`, writes coalesced for 50 ms
/// (instead of 2.5 s) so scenarios need not wait long for the cache file.
pub fn test_disk_cache(dir: &std::path::Path) -> flagyard::DiskStore {
    flagyard::DiskStore::builder()
        .directory(dir)
        .coalesce(Duration::from_millis(50))
        .build()
}

/// A harness's store: the shared memory store, or the test disk cache in `dir`.
pub fn memory_or_disk(
    disk: bool,
    memory: &flagyard::MemoryStore,
    dir: &std::path::Path,
) -> Arc<dyn flagyard::core::Store> {
    if disk {
        Arc::new(test_disk_cache(dir))
    } else {
        Arc::new(memory.clone())
    }
}

/// An `on_error` hook that appends every error to `errors`.
pub fn record_errors(errors: ErrorLog) -> impl Fn(&ProviderError) + Send + Sync + 'static {
    move |e| {
        errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(e.clone())
    }
}

fn new_log() -> ErrorLog {
    Arc::default()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        if Instant::now() > deadline {
            return Err(format!("timed out after {PATIENCE:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn ensure(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what()) }
}

async fn ready(provider: &FlagyardProvider) -> Result<(), String> {
    let r = provider.wait_until_ready(PATIENCE).await;
    ensure(r.success, || format!("provider not ready: {}", r.reason))
}

/// Before any document: reads answer the default with PROVIDER_NOT_READY; once a
/// document is published the provider becomes ready and serves it.
pub async fn not_ready_then_ready(h: &mut dyn Harness) -> Result<(), String> {
    h.stop_source();
    let provider = h.build(new_log());
    let d = provider.get_bool_details("a", true, &());
    ensure(
        d.value && d.error_code() == Some(ErrorCode::ProviderNotReady),
        || format!("before any document: got {d:?}"),
    )?;
    ensure(provider.status() != ProviderStatus::Ready, || {
        "ready without a document".into()
    })?;
    h.publish(&document(&[("a", false)]));
    h.restart_source();
    ready(&provider).await?;
    eventually("flag a = false", || !provider.get_bool("a", true, &())).await?;
    provider.close();
    Ok(())
}

/// A new document fires ConfigurationChanged with exactly the keys added,
/// removed or changed, and the new values are served.
pub async fn change_propagation(h: &mut dyn Harness) -> Result<(), String> {
    h.publish(&document(&[("a", false), ("b", true), ("same", true)]));
    let provider = h.build(new_log());
    ready(&provider).await?;
    let events: Arc<Mutex<Vec<ProviderEvent>>> = Arc::default();
    let log = Arc::clone(&events);
    let _sub = provider.subscribe(move |e| {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(e.clone())
    });
    h.publish(&document(&[("a", true), ("same", true), ("c", false)]));
    eventually("the change to be served", || {
        provider.get_bool("a", false, &())
    })
    .await?;
    let changed = || {
        events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|e| match e {
                ProviderEvent::ConfigurationChanged { flags_changed } => {
                    Some(flags_changed.clone())
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    eventually("a ConfigurationChanged event", || !changed().is_empty()).await?;
    let all = changed();
    ensure(
        all == [vec!["a".to_string(), "b".into(), "c".into()]],
        || format!("flags_changed: want [[a, b, c]], got {all:?}"),
    )?;
    let b = provider.get_bool_details("b", true, &());
    ensure(b.error_code() == Some(ErrorCode::FlagNotFound), || {
        format!("removed flag b: {b:?}")
    })?;
    provider.close();
    Ok(())
}

/// A bad payload is reported through on_error (Parser) and the last good
/// document keeps being served; a later good document is applied.
pub async fn bad_document_keeps_last_good(h: &mut dyn Harness) -> Result<(), String> {
    h.publish(&document(&[("a", true)]));
    let errors = new_log();
    let provider = h.build(Arc::clone(&errors));
    ready(&provider).await?;
    let mut bads: Vec<String> = vec![
        "{not json".into(),
        r#"{"no-flags": true}"#.into(),
        "[1, 2, 3]".into(),
    ];
    if let Some(cap) = h.payload_cap() {
        let filler = "x".repeat(cap + 1);
        bads.push(format!(
            r#"{{"flags": {{}}, "metadata": {{"filler": "{filler}"}}}}"#
        ));
    }
    for bad in &bads {
        let bad = bad.as_str();
        let before = errors.lock().unwrap_or_else(PoisonError::into_inner).len();
        h.publish_bad(bad);
        // Network sources may also report the disconnect that delivered the
        // payload; what matters is a Parser error for it.
        let parser_error_since = |from: usize| {
            errors.lock().unwrap_or_else(PoisonError::into_inner)[from..]
                .iter()
                .any(|e| e.origin() == ErrorOrigin::Parser)
        };
        if let Err(timeout) = eventually("a Parser error through on_error", || {
            parser_error_since(before)
        })
        .await
        {
            let seen = errors.lock().unwrap_or_else(PoisonError::into_inner)[before..].to_vec();
            let shown: Vec<String> = seen
                .iter()
                .map(|e| e.to_string().chars().take(200).collect())
                .collect();
            return Err(format!(
                "payload {bad:.60}: {timeout}; errors seen: {shown:?}"
            ));
        }
        ensure(provider.get_bool("a", false, &()), || {
            format!("payload {bad:.60} replaced the good document")
        })?;
    }
    h.publish(&document(&[("a", false)]));
    eventually("the next good document", || {
        !provider.get_bool("a", true, &())
    })
    .await?;
    provider.close();
    Ok(())
}

/// With the source unavailable, a new provider serves the cached document at
/// once (ready right after build, without waiting).
pub async fn cold_start_from_cache(h: &mut dyn Harness) -> Result<(), String> {
    h.publish(&document(&[("cached", true)]));
    let first = h.build(new_log());
    ready(&first).await?;
    eventually("the document to be served", || {
        first.get_bool("cached", false, &())
    })
    .await?;
    first.close();
    h.stop_source();
    let second = h.build(new_log());
    let d = second.get_bool_details("cached", false, &());
    ensure(d.value && d.reason == Reason::Static, || {
        format!("cold start from the cache: got {d:?}")
    })?;
    ensure(
        matches!(
            second.status(),
            ProviderStatus::Ready | ProviderStatus::Stale
        ),
        || format!("status after a cached start: {:?}", second.status()),
    )?;
    second.close();
    h.restart_source();
    Ok(())
}

/// The source going away makes the provider Stale (values kept); coming back
/// makes it Ready.
pub async fn stale_while_source_down(h: &mut dyn Harness) -> Result<(), String> {
    h.publish(&document(&[("a", true)]));
    let provider = h.build(new_log());
    ready(&provider).await?;
    eventually("the document", || provider.get_bool("a", false, &())).await?;
    h.stop_source();
    eventually("status Stale", || {
        provider.status() == ProviderStatus::Stale
    })
    .await?;
    ensure(provider.get_bool("a", false, &()), || {
        "values lost while the source is down".into()
    })?;
    h.restart_source();
    eventually("status Ready again", || {
        provider.status() == ProviderStatus::Ready
    })
    .await?;
    provider.close();
    Ok(())
}

/// Overrides win over the document on both paths until cleared.
pub async fn overrides(h: &mut dyn Harness) -> Result<(), String> {
    h.publish(&document(&[("a", false)]));
    let provider = h.build(new_log());
    ready(&provider).await?;
    provider.set_override("a", true);
    ensure(provider.get_bool("a", false, &()), || {
        "override not served".into()
    })?;
    provider.clear_override("a");
    ensure(!provider.get_bool("a", true, &()), || {
        "override not cleared".into()
    })?;
    provider.close();
    Ok(())
}

/// close() is idempotent, reads keep answering, and the source no longer applies.
pub async fn close(h: &mut dyn Harness) -> Result<(), String> {
    h.publish(&document(&[("a", true)]));
    let provider = h.build(new_log());
    ready(&provider).await?;
    eventually("the document", || provider.get_bool("a", false, &())).await?;
    provider.close();
    provider.close();
    h.publish(&document(&[("a", false)]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ctx = EvaluationContext::new();
    ensure(provider.get_bool("a", false, &ctx), || {
        "a closed provider applied a new document".into()
    })?;
    Ok(())
}

/// A scenario.
pub type Scenario = for<'h> fn(
    &'h mut dyn Harness,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'h>,
>;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        /// Every scenario, by name.
        pub fn scenarios() -> Vec<(&'static str, Scenario)> {
            vec![$((stringify!($name), |h| Box::pin($name(h)))),*]
        }
    };
}

scenarios!(
    not_ready_then_ready,
    change_propagation,
    bad_document_keeps_last_good,
    cold_start_from_cache,
    stale_while_source_down,
    overrides,
    close,
);

/// Runs every scenario on harnesses made by `make` (a fresh one per scenario)
/// and returns `(passed, failures)`.
pub async fn run_all(mut make: impl FnMut() -> Box<dyn Harness>) -> (usize, Vec<String>) {
    let mut passed = 0;
    let mut failures = Vec::new();
    for (name, scenario) in scenarios() {
        let mut harness = make();
        let label = format!("{} / {name}", harness.name());
        match scenario(harness.as_mut()).await {
            Ok(()) => {
                println!("  ok   {label}");
                passed += 1;
            }
            Err(why) => {
                println!("  FAIL {label}: {why}");
                failures.push(format!("{label}: {why}"));
            }
        }
    }
    (passed, failures)
}
