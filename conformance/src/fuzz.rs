//! The fuzz targets' bodies (issue 12, item 21). Each takes the fuzzer's bytes,
//! drives one parser or decoder with them and panics when a property fails;
//! `conformance/fuzz/fuzz_targets/` runs them coverage-guided under libFuzzer
//! (`scripts/fuzz.sh`) and `tests/fuzz_corpus.rs` replays the stored corpus
//! through them in the ordinary test run.
//!
//! | target | input | property |
//! |---|---|---|
//! | [`document`] | a flag document | parsing and compiling never panic; a compiled flag's value-only read agrees with its full evaluation |
//! | [`evaluate`] | an evaluation context (structured) | every flag of the example documents evaluates without panic, both read forms agree, twice the same |
//! | [`stream_message`] | a stream message or polled body | the decoder never panics; what it passes on is an object's text the runtime's parser takes or refuses |
//! | [`sse_stream`] | SSE bytes | the reader yields the same events however the bytes are split |
//! | [`admin_body`] | an admin route, flag key and body | the server answers JSON, never 5xx; a refused write keeps the document, an accepted one publishes a valid one |
//! | [`ofrep_body`] | an OFREP route, flag key and body | the server answers JSON in OFREP's shapes, never 5xx |

use std::sync::{Arc, LazyLock};

use arbitrary::{Arbitrary, Unstructured};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use flagyard_core::{EvaluationContext, FractionalVersion, Snapshot};
use flagyard_server::{AppState, ServerConfig};
use serde_json::Value;
use tower::ServiceExt;

/// The documents the [`evaluate`] target reads, compiled once.
static DOCUMENTS: LazyLock<Vec<Snapshot>> = LazyLock::new(|| {
    let texts = [
        include_str!("../../examples/evaluator-rules.json"),
        include_str!("../../examples/flags.json"),
    ];
    let mut out = Vec::new();
    for text in texts {
        for version in [FractionalVersion::V2, FractionalVersion::V3] {
            let options = flagyard_core::CompileOptions::default().fractional(version);
            out.push(Snapshot::parse_with(text, &options).expect("the examples compile"));
        }
    }
    out
});

