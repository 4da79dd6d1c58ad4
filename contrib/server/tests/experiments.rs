//! Experiments over real loopback HTTP: the A/B example's users through a
//! Flagyard provider and `HttpSink`, results checked against statsmodels and
//! scipy computed from the raw events; late, duplicated and out-of-order
//! events; the sample-ratio check; several servers on one Redis.

mod common;

#[allow(dead_code)]
#[path = "../examples/ab_test.rs"]
mod ab_test;

use std::path::{Path, PathBuf};

use common::{Running, TOKEN, client, start};
use serde_json::{Value, json};

fn example_flags() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/flags.json")
}

async fn api(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = client().request(method, url).bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn create(base: &str, body: Value) -> Value {
    let (status, answer) = api(
        reqwest::Method::POST,
        format!("{base}/v1/admin/experiments"),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    answer
}

async fn results(base: &str, flag: &str) -> Value {
    let (status, answer) = api(
        reqwest::Method::GET,
        format!("{base}/v1/admin/experiments/{flag}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn post_batch(base: &str, id: &str, events: &[Value]) -> Value {
    let response = client()
        .post(format!("{base}/v1/events"))
        .json(&json!({"batchId": id, "events": events}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

fn exposure(flag: &str, key: &str, variant: &str, at: u64) -> Value {
    json!({"kind": "exposure", "flag": flag, "variant": variant, "reason": "SPLIT",
           "targetingKey": key, "at": at})
}

fn track(name: &str, key: &str, value: Option<f64>, at: u64) -> Value {
    let mut event = json!({"kind": "tracking", "name": name, "targetingKey": key, "at": at});
    if let Some(value) = value {
        event["value"] = json!(value);
    }
    event
}

fn now_ms() -> u64 {
    flagyard_core::event_json::epoch_millis(std::time::SystemTime::now())
}

/// Every kept event as `flagyard admin events` prints them, oldest first.
async fn all_events(base: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (_, page) = api(
            reqwest::Method::GET,
            format!("{base}/v1/admin/events?after={after}&limit=1000"),
            None,
        )
        .await;
        let events = page["events"].as_array().expect("events").clone();
        if events.is_empty() {
            return out;
        }
        after = events.last().expect("one")["id"].as_u64().expect("id");
        out.extend(events);
    }
}

fn metric<'a>(results: &'a Value, name: &str, variant: &str) -> &'a Value {
    results["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| {
            m["variants"]
                .as_array()
                .expect("variants")
                .iter()
                .find(|v| v["variant"] == variant)
        })
        .unwrap_or_else(|| panic!("no {name}/{variant} in {results}"))
}

/// The example's 20,000 users (red and green, green buying 10 % more often)
/// through a provider and `HttpSink`: the lift is found (p < 0.01), the split
/// is as configured, and every figure agrees with statsmodels and scipy
/// computed from the events `flagyard admin events` reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_lift_is_found_and_agrees_with_statsmodels() {
    let Some(python) = common::python("scipy and statsmodels") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.seed_file = Some(example_flags())
    })
    .await;
    let base = server.base.clone();
    let experiment = create(
        &base,
        json!({"flag": "banner-color", "metrics": ["purchase_completed", "revenue:value"],
               "control": "red"}),
    )
    .await;
    assert_eq!(experiment["createdBy"], "admin");
    let simulated = ab_test::simulate(&ab_test::Simulation {
        server: base.clone(),
        ..ab_test::Simulation::default()
    })
    .await
    .expect("simulation runs");
    assert_eq!(simulated.undelivered, 0, "{simulated:?}");
    let answer = results(&base, "banner-color").await;
    assert_eq!(answer["users"], 20_000, "{answer}");
    assert_eq!(answer["excluded"], 0);
    for (variant, users) in &simulated.exposed {
        assert_eq!(
            &metric(&answer, "purchase_completed", variant)["users"],
            users
        );
        let converted = simulated.converted.get(variant).copied().unwrap_or(0);
        assert_eq!(
            metric(&answer, "purchase_completed", variant)["converted"],
            converted
        );
    }
    let green = &metric(&answer, "purchase_completed", "green")["versusControl"];
    assert!(green["pValue"].as_f64().expect("p") < 0.01, "{green}");
    let ci = &green["relativeCi"];
    assert!(
        ci[0].as_f64().expect("lo") < 0.10 && ci[1].as_f64().expect("hi") > 0.10,
        "the true lift is inside the interval: {green}"
    );
    assert_eq!(answer["sampleRatio"]["checked"], true);
    assert_eq!(answer["sampleRatio"]["mismatch"], false, "{answer}");
    let summary = answer["summary"].to_string();
    assert!(
        summary.contains("green converts") && summary.contains("significant"),
        "{summary}"
    );

    // The reference: the raw events, attributed and tested in Python, and
    // every figure of the answer compared with it.
    let events = all_events(&base).await;
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    let events_file = dir.path().join("events.jsonl");
    std::fs::write(&events_file, lines).expect("write events");
    let results_file = dir.path().join("results.json");
    std::fs::write(&results_file, answer.to_string()).expect("write results");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/experiment_stats.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .arg("--check")
        .arg(&events_file)
        .arg(&results_file)
        .output()
        .expect("python runs");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // 1 + 15 (conversions) + 21 (values) + 2 (sample ratio)
    assert!(
        said.trim_end()
            .ends_with("39 figures agree with statsmodels and scipy, 0 differ"),
        "{said}"
    );
    server.stop().await;
}

