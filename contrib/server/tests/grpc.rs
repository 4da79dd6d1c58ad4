//! flagd's gRPC protocols on `flagyard serve`: the sync and evaluation
//! services through their generated clients, and flagd's own Rust provider
//! (`open-feature-flagd`, from crates.io) in RPC and in-process modes, each
//! evaluating what Flagyard's fast path evaluates and following a change.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::{Running, client, start};
use flagyard_core::EvaluationContext as Ctx;
use flagyard_flagd_proto::evaluation::service_client::ServiceClient;
use flagyard_flagd_proto::evaluation::{
    EventStreamRequest, ResolveAllRequest, ResolveBooleanRequest, ResolveStringRequest,
};
use flagyard_flagd_proto::sync::flag_sync_service_client::FlagSyncServiceClient;
use flagyard_flagd_proto::sync::{FetchAllFlagsRequest, SyncFlagsRequest, SyncFlagsResponse};
use flagyard_server::{DeclaredCredential, EnvironmentConfig, Role};
use serde_json::{Value, json};

const KEY: &str = "staging-key";
const OWNER: &str = "owner";

const DOCUMENT: &str = r#"{"flags": {
  "banner": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
             "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}},
  "color": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red",
            "targeting": {"fractional": [["red", 50], ["blue", 50]]}}
}}"#;

/// A server with gRPC on a free port and a `staging` environment read with
/// [`KEY`].
async fn start_with_grpc(dir: &Path) -> Running {
    let seed = dir.join("staging.json");
    std::fs::write(&seed, DOCUMENT).expect("seed");
    start(&dir.join("db.sqlite"), |c| {
        c.grpc_listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.environments.push(EnvironmentConfig {
            name: "staging".parse().expect("name"),
            seed_file: Some(seed),
        });
        c.credentials = vec![
            DeclaredCredential::sdk_key("app", KEY, "staging".parse().expect("name")),
            DeclaredCredential::admin_token("olga", OWNER, Role::Admin),
        ];
    })
    .await
}

/// A server with gRPC on a free port and open reads (no SDK key): `default`
/// serves the document to any caller.
async fn start_open_with_grpc(dir: &Path) -> Running {
    let seed = dir.join("default.json");
    std::fs::write(&seed, DOCUMENT).expect("seed");
    start(&dir.join("open.sqlite"), |c| {
        c.grpc_listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.seed_file = Some(seed);
        c.admin_token = Some(OWNER.into());
    })
    .await
}

fn with_selector<T>(message: T, selector: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("flagd-selector", selector.parse().expect("ascii"));
    request
}

/// Sets `key` in `staging` (the keyed server's environment).
async fn put_flag(base: &str, key: &str, definition: &Value) {
    put_flag_in(base, "staging", key, definition).await;
}

async fn put_flag_in(base: &str, env: &str, key: &str, definition: &Value) {
    let response = client()
        .put(format!("{base}/v1/admin/environments/{env}/flags/{key}"))
        .bearer_auth(OWNER)
        .json(definition)
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 200);
}

