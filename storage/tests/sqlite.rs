//! SqliteDocuments and SqliteStore on real SQLite files.

use flagyard_core::{Store, StoreError};
use flagyard_storage::{Change, SqliteDocuments, SqliteStore};

#[test]
fn versions_history_and_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/server.sqlite");
    let db = SqliteDocuments::open(&path).expect("creates the file and its directory");
    assert!(db.current().expect("query").is_none());
    assert_eq!(
        db.replace(&Change::new(
            r#"{"flags": {}}"#,
            "seed",
            "seed",
            "flags.json"
        ))
        .expect("write"),
        1
    );
    assert_eq!(
        db.replace(&Change::new(
            r#"{"flags": {"a": 1}}"#,
            "ops",
            "set-flag",
            "a"
        ))
        .expect("write"),
        2
    );
    // A conditional write against a stale version changes nothing.
    assert_eq!(
        db.replace_if(&Change::new("{}", "late", "put-document", ""), Some(1))
            .expect("checked"),
        0
    );
    drop(db);

    let db = SqliteDocuments::open(&path).expect("reopen");
    let current = db.current().expect("query").expect("a document");
    assert_eq!(
        (current.version, current.body.as_str()),
        (2, r#"{"flags": {"a": 1}}"#)
    );
    let history = db.history(10).expect("history");
    let summary: Vec<(u64, &str, &str, &str)> = history
        .iter()
        .map(|h| {
            (
                h.version,
                h.actor.as_str(),
                h.action.as_str(),
                h.detail.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, "ops", "set-flag", "a"),
            (1, "seed", "seed", "flags.json")
        ]
    );
    assert!(history[0].at_ms >= history[1].at_ms);
}