/// Every string in the example documents: the words the [`evaluate`]
/// target's contexts are made of, so that rules can match.
static WORDS: LazyLock<Vec<String>> = LazyLock::new(|| {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => {
                for (k, v) in map {
                    out.push(k.clone());
                    walk(v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for text in [
        include_str!("../../examples/evaluator-rules.json"),
        include_str!("../../examples/flags.json"),
    ] {
        walk(
            &serde_json::from_str(text).expect("examples are JSON"),
            &mut out,
        );
    }
    out.sort();
    out.dedup();
    out
});

/// Evaluates every flag of `snapshot` with `ctx` in both read forms and
/// panics when they disagree.
fn check_reads(snapshot: &Snapshot, ctx: &EvaluationContext) {
    for key in snapshot.keys() {
        let full = snapshot.evaluate(key, ctx);
        let value = snapshot.value(key, ctx);
        assert_eq!(full.value, value, "flag {key:?}: the two read forms differ");
        assert_eq!(
            full,
            snapshot.evaluate(key, ctx),
            "flag {key:?}: evaluation is not deterministic"
        );
    }
}

/// A flag document from bytes: parse and compile it on both `fractional`
/// profiles; on success read every flag with an empty and a keyed context.
pub fn document(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    for version in [FractionalVersion::V2, FractionalVersion::V3] {
        let options = flagyard_core::CompileOptions::default().fractional(version);
        if let Ok(snapshot) = Snapshot::parse_with(text, &options) {
            assert!(
                snapshot.changed_flags(&snapshot).is_empty(),
                "a document differs from itself"
            );
            check_reads(&snapshot, &EvaluationContext::new());
            let keyed = EvaluationContext::new()
                .with_targeting_key("user-1")
                .with_attribute("email", "ada@example.com");
            check_reads(&snapshot, &keyed);
        }
    }
}

/// A word: one of the documents' strings, or any.
#[derive(Debug, Arbitrary)]
enum Word {
    Known(u16),
    Free(String),
}

impl Word {
    fn text(&self) -> String {
        match self {
            Word::Known(i) => WORDS[usize::from(*i) % WORDS.len()].clone(),
            Word::Free(s) => s.clone(),
        }
    }
}

/// An attribute value.
#[derive(Debug, Arbitrary)]
enum Attribute {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Word),
    Version(u8, u8, u8),
    List(Vec<Attribute>),
    Object(Vec<(Word, Attribute)>),
}

impl Attribute {
    fn json(&self) -> Value {
        match self {
            Attribute::Null => Value::Null,
            Attribute::Bool(b) => Value::Bool(*b),
            Attribute::Int(n) => Value::from(*n),
            Attribute::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            Attribute::Text(w) => Value::String(w.text()),
            Attribute::Version(a, b, c) => Value::String(format!("{a}.{b}.{c}")),
            Attribute::List(items) => Value::Array(items.iter().map(Attribute::json).collect()),
            Attribute::Object(members) => {
                Value::Object(members.iter().map(|(k, v)| (k.text(), v.json())).collect())
            }
        }
    }
}

/// An evaluation context.
#[derive(Debug, Arbitrary)]
struct Ctx {
    targeting_key: Option<Word>,
    attributes: Vec<(Word, Attribute)>,
}

/// A context built from bytes, evaluated against every flag of the example
/// documents (`examples/`) on both `fractional` profiles.
pub fn evaluate(bytes: &[u8]) {
    let Ok(ctx) = Ctx::arbitrary_take_rest(Unstructured::new(bytes)) else {
        return;
    };
    let mut context = EvaluationContext::new();
    context.set_targeting_key(ctx.targeting_key.as_ref().map(Word::text));
    for (name, value) in &ctx.attributes {
        context.insert_attribute(name.text(), value.json());
    }
    for snapshot in DOCUMENTS.iter() {
        check_reads(snapshot, &context);
    }
}

/// One stream message or polled body through the network sources' decoder
/// (with a 64 KiB cap).
pub fn stream_message(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok((_, document)) = flagyard::fuzzing::decode_message(text, 64 * 1024) {
        // The decoder only scans the envelope (the document is parsed once,
        // by the runtime): what it passes on is an object's text, which the
        // runtime's parser then takes or refuses — a number out of range,
        // found by this target, is refused there.
        assert!(
            document.trim_start().starts_with('{'),
            "an accepted document is an object"
        );
        let _ = Snapshot::parse(&document);
    }
}

/// SSE bytes through the event-stream reader (a 256-byte cap): whole, in
/// chunks of a size the first byte picks, and byte by byte — the same items.
pub fn sse_stream(bytes: &[u8]) {
    let Some((&size, stream)) = bytes.split_first() else {
        return;
    };
    let max = 256;
    let whole = flagyard::fuzzing::sse_items(&[stream], max);
    let size = usize::from(size).max(1);
    let chunks: Vec<&[u8]> = stream.chunks(size).collect();
    assert_eq!(
        whole,
        flagyard::fuzzing::sse_items(&chunks, max),
        "{size}-byte chunks"
    );
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(
        whole,
        flagyard::fuzzing::sse_items(&bytes, max),
        "byte by byte"
    );
    for (_, data) in whole.iter().flatten() {
        assert!(data.len() <= max, "an event over the cap was yielded");
    }
}

/// A flag server on a temporary SQLite file, seeded with the example
/// document, answering in-process (no socket).
struct FuzzServer {
    runtime: tokio::runtime::Runtime,
    state: Arc<AppState>,
    router: axum::Router,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::watch::Sender<bool>,
}

const ADMIN_TOKEN: &str = "fuzz-admin-token";

static SERVER: LazyLock<FuzzServer> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let seed = dir.path().join("seed.json");
    std::fs::write(&seed, include_str!("../../examples/flags.json")).expect("the seed is written");
    let mut config = ServerConfig::new(dir.path().join("flags.db"));
    config.seed_file = Some(seed);
    config.admin_token = Some(ADMIN_TOKEN.into());
    config.history_keep = 20;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let state = runtime
        .block_on(AppState::open(config, stopped))
        .expect("the server opens");
    let router = flagyard_server::router(Arc::clone(&state));
    FuzzServer {
        runtime,
        state,
        router,
        _dir: dir,
        _stop: stop,
    }
});

