//! Editing document flags through the admin API (issue 17): reads with
//! ETags, `If-Match` and `If-None-Match: *` (stale: `412` with the current
//! version), every validation problem in a refusal, lint warnings on an
//! accepted write, shared `$evaluators`, history with diffs and filters,
//! earlier versions and rollback — on SQLite and on Redis (which rebuilds an
//! earlier version from the diffs), and a history table made before diffs.

use std::path::Path;

mod common;

use common::{Running, client, start};
use flagyard_conformance::redis_server::TestRedis;
use flagyard_server::{DeclaredCredential, Role, ServerConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADA: &str = "ada-token";
const BOB: &str = "bob-token";

fn banner(default: &str) -> Value {
    json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": default})
}

/// Two named admins (`ada`, `bob`) and a seed with `banner` (off).
fn configure(dir: &Path, config: &mut ServerConfig) {
    let seed = dir.join("seed.json");
    std::fs::write(
        &seed,
        json!({"flags": {"banner": banner("off")}}).to_string(),
    )
    .expect("seed");
    config.seed_file = Some(seed);
    config.credentials = vec![
        DeclaredCredential::admin_token("ada", ADA, Role::Admin),
        DeclaredCredential::admin_token("bob", BOB, Role::Editor),
    ];
}

/// A request with `token` and extra headers; the status, the headers and the
/// JSON body (`null` when none).
async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = client()
        .request(method.parse().expect("method"), format!("{base}{path}"))
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let (status, headers) = (response.status(), response.headers().clone());
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

fn etag(headers: &reqwest::header::HeaderMap) -> String {
    headers["etag"].to_str().expect("ascii").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_honour_if_match_and_refusals_name_every_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| configure(dir.path(), c)).await;
    let base = &server.base;

    // A flag reads with its own ETag and the document's version.
    let (status, headers, definition) =
        call(base, "GET", "/v1/admin/flags/banner", ADA, &[], None).await;
    assert_eq!((status, definition), (StatusCode::OK, banner("off")));
    let banner_v1 = etag(&headers);
    assert!(banner_v1.starts_with("\"f-"), "{banner_v1}");
    assert_eq!(headers["x-flagyard-version"], "1");
    let (status, _, missing) = call(base, "GET", "/v1/admin/flags/nope", ADA, &[], None).await;
    assert_eq!(status, 404, "{missing}");

    // The flag's ETag guards it; used again once it changed, it is stale.
    let (status, _, written) = call(
        base,
        "PUT",
        "/v1/admin/flags/banner",
        ADA,
        &[("if-match", &banner_v1)],
        Some(&banner("on")),
    )
    .await;
    assert_eq!(status, 200, "{written}");
    assert_eq!(written["warnings"], json!([]));
    let (status, _, stale) = call(
        base,
        "PUT",
        "/v1/admin/flags/banner",
        BOB,
        &[("if-match", &banner_v1)],
        Some(&banner("off")),
    )
    .await;
    assert_eq!(status, 412, "{stale}");
    assert_eq!(stale["version"], 2, "{stale}");
    assert!(
        stale["etag"]
            .as_str()
            .is_some_and(|e| e.starts_with("\"2-")),
        "{stale}"
    );
    let banner_v2 = stale["flagEtag"].as_str().expect("flagEtag").to_string();
    assert_ne!(banner_v2, banner_v1);
    assert!(
        stale["error"]
            .as_str()
            .is_some_and(|e| e.contains("version 2")),
        "{stale}"
    );

    // The document's ETag guards every flag; a version number does too.
    let document_v2 = stale["etag"].as_str().expect("etag").to_string();
    let (status, _, written) = call(
        base,
        "PUT",
        "/v1/admin/flags/other",
        BOB,
        &[("if-match", &document_v2)],
        Some(&banner("on")),
    )
    .await;
    assert_eq!(
        (status, written["version"].clone()),
        (StatusCode::OK, json!(3))
    );
    let (status, _, _) = call(
        base,
        "PUT",
        "/v1/admin/flags/other",
        BOB,
        &[("if-match", &document_v2)],
        Some(&banner("off")),
    )
    .await;
    assert_eq!(status, 412, "the document moved on to version 3");
    let (status, _, _) = call(
        base,
        "PUT",
        "/v1/admin/flags/other",
        BOB,
        &[("if-match", "3")],
        Some(&banner("off")),
    )
    .await;
    assert_eq!(status, 200, "version 3 is current");
    // A flag's ETag still holds while only other flags changed.
    let (status, _, written) = call(
        base,
        "DELETE",
        "/v1/admin/flags/other",
        ADA,
        &[("if-match", "\"f-0000000000000000\"")],
        None,
    )
    .await;
    assert_eq!(status, 412, "{written}");
    let (status, _, written) = call(
        base,
        "PUT",
        "/v1/admin/flags/banner",
        ADA,
        &[("if-match", &banner_v2)],
        Some(&banner("off")),
    )
    .await;
    assert_eq!(status, 200, "{written}");

    // Create only: If-None-Match: *.
    let create = [("if-none-match", "*")];
    let (status, _, exists) = call(
        base,
        "PUT",
        "/v1/admin/flags/banner",
        ADA,
        &create,
        Some(&banner("on")),
    )
    .await;
    assert_eq!(status, 412, "{exists}");
    assert!(
        exists["error"]
            .as_str()
            .is_some_and(|e| e.contains("already exists"))
    );
    let (status, _, _) = call(
        base,
        "PUT",
        "/v1/admin/flags/fresh",
        ADA,
        &create,
        Some(&banner("on")),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, refused) = call(
        base,
        "PUT",
        "/v1/admin/flags/fresh",
        ADA,
        &[("if-none-match", "\"abc\"")],
        Some(&banner("on")),
    )
    .await;
    assert_eq!(status, 400, "{refused}");

    // Every problem of a refused definition, each with flag, pointer, reason.
    let broken =
        json!({"state": "ON", "variants": {"on": true, "off": "no"}, "defaultVariant": "maybe"});
    let (status, _, refused) = call(
        base,
        "PUT",
        "/v1/admin/flags/broken",
        ADA,
        &[],
        Some(&broken),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let problems = refused["problems"].as_array().expect("problems");
    let pointers: Vec<&str> = problems
        .iter()
        .filter_map(|p| p["pointer"].as_str())
        .collect();
    assert_eq!(
        pointers,
        [
            "/flags/broken/state",
            "/flags/broken/variants/on",
            "/flags/broken/defaultVariant"
        ],
        "{refused}"
    );
    assert!(problems.len() >= 3, "{refused}");
    assert!(
        problems
            .iter()
            .all(|p| p["flag"] == "broken" && p["reason"].is_string()),
        "{refused}"
    );

    // Accepted with lint warnings: what flagd accepts, probably by mistake.
    let misspelt = json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                          "targetting": {"if": [true, "on", "off"]},
                          "targeting": {"fractional": [["on", 50], ["of", 50]]}});
    let (status, _, written) = call(
        base,
        "PUT",
        "/v1/admin/flags/misspelt",
        ADA,
        &[],
        Some(&misspelt),
    )
    .await;
    assert_eq!(status, 200, "{written}");
    let warnings: Vec<&str> = written["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w["pointer"].as_str())
        .collect();
    assert_eq!(
        warnings,
        [
            "/flags/misspelt/targetting",
            "/flags/misspelt/targeting/fractional/1/0"
        ],
        "{written}"
    );

    // Shared rules: create, use, refuse to delete while used, delete.
    let (status, _, _) = call(
        base,
        "PUT",
        "/v1/admin/evaluators/staff",
        ADA,
        &[],
        Some(&json!({"ends_with": [{"var": "email"}, "@example.com"]})),
    )
    .await;
    assert_eq!(status, 200);
    let uses = json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                      "targeting": {"if": [{"$ref": "staff"}, "on", "off"]}});
    let (status, _, _) = call(
        base,
        "PUT",
        "/v1/admin/flags/staff-only",
        ADA,
        &[],
        Some(&uses),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, refused) =
        call(base, "DELETE", "/v1/admin/evaluators/staff", ADA, &[], None).await;
    assert_eq!(status, 400, "a flag still refers to it: {refused}");
    assert!(refused["problems"][0]["flag"] == "staff-only", "{refused}");
    let (status, _, _) = call(base, "DELETE", "/v1/admin/flags/staff-only", ADA, &[], None).await;
    assert_eq!(status, 200);
    let (status, _, _) = call(base, "DELETE", "/v1/admin/evaluators/staff", ADA, &[], None).await;
    assert_eq!(status, 200);
    let (status, _, _) = call(base, "DELETE", "/v1/admin/evaluators/staff", ADA, &[], None).await;
    assert_eq!(status, 404);
    let (_, _, document) = call(base, "GET", "/v1/admin/document", ADA, &[], None).await;
    assert!(document.get("$evaluators").is_none(), "{document}");

    // A stale write to the whole document is refused as well.
    let (status, _, _) = call(
        base,
        "PUT",
        "/v1/admin/document",
        ADA,
        &[("if-match", &document_v2)],
        Some(&json!({"flags": {}})),
    )
    .await;
    assert_eq!(status, 412);
    server.stop().await;
}

