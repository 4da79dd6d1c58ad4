//! Published OFREP clients against the server give the same answers as
//! Flagyard's own evaluator: the Rust `open-feature-ofrep` provider and the
//! Python `openfeature-provider-ofrep` (run by `tests/ofrep_client.py` with the
//! interpreter named by `FLAGYARD_TEST_PYTHON`, which `scripts/test.sh` sets up);
//! and the OFREP web provider in headless Chromium (`tests/ofrep_web/`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use flagyard_conformance::browser::{self, step};
use flagyard_core::{EvaluationContext, RequestedType, Snapshot};
use flagyard_server::{Server, ServerConfig};
use open_feature::provider::FeatureProvider;
use open_feature_ofrep::{OfrepOptions, OfrepProvider};
use serde_json::{Value, json};

fn example() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/flags.json"))
        .expect("example")
}

/// (flag, type, default, context) cases over the example document.
fn cases() -> Vec<Value> {
    let mut out = Vec::new();
    for (email, version) in [("ada@example.com", "2.3.0"), ("bob@mail.test", "1.0.0")] {
        for user in ["u1", "u2", "u3", "user-17", "user-42"] {
            let ctx = json!({"targetingKey": user, "email": email, "appVersion": version});
            out.push(json!({"flag": "new-checkout", "type": "boolean", "default": false, "context": ctx}));
            out.push(json!({"flag": "banner-color", "type": "string", "default": "none", "context": ctx}));
            out.push(json!({"flag": "max-items", "type": "integer", "default": 0, "context": ctx}));
        }
    }
    out.push(json!({"flag": "theme", "type": "object", "default": {}, "context": {}}));
    out
}

fn expected(snapshot: &Snapshot, case: &Value) -> Value {
    let ty: RequestedType = case["type"]
        .as_str()
        .expect("type")
        .parse()
        .expect("known type");
    let ctx = EvaluationContext::from_json(case["context"].clone()).expect("context");
    let r = snapshot
        .resolve_as(
            case["flag"].as_str().expect("flag"),
            ty,
            &case["default"],
            &ctx,
        )
        .expect("typed default");
    json!({"value": r.value, "variant": r.variant(), "reason": r.reason.as_str()})
}

