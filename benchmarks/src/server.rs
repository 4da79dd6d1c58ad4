//! The server section: `flagyard serve` beside Unleash Edge in offline mode
//! and a floor (a bare axum handler returning precomputed bytes), each in a
//! process of its own, driven in turn by one load generator (this process, one
//! thread, HTTP/1.1 keep-alive connections) for a bounded time: single-flag
//! and bulk evaluation with a different context on every request, and the
//! whole document (`/v1/flags`, Edge's `/api/client/features`) 200 and 304.
//!
//! Unleash Edge is installed from crates.io on the first run (`cargo install
//! unleash-edge --locked` into `target/tools`, several minutes), or taken from
//! `$UNLEASH_EDGE`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, HOST, IF_NONE_MATCH};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The version of Unleash Edge installed when none is given.
const EDGE_VERSION: &str = "20.1.0";
const SDK_KEY: &str = "bench-sdk-key";
const EDGE_FRONTEND_TOKEN: &str = "*:development.bench-frontend";
const EDGE_CLIENT_TOKEN: &str = "*:development.bench-client";
/// Keep-alive connections the load generator holds open.
const CONNECTIONS: usize = 32;
const WARMUP: Duration = Duration::from_millis(300);
const MEASURED: Duration = Duration::from_secs(2);
/// Contexts cycled through: every request evaluates for another user.
const CONTEXTS: usize = 1_000;
/// Flag counts measured.
const SIZES: [usize; 2] = [350, 1_000];

// --- The servers, as children of this process ----------------------------------

/// In the child process: `server-child flagyard SEED DB` or `server-child floor DIR`.
pub fn child(args: &[String]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        match args[0].as_str() {
            "flagyard" => {
                let mut config = flagyard_server::ServerConfig::new(&args[2]);
                config.listen = "127.0.0.1:0".parse().expect("addr");
                config.seed_file = Some(PathBuf::from(&args[1]));
                config.sdk_key = Some(SDK_KEY.into());
                let server = flagyard_server::Server::bind(config)
                    .await
                    .expect("flagyard server binds");
                println!("listening {}", server.local_addr());
                server
                    .run(std::future::pending())
                    .await
                    .expect("flagyard server runs");
            }
            _ => floor(Path::new(&args[1])).await,
        }
    });
}

