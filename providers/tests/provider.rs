//! The provider through its synchronous getters and through OpenFeature.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flagyard::core::{ErrorCode, ErrorOrigin, EvaluationContext, Event, ProviderError, Reason};
use flagyard::{FlagyardProvider, MemorySink, MemoryStore, ProviderEvent, ProviderStatus};
use open_feature::{EvaluationContext as OfContext, EvaluationReason, OpenFeature, StructValue};
use serde_json::json;

const DOC: &str = r##"{
  "metadata": {"flagSetId": "shop"},
  "flags": {
    "checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                 "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on"]}},
    "limit": {"state": "ENABLED", "variants": {"low": 10, "high": 100}, "defaultVariant": "low"},
    "ratio": {"state": "ENABLED", "variants": {"a": 0.25}, "defaultVariant": "a"},
    "color": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red",
              "targeting": {"fractional": [["red", 50], ["blue", 50]]}},
    "theme": {"state": "ENABLED", "variants": {"dark": {"bg": "#000", "sizes": [1, 2], "none": null}}, "defaultVariant": "dark"},
    "off": {"state": "DISABLED", "variants": {"on": true}, "defaultVariant": "on"}
  }
}"##;

fn staff() -> EvaluationContext {
    EvaluationContext::new()
        .with_targeting_key("u1")
        .with_attribute("email", "ada@example.com")
}

#[test]
fn sync_getters_answer_every_type_with_details() {
    let p = FlagyardProvider::from_document(DOC).expect("valid document");
    assert_eq!(p.status(), ProviderStatus::Ready);
    let ctx = staff();
    assert!(p.get_bool("checkout", false, &ctx));
    assert!(!p.get_bool("checkout", true, &EvaluationContext::new()));
    assert_eq!(p.get_i64("limit", 0, &ctx), 10);
    assert_eq!(p.get_f64("ratio", 0.0, &ctx), 0.25);
    assert!(["red", "blue"].contains(&p.get_string("color", "x", &ctx).as_str()));
    assert_eq!(
        p.get_json("theme", json!({}), &ctx),
        json!({"bg": "#000", "sizes": [1, 2], "none": null})
    );

    let d = p.get_bool_details("checkout", false, &ctx);
    assert_eq!(
        (d.value, d.variant.as_deref(), d.reason),
        (true, Some("on"), Reason::TargetingMatch)
    );
    assert!(d.metadata.contains_key("flagSetId"));
    let d = p.get_string_details("limit", "x", &ctx);
    assert_eq!(
        (d.value.as_str(), d.error_code()),
        ("x", Some(ErrorCode::TypeMismatch))
    );
    let d = p.get_i64_details("nope", 7, &ctx);
    assert_eq!(
        (d.value, d.reason, d.error_code()),
        (7, Reason::Error, Some(ErrorCode::FlagNotFound))
    );
    let d = p.get_f64_details("off", 1.5, &ctx);
    assert_eq!(
        (d.value, d.reason, d.error_code()),
        (1.5, Reason::Disabled, None)
    );
    let d = p.get_json_details("theme", json!(null), &ctx);
    assert_eq!(d.variant(), Some("dark"));

    let all = p.all_flags(&ctx);
    assert_eq!(all.len(), 6);
    assert_eq!(all["checkout"].value, json!(true));
    assert_eq!(all["off"].reason, Reason::Disabled);
}

#[test]
fn overrides_win_on_the_sync_path_until_cleared() {
    let p = FlagyardProvider::from_document(DOC).expect("valid");
    let ctx = EvaluationContext::new();
    p.set_override("checkout", true);
    p.set_override("limit", 5_i64);
    p.set_override("brand-new", "hello");
    assert!(p.get_bool("checkout", false, &ctx));
    assert_eq!(p.get_i64("limit", 0, &ctx), 5);
    assert_eq!(p.get_string("brand-new", "", &ctx), "hello");
    let d = p.get_bool_details("limit", false, &ctx);
    assert_eq!(d.error_code(), Some(ErrorCode::TypeMismatch));
    p.clear_override("limit");
    assert_eq!(p.get_i64("limit", 0, &ctx), 10);
    assert!(p.get_bool("checkout", false, &ctx));
    p.clear_all_overrides();
    assert!(!p.get_bool("checkout", false, &ctx));
    assert_eq!(p.get_string("brand-new", "gone", &ctx), "gone");
}

