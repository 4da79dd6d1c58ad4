//! Builders report what cannot be used from `build()`, naming it.

use flagyard::{BuildError, FlagyardProvider, PollingSource, SseSource, WebSocketSource};

#[test]
fn an_invalid_header_value_fails_the_build_naming_the_header() {
    let err = PollingSource::builder("http://127.0.0.1:8013/v1/flags")
        .header("x-team", "first line\r\nsecond")
        .build()
        .expect_err("a header with a line break is refused");
    assert!(
        matches!(err, BuildError::Header { ref name, .. } if name == "x-team"),
        "{err}"
    );
    assert!(err.to_string().contains("x-team"), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );
    let err = SseSource::builder("http://127.0.0.1:8013/v1/stream")
        .header("bad name", "v")
        .build()
        .expect_err("a header name with a space is refused");
    assert!(err.to_string().contains("bad name"), "{err}");
    let err = WebSocketSource::builder("ws://127.0.0.1:8013/v1/ws")
        .header("x-key", "\u{7f}")
        .build()
        .expect_err("a control character is refused");
    assert!(err.to_string().contains("x-key"), "{err}");
}

#[test]
fn a_bad_url_fails_the_build_naming_it() {
    for (err, url) in [
        (
            PollingSource::builder("127.0.0.1:8013/v1/flags")
                .build()
                .err(),
            "127.0.0.1:8013/v1/flags",
        ),
        (
            SseSource::builder("ftp://x/v1/stream").build().err(),
            "ftp://x/v1/stream",
        ),
        (
            WebSocketSource::builder("http//nope").build().err(),
            "http//nope",
        ),
    ] {
        let err = err.expect("refused");
        assert!(matches!(err, BuildError::Url { .. }), "{err}");
        assert!(err.to_string().contains(url), "{err}");
    }
    assert!(
        PollingSource::builder("http://127.0.0.1:8013/v1/flags")
            .sdk_key("k")
            .build()
            .is_ok()
    );
}

#[test]
fn an_unreadable_bootstrap_file_fails_the_provider_build() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.json");
    let err = FlagyardProvider::builder()
        .offline(true)
        .bootstrap_file(&missing)
        .build()
        .expect_err("missing file");
    assert!(matches!(err, BuildError::Bootstrap { .. }), "{err}");
    assert!(err.to_string().contains("missing.json"), "{err}");
    let present = dir.path().join("flags.json");
    std::fs::write(
        &present,
        r#"{"flags": {"on": {"state": "ENABLED", "variants": {"y": true}, "defaultVariant": "y"}}}"#,
    )
    .expect("write");
    let provider = FlagyardProvider::builder()
        .offline(true)
        .bootstrap_file(&present)
        .build()
        .expect("readable file");
    assert!(provider.get_bool("on", false, &()));
}

#[cfg(feature = "redis")]
#[test]
fn redis_urls_are_checked_and_masked() {
    let err = flagyard::RedisSource::builder("http://:s3cret@127.0.0.1:6379", "flags")
        .build()
        .expect_err("not a redis URL");
    assert!(matches!(err, BuildError::Url { .. }), "{err}");
    assert!(
        !err.to_string().contains("s3cret"),
        "password masked: {err}"
    );
}

#[cfg(feature = "pancake")]
#[test]
fn a_declared_name_flask_pancake_refuses_fails_the_build() {
    let err = flagyard::PancakeSource::builder("redis://127.0.0.1:6379")
        .switch("GOOD", false)
        .flag("A:B", false)
        .build()
        .expect_err("a name with ':' is refused");
    assert!(matches!(err, BuildError::Config { .. }), "{err}");
    assert!(err.to_string().contains("A:B"), "{err}");
}
