//! FileSource on a real directory: in-place edits, delete and re-create, broken edits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flagyard::core::{ErrorOrigin, ProviderError};
use flagyard::{FileSource, FlagyardProvider, ProviderEvent, ProviderStatus};

fn doc(value: i64) -> String {
    format!(
        r#"{{"flags": {{"n": {{"state": "ENABLED", "variants": {{"v": {value}}}, "defaultVariant": "v"}}}}}}"#
    )
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_edits_deletes_and_recreates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("flags.json");
    std::fs::write(&path, doc(1)).expect("write");
    let errors: Arc<Mutex<Vec<ProviderError>>> = Arc::default();
    let events: Arc<Mutex<Vec<ProviderEvent>>> = Arc::default();
    let log = Arc::clone(&errors);
    let provider = FlagyardProvider::builder()
        .source(
            FileSource::new(&path)
                .debounce(Duration::from_millis(20))
                .poll_interval(Duration::from_secs(60)),
        )
        .on_error(move |e| log.lock().unwrap().push(e.clone()))
        .build()
        .expect("provider builds");
    assert!(
        provider
            .wait_until_ready(Duration::from_secs(10))
            .await
            .success
    );
    let seen = Arc::clone(&events);
    let _sub = provider.subscribe(move |e| seen.lock().unwrap().push(e.clone()));
    assert_eq!(provider.get_i64("n", 0, &()), 1);

    // An in-place edit (truncate and write), picked up by notification alone
    // (the poll interval is a minute).
    std::fs::write(&path, doc(2)).expect("edit in place");
    until("in-place edit", || provider.get_i64("n", 0, &()) == 2).await;

    // A broken edit keeps the last good value and reports a Parser error.
    std::fs::write(&path, "{\"flags\": {").expect("broken edit");
    until("parser error", || {
        errors
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.origin() == ErrorOrigin::Parser)
    })
    .await;
    assert_eq!(provider.get_i64("n", 0, &()), 2);

    // Delete: Disk error, Stale, values kept.
    std::fs::remove_file(&path).expect("delete");
    until("stale after delete", || {
        provider.status() == ProviderStatus::Stale
    })
    .await;
    assert!(
        errors
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.origin() == ErrorOrigin::Disk && e.message().contains("flags.json"))
    );
    assert_eq!(provider.get_i64("n", 0, &()), 2);

    // Re-create with new content: Ready again and the new value.
    std::fs::write(&path, doc(3)).expect("re-create");
    until("re-created file", || provider.get_i64("n", 0, &()) == 3).await;
    assert_eq!(provider.status(), ProviderStatus::Ready);
    let events = events.lock().unwrap().clone();
    assert!(
        events.contains(&ProviderEvent::ConfigurationChanged {
            flags_changed: vec!["n".into()]
        }),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ProviderEvent::Stale { .. })),
        "{events:?}"
    );
    provider.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_with_no_cache_is_an_error_status_until_it_appears() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("later.json");
    let provider = FlagyardProvider::builder()
        .source(FileSource::new(&path).debounce(Duration::from_millis(20)))
        .build()
        .expect("provider builds");
    until("error status", || {
        provider.status() == ProviderStatus::Error
    })
    .await;
    let r = provider.wait_until_ready(Duration::from_millis(50)).await;
    assert!(
        !r.success && r.reason.contains("later.json"),
        "{}",
        r.reason
    );
    std::fs::write(&path, doc(5)).expect("create");
    until("created file", || provider.get_i64("n", 0, &()) == 5).await;
    provider.close();
}

/// A new document that breaks only one flag: that flag keeps its last good
/// definition (reported), the other flags take the new document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_broken_by_an_edit_keeps_its_last_good_definition() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("flags.json");
    let document = |checkout_state: &str, limit: i64| {
        format!(
            r#"{{"flags": {{
                "new-checkout": {{"state": "{checkout_state}", "variants": {{"on": true, "off": false}}, "defaultVariant": "on"}},
                "limit": {{"state": "ENABLED", "variants": {{"v": {limit}}}, "defaultVariant": "v"}}}}}}"#
        )
    };
    std::fs::write(&path, document("ENABLED", 1)).expect("write");
    let errors: Arc<Mutex<Vec<ProviderError>>> = Arc::default();
    let log = Arc::clone(&errors);
    let provider = FlagyardProvider::builder()
        .source(
            FileSource::new(&path)
                .debounce(Duration::from_millis(20))
                .poll_interval(Duration::from_secs(60)),
        )
        .on_error(move |e| log.lock().unwrap().push(e.clone()))
        .build()
        .expect("provider builds");
    assert!(
        provider
            .wait_until_ready(Duration::from_secs(10))
            .await
            .success
    );
    assert!(provider.get_bool("new-checkout", false, &()));

    std::fs::write(&path, document("ENABLD", 2)).expect("edit");
    until("the rest of the edit", || {
        provider.get_i64("limit", 0, &()) == 2
    })
    .await;
    let details = provider.get_bool_details("new-checkout", false, &());
    assert!(
        details.value,
        "the last good definition answers: {details:?}"
    );
    assert_eq!(details.error_code(), None);
    {
        let errors = errors.lock().unwrap();
        assert!(
            errors.iter().any(|e| {
                e.message().contains("flag new-checkout")
                    && e.message().contains("its last good definition stays")
            }),
            "{errors:?}"
        );
    }
    // A good definition again replaces the kept one.
    std::fs::write(&path, document("DISABLED", 3)).expect("edit");
    until("the fix", || provider.get_i64("limit", 0, &()) == 3).await;
    assert_eq!(
        provider.get_bool_details("new-checkout", true, &()).reason,
        flagyard::core::Reason::Disabled
    );
}

/// Without a file name, a DiskStore's file is derived from the sources it
/// caches: two apps on one host never share a cache, one app finds its own.
#[test]
fn a_disk_store_file_is_named_after_its_sources() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    let path_for = |source: &str| {
        let store = Arc::new(flagyard::DiskStore::builder().directory(&cache).build());
        let _provider = FlagyardProvider::builder()
            .source(FileSource::new(dir.path().join(source)))
            .store(Arc::clone(&store))
            .preload(false)
            .build()
            .expect("provider builds");
        store.path().to_path_buf()
    };
    let (a, b, a_again) = (path_for("a.json"), path_for("b.json"), path_for("a.json"));
    assert_ne!(a, b, "different sources, different files");
    assert_eq!(a, a_again, "the same source finds its own file again");
    assert!(
        a.starts_with(&cache)
            && a.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("flags-")
    );
    // A file name chosen by the builder stays.
    let named = Arc::new(
        flagyard::DiskStore::builder()
            .directory(&cache)
            .file_name("mine.json")
            .build(),
    );
    let _provider = FlagyardProvider::builder()
        .source(FileSource::new(dir.path().join("a.json")))
        .store(Arc::clone(&named))
        .preload(false)
        .build()
        .expect("provider builds");
    assert_eq!(named.path(), cache.join("mine.json"));
}