/// The floor: the answers Flagyard gave, as precomputed bytes, from a bare
/// axum handler that reads nothing but the path and `If-None-Match`.
async fn floor(dir: &Path) {
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    let read = |name: &str| Bytes::from(std::fs::read(dir.join(name)).expect("floor answer"));
    let (single, bulk, flags) = (read("single.json"), read("bulk.json"), read("flags.json"));
    let json = |body: Bytes| ([(CONTENT_TYPE, "application/json")], body).into_response();
    let app = axum::Router::new()
        .route(
            "/ofrep/v1/evaluate/flags/{key}",
            post(move || {
                let single = single.clone();
                async move { json(single) }
            }),
        )
        .route(
            "/ofrep/v1/evaluate/flags",
            post(move || {
                let bulk = bulk.clone();
                async move { json(bulk) }
            }),
        )
        .route(
            "/v1/flags",
            get(move |headers: axum::http::HeaderMap| {
                let flags = flags.clone();
                async move {
                    if headers.contains_key(IF_NONE_MATCH) {
                        StatusCode::NOT_MODIFIED.into_response()
                    } else {
                        ([(ETAG, "\"floor\"")], json(flags)).into_response()
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("floor binds");
    println!("listening {}", listener.local_addr().expect("addr"));
    axum::serve(listener, app).await.expect("floor runs");
}

/// A server process, killed when dropped.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// This process again, as `server-child ARGS`, once it says where it listens.
    fn this_binary(args: &[&str]) -> Running {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .arg("server-child")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("server child starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("server child says where it listens");
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("server child printed {line:?}"));
        Running { child, addr }
    }

    /// Unleash Edge in offline mode on `bootstrap`, once it answers.
    async fn edge(binary: &Path, bootstrap: &Path) -> Running {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(binary)
            .args([
                "--port",
                &port.to_string(),
                "--interface",
                "127.0.0.1",
                "offline",
            ])
            .arg("--bootstrap-file")
            .arg(bootstrap)
            .args(["--frontend-tokens", EDGE_FRONTEND_TOKEN])
            .args(["--client-tokens", EDGE_CLIENT_TOKEN])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unleash-edge starts");
        let running = Running {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = fetch(
                running.addr,
                Method::GET,
                "/api/frontend",
                &[(AUTHORIZATION.as_str(), EDGE_FRONTEND_TOKEN)],
                Bytes::new(),
            )
            .await;
            if matches!(answer, Ok((StatusCode::OK, _, _))) {
                return running;
            }
            assert!(
                Instant::now() < deadline,
                "Unleash Edge did not answer within 20 s: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

/// Unleash Edge's binary: `$UNLEASH_EDGE`, else the one installed in
/// `target/tools`, installing it there the first time. `Err` says why not.
fn edge_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("UNLEASH_EDGE") {
        let path = PathBuf::from(path);
        return if path.exists() {
            Ok(path)
        } else {
            Err(format!(
                "UNLEASH_EDGE names {}, which does not exist",
                path.display()
            ))
        };
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools");
    let binary = root.join("bin/unleash-edge");
    if binary.exists() {
        return Ok(binary);
    }
    eprintln!(
        "installing Unleash Edge {EDGE_VERSION} into benchmarks/target/tools \
         (once; cargo install takes several minutes)"
    );
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "install",
            "unleash-edge",
            "--locked",
            "--version",
            EDGE_VERSION,
        ])
        .arg("--root")
        .arg(&root)
        .status()
        .map_err(|e| format!("cargo install unleash-edge could not start: {e}"))?;
    if status.success() && binary.exists() {
        Ok(binary)
    } else {
        Err(format!("cargo install unleash-edge failed ({status})"))
    }
}

// --- The load generator ---------------------------------------------------------

/// One request and its answer on a new connection (setup and checks).
async fn fetch(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<(StatusCode, hyper::HeaderMap, Bytes), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if !body.is_empty() {
        request = request.header(CONTENT_TYPE, "application/json");
    }
    let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((parts.status, parts.headers, body))
}

/// What one scenario sends to one server: requests cycled through (a path and
/// a body each), the same headers on all, and the statuses that count as an
/// answer.
struct Load {
    method: Method,
    requests: Vec<(String, Bytes)>,
    headers: Vec<(&'static str, String)>,
    ok: &'static [StatusCode],
}

impl Load {
    /// A POST of each context in turn, to the path `path` makes of its index.
    fn post(
        contexts: &[Bytes],
        path: impl Fn(usize) -> String,
        auth: (&'static str, String),
        ok: &'static [StatusCode],
    ) -> Load {
        Load {
            method: Method::POST,
            requests: contexts
                .iter()
                .enumerate()
                .map(|(i, body)| (path(i), body.clone()))
                .collect(),
            headers: vec![auth],
            ok,
        }
    }

    /// A GET of `path`, again and again.
    fn get(path: &str, headers: Vec<(&'static str, String)>, ok: &'static [StatusCode]) -> Load {
        Load {
            method: Method::GET,
            requests: vec![(path.to_string(), Bytes::new())],
            headers,
            ok,
        }
    }
}

struct Outcome {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_kib: u64,
}

/// Drives `server` with `load` from [`CONNECTIONS`] connections for
/// [`WARMUP`] + [`MEASURED`]; answers completed in the measured window count.
async fn drive(server: &Running, load: &std::sync::Arc<Load>) -> Outcome {
    let started = Instant::now();
    let (from, until) = (started + WARMUP, started + WARMUP + MEASURED);
    let addr = server.addr;
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let load = std::sync::Arc::clone(load);
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .expect("handshake");
                tokio::spawn(connection);
                let host = addr.to_string();
                let mut latencies = Vec::new();
                let mut i = c;
                loop {
                    let (path, body) = &load.requests[i % load.requests.len()];
                    i += CONNECTIONS;
                    let mut request = Request::builder()
                        .method(load.method.clone())
                        .uri(path.as_str())
                        .header(HOST, host.as_str());
                    for (name, value) in &load.headers {
                        request = request.header(*name, value.as_str());
                    }
                    if !body.is_empty() {
                        request = request.header(CONTENT_TYPE, "application/json");
                    }
                    let request = request.body(Full::new(body.clone())).expect("request");
                    let sent = Instant::now();
                    let response = sender.send_request(request).await.expect("answer");
                    let status = response.status();
                    let _ = response.into_body().collect().await.expect("body");
                    let done = Instant::now();
                    assert!(
                        load.ok.contains(&status),
                        "{path}: {status} (expected one of {:?})",
                        load.ok
                    );
                    if done >= until {
                        return latencies;
                    }
                    if done >= from {
                        latencies.push(done - sent);
                    }
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("connection task"));
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |p: f64| ms(latencies[((latencies.len() - 1) as f64 * p) as usize]);
    Outcome {
        requests_per_s: latencies.len() as f64 / MEASURED.as_secs_f64(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        rss_kib: server.rss_kib(),
    }
}

// --- The section ----------------------------------------------------------------

/// The users' contexts as OFREP request bodies and as Unleash contexts.
fn contexts() -> (Vec<Bytes>, Vec<Bytes>) {
    (0..CONTEXTS)
        .map(|i| {
            let key = format!("user-{i}");
            let email = format!(
                "user{i}@{}",
                if i % 10 == 0 {
                    "example.com"
                } else {
                    "mail.test"
                }
            );
            let ofrep = json!({"context": {"targetingKey": key, "email": email}});
            let unleash = json!({"userId": key, "properties": {"email": email}});
            (
                Bytes::from(ofrep.to_string()),
                Bytes::from(unleash.to_string()),
            )
        })
        .unzip()
}

/// A row of the table.
struct Row {
    size: usize,
    scenario: &'static str,
    server: &'static str,
    outcome: Outcome,
}

/// Runs the section; the text table and the JSON rows.
pub fn measure(dir: &Path) -> (String, Value) {
    let edge = edge_binary();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        for size in SIZES {
            rows.extend(measure_size(dir, size, edge.as_deref().ok()).await);
        }
        rows
    });
    report(&rows, edge.err())
}

async fn measure_size(dir: &Path, size: usize, edge: Option<&Path>) -> Vec<Row> {
    let seed = dir.join(format!("server-{size}.json"));
    std::fs::write(&seed, super::docs::flagd_n(size).to_string()).expect("write seed");
    let flagyard = Running::this_binary(&[
        "flagyard",
        &seed.display().to_string(),
        &dir.join(format!("server-{size}.sqlite"))
            .display()
            .to_string(),
    ]);
    let bearer = format!("Bearer {SDK_KEY}");
    let auth = [(AUTHORIZATION.as_str(), bearer.as_str())];
    let (ofrep_contexts, unleash_contexts) = contexts();

    // Flagyard's answers for user-0, for the floor to serve and to check.
    let single = ok(fetch(
        flagyard.addr,
        Method::POST,
        "/ofrep/v1/evaluate/flags/flag-1",
        &auth,
        ofrep_contexts[0].clone(),
    )
    .await);
    let bulk = ok(fetch(
        flagyard.addr,
        Method::POST,
        "/ofrep/v1/evaluate/flags",
        &auth,
        ofrep_contexts[0].clone(),
    )
    .await);
    let (flags_status, flags_headers, flags) =
        fetch(flagyard.addr, Method::GET, "/v1/flags", &auth, Bytes::new())
            .await
            .expect("flagyard /v1/flags");
    assert_eq!(flags_status, StatusCode::OK);
    let etag = flags_headers
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .expect("flagyard sends an ETag")
        .to_string();
    let evaluated: Value = serde_json::from_slice(&bulk).expect("bulk answer is JSON");
    assert_eq!(
        evaluated["flags"].as_array().map(Vec::len),
        Some(size),
        "flagyard's bulk answer has every flag"
    );
    let floor_dir = dir.join(format!("floor-{size}"));
    std::fs::create_dir_all(&floor_dir).expect("floor dir");
    for (name, body) in [
        ("single.json", &single),
        ("bulk.json", &bulk),
        ("flags.json", &flags),
    ] {
        std::fs::write(floor_dir.join(name), body).expect("floor answer");
    }
    let floor = Running::this_binary(&["floor", &floor_dir.display().to_string()]);

    let edge = match edge {
        Some(binary) => {
            let bootstrap = dir.join(format!("unleash-{size}.json"));
            std::fs::write(&bootstrap, super::docs::unleash_n(size).to_string())
                .expect("write bootstrap");
            Some(Running::edge(binary, &bootstrap).await)
        }
        None => None,
    };
    let edge_etag = match &edge {
        Some(edge) => {
            // Edge's frontend answer names the enabled toggles: the rule is on
            // for user-0 (example.com), as Flagyard's value says.
            let (status, _, answer) = fetch(
                edge.addr,
                Method::POST,
                "/api/frontend",
                &[(AUTHORIZATION.as_str(), EDGE_FRONTEND_TOKEN)],
                unleash_contexts[0].clone(),
            )
            .await
            .expect("edge frontend");
            assert_eq!(status, StatusCode::OK, "edge frontend: {answer:?}");
            let answer: Value = serde_json::from_slice(&answer).expect("edge answers JSON");
            let on = |name: &str| {
                answer["toggles"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t["name"] == name))
            };
            assert!(on("flag-0") && on("flag-1"), "edge serves the toggles");
            let (_, headers, _) = fetch(
                edge.addr,
                Method::GET,
                "/api/client/features",
                &[(AUTHORIZATION.as_str(), EDGE_CLIENT_TOKEN)],
                Bytes::new(),
            )
            .await
            .expect("edge client features");
            headers
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        }
        None => None,
    };
    let single_value: Value = serde_json::from_slice(&single).expect("single answer is JSON");
    assert_eq!(single_value["value"], true, "flag-1 is on for user-0");

    let fy_auth = (AUTHORIZATION.as_str(), bearer.clone());
    let edge_frontend = (AUTHORIZATION.as_str(), EDGE_FRONTEND_TOKEN.to_string());
    let edge_client = (AUTHORIZATION.as_str(), EDGE_CLIENT_TOKEN.to_string());
    const OK: &[StatusCode] = &[StatusCode::OK];
    const NOT_MODIFIED: &[StatusCode] = &[StatusCode::NOT_MODIFIED];
    let mut rows = Vec::new();
    let scenarios: [(&'static str, Load, Option<Load>); 4] = [
        (
            "single flag",
            Load::post(
                &ofrep_contexts,
                |i| format!("/ofrep/v1/evaluate/flags/flag-{}", i % size),
                fy_auth.clone(),
                OK,
            ),
            // Edge's single-toggle endpoint answers 404 for a toggle that is
            // off for the context: both are answers.
            Some(Load::post(
                &unleash_contexts,
                |i| format!("/api/frontend/features/flag-{}", i % size),
                edge_frontend.clone(),
                &[StatusCode::OK, StatusCode::NOT_FOUND],
            )),
        ),
        (
            "bulk (all flags)",
            Load::post(
                &ofrep_contexts,
                |_| "/ofrep/v1/evaluate/flags".into(),
                fy_auth.clone(),
                OK,
            ),
            Some(Load::post(
                &unleash_contexts,
                |_| "/api/frontend".into(),
                edge_frontend,
                OK,
            )),
        ),
        (
            "document 200",
            Load::get("/v1/flags", vec![fy_auth.clone()], OK),
            Some(Load::get(
                "/api/client/features",
                vec![edge_client.clone()],
                OK,
            )),
        ),
        (
            "document 304",
            Load::get(
                "/v1/flags",
                vec![fy_auth, (IF_NONE_MATCH.as_str(), etag.clone())],
                NOT_MODIFIED,
            ),
            edge_etag.map(|etag| {
                Load::get(
                    "/api/client/features",
                    vec![edge_client, (IF_NONE_MATCH.as_str(), etag)],
                    NOT_MODIFIED,
                )
            }),
        ),
    ];
    for (scenario, load, edge_load) in scenarios {
        let (load, edge_load) = (
            std::sync::Arc::new(load),
            edge_load.map(std::sync::Arc::new),
        );
        // Interleaved per scenario, so drift in the machine falls on all three.
        rows.push(Row {
            size,
            scenario,
            server: "floor: bare axum, precomputed bytes",
            outcome: drive(&floor, &load).await,
        });
        rows.push(Row {
            size,
            scenario,
            server: "flagyard serve",
            outcome: drive(&flagyard, &load).await,
        });
        if let (Some(edge), Some(edge_load)) = (&edge, edge_load) {
            rows.push(Row {
                size,
                scenario,
                server: "Unleash Edge (offline)",
                outcome: drive(edge, &edge_load).await,
            });
        }
    }
    rows
}

fn ok(answer: Result<(StatusCode, hyper::HeaderMap, Bytes), String>) -> Bytes {
    match answer {
        Ok((StatusCode::OK, _, body)) => body,
        other => panic!("flagyard answered {other:?}"),
    }
}

/// The table, with the budgets: bulk for 350 flags ≥ 3× Edge's requests/s,
/// single flag ≥ 70 % of the floor's.
fn report(rows: &[Row], edge_missing: Option<String>) -> (String, Value) {
    let mut text =
        String::from("\nServer (one load generator, 32 keep-alive connections, 2 s per row)\n");
    let _ = writeln!(
        text,
        "  {:>5} {:<17} {:<36} {:>10} {:>8} {:>8} {:>9} {:>10}",
        "flags", "scenario", "server", "req/s", "p50 ms", "p99 ms", "RSS MiB", "÷ floor"
    );
    let rate = |size: usize, scenario: &str, server: &str| {
        rows.iter()
            .find(|r| r.size == size && r.scenario == scenario && r.server.starts_with(server))
            .map(|r| r.outcome.requests_per_s)
    };
    let mut json_rows = Vec::new();
    for r in rows {
        let floor = rate(r.size, r.scenario, "floor").unwrap_or(f64::NAN);
        let o = &r.outcome;
        let _ = writeln!(
            text,
            "  {:>5} {:<17} {:<36} {:>10.0} {:>8.2} {:>8.2} {:>9.1} {:>10.2}",
            r.size,
            r.scenario,
            r.server,
            o.requests_per_s,
            o.p50_ms,
            o.p99_ms,
            o.rss_kib as f64 / 1024.0,
            o.requests_per_s / floor
        );
        json_rows.push(json!({
            "flags": r.size, "scenario": r.scenario, "server": r.server,
            "requests_per_s": o.requests_per_s, "p50_ms": o.p50_ms, "p99_ms": o.p99_ms,
            "rss_kib": o.rss_kib, "ratio_to_floor": o.requests_per_s / floor,
        }));
    }
    if let Some(why) = &edge_missing {
        let _ = writeln!(text, "  Unleash Edge not measured: {why}");
    }
    let mut budgets = Vec::new();
    if let (Some(fy), Some(edge)) = (
        rate(350, "bulk (all flags)", "flagyard"),
        rate(350, "bulk (all flags)", "Unleash Edge"),
    ) {
        budgets.push((
            "bulk, 350 flags: flagyard ÷ Unleash Edge ≥ 3",
            fy / edge,
            3.0,
        ));
    }
    for size in SIZES {
        if let (Some(fy), Some(floor)) = (
            rate(size, "single flag", "flagyard"),
            rate(size, "single flag", "floor"),
        ) {
            budgets.push((
                if size == 350 {
                    "single flag, 350 flags: flagyard ÷ floor ≥ 0.7"
                } else {
                    "single flag, 1,000 flags: flagyard ÷ floor ≥ 0.7"
                },
                fy / floor,
                0.7,
            ));
        }
    }
    let mut json_budgets = Vec::new();
    for (name, ratio, at_least) in budgets {
        let met = ratio >= at_least;
        let _ = writeln!(
            text,
            "  budget {name}: {ratio:.2} — {}",
            if met { "met" } else { "MISSED" }
        );
        json_budgets.push(json!({"budget": name, "ratio": ratio, "met": met}));
    }
    (
        text,
        json!({"rows": json_rows, "budgets": json_budgets, "edge_missing": edge_missing}),
    )
}