/// History with diffs and filters, an earlier version, a rollback, on the
/// server `server` (started with [`configure`]).
async fn history_diffs_versions_and_rollback(server: &Running) {
    let base = &server.base;
    let (_, _, first) = call(base, "GET", "/v1/admin/document", ADA, &[], None).await;
    let (status, _, _) = call(
        base,
        "PUT",
        "/v1/admin/flags/banner",
        ADA,
        &[],
        Some(&banner("on")),
    )
    .await;
    assert_eq!(status, 200);
    let (_, _, written) = call(
        base,
        "PUT",
        "/v1/admin/flags/beta",
        BOB,
        &[],
        Some(&banner("off")),
    )
    .await;
    let before_rollback = written["version"].as_u64().expect("version");

    let (status, _, page) = call(base, "GET", "/v1/admin/history", ADA, &[], None).await;
    assert_eq!(status, 200, "{page}");
    let entries = page["history"].as_array().expect("history");
    let newest = &entries[0];
    assert_eq!(
        (&newest["actor"], &newest["action"], &newest["environment"]),
        (&json!("bob"), &json!("set-flag"), &json!("default"))
    );
    assert_eq!(
        newest["diff"],
        json!([{"flag": "beta", "before": null, "after": banner("off")}])
    );
    assert_eq!(
        entries[1]["diff"],
        json!([{"flag": "banner", "before": banner("off"), "after": banner("on")}])
    );

    // Filters: by flag, by actor.
    let (_, _, only_banner) =
        call(base, "GET", "/v1/admin/history?flag=banner", ADA, &[], None).await;
    let versions = |page: &Value| -> Vec<u64> {
        page["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter_map(|e| e["version"].as_u64())
            .collect()
    };
    assert!(
        !versions(&only_banner).contains(&before_rollback),
        "{only_banner}"
    );
    assert!(
        versions(&only_banner).contains(&(before_rollback - 1)),
        "{only_banner}"
    );
    let (_, _, by_bob) = call(base, "GET", "/v1/admin/history?actor=bob", ADA, &[], None).await;
    assert_eq!(versions(&by_bob), [before_rollback], "{by_bob}");

    // The document as version 1 had it; a version history does not hold.
    let (status, _, at_first) = call(base, "GET", "/v1/admin/versions/1", ADA, &[], None).await;
    assert_eq!((status, &at_first), (StatusCode::OK, &first));
    let (status, _, gone) = call(base, "GET", "/v1/admin/versions/999", ADA, &[], None).await;
    assert_eq!(status, 404, "{gone}");
    assert!(
        gone["error"].as_str().is_some_and(|e| e.contains("999")),
        "{gone}"
    );

    // Roll back to version 1: a new version, recorded as a rollback, and the
    // old value served again.
    let (status, _, stale) = call(
        base,
        "POST",
        "/v1/admin/rollback",
        ADA,
        &[("if-match", "1")],
        Some(&json!({"version": 1})),
    )
    .await;
    assert_eq!(status, 412, "{stale}");
    let (status, _, rolled) = call(
        base,
        "POST",
        "/v1/admin/rollback",
        ADA,
        &[],
        Some(&json!({"version": 1})),
    )
    .await;
    assert_eq!(status, 200, "{rolled}");
    assert_eq!(rolled["version"], before_rollback + 1);
    let served: Value = client()
        .get(format!("{base}/v1/flags"))
        .send()
        .await
        .expect("flags")
        .json()
        .await
        .expect("JSON");
    assert_eq!(served, first);
    let (_, _, page) = call(base, "GET", "/v1/admin/history?limit=1", ADA, &[], None).await;
    let top = &page["history"][0];
    assert_eq!(
        (&top["action"], &top["detail"]),
        (&json!("rollback"), &json!("to v1"))
    );
    assert_eq!(top["diff"].as_array().map(Vec::len), Some(2), "{top}");
    let (status, _, refused) = call(
        base,
        "POST",
        "/v1/admin/rollback",
        ADA,
        &[],
        Some(&json!({"version": 1, "extra": true})),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_has_diffs_earlier_versions_and_rollback_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| configure(dir.path(), c)).await;
    history_diffs_versions_and_rollback(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_has_diffs_earlier_versions_and_rollback_on_redis() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let url = redis.url();
    let server = start(&dir.path().join("db.sqlite"), |c| {
        configure(dir.path(), c);
        c.redis_url = Some(url.clone());
    })
    .await;
    history_diffs_versions_and_rollback(&server).await;
    server.stop().await;
}

/// The history table as the server wrote it before diffs were recorded.
const HISTORY_WITHOUT_DIFFS: &str = "
CREATE TABLE environments (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
CREATE TABLE env_documents (env TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE env_history (env TEXT NOT NULL, version INTEGER NOT NULL, at INTEGER NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (env, version));
INSERT INTO environments VALUES ('default', 1764600000000);
INSERT INTO env_documents VALUES ('default', 1, '{\"flags\":{}}', 1764600000000);
INSERT INTO env_history VALUES ('default', 1, 1764600000000, 'seed', 'seed', '', '{\"flags\":{}}');
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_written_before_diffs_reads_and_gains_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("old.sqlite");
    rusqlite::Connection::open(&db)
        .expect("open")
        .execute_batch(HISTORY_WITHOUT_DIFFS)
        .expect("old tables");
    let server = start(&db, |c| {
        c.credentials = vec![DeclaredCredential::admin_token("ada", ADA, Role::Admin)];
    })
    .await;
    let base = &server.base;
    let (status, _, _) = call(
        base,
        "PUT",
        "/v1/admin/flags/banner",
        ADA,
        &[],
        Some(&banner("on")),
    )
    .await;
    assert_eq!(status, 200);
    let (_, _, page) = call(base, "GET", "/v1/admin/history", ADA, &[], None).await;
    let entries = page["history"].as_array().expect("history");
    assert_eq!(entries.len(), 2, "{page}");
    assert_eq!(entries[0]["diff"][0]["flag"], "banner", "{page}");
    assert!(
        entries[1].get("diff").is_none(),
        "the old entry has none: {page}"
    );
    let (status, _, old) = call(base, "GET", "/v1/admin/versions/1", ADA, &[], None).await;
    assert_eq!((status, old), (StatusCode::OK, json!({"flags": {}})));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_evaluates_a_draft_as_ofrep_answers_and_names_its_problems() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| configure(dir.path(), c)).await;
    let base = &server.base;
    let draft = json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                       "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}});
    let (status, _, answer) = call(
        base,
        "POST",
        "/v1/admin/flags/draft/preview",
        BOB,
        &[],
        Some(&json!({"definition": draft, "context": {"targetingKey": "u1", "email": "ada@example.com"}})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"evaluation": {"key": "draft", "value": true, "reason": "TARGETING_MATCH", "variant": "on", "metadata": {}},
               "problems": [], "warnings": []})
    );
    // Nothing was written.
    let (status, _, _) = call(base, "GET", "/v1/admin/flags/draft", ADA, &[], None).await;
    assert_eq!(status, 404);
    // The served flag, without a draft.
    let (_, _, served) = call(
        base,
        "POST",
        "/v1/admin/flags/banner/preview",
        ADA,
        &[],
        Some(&json!({})),
    )
    .await;
    assert_eq!(served["evaluation"]["variant"], "off", "{served}");
    // A broken draft: its problems, and the evaluation's error.
    let (status, _, broken) = call(
        base,
        "POST",
        "/v1/admin/flags/draft/preview",
        ADA,
        &[],
        Some(&json!({"definition": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "gone"}})),
    )
    .await;
    assert_eq!(status, 200, "{broken}");
    assert_eq!(
        broken["problems"][0]["pointer"],
        "/flags/draft/defaultVariant"
    );
    assert_eq!(broken["evaluation"]["errorCode"], "PARSE_ERROR", "{broken}");
    // Refusals: an unknown member, a context that is not an object.
    for body in [json!({"definitoin": {}}), json!({"context": [1]})] {
        let (status, _, refused) = call(
            base,
            "POST",
            "/v1/admin/flags/banner/preview",
            ADA,
            &[],
            Some(&body),
        )
        .await;
        assert_eq!(status, 400, "{body}: {refused}");
        assert!(refused["error"].is_string(), "{refused}");
    }
    server.stop().await;
}