/// Conversions that arrive before their exposure, an exposure that arrives
/// after a later one, a user who saw both variants, a batch sent twice and
/// events outside the window: each counts as docs/EXPERIMENTS.md says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_duplicated_and_out_of_order_events_count_as_the_method_says() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.seed_file = Some(example_flags())
    })
    .await;
    let base = server.base.clone();
    let created = create(
        &base,
        json!({"flag": "banner-color", "metrics": ["buy", "spend:value"], "control": "red"}),
    )
    .await;
    let t0 = created["start"].as_u64().expect("start");
    // Before the start: not counted.
    let early = vec![exposure("banner-color", "early", "red", t0 - 10)];
    post_batch(&base, "early", &early).await;
    // u1's purchase arrives first, its exposure after (but happened before).
    post_batch(&base, "b1", &[track("buy", "u1", None, t0 + 50)]).await;
    let second = vec![
        exposure("banner-color", "u1", "green", t0 + 20),
        // u2: exposed at +100 and, arriving later, at +10: the earlier counts,
        // and so does the purchase between the two.
        exposure("banner-color", "u2", "red", t0 + 100),
        track("buy", "u2", None, t0 + 40),
        track("spend", "u2", Some(12.5), t0 + 41),
        // u3 saw both variants: excluded.
        exposure("banner-color", "u3", "red", t0 + 5),
        exposure("banner-color", "u3", "green", t0 + 6),
        // u4 bought before being exposed: not a conversion.
        track("buy", "u4", None, t0 + 1),
        exposure("banner-color", "u4", "green", t0 + 2),
    ];
    post_batch(&base, "b2", &second).await;
    post_batch(
        &base,
        "b3",
        &[exposure("banner-color", "u2", "red", t0 + 10)],
    )
    .await;
    let before = results(&base, "banner-color").await;
    // The same batch again (a retry): counted once.
    let again = post_batch(&base, "b2", &second).await;
    assert_eq!(again["duplicate"], true);
    // The same purchase in a new batch: a user converts once.
    post_batch(&base, "b4", &[track("buy", "u1", None, t0 + 60)]).await;
    let answer = results(&base, "banner-color").await;
    assert_eq!(answer["metrics"], before["metrics"], "nothing moved");
    assert_eq!(answer["excluded"], 1, "{answer}");
    assert_eq!(answer["users"], 3);
    let red = metric(&answer, "buy", "red");
    assert_eq!((&red["users"], &red["converted"]), (&json!(1), &json!(1)));
    let green = metric(&answer, "buy", "green");
    assert_eq!(
        (&green["users"], &green["converted"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(metric(&answer, "spend", "red")["total"], 12.5);

    // Stopped: what happens after the stop is not counted.
    let (status, stopped) = api(
        reqwest::Method::POST,
        format!("{base}/v1/admin/experiments/banner-color/stop"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{stopped}");
    let stop = stopped["stop"].as_u64().expect("stop");
    post_batch(
        &base,
        "after",
        &[exposure("banner-color", "late", "red", stop + 1_000)],
    )
    .await;
    assert_eq!(results(&base, "banner-color").await["users"], 3);

    // Mistakes are named.
    for (body, want) in [
        (json!({"flag": "nope", "metrics": ["buy"]}), 404),
        (json!({"flag": "banner-color", "metrics": []}), 400),
        (
            json!({"flag": "theme", "metrics": ["buy"], "control": "purple"}),
            400,
        ),
        (json!({"flag": "banner-color", "metrics": ["buy"]}), 409),
    ] {
        let (status, answer) = api(
            reqwest::Method::POST,
            format!("{base}/v1/admin/experiments"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, want, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let (status, _) = api(
        reqwest::Method::DELETE,
        format!("{base}/v1/admin/experiments/banner-color"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = api(
        reqwest::Method::GET,
        format!("{base}/v1/admin/experiments/banner-color"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    server.stop().await;
}

/// Exposures served 60/40 for a configured 50/50 split are flagged; the
/// example's own traffic (above) is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_split_is_flagged_by_the_sample_ratio_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.seed_file = Some(example_flags())
    })
    .await;
    let base = server.base.clone();
    create(
        &base,
        json!({"flag": "banner-color", "metrics": ["buy"], "control": "red"}),
    )
    .await;
    let at = now_ms() + 5;
    let events: Vec<Value> = (0..2000)
        .map(|i| {
            let variant = if i % 5 < 3 { "red" } else { "green" };
            exposure("banner-color", &format!("u{i}"), variant, at)
        })
        .collect();
    post_batch(&base, "skewed", &events).await;
    let answer = results(&base, "banner-color").await;
    let srm = &answer["sampleRatio"];
    assert_eq!(
        srm["observed"],
        json!({"green": 800, "red": 1200}),
        "{answer}"
    );
    assert_eq!(srm["mismatch"], true, "{srm}");
    assert!(srm["pValue"].as_f64().expect("p") < 1e-10, "{srm}");
    assert!(
        answer["summary"]
            .to_string()
            .contains("Sample ratio mismatch"),
        "{answer}"
    );
    server.stop().await;
}

/// Two servers on one Redis, each taking half of the events at the same
/// time: both answer the same results, every event counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_on_one_redis_give_the_same_results() {
    let Some(redis) = flagyard_conformance::redis_server::TestRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let seeded = |c: &mut flagyard_server::ServerConfig| {
        c.redis_url = Some(redis.url());
        c.seed_file = Some(example_flags());
    };
    let a: Running = start(&dir.path().join("a.sqlite"), seeded).await;
    let b: Running = start(&dir.path().join("b.sqlite"), seeded).await;
    create(
        &a.base,
        json!({"flag": "banner-color", "metrics": ["buy", "spend:value"], "control": "red"}),
    )
    .await;
    let at = now_ms() + 5;
    let batch = |n: usize| -> Vec<Value> {
        (0..200)
            .flat_map(|i| {
                let key = format!("u{n}-{i}");
                let variant = if i % 2 == 0 { "red" } else { "green" };
                let mut events = vec![exposure("banner-color", &key, variant, at)];
                if i % 3 == 0 {
                    events.push(track("buy", &key, None, at + 1));
                    events.push(track("spend", &key, Some(i as f64), at + 2));
                }
                events
            })
            .collect()
    };
    let sends = (0..10).map(|n| {
        let base = if n % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let events = batch(n);
        async move { post_batch(&base, &format!("batch-{n}"), &events).await }
    });
    futures_util::future::join_all(sends).await;
    let (on_a, on_b) = (
        results(&a.base, "banner-color").await,
        results(&b.base, "banner-color").await,
    );
    assert_eq!(on_a["users"], 2000, "{on_a}");
    assert_eq!(on_a["metrics"], on_b["metrics"]);
    assert_eq!(on_a["sampleRatio"], on_b["sampleRatio"]);
    let red = metric(&on_a, "buy", "red");
    // Of each batch's 100 red users (even i), those with i % 3 == 0 buy: 34.
    assert_eq!(
        (&red["users"], &red["converted"]),
        (&json!(1000), &json!(340))
    );
    let (status, list) = api(
        reqwest::Method::GET,
        format!("{}/v1/admin/experiments", b.base),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["experiments"][0]["flag"], "banner-color");
    a.stop().await;
    b.stop().await;
}

/// An editor limited to `staging` runs experiments on staging's flags only:
/// creating one on a `default` flag, or stopping or deleting one there, is
/// refused with the environment named; the admin may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_changes_experiments_of_its_environments_only() {
    use flagyard_server::{DeclaredCredential, EnvironmentConfig, Grant, Role};
    const EDITOR: &str = "staging-editor";
    let dir = tempfile::tempdir().expect("temp dir");
    let document = json!({"flags": {
        "split": {"state": "ENABLED", "variants": {"red": "red", "green": "green"},
                  "defaultVariant": "red",
                  "targeting": {"fractional": [["red", 50], ["green", 50]]}}
    }});
    let seed = dir.path().join("flags.json");
    std::fs::write(&seed, document.to_string()).expect("seed");
    let staging_seed = dir.path().join("staging.json");
    let staging_doc = document
        .to_string()
        .replace("\"split\"", "\"staging-split\"");
    std::fs::write(&staging_seed, staging_doc).expect("seed");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.seed_file = Some(seed);
        c.environments.push(EnvironmentConfig {
            name: "staging".parse().expect("name"),
            seed_file: Some(staging_seed),
        });
        c.credentials = vec![DeclaredCredential {
            name: "eddie".into(),
            grant: Grant::Admin {
                role: Role::Editor,
                environments: vec!["staging".parse().expect("name")],
            },
            sha256: flagyard_server::sha256_hex(EDITOR),
        }];
    })
    .await;
    let base = &server.base;
    let as_editor = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = client()
            .request(method, format!("{base}{path}"))
            .bearer_auth(EDITOR);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        }
    };
    let new = |flag: &str, env: &str| json!({"flag": flag, "environment": env, "metrics": ["purchase"], "control": "red"});

    let (status, body) = as_editor(
        reqwest::Method::POST,
        "/v1/admin/experiments",
        Some(new("split", "default")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("environment 'default'"), "{body}");
    let (status, body) = as_editor(
        reqwest::Method::POST,
        "/v1/admin/experiments",
        Some(new("staging-split", "staging")),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // The admin's experiment on `default`: the editor may neither stop nor
    // delete it; its own it may.
    create(base, new("split", "default")).await;
    for (method, path) in [
        (reqwest::Method::POST, "/v1/admin/experiments/split/stop"),
        (reqwest::Method::DELETE, "/v1/admin/experiments/split"),
    ] {
        let (status, body) = as_editor(method, path, None).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("environment 'default'"), "{body}");
    }
    let (status, body) = as_editor(
        reqwest::Method::POST,
        "/v1/admin/experiments/staging-split/stop",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = as_editor(
        reqwest::Method::DELETE,
        "/v1/admin/experiments/nothing-here",
        None,
    )
    .await;
    assert_eq!(status, 404, "no experiment: not found, as before");
    let (status, _) = api(
        reqwest::Method::POST,
        format!("{base}/v1/admin/experiments/split/stop"),
        None,
    )
    .await;
    assert_eq!(status, 200, "the admin may");
    server.stop().await;
}

/// Events are kept with the environment of the SDK key they were posted with,
/// and an experiment counts only its environment's: staging's traffic on a
/// flag of the same name does not move production's results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_counts_the_events_of_its_environment_only() {
    use flagyard_server::{DeclaredCredential, EnvironmentConfig};
    const PRODUCTION: &str = "production-key";
    const STAGING: &str = "staging-key";
    let dir = tempfile::tempdir().expect("temp dir");
    let staging_seed = dir.path().join("staging.json");
    std::fs::copy(example_flags(), &staging_seed).expect("seed");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.seed_file = Some(example_flags());
        c.environments.push(EnvironmentConfig {
            name: "staging".parse().expect("name"),
            seed_file: Some(staging_seed),
        });
        c.credentials = vec![
            DeclaredCredential::sdk_key("prod", PRODUCTION, "default".parse().expect("name")),
            DeclaredCredential::sdk_key("stage", STAGING, "staging".parse().expect("name")),
        ];
    })
    .await;
    let base = server.base.clone();
    let created = create(
        &base,
        json!({"flag": "banner-color", "metrics": ["buy"], "control": "red"}),
    )
    .await;
    assert_eq!(created["environment"], "default");
    let t0 = created["start"].as_u64().expect("start");
    let post = |key: &'static str, id: String, events: Vec<Value>| {
        let base = base.clone();
        async move {
            let response = client()
                .post(format!("{base}/v1/events"))
                .bearer_auth(key)
                .json(&json!({"batchId": id, "events": events}))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200);
        }
    };
    // Staging: ten users exposed, all buying.
    let staging: Vec<Value> = (0..10)
        .flat_map(|i| {
            let key = format!("s{i}");
            [
                exposure("banner-color", &key, "green", t0 + 10),
                track("buy", &key, None, t0 + 20),
            ]
        })
        .collect();
    post(STAGING, "staging-1".into(), staging).await;
    let answer = results(&base, "banner-color").await;
    assert_eq!(
        answer["users"], 0,
        "staging's events are not production's: {answer}"
    );
    // Production: three users, one buying.
    let production = vec![
        exposure("banner-color", "p1", "red", t0 + 10),
        exposure("banner-color", "p2", "green", t0 + 10),
        exposure("banner-color", "p3", "green", t0 + 10),
        track("buy", "p2", None, t0 + 30),
    ];
    post(PRODUCTION, "production-1".into(), production).await;
    let answer = results(&base, "banner-color").await;
    assert_eq!(answer["users"], 3, "{answer}");
    assert_eq!(metric(&answer, "buy", "green")["converted"], 1, "{answer}");
    // The admin API shows where each event came from.
    let kept = all_events(&base).await;
    let environments: std::collections::BTreeMap<String, usize> =
        kept.iter().fold(Default::default(), |mut by, e| {
            *by.entry(e["environment"].as_str().expect("environment").to_string())
                .or_default() += 1;
            by
        });
    assert_eq!(
        environments,
        [("default".to_string(), 4), ("staging".to_string(), 20)].into(),
        "{kept:?}"
    );
    let (status, page) = api(
        reqwest::Method::GET,
        format!("{base}/v1/admin/events?environment=staging&limit=1000"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let staging = page["events"].as_array().expect("events");
    assert_eq!(staging.len(), 20, "{page}");
    assert!(
        staging.iter().all(|e| e["environment"] == "staging"),
        "{page}"
    );
    server.stop().await;
}