fn flag_keys(text: &str) -> Vec<String> {
    let document: Value = serde_json::from_str(text).expect("JSON");
    let mut keys: Vec<String> = document["flags"]
        .as_object()
        .expect("flags")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// A sync client on a connection of its own and its `SyncFlags` stream with
/// [`KEY`], whose first message (the seeded document) is checked and read.
async fn keyed_sync_stream(
    grpc: &str,
) -> (
    FlagSyncServiceClient<tonic::transport::Channel>,
    tonic::Streaming<SyncFlagsResponse>,
) {
    let mut sync = FlagSyncServiceClient::connect(grpc.to_owned())
        .await
        .expect("connects");
    let mut stream = sync
        .sync_flags(with_selector(SyncFlagsRequest::default(), KEY))
        .await
        .expect("stream")
        .into_inner();
    let first = stream.message().await.expect("message").expect("first");
    assert_eq!(flag_keys(&first.flag_configuration), ["banner", "color"]);
    (sync, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_streams_the_keys_environment_on_connect_and_on_every_change() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_with_grpc(dir.path()).await;
    let grpc = server.grpc.clone().expect("gRPC served");
    let (mut sync, mut stream) = keyed_sync_stream(&grpc).await;

    let changed_at = Instant::now();
    put_flag(
        &server.base,
        "beta",
        &json!({"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}),
    )
    .await;
    let next = tokio::time::timeout(Duration::from_secs(1), stream.message())
        .await
        .expect("the change within a second")
        .expect("message")
        .expect("next");
    assert_eq!(
        flag_keys(&next.flag_configuration),
        ["banner", "beta", "color"]
    );
    assert!(changed_at.elapsed() < Duration::from_secs(1));

    // The deprecated selector field works as the header does.
    #[allow(deprecated)]
    let fetched = sync
        .fetch_all_flags(FetchAllFlagsRequest {
            provider_id: String::new(),
            selector: KEY.into(),
        })
        .await
        .expect("fetch")
        .into_inner();
    assert_eq!(
        flag_keys(&fetched.flag_configuration),
        ["banner", "beta", "color"]
    );

    // Without a key (keys exist), or naming an environment without its key:
    // refused; an unknown key as selector too.
    let refused = sync
        .fetch_all_flags(FetchAllFlagsRequest::default())
        .await
        .expect_err("no key");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");
    let refused = sync
        .fetch_all_flags(with_selector(FetchAllFlagsRequest::default(), "default"))
        .await
        .expect_err("no key");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");
    let mut with_key = with_selector(FetchAllFlagsRequest::default(), "default");
    with_key.metadata_mut().insert(
        "authorization",
        format!("Bearer {KEY}").parse().expect("ascii"),
    );
    let refused = sync
        .fetch_all_flags(with_key)
        .await
        .expect_err("another environment");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");
    server.stop().await;
}

/// Connections are spread over the gRPC threads (one runtime per core):
/// streams on more connections than there are threads each get the document
/// and every change, and a stop ends each of them with `UNAVAILABLE` and
/// frees the port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_on_many_connections_follow_changes_and_end_at_stop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_with_grpc(dir.path()).await;
    let grpc = server.grpc.clone().expect("gRPC served");
    let connections = 2 * std::thread::available_parallelism().map_or(1, usize::from) + 1;
    let mut streams = Vec::new();
    for _ in 0..connections {
        // A client of its own: a connection of its own.
        streams.push(keyed_sync_stream(&grpc).await.1);
    }
    put_flag(
        &server.base,
        "beta",
        &json!({"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}),
    )
    .await;
    for (i, stream) in streams.iter_mut().enumerate() {
        let next = tokio::time::timeout(Duration::from_secs(1), stream.message())
            .await
            .unwrap_or_else(|_| panic!("connection {i}: the change within a second"))
            .expect("message")
            .expect("next");
        assert_eq!(
            flag_keys(&next.flag_configuration),
            ["banner", "beta", "color"],
            "connection {i}"
        );
    }
    let port: std::net::SocketAddr = grpc.trim_start_matches("http://").parse().expect("address");
    server.stop().await;
    for (i, stream) in streams.iter_mut().enumerate() {
        let ended = tokio::time::timeout(Duration::from_secs(1), stream.message())
            .await
            .unwrap_or_else(|_| panic!("connection {i}: the stream ends at stop"));
        let status = ended.expect_err("ends with a status");
        assert_eq!(
            status.code(),
            tonic::Code::Unavailable,
            "connection {i}: {status}"
        );
    }
    std::net::TcpListener::bind(port).expect("the gRPC port is free once stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluation_answers_as_flagd_with_its_reasons_and_error_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_with_grpc(dir.path()).await;
    let grpc = server.grpc.clone().expect("gRPC served");
    let mut rpc = ServiceClient::connect(grpc).await.expect("connects");
    let context = |email: &str| {
        let map = json!({"email": email, "targetingKey": "user-7"});
        Some(flagyard_flagd_proto::convert::to_struct(
            map.as_object().expect("object"),
        ))
    };

    let on = rpc
        .resolve_boolean(with_selector(
            ResolveBooleanRequest {
                flag_key: "banner".into(),
                context: context("ada@example.com"),
            },
            KEY,
        ))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(
        (on.value, on.reason.as_str(), on.variant.as_str()),
        (true, "TARGETING_MATCH", "on")
    );

    // The same answer as Flagyard's own evaluator for the same context.
    let snapshot = flagyard_core::Snapshot::parse(DOCUMENT).expect("document");
    for user in ["user-1", "user-2", "user-3", "user-4", "user-5"] {
        let map = json!({"targetingKey": user});
        let answer = rpc
            .resolve_string(with_selector(
                ResolveStringRequest {
                    flag_key: "color".into(),
                    context: Some(flagyard_flagd_proto::convert::to_struct(
                        map.as_object().expect("object"),
                    )),
                },
                KEY,
            ))
            .await
            .expect("resolves")
            .into_inner();
        let local = snapshot.evaluate("color", &Ctx::new().with_targeting_key(user));
        assert_eq!(
            answer.variant,
            local.variant().unwrap_or_default(),
            "{user}"
        );
        assert_eq!(answer.reason, "TARGETING_MATCH");
    }

    let missing = rpc
        .resolve_boolean(with_selector(
            ResolveBooleanRequest {
                flag_key: "nope".into(),
                context: None,
            },
            KEY,
        ))
        .await
        .expect_err("not found");
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing}");
    assert!(missing.message().starts_with("FLAG_NOT_FOUND"), "{missing}");
    let mismatch = rpc
        .resolve_boolean(with_selector(
            ResolveBooleanRequest {
                flag_key: "color".into(),
                context: None,
            },
            KEY,
        ))
        .await
        .expect_err("a string flag");
    assert_eq!(mismatch.code(), tonic::Code::InvalidArgument, "{mismatch}");
    assert!(
        mismatch.message().starts_with("TYPE_MISMATCH"),
        "{mismatch}"
    );

    let all = rpc
        .resolve_all(with_selector(
            ResolveAllRequest {
                context: context("bob@mail.test"),
            },
            KEY,
        ))
        .await
        .expect("all")
        .into_inner();
    let mut keys: Vec<&String> = all.flags.keys().collect();
    keys.sort();
    assert_eq!(keys, ["banner", "color"]);
    assert_eq!(all.flags["banner"].variant, "off");

    // The event stream: ready first, then a configuration change per write.
    let mut events = rpc
        .event_stream(with_selector(EventStreamRequest {}, KEY))
        .await
        .expect("stream")
        .into_inner();
    let ready = events.message().await.expect("message").expect("first");
    assert_eq!(ready.r#type, "provider_ready");
    put_flag(&server.base, "banner", &json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"})).await;
    let change = tokio::time::timeout(Duration::from_secs(1), events.message())
        .await
        .expect("within a second")
        .expect("message")
        .expect("change");
    assert_eq!(change.r#type, "configuration_change");
    let data = flagyard_flagd_proto::convert::from_struct(&change.data.expect("data"));
    assert_eq!(data["flags"]["banner"]["type"], "update");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagds_rust_provider_connects_in_rpc_and_in_process_modes() {
    use open_feature::provider::FeatureProvider;
    use open_feature_flagd::{FlagdOptions, FlagdProvider, ResolverType};

    let dir = tempfile::tempdir().expect("temp dir");
    // In-process: the selector carries the SDK key (the setting every flagd
    // provider has chooses the environment). RPC: the Rust provider sends no
    // selector with its evaluations, so it reads `default` on a server
    // whose reads are open.
    let keyed = start_with_grpc(dir.path()).await;
    let open = start_open_with_grpc(dir.path()).await;
    let port = |server: &Running| -> u16 {
        let grpc = server.grpc.clone().expect("gRPC served");
        grpc.rsplit(':')
            .next()
            .expect("port")
            .parse()
            .expect("number")
    };
    let ctx = open_feature::EvaluationContext::default()
        .with_targeting_key("user-7")
        .with_custom_field("email", "ada@example.com");

    for (resolver_type, server, selector, env_path) in [
        (ResolverType::Rpc, open, None, "/v1/admin/flags"),
        (
            ResolverType::InProcess,
            keyed,
            Some(KEY.to_string()),
            "/v1/admin/environments/staging/flags",
        ),
    ] {
        let options = FlagdOptions {
            host: "127.0.0.1".into(),
            port: port(&server),
            resolver_type: resolver_type.clone(),
            selector,
            cache_settings: None,
            ..Default::default()
        };
        let provider = FlagdProvider::new(options).await.expect("provider");
        let resolved = provider
            .resolve_bool_value("banner", &ctx)
            .await
            .unwrap_or_else(|e| panic!("{resolver_type:?}: {e:?}"));
        assert!(resolved.value, "{resolver_type:?}");
        // RPC: the server evaluates (flagd's current fractional, v2). In
        // process: the client's engine does, and this one implements the
        // accepted ADR (v3, CBOR): Flagyard's evaluator agrees with each.
        let version = match resolver_type {
            ResolverType::Rpc => flagyard_core::FractionalVersion::V2,
            _ => flagyard_core::FractionalVersion::V3,
        };
        let options = flagyard_core::CompileOptions::default().fractional(version);
        let snapshot = flagyard_core::Snapshot::parse_with(DOCUMENT, &options).expect("document");
        for user in [
            "user-7", "user-8", "user-9", "user-10", "user-11", "user-12",
        ] {
            let theirs = open_feature::EvaluationContext::default().with_targeting_key(user);
            let color = provider
                .resolve_string_value("color", &theirs)
                .await
                .expect("color");
            let ours = Ctx::new().with_targeting_key(user);
            assert_eq!(
                color.variant.as_deref(),
                snapshot.evaluate("color", &ours).variant(),
                "{resolver_type:?} {user}"
            );
        }

        // A change reaches it within a second.
        let flag = format!(
            "new-{}",
            if matches!(resolver_type, ResolverType::Rpc) {
                "rpc"
            } else {
                "sync"
            }
        );
        let response = client()
            .put(format!("{}{env_path}/{flag}", server.base))
            .bearer_auth(OWNER)
            .json(&json!({"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}))
            .send()
            .await
            .expect("put");
        assert_eq!(response.status(), 200);
        let changed_at = Instant::now();
        loop {
            if provider
                .resolve_bool_value(&flag, &ctx)
                .await
                .is_ok_and(|r| r.value)
            {
                break;
            }
            assert!(
                changed_at.elapsed() < Duration::from_secs(1),
                "{resolver_type:?} did not see the change within a second"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // After a restart of the server it reconnects and follows again.
        let server = server.restart().await;
        let response = client()
            .put(format!("{}{env_path}/after-restart", server.base))
            .bearer_auth(OWNER)
            .json(&json!({"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}))
            .send()
            .await
            .expect("put");
        assert_eq!(response.status(), 200);
        let restarted_at = Instant::now();
        while !provider
            .resolve_bool_value("after-restart", &ctx)
            .await
            .is_ok_and(|r| r.value)
        {
            assert!(
                restarted_at.elapsed() < RECOVERY,
                "{resolver_type:?} did not recover from the restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "{resolver_type:?}: followed again {:?} after the restart",
            restarted_at.elapsed()
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fractional_v3_the_rpc_and_in_process_clients_bucket_users_alike() {
    use flagyard_core::{CompileOptions, FractionalVersion, Snapshot};
    use open_feature::provider::FeatureProvider;
    use open_feature_flagd::{FlagdOptions, FlagdProvider, ResolverType};

    let users: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    let bucket = |version, user: &str| {
        let options = CompileOptions::default().fractional(version);
        let snapshot = Snapshot::parse_with(DOCUMENT, &options).expect("document");
        let ctx = Ctx::new().with_targeting_key(user);
        snapshot
            .evaluate("color", &ctx)
            .variant()
            .map(str::to_string)
    };
    assert!(
        users
            .iter()
            .any(|u| bucket(FractionalVersion::V2, u) != bucket(FractionalVersion::V3, u)),
        "the users must tell v2 from v3 for this test to mean anything"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("default.json");
    std::fs::write(&seed, DOCUMENT).expect("seed");
    let server = start(&dir.path().join("v3.sqlite"), |c| {
        c.grpc_listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.seed_file = Some(seed);
        c.fractional = FractionalVersion::V3;
    })
    .await;
    let grpc = server.grpc.clone().expect("gRPC served");
    let port: u16 = grpc
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("number");
    let provider = |resolver_type| async move {
        let options = FlagdOptions {
            host: "127.0.0.1".into(),
            port,
            resolver_type,
            cache_settings: None,
            ..Default::default()
        };
        FlagdProvider::new(options).await.expect("provider")
    };
    let rpc = provider(ResolverType::Rpc).await;
    let in_process = provider(ResolverType::InProcess).await;
    for user in &users {
        let ctx = open_feature::EvaluationContext::default().with_targeting_key(user.as_str());
        let by_rpc = rpc.resolve_string_value("color", &ctx).await.expect("rpc");
        let by_engine = in_process
            .resolve_string_value("color", &ctx)
            .await
            .expect("in process");
        assert_eq!(by_rpc.variant, by_engine.variant, "{user}: the two modes");
        assert_eq!(
            by_rpc.variant,
            bucket(FractionalVersion::V3, user),
            "{user}: the server's v3"
        );
    }
    // OFREP is evaluated by the same snapshot.
    let user = users
        .iter()
        .find(|u| bucket(FractionalVersion::V2, u) != bucket(FractionalVersion::V3, u))
        .expect("one differs");
    let answer: Value = client()
        .post(format!("{}/ofrep/v1/evaluate/flags/color", server.base))
        .json(&json!({"context": {"targetingKey": user}}))
        .send()
        .await
        .expect("ofrep")
        .json()
        .await
        .expect("json");
    assert_eq!(
        answer["variant"].as_str().map(str::to_string),
        bucket(FractionalVersion::V3, user),
        "{answer}"
    );
    server.stop().await;
}

/// How long a flagd client may take to reconnect after a server restart
/// (their reconnect backoffs start at about a second).
const RECOVERY: Duration = Duration::from_secs(15);

/// Runs a flagd client app (`command`, which prints one JSON line per new
/// answer for `banner` with the email rule's context) in `mode` (`rpc` or
/// `in-process`), checks its first answer against Flagyard's own evaluator,
/// changes `banner` and checks that the app sees it within a second, then
/// restarts the server, changes `banner` back and checks that the app
/// recovers and sees that too. `keyed`: the app's selector is the SDK key of
/// `staging`; else it sends none to a server with open reads (`default`).
async fn follows_a_change(who: &str, mut command: std::process::Command, mode: &str, keyed: bool) {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, selector, env) = if keyed {
        (start_with_grpc(dir.path()).await, KEY, "staging")
    } else {
        (start_open_with_grpc(dir.path()).await, "", "default")
    };
    let grpc = server.grpc.clone().expect("gRPC served");
    let port = grpc.rsplit(':').next().expect("port");
    let mut child = command
        .args(["127.0.0.1", port, selector, "banner", "30", mode])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{who} runs: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let next = |what: &str, within: Duration| {
        rx.recv_timeout(within)
            .unwrap_or_else(|_| panic!("{who} ({mode}): no {what} within {within:?}"))
    };
    // A provider still connecting (or before its first sync) answers the
    // default with an error; the first answer without one counts.
    let mut first = next("first answer", Duration::from_secs(10));
    while !first["error"].is_null() {
        first = next("answer once ready", Duration::from_secs(10));
    }
    let local = flagyard_core::Snapshot::parse(DOCUMENT).expect("document");
    let ctx = Ctx::new()
        .with_targeting_key("user-7")
        .with_attribute("email", "ada@example.com");
    let ours = local.evaluate("banner", &ctx);
    assert_eq!(
        (first["variant"].as_str(), first["reason"].as_str()),
        (ours.variant(), Some(ours.reason.as_str())),
        "{who} ({mode}): {first}"
    );
    assert_eq!(first["value"], true, "{who} ({mode}): {first}");

    let off = json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"});
    put_flag_in(&server.base, env, "banner", &off).await;
    let changed_at = Instant::now();
    let changed = next("answer after the change", Duration::from_secs(2));
    assert_eq!(changed["value"], false, "{who} ({mode}): {changed}");
    assert!(
        changed_at.elapsed() < Duration::from_secs(1),
        "{who} ({mode}): the change took {:?}",
        changed_at.elapsed()
    );

    // A restart: the app reconnects and follows changes again. In process
    // its sync stream brings the whole document, so one change made while it
    // reconnects reaches it; over RPC a change is announced only to a
    // connected event stream (as with flagd) and a cached answer stays until
    // the next one, so the change is made again each second until it shows.
    let server = server.restart().await;
    let restarted_at = Instant::now();
    let on =
        json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"});
    loop {
        put_flag_in(&server.base, env, "banner", &on).await;
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut seen = false;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if line["value"] == true && line["error"].is_null() => {
                    seen = true;
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if seen {
            break;
        }
        assert!(
            restarted_at.elapsed() < RECOVERY,
            "{who} ({mode}): did not follow a change within {RECOVERY:?} of the restart"
        );
    }
    eprintln!(
        "{who} ({mode}): following again {:?} after the restart",
        restarted_at.elapsed()
    );
    let _ = child.kill();
    let _ = child.wait();
    server.stop().await;
}

/// The Python provider (`openfeature-provider-flagd` 0.6.1, PyPI) in RPC
/// mode (`flagd.evaluation.v2`) and in process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagds_python_provider_follows_in_rpc_and_in_process_modes() {
    let Some(python) = common::python("openfeature-provider-flagd") else {
        return;
    };
    for mode in ["rpc", "in-process"] {
        let mut command = std::process::Command::new(&python);
        command.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flagd_client.py"));
        follows_a_change("the Python flagd provider", command, mode, true).await;
    }
}

/// The JS provider (`@openfeature/flagd-provider`, npm, under node) in RPC
/// mode (`flagd.evaluation.v2`) and in process. Its RPC mode (0.16.1) sends
/// no selector on its `EventStream`, so it runs against open reads there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagds_js_provider_follows_in_rpc_and_in_process_modes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flagd_js");
    if !dir
        .join("node_modules/@openfeature/flagd-provider")
        .is_dir()
    {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "tests/flagd_js/node_modules is missing; scripts/test.sh installs it (npm ci)"
        );
        eprintln!("SKIPPED: the JS flagd provider is not installed (run scripts/test.sh)");
        return;
    }
    for mode in ["rpc", "in-process"] {
        let mut command = std::process::Command::new("node");
        command.arg(dir.join("flagd_client.mjs"));
        follows_a_change("the JS flagd provider", command, mode, mode == "in-process").await;
    }
}