#[test]
fn sqlite_store_round_trips_and_trims_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cache.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    assert!(store.load().expect("load").is_none());
    for i in 0..10 {
        store
            .save(&format!(r#"{{"flags": {{}}, "metadata": {{"n": {i}}}}}"#))
            .expect("save");
    }
    assert_eq!(
        store.load().expect("load").as_deref(),
        Some(r#"{"flags": {}, "metadata": {"n": 9}}"#)
    );
    let db = SqliteDocuments::open(&path).expect("same file");
    assert!(db.history(100).expect("history").len() <= 4);
    assert!(store.describe().contains("cache.sqlite"));
}

#[test]
fn a_file_that_is_not_a_database_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("garbage.sqlite");
    std::fs::write(
        &path,
        b"this is not a SQLite database, just text that is long enough to matter",
    )
    .expect("write");
    let err = SqliteStore::open(&path).expect_err("refused");
    assert!(
        matches!(
            err,
            StoreError::Corrupt { .. } | StoreError::Database { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("garbage.sqlite"), "{err}");
}

#[test]
fn history_is_bounded_and_the_file_stops_growing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.sqlite");
    let db = SqliteDocuments::open(&path).unwrap().with_history_keep(5);
    // 1.1 MB bodies: unbounded, 100 writes would hold 110 MB of history.
    let body = |i: usize| {
        format!(
            r#"{{"flags": {{}}, "pad": "{}{i}"}}"#,
            "x".repeat(1_100_000)
        )
    };
    for i in 0..40 {
        db.replace(&Change::new(body(i), "me", "put-document", ""))
            .unwrap();
    }
    let history = db.history(100).unwrap();
    assert_eq!(history.len(), 5, "only the newest 5 entries are kept");
    assert_eq!(
        history.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![40, 39, 38, 37, 36]
    );
    // Timestamps never go backwards along the versions.
    assert!(history.windows(2).all(|w| w[0].at_ms >= w[1].at_ms));
    let size_after_40 = std::fs::metadata(&path).unwrap().len()
        + std::fs::metadata(dir.path().join("flags.sqlite-wal")).map_or(0, |m| m.len());
    for i in 40..100 {
        db.replace(&Change::new(body(i), "me", "put-document", ""))
            .unwrap();
    }
    let size_after_100 = std::fs::metadata(&path).unwrap().len()
        + std::fs::metadata(dir.path().join("flags.sqlite-wal")).map_or(0, |m| m.len());
    assert!(
        size_after_100 < 30_000_000,
        "100 writes of 1.1 MB with 5 kept: {size_after_100} bytes (after 40: {size_after_40})"
    );
    assert_eq!(db.current().unwrap().unwrap().version, 100);
}

#[test]
fn environments_in_one_file_keep_their_own_versions_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.sqlite");
    let default = SqliteDocuments::open(&path).unwrap();
    let staging = default.environment("staging".parse().unwrap());
    let production = default.environment("production".parse().unwrap());
    assert!(staging.declare().unwrap(), "a new environment");
    assert!(!staging.declare().unwrap(), "declared once");
    assert_eq!(staging.current().unwrap(), None);

    let change = |body: &str, actor: &str| Change::new(body, actor, "put-document", "");
    assert_eq!(
        staging
            .replace(&change(r#"{"flags":{"a":1}}"#, "sam"))
            .unwrap(),
        1
    );
    assert_eq!(
        staging
            .replace(&change(r#"{"flags":{"a":2}}"#, "sam"))
            .unwrap(),
        2
    );
    assert_eq!(
        production
            .replace(&change(r#"{"flags":{"b":1}}"#, "pat"))
            .unwrap(),
        1
    );
    // A stale expected version is refused per environment.
    assert_eq!(
        production
            .replace_if(&change("{}", "pat"), Some(2))
            .unwrap(),
        0
    );

    drop((default, staging, production));
    let reopened = SqliteDocuments::open(&path).unwrap();
    let names: Vec<String> = reopened
        .environments()
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["production", "staging"]);
    assert_eq!(
        reopened.current().unwrap(),
        None,
        "default was never written"
    );
    let staging = reopened.environment("staging".parse().unwrap());
    let production = reopened.environment("production".parse().unwrap());
    assert_eq!(
        staging.current().unwrap().unwrap().body,
        r#"{"flags":{"a":2}}"#
    );
    assert_eq!(production.current().unwrap().unwrap().version, 1);
    let history: Vec<(u64, String)> = staging
        .history(10)
        .unwrap()
        .into_iter()
        .map(|h| (h.version, h.actor))
        .collect();
    assert_eq!(history, [(2, "sam".to_string()), (1, "sam".to_string())]);
    assert_eq!(production.history(10).unwrap().len(), 1);
}

/// The tables the server wrote before environments existed, exactly as that
/// code created them, with two versions in them.
const SINGLE_DOCUMENT_FILE: &str = "
CREATE TABLE document (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE history (
    version INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    detail  TEXT    NOT NULL,
    body    TEXT    NOT NULL
);
INSERT INTO document VALUES (1, 7, '{\"flags\":{\"x\":7}}', 1700000000700);
INSERT INTO history VALUES (6, 1700000000600, 'ada', 'set-flag', 'x', '{\"flags\":{\"x\":6}}');
INSERT INTO history VALUES (7, 1700000000700, 'bob', 'set-flag', 'x', '{\"flags\":{\"x\":7}}');
";

#[test]
fn a_single_document_file_becomes_the_default_environment_with_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(SINGLE_DOCUMENT_FILE)
        .unwrap();

    let db = SqliteDocuments::open(&path).unwrap();
    let current = db.current().unwrap().expect("migrated");
    assert_eq!(
        (current.version, current.body.as_str()),
        (7, r#"{"flags":{"x":7}}"#)
    );
    let history: Vec<(u64, String, u64)> = db
        .history(10)
        .unwrap()
        .into_iter()
        .map(|h| (h.version, h.actor, h.at_ms))
        .collect();
    assert_eq!(
        history,
        [
            (7, "bob".to_string(), 1_700_000_000_700),
            (6, "ada".to_string(), 1_700_000_000_600)
        ]
    );
    let names: Vec<String> = db
        .environments()
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["default"]);
    // Writing goes on from the migrated version, and the old tables are gone.
    assert_eq!(
        db.replace(&Change::new("{}", "cy", "put-document", ""))
            .unwrap(),
        8
    );
    drop(db);
    let tables: Vec<String> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "credentials",
            "env_documents",
            "env_history",
            "environments"
        ]
    );
    // Opening again migrates nothing twice.
    assert_eq!(
        SqliteDocuments::open(&path)
            .unwrap()
            .current()
            .unwrap()
            .unwrap()
            .version,
        8
    );
}

/// An events file written before events recorded their environment gains the
/// column when it opens: what it holds reads as `default`'s, and new events
/// keep the environment they were collected in.
#[test]
fn an_events_file_from_before_environments_reads_as_default() {
    use flagyard_core::event_json::WireEvent;
    use flagyard_storage::{EventQuery, SqliteEvents};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.sqlite");
    let purchase = |key: &str, at: u64| WireEvent::Tracking {
        name: "purchase".into(),
        targeting_key: Some(key.into()),
        value: None,
        fields: Default::default(),
        at,
    };
    {
        // The table as the collector created it before.
        let conn = rusqlite::Connection::open(&path).expect("file");
        conn.execute_batch(
            "CREATE TABLE events (
                 id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, at INTEGER NOT NULL,
                 kind TEXT NOT NULL, flag TEXT, name TEXT, targeting_key TEXT, variant TEXT,
                 body TEXT NOT NULL)",
        )
        .expect("old schema");
        let body = serde_json::to_string(&purchase("old", 1)).expect("json");
        conn.execute(
            "INSERT INTO events (received_at, at, kind, name, targeting_key, body)
             VALUES (1, 1, 'tracking', 'purchase', 'old', ?1)",
            [body],
        )
        .expect("old row");
    }
    let events = SqliteEvents::open(&path).expect("opens and migrates");
    events
        .ingest("b1", "staging", &[purchase("new", 2)])
        .expect("ingest");
    let kept = events.query(&EventQuery::default()).expect("query");
    let seen: Vec<(&str, &str)> = kept
        .iter()
        .map(|e| match &e.event {
            WireEvent::Tracking { targeting_key, .. } => (
                targeting_key.as_deref().expect("key"),
                e.environment.as_str(),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seen, [("new", "staging"), ("old", "default")]);
    let staging = events
        .query(&EventQuery {
            environment: Some("staging".into()),
            ..EventQuery::default()
        })
        .expect("query");
    assert_eq!(staging.len(), 1, "{staging:?}");
    assert_eq!(staging[0].environment, "staging");
    drop(events);
    SqliteEvents::open(&path).expect("opens again, the column already there");
}
