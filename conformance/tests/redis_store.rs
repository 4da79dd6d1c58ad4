//! RedisDocuments and RedisStore against a real redis-server.

use flagyard::core::Store;
use flagyard_conformance::redis_server::TestRedis;
use flagyard_storage::{Change, RedisDocuments, RedisStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environments_keep_their_own_keys_versions_and_history() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let default = RedisDocuments::open(&redis.url(), "envs")
        .await
        .expect("connects");
    let staging = default.environment("staging".parse().expect("name"));
    assert!(staging.declare().await.expect("declare"), "new");
    assert!(!staging.declare().await.expect("declare"), "declared once");
    let put = |body: &str| Change::new(body, "sam", "put-document", "");
    assert_eq!(
        staging
            .replace(&put(r#"{"flags":{"s":1}}"#))
            .await
            .expect("write"),
        1
    );
    assert_eq!(
        staging
            .replace(&put(r#"{"flags":{"s":2}}"#))
            .await
            .expect("write"),
        2
    );
    assert_eq!(
        default
            .replace(&put(r#"{"flags":{"d":1}}"#))
            .await
            .expect("write"),
        1
    );
    let production = default.environment("production".parse().expect("name"));
    assert_eq!(production.current().await.expect("read"), None);

    // Another server's connection sees the same environments.
    let other = RedisDocuments::open(&redis.url(), "envs")
        .await
        .expect("connects");
    let names: Vec<String> = other
        .environments()
        .await
        .expect("list")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["default", "staging"]);
    let staging = other.environment("staging".parse().expect("name"));
    assert_eq!(
        staging.current().await.expect("read").expect("some").body,
        r#"{"flags":{"s":2}}"#
    );
    assert_eq!(staging.history(10).await.expect("history").len(), 2);
    assert_eq!(other.history(10).await.expect("history").len(), 1);
    // The default environment keeps the keys it had before environments.
    assert_eq!(other.changes_channel(), "envs:changes");
    assert_eq!(staging.changes_channel(), "envs:env:staging:changes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_move_forward_atomically_with_history() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let docs = RedisDocuments::open(&redis.url(), "t1")
        .await
        .expect("connects");
    assert!(docs.current().await.expect("query").is_none());
    assert_eq!(
        docs.replace(&Change::new(r#"{"flags":{}}"#, "seed", "seed", "file.json"))
            .await
            .expect("write"),
        1
    );
    assert_eq!(
        docs.replace(&Change::new(
            r#"{"flags":{"a":1}}"#,
            "ops \"quoted\"",
            "set-flag",
            "a"
        ))
        .await
        .expect("write"),
        2
    );
    assert_eq!(
        docs.replace_if(&Change::new("{}", "late", "put-document", ""), Some(1))
            .await
            .expect("checked"),
        0
    );
    assert!(
        !docs
            .put_version(r#"{"flags":{"old":1}}"#, 2)
            .await
            .expect("put"),
        "an equal version is not newer"
    );
    assert!(
        docs.put_version(r#"{"flags":{"new":1}}"#, 9)
            .await
            .expect("put")
    );
    let current = docs.current().await.expect("query").expect("doc");
    assert_eq!(
        (current.version, current.body.as_str()),
        (9, r#"{"flags":{"new":1}}"#)
    );
    let history = docs.history(10).await.expect("history");
    assert_eq!(history[0].actor, "ops \"quoted\"");
    assert_eq!((history[0].version, history[0].detail.as_str()), (2, "a"));
    assert_eq!(history[1].version, 1);
    // A limit of n gives n entries (the list holds entries only).
    let two = docs.history(2).await.expect("history");
    assert_eq!(two.iter().map(|h| h.version).collect::<Vec<_>>(), [2, 1]);

    // Concurrent writers: every version is distinct and the stored body is the
    // one written with the final version.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let docs = docs.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!(r#"{{"flags":{{}},"metadata":{{"writer":{i}}}}}"#);
            (
                docs.replace(&Change::new(&body, "w", "put-document", ""))
                    .await
                    .expect("write"),
                body,
            )
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    let mut versions: Vec<u64> = results.iter().map(|(v, _)| *v).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), 20);
    let last = results.iter().max_by_key(|(v, _)| *v).expect("some");
    let current = docs.current().await.expect("query").expect("doc");
    assert_eq!((current.version, &current.body), (last.0, &last.1));
}

#[test]
fn redis_store_round_trips_and_reports_a_dead_server() {
    let Some(mut redis) = TestRedis::start() else {
        return;
    };
    let store = RedisStore::new(&redis.url(), "cache").expect("client");
    assert!(store.load().expect("load").is_none());
    store.save(r#"{"flags":{}}"#).expect("save");
    assert_eq!(
        store.load().expect("load").as_deref(),
        Some(r#"{"flags":{}}"#)
    );
    redis.stop();
    let err = store.save(r#"{"flags":{}}"#).expect_err("server down");
    assert!(err.to_string().contains(&redis.url()), "{err}");
    redis.restart();
    assert_eq!(
        store.load().expect("data survived the restart").as_deref(),
        Some(r#"{"flags":{}}"#)
    );
}

/// RedisEvents: the count bound holds at ingest, the age bound at prune, and
/// forwarders' cursors are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_events_keep_their_retention_and_cursors() {
    use flagyard::core::event_json::WireEvent;
    use flagyard_storage::{EventQuery, RedisEvents, Retention};
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let event = |i: u64| WireEvent::Tracking {
        name: "purchase".into(),
        targeting_key: Some(format!("u{i}")),
        value: None,
        fields: Default::default(),
        at: i,
    };
    let retention = Retention {
        max_age_ms: 3_600_000,
        max_events: 100,
    };
    let events = RedisEvents::open(&redis.url(), "ev", retention)
        .await
        .expect("connects");
    for batch in 0..10 {
        let batch_events: Vec<WireEvent> = (0..50).map(|i| event(batch * 50 + i)).collect();
        let environment = if batch % 2 == 1 { "staging" } else { "default" };
        events
            .ingest(&format!("b{batch}"), environment, &batch_events)
            .await
            .expect("ingest");
    }
    // `MAXLEN ~` trims whole stream nodes: about the bound, never far below.
    let kept = events.count().await.expect("count");
    assert!((100..=250).contains(&kept), "{kept}");
    let newest = events.query(&EventQuery::default()).await.expect("query");
    assert_eq!(newest[0].event, event(499), "the newest are kept");
    assert_eq!(newest[0].environment, "staging", "with their environment");
    assert_eq!(newest[60].environment, "default", "{:?}", newest[60]);
    let default = events
        .query(&EventQuery {
            environment: Some("default".into()),
            limit: Some(1000),
            ..EventQuery::default()
        })
        .await
        .expect("query");
    assert!(
        !default.is_empty() && default.iter().all(|e| e.environment == "default"),
        "{default:?}"
    );
    let all = events
        .query(&EventQuery {
            limit: Some(1000),
            ..EventQuery::default()
        })
        .await
        .expect("query");
    assert_eq!(
        default.len(),
        all.iter().filter(|e| e.environment == "default").count(),
        "every one of default's, none of staging's"
    );
    assert!(default.len() < all.len(), "staging's are there too");
    // An entry written before environments were recorded (no `v` field)
    // reads as `default`'s.
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let old = serde_json::to_string(&event(500)).expect("json");
    let _: String = redis::cmd("XADD")
        .arg("ev:events")
        .arg("0-100000")
        .arg("r")
        .arg(1)
        .arg("e")
        .arg(old)
        .query_async(&mut conn)
        .await
        .expect("xadd");
    let newest = events.query(&EventQuery::default()).await.expect("query");
    assert_eq!(
        (newest[0].id, newest[0].environment.as_str()),
        (100_000, "default")
    );
    assert_eq!(events.prune().await.expect("prune"), 0, "all are young");
    // An age bound of zero lets nothing stay.
    let strict = RedisEvents::open(
        &redis.url(),
        "ev",
        Retention {
            max_age_ms: 0,
            max_events: 100,
        },
    )
    .await
    .expect("connects");
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(strict.prune().await.expect("prune"), kept + 1);
    assert_eq!(strict.count().await.expect("count"), 0);
    assert_eq!(events.cursor("jsonl:x").await.expect("cursor"), 0);
    events.set_cursor("jsonl:x", 42).await.expect("set");
    assert_eq!(events.cursor("jsonl:x").await.expect("cursor"), 42);
}