#[test]
fn before_any_document_reads_answer_not_ready_without_blocking() {
    let p = FlagyardProvider::builder()
        .offline(true)
        .build()
        .expect("provider builds");
    assert_eq!(p.status(), ProviderStatus::NotReady);
    let d = p.get_bool_details("checkout", true, &staff());
    assert_eq!(
        (d.value, d.reason, d.error_code()),
        (true, Reason::Error, Some(ErrorCode::ProviderNotReady))
    );
    assert!(p.all_flags(&staff()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_until_ready_times_out_with_a_reason() {
    let p = FlagyardProvider::builder()
        .offline(true)
        .build()
        .expect("provider builds");
    let r = p.wait_until_ready(Duration::from_millis(50)).await;
    assert!(!r.success);
    assert!(r.reason.contains("NotReady"), "{}", r.reason);
    let p = FlagyardProvider::from_document(DOC).expect("valid");
    assert!(p.wait_until_ready(Duration::from_millis(50)).await.success);
}

#[test]
fn lazy_providers_start_on_the_first_read() {
    let store = MemoryStore::with_document(DOC);
    let p = FlagyardProvider::builder()
        .store(store)
        .preload(false)
        .build()
        .expect("provider builds");
    assert_eq!(
        p.status(),
        ProviderStatus::NotReady,
        "nothing starts before a read"
    );
    // The first read never blocks: it starts loading in the background.
    let first = p.get_i64_details("limit", -1, &());
    assert!(first.value == -1 || first.value == 10);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while p.get_i64("limit", -1, &()) != 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "lazy start never served the store's document"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(p.status(), ProviderStatus::Ready);
}

#[test]
fn subscribers_added_after_ready_are_told_at_once_and_drop_unsubscribes() {
    let p = FlagyardProvider::from_document(DOC).expect("valid");
    let seen: Arc<Mutex<Vec<ProviderEvent>>> = Arc::default();
    let log = Arc::clone(&seen);
    let subscription = p.subscribe(move |e| log.lock().unwrap().push(e.clone()));
    assert_eq!(*seen.lock().unwrap(), [ProviderEvent::Ready]);
    drop(subscription);
    let seen_after = seen.lock().unwrap().len();
    assert_eq!(seen_after, 1);
}

#[test]
fn a_bad_store_document_is_reported_and_ignored() {
    let errors: Arc<Mutex<Vec<ProviderError>>> = Arc::default();
    let log = Arc::clone(&errors);
    let p = FlagyardProvider::builder()
        .store(MemoryStore::with_document("{ truncated"))
        .bootstrap_document(DOC)
        .offline(true)
        .on_error(move |e| log.lock().unwrap().push(e.clone()))
        .build()
        .expect("provider builds");
    assert_eq!(
        p.get_i64("limit", 0, &()),
        10,
        "the bootstrap document serves instead"
    );
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].origin(), ErrorOrigin::Disk);
    assert!(
        errors[0].message().contains("store memory"),
        "{}",
        errors[0].message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposures_reach_the_sink_deduplicated_and_close_flushes_it() {
    let sink = MemorySink::new();
    let p = FlagyardProvider::builder()
        .bootstrap_document(DOC)
        .offline(true)
        .sink(sink.clone())
        .build()
        .expect("provider builds");
    let ctx = staff();
    for _ in 0..3 {
        p.get_bool("checkout", false, &ctx);
    }
    p.get_bool(
        "checkout",
        false,
        &EvaluationContext::new().with_targeting_key("u2"),
    );
    p.close();
    p.close();
    let events = sink.events();
    assert_eq!(
        events.len(),
        2,
        "three identical exposures count once: {events:?}"
    );
    let Event::Exposure(e) = &events[0] else {
        panic!("an exposure")
    };
    assert_eq!(
        (
            e.flag.as_str(),
            e.variant.as_deref(),
            e.targeting_key.as_deref()
        ),
        ("checkout", Some("on"), Some("u1"))
    );
    let age = std::time::SystemTime::now()
        .duration_since(e.at)
        .expect("timestamp in the past");
    assert!(
        age < Duration::from_secs(60),
        "timestamp is now-ish: {age:?}"
    );
    assert_eq!(
        sink.flush_count(),
        1,
        "close() flushes once, however often it is called"
    );
    assert!(
        p.get_bool("checkout", false, &ctx),
        "reads after close still answer"
    );
    assert_eq!(p.event_stats().dropped, 0);
}

#[test]
fn without_dedup_every_read_is_an_exposure_and_a_full_queue_drops_the_newest() {
    let sink = MemorySink::new();
    let p = FlagyardProvider::builder()
        .bootstrap_document(DOC)
        .offline(true)
        .sink(sink.clone())
        .dedup_exposures(false)
        .exposure_queue(2)
        .build()
        .expect("provider builds");
    for user in ["a", "b", "c", "d", "e"] {
        p.get_i64(
            "limit",
            0,
            &EvaluationContext::new().with_targeting_key(user),
        );
    }
    assert_eq!(p.event_stats().dropped, 3);
    p.close();
    let keys: Vec<Option<String>> = sink
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Exposure(e) => e.targeting_key,
            _ => None,
        })
        .collect();
    assert_eq!(keys, [Some("a".to_string()), Some("b".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openfeature_client_sees_values_details_overrides_and_errors() {
    let provider = FlagyardProvider::from_document(DOC).expect("valid");
    let handle = provider.clone();
    // initialize returns at once: set_provider holds OpenFeature's write lock meanwhile.
    let started = std::time::Instant::now();
    OpenFeature::singleton_mut()
        .await
        .set_provider(provider)
        .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    let client = OpenFeature::singleton().await.create_client();

    let ctx = OfContext::default()
        .with_targeting_key("u1")
        .with_custom_field("email", "ada@example.com");
    assert!(
        client
            .get_bool_value("checkout", Some(&ctx), None)
            .await
            .expect("resolves")
    );
    let d = client
        .get_bool_details("checkout", Some(&ctx), None)
        .await
        .expect("resolves");
    assert_eq!(
        (d.value, d.variant.as_deref(), d.reason),
        (true, Some("on"), Some(EvaluationReason::TargetingMatch))
    );
    assert!(d.flag_metadata.values.contains_key("flagSetId"));
    assert_eq!(
        client
            .get_int_value("limit", None, None)
            .await
            .expect("int"),
        10
    );
    assert_eq!(
        client
            .get_float_value("ratio", None, None)
            .await
            .expect("float"),
        0.25
    );
    let theme: StructValue = client
        .get_struct_value("theme", None, None)
        .await
        .expect("struct");
    assert_eq!(theme.fields["bg"].as_str(), Some("#000"));
    assert!(
        !theme.fields.contains_key("none"),
        "nulls have no OpenFeature form"
    );

    let missing = client.get_bool_details("missing", None, None).await;
    let err = missing.expect_err("unknown flag is an error result");
    assert_eq!(err.code, open_feature::EvaluationErrorCode::FlagNotFound);
    let mismatch = client
        .get_string_value("limit", None, None)
        .await
        .expect_err("type mismatch");
    assert_eq!(
        mismatch.code,
        open_feature::EvaluationErrorCode::TypeMismatch
    );

    handle.set_override("limit", 42_i64);
    assert_eq!(
        client
            .get_int_value("limit", None, None)
            .await
            .expect("override"),
        42
    );
    handle.clear_all_overrides();
    assert_eq!(
        client
            .get_int_value("limit", None, None)
            .await
            .expect("back"),
        10
    );
}

#[test]
fn exposures_from_threads_that_ended_are_still_delivered() {
    let sink = MemorySink::new();
    let p = FlagyardProvider::builder()
        .bootstrap_document(DOC)
        .offline(true)
        .sink(sink.clone())
        .build()
        .expect("provider builds");
    std::thread::scope(|s| {
        for t in 0..4 {
            let p = p.clone();
            s.spawn(move || {
                for u in 0..10 {
                    let ctx = EvaluationContext::new().with_targeting_key(format!("t{t}-u{u}"));
                    p.get_bool("checkout", false, &ctx);
                }
            });
        }
    });
    p.close();
    let mut keys: Vec<String> = sink
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Exposure(e) => e.targeting_key,
            _ => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 40, "every thread's exposures arrive: {keys:?}");
    assert_eq!(p.event_stats().dropped, 0);
}

#[test]
fn with_str_lends_the_value_or_the_default_without_copying() {
    let p = FlagyardProvider::from_document(DOC).expect("valid");
    let ctx = staff();
    let color = p.with_str("color", "none", &ctx, str::to_string);
    assert!(color == "red" || color == "blue", "{color}");
    assert_eq!(
        p.with_str("limit", "none", &ctx, str::to_string),
        "none",
        "a number flag serves the default"
    );
    assert_eq!(p.with_str("missing", "none", &ctx, str::len), 4);
    p.set_override("missing", "over");
    assert_eq!(p.with_str("missing", "none", &ctx, str::to_string), "over");
}

#[test]
fn a_lazy_provider_closed_before_its_first_read_never_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("flags.json");
    std::fs::write(&path, DOC).expect("write");
    let p = FlagyardProvider::builder()
        .source(flagyard::FileSource::new(&path))
        .preload(false)
        .build()
        .expect("provider builds");
    p.close();
    let d = p.get_bool_details("checkout", true, &());
    assert_eq!(d.error_code(), Some(ErrorCode::ProviderNotReady));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        p.status(),
        ProviderStatus::NotReady,
        "nothing was loaded after close"
    );
}

/// A toy evaluator: the document is `{"key": bool, ...}`, every flag serves
/// its boolean with reason STATIC.
#[derive(Debug)]
struct Booleans {
    flags: std::collections::BTreeMap<String, flagyard::core::FlagValue>,
    metadata: flagyard::core::FlagMetadata,
}

impl flagyard::core::Evaluator for Booleans {
    fn compile(
        document: &str,
        _options: &flagyard::core::CompileOptions,
    ) -> Result<Self, flagyard::core::DocumentError> {
        let map: std::collections::BTreeMap<String, bool> = serde_json::from_str(document)
            .map_err(|_| flagyard::core::DocumentError::MissingFlags)?;
        Ok(Booleans {
            flags: map.into_iter().map(|(k, v)| (k, v.into())).collect(),
            metadata: Default::default(),
        })
    }
    fn evaluate<C: flagyard::core::Context + ?Sized>(
        &self,
        key: &str,
        _ctx: &C,
    ) -> flagyard::core::Evaluation<'_> {
        match self.flags.get_key_value(key) {
            Some((name, value)) => flagyard::core::Resolution::served(
                Some(value),
                Some(name.as_str()),
                Reason::Static,
                &self.metadata,
            ),
            None => flagyard::core::Resolution::failed(
                None,
                flagyard::core::EvalError {
                    code: flagyard::core::ErrorCode::FlagNotFound,
                    message: flagyard::core::ErrorMessage::Static("no such flag"),
                },
                &self.metadata,
            ),
        }
    }
    fn flag_keys(&self) -> Vec<&str> {
        self.flags.keys().map(String::as_str).collect()
    }
    fn changed_flags(&self, previous: &Self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .flags
            .iter()
            .filter(|(k, v)| previous.flags.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .chain(
                previous
                    .flags
                    .keys()
                    .filter(|k| !self.flags.contains_key(*k))
                    .cloned(),
            )
            .collect();
        keys.sort();
        keys
    }
    fn problems(&self) -> &[flagyard::core::Problem] {
        &[]
    }
}

#[test]
fn the_runtime_evaluates_through_the_evaluator_it_is_given() {
    let store = MemoryStore::with_document(r#"{"alpha": true, "beta": false}"#);
    let provider = FlagyardProvider::builder()
        .evaluator::<Booleans>()
        .store(store.clone())
        .offline(true)
        .build()
        .expect("provider builds");
    assert_eq!(provider.status(), ProviderStatus::Ready);
    assert!(provider.get_bool("alpha", false, &()));
    assert!(!provider.get_bool("beta", true, &()));
    let details = provider.get_bool_details("alpha", false, &());
    assert_eq!(
        (details.variant(), details.reason),
        (Some("alpha"), Reason::Static)
    );
    assert_eq!(
        provider.get_bool_details("gamma", true, &()).error_code(),
        Some(flagyard::core::ErrorCode::FlagNotFound)
    );
    assert_eq!(provider.all_flags(&()).len(), 2);
    // The compiled document is the evaluator's own type.
    assert_eq!(provider.snapshot().map(|s| s.flags.len()), Some(2));
}

/// Delivers versioned documents in the order given, then stays quiet.
struct Versions(Vec<(u64, i64)>);

impl flagyard::core::Source for Versions {
    fn describe(&self) -> String {
        "versions".into()
    }
    fn run(
        self: Box<Self>,
        updates: Arc<dyn flagyard::core::SourceUpdates>,
    ) -> flagyard::core::BoxFuture<()> {
        Box::pin(async move {
            for (version, limit) in self.0 {
                let doc = json!({"flags": {"limit": {"state": "ENABLED",
                    "variants": {"v": limit}, "defaultVariant": "v"}}});
                updates.versioned_document(doc.to_string(), version);
            }
            std::future::pending::<()>().await;
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_older_than_the_served_one_is_reported_and_ignored() {
    let errors: Arc<Mutex<Vec<ProviderError>>> = Arc::default();
    let log = Arc::clone(&errors);
    let p = FlagyardProvider::builder()
        .source(Versions(vec![(2, 20), (1, 10), (2, 21), (3, 30), (1, 11)]))
        .on_error(move |e| log.lock().unwrap().push(e.clone()))
        .build()
        .expect("provider builds");
    assert!(p.wait_until_ready(Duration::from_secs(5)).await.success);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while p.get_i64("limit", 0, &()) != 30 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        p.get_i64("limit", 0, &()),
        30,
        "version 3 stays; the later 1 is ignored"
    );
    let errors = errors.lock().unwrap();
    let older: Vec<&str> = errors
        .iter()
        .map(|e| e.message())
        .filter(|m| m.contains("older than the served version"))
        .collect();
    assert_eq!(older.len(), 2, "{errors:?}");
    assert!(
        older[0].contains("version 1 is older than the served version 2"),
        "{older:?}"
    );
}