async fn start(db: &Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let dir = db.parent().expect("dir");
    let seed = dir.join("seed.json");
    std::fs::write(&seed, example()).expect("seed");
    let mut config = ServerConfig::new(db);
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.seed_file = Some(seed);
    let server = Server::bind(config).await.expect("binds");
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    (base, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_ofrep_provider_agrees_with_the_evaluator() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (base, stop) = start(&dir.path().join("db.sqlite")).await;
    let snapshot = Snapshot::parse(&example()).expect("example parses");
    let provider = OfrepProvider::new(OfrepOptions {
        base_url: base.clone(),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .await
    .expect("provider");
    for case in cases() {
        let want = expected(&snapshot, &case);
        let raw = case["context"].clone();
        let mut ctx = open_feature::EvaluationContext::default();
        for (k, v) in raw.as_object().expect("object") {
            if k == "targetingKey" {
                ctx = ctx.with_targeting_key(v.as_str().expect("string"));
            } else {
                ctx = ctx.with_custom_field(k.as_str(), v.as_str().expect("string"));
            }
        }
        let flag = case["flag"].as_str().expect("flag");
        // open-feature-ofrep 0.1 reports every reason as STATIC (it does not read
        // the server's `reason`), so value and variant are what can be compared.
        let (value, variant) = match case["type"].as_str().expect("type") {
            "boolean" => {
                let d = provider.resolve_bool_value(flag, &ctx).await.expect("bool");
                (json!(d.value), d.variant)
            }
            "string" => {
                let d = provider
                    .resolve_string_value(flag, &ctx)
                    .await
                    .expect("string");
                (json!(d.value), d.variant)
            }
            "integer" => {
                let d = provider.resolve_int_value(flag, &ctx).await.expect("int");
                (json!(d.value), d.variant)
            }
            _ => {
                let d = provider
                    .resolve_struct_value(flag, &ctx)
                    .await
                    .expect("struct");
                let bg = d
                    .value
                    .fields
                    .get("bg")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                (json!({"bg": bg}), d.variant)
            }
        };
        assert_eq!(value, want["value"], "{case}");
        assert_eq!(variant.as_deref(), want["variant"].as_str(), "{case}");
    }
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ofrep_provider_agrees_with_the_evaluator() {
    let Some(python) = common::python("openfeature-provider-ofrep") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (base, stop) = start(&dir.path().join("db.sqlite")).await;
    let snapshot = Snapshot::parse(&example()).expect("example parses");
    let cases = cases();
    let input: String = cases.iter().map(|c| format!("{c}\n")).collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ofrep_client.py");
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(python)
            .arg(script)
            .arg(&base)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write cases");
        child.wait_with_output().expect("python finishes")
    })
    .await
    .expect("task");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(answers.len(), cases.len());
    for (case, got) in cases.iter().zip(answers) {
        let want = expected(&snapshot, case);
        assert_eq!(got["errorCode"], Value::Null, "{case}: {got}");
        assert_eq!(got["value"], want["value"], "{case}: {got}");
        assert_eq!(got["variant"], want["variant"], "{case}: {got}");
        assert_eq!(got["reason"], want["reason"], "{case}: {got}");
    }
    let _ = stop.send(());
}

/// Serves the files under `dir` on loopback (a page's origin other than the
/// flag server's); returns `http://127.0.0.1:PORT`.
async fn serve_files(dir: std::path::PathBuf) -> String {
    use axum::extract::Path as UrlPath;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::get(move |UrlPath(path): UrlPath<String>| {
            let dir = dir.clone();
            async move {
                if path.split('/').any(|part| part == ".." || part.is_empty()) {
                    return StatusCode::NOT_FOUND.into_response();
                }
                let kind = match path.rsplit('.').next() {
                    Some("html") => "text/html; charset=utf-8",
                    Some("js" | "mjs") => "text/javascript",
                    _ => "application/octet-stream",
                };
                match tokio::fs::read(dir.join(&path)).await {
                    Ok(bytes) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
                    Err(_) => StatusCode::NOT_FOUND.into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{}", addr.port())
}

/// The OFREP web provider in headless Chromium, on a page from another
/// origin: CORS lets it evaluate, ADR-0008's change notifications bring it a
/// change with polling off, and an origin not allowed gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ofrep_web_provider_in_chromium_evaluates_across_origins_and_follows_changes() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ofrep_web");
    if !web
        .join("node_modules/@openfeature/ofrep-web-provider")
        .is_dir()
    {
        return browser::skip("tests/ofrep_web/node_modules is missing (npm ci)");
    }
    let Some(python) = browser::python() else {
        return;
    };
    let page_origin = serve_files(web.clone()).await;

    let document = json!({"flags": {"banner": {
        "state": "ENABLED",
        "variants": {"red": "#c00", "blue": "#00c", "green": "#0a0"},
        "defaultVariant": "red",
        "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "blue", "red"]}
    }}});
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("seed.json");
    std::fs::write(&seed, document.to_string()).expect("seed");
    const KEY: &str = "browser-key";
    const TOKEN: &str = "admin-token";
    let mut config = ServerConfig::new(dir.path().join("db.sqlite"));
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.seed_file = Some(seed);
    config.cors_origins = vec![page_origin.clone()];
    config.credentials = vec![
        flagyard_server::DeclaredCredential::sdk_key("web", KEY, "default".parse().expect("name")),
        flagyard_server::DeclaredCredential::admin_token(
            "ops",
            TOKEN,
            flagyard_server::Role::Admin,
        ),
    ];
    let server = Server::bind(config).await.expect("binds");
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let page = format!("{page_origin}/page.html");
    // The same files under another name of the same address: another origin.
    let denied = page.replacen("127.0.0.1", "localhost", 1);
    let script = web.join("ofrep_web.py");
    let steps = tokio::task::spawn_blocking(move || {
        browser::steps(
            &python,
            &script,
            &[&page, &denied, &base, KEY, TOKEN, "banner"],
        )
    })
    .await
    .expect("task");
    let step = |name: &str| step(&steps, name).clone();

    // What the browser read is what Flagyard's evaluator answers.
    let snapshot = Snapshot::parse(&document.to_string()).expect("parses");
    let ctx = EvaluationContext::from_json(
        json!({"targetingKey": "browser-user", "email": "ada@example.com"}),
    )
    .expect("context");
    let want = snapshot
        .resolve_as(
            "banner",
            RequestedType::String,
            &json!("code-default"),
            &ctx,
        )
        .expect("typed");
    let ready = step("ready");
    assert_eq!(ready["origin"], page_origin.as_str());
    assert_eq!(
        ready["details"],
        json!({"value": want.value, "variant": want.variant(), "reason": want.reason.as_str()}),
        "{steps:?}"
    );
    let changed = step("change seen");
    assert_eq!(changed["details"]["value"], "#0a0", "{steps:?}");
    assert_eq!(changed["details"]["reason"], "STATIC", "{steps:?}");
    assert!(
        changed["ms"].as_u64().is_some_and(|ms| ms < 1000),
        "the change took over a second: {steps:?}"
    );
    let other = step("other origin");
    assert_eq!(other["ready"], false, "{steps:?}");
    assert!(other["error"].is_string(), "{steps:?}");
    let _ = stop.send(());
}