/// The route byte, the path parameter (the first line, percent-encoded) and
/// the body (the rest) of an input.
fn split_request(bytes: &[u8]) -> Option<(u8, String, Vec<u8>)> {
    let (&route, rest) = bytes.split_first()?;
    let (key, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => (&rest[..end], &rest[end + 1..]),
        None => (rest, &[][..]),
    };
    let key: String = key.iter().map(|b| format!("%{b:02X}")).collect();
    Some((route, key, body.to_vec()))
}

/// Sends one request and returns the status and the body as JSON, panicking
/// when the body is not JSON or the status is a server error.
fn send(method: Method, uri: &str, token: bool, body: Vec<u8>) -> (StatusCode, Value) {
    let server = &*SERVER;
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if token {
        request = request.header("authorization", format!("Bearer {ADMIN_TOKEN}"));
    }
    let request = request.body(Body::from(body)).expect("a request");
    let (status, bytes) = server.runtime.block_on(async {
        let response = server
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the body is read");
        (status, bytes)
    });
    assert!(
        !status.is_server_error(),
        "{uri}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{uri}: {status} answered a body that is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, json)
}

/// An admin request: the first byte picks `PUT /v1/admin/document`,
/// `PUT /v1/admin/flags/{key}` or `DELETE /v1/admin/flags/{key}`; the first
/// line is the key, the rest the body.
pub fn admin_body(bytes: &[u8]) {
    let Some((route, key, body)) = split_request(bytes) else {
        return;
    };
    let (method, uri) = match route % 3 {
        0 => (Method::PUT, "/v1/admin/document".to_string()),
        1 => (Method::PUT, format!("/v1/admin/flags/{key}")),
        _ => (Method::DELETE, format!("/v1/admin/flags/{key}")),
    };
    let before = SERVER.state.default_environment().current();
    let (status, answer) = send(method, &uri, true, body);
    let after = SERVER.state.default_environment().current();
    if status.is_success() {
        assert!(
            answer["version"].as_u64() == Some(after.version),
            "{uri}: the answer's version is not the published one: {answer}"
        );
        let published = std::str::from_utf8(&after.body).expect("the published body is UTF-8");
        Snapshot::parse(published).expect("an accepted write publishes a valid document");
    } else {
        assert!(
            answer["error"].is_string(),
            "{uri}: {status} without the JSON error: {answer}"
        );
        assert_eq!(
            before.etag, after.etag,
            "{uri}: a refused write changed the document"
        );
    }
}

/// An OFREP request: the first byte picks the bulk or the single-flag
/// route; the first line is the key, the rest the body.
pub fn ofrep_body(bytes: &[u8]) {
    let Some((route, key, body)) = split_request(bytes) else {
        return;
    };
    let uri = if route % 2 == 0 {
        "/ofrep/v1/evaluate/flags".to_string()
    } else {
        format!("/ofrep/v1/evaluate/flags/{key}")
    };
    let (status, answer) = send(Method::POST, &uri, false, body);
    if status.is_success() {
        let shaped = answer["flags"].is_array() || answer["key"].is_string();
        assert!(shaped, "{uri}: {status} is not an OFREP answer: {answer}");
    } else {
        assert!(
            answer["errorDetails"].is_string() || answer["error"].is_string(),
            "{uri}: {status} without an error detail: {answer}"
        );
    }
}
