//! The conformance suite for RedisSource (with memory and disk stores) against
//! a real redis-server, plus Redis scenarios.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flagyard::core::ProviderError;
use flagyard::{FlagyardProvider, MemoryStore, ProviderStatus, ReconnectPolicy, RedisSource};
use flagyard_conformance::redis_server::TestRedis;
use flagyard_conformance::suite::{
    ErrorLog, Harness, document, memory_or_disk, record_errors, run_all,
};
use flagyard_storage::{Change, RedisDocuments};

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

struct RedisHarness {
    redis: TestRedis,
    disk: bool,
    memory: MemoryStore,
    dir: tempfile::TempDir,
    pending: Option<String>,
    stopped: bool,
}

impl RedisHarness {
    fn docs(&self) -> RedisDocuments {
        block(RedisDocuments::open(&self.redis.url(), "flags")).expect("redis connects")
    }

    fn write(&self, body: &str) {
        block(
            self.docs()
                .replace(&Change::new(body, "conformance", "put-document", "")),
        )
        .expect("write");
    }
}

fn source(url: &str) -> RedisSource {
    RedisSource::builder(url, "flags")
        .check_every(Duration::from_millis(200))
        .reconnect(ReconnectPolicy::fast(Duration::from_millis(50)))
        .build()
        .expect("valid source")
}

impl Harness for RedisHarness {
    fn name(&self) -> String {
        if self.disk {
            "redis+disk".into()
        } else {
            "redis+memory".into()
        }
    }

    fn build(&mut self, errors: ErrorLog) -> FlagyardProvider {
        let store = memory_or_disk(self.disk, &self.memory, self.dir.path());
        FlagyardProvider::builder()
            .source(source(&self.redis.url()))
            .store(store)
            .on_error(record_errors(errors))
            .build()
            .expect("provider builds")
    }

    fn publish(&mut self, document: &str) {
        if self.stopped {
            self.pending = Some(document.to_string());
        } else {
            self.write(document);
        }
    }

    fn publish_bad(&mut self, payload: &str) {
        self.write(payload);
    }

    fn stop_source(&mut self) {
        self.redis.stop();
        self.stopped = true;
    }

    fn restart_source(&mut self) {
        if self.stopped {
            self.redis.restart();
            self.stopped = false;
            if let Some(doc) = self.pending.take() {
                self.write(&doc);
            }
        }
    }
}

async fn run(disk: bool) {
    if TestRedis::start().is_none() {
        return;
    }
    let (passed, failures) = run_all(|| {
        Box::new(RedisHarness {
            redis: TestRedis::start().expect("redis-server"),
            disk,
            memory: MemoryStore::new(),
            dir: tempfile::tempdir().expect("temp dir"),
            pending: None,
            stopped: false,
        })
    })
    .await;
    println!("{passed} passed, {} failed", failures.len());
    assert!(passed > 0);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_source_with_memory_store() {
    run(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_source_with_disk_cache() {
    run(true).await;
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_during_updates_loses_nothing_and_recovers() {
    let Some(mut redis) = TestRedis::start() else {
        return;
    };
    let docs = RedisDocuments::open(&redis.url(), "flags")
        .await
        .expect("connects");
    docs.replace(&Change::new(
        document(&[("a", false)]),
        "t",
        "put-document",
        "",
    ))
    .await
    .expect("write");
    let errors: Arc<Mutex<Vec<ProviderError>>> = Arc::default();
    let log = Arc::clone(&errors);
    let provider = FlagyardProvider::builder()
        .source(source(&redis.url()))
        .on_error(move |e| log.lock().unwrap().push(e.clone()))
        .build()
        .expect("provider builds");
    assert!(
        provider
            .wait_until_ready(Duration::from_secs(10))
            .await
            .success
    );
    assert_eq!(provider.document_version(), Some(1));

    // Kill Redis mid-stream: Stale, values kept.
    redis.stop();
    until("stale", || provider.status() == ProviderStatus::Stale).await;
    assert!(!provider.get_bool("a", true, &()));

    // Back, with a change made before the provider reconnected: picked up.
    redis.restart();
    let docs = RedisDocuments::open(&redis.url(), "flags")
        .await
        .expect("reconnects");
    assert_eq!(
        docs.version().await.expect("version"),
        1,
        "the data survived the restart"
    );
    docs.replace(&Change::new(
        document(&[("a", true)]),
        "t",
        "put-document",
        "",
    ))
    .await
    .expect("write");
    until("the change made while disconnected", || {
        provider.get_bool("a", false, &())
    })
    .await;
    assert_eq!(provider.status(), ProviderStatus::Ready);
    assert_eq!(provider.document_version(), Some(2));

    // A burst of updates: the provider ends on the last one.
    for i in 0..20 {
        docs.replace(&Change::new(
            document(&[("a", i % 2 == 0)]),
            "t",
            "put-document",
            "",
        ))
        .await
        .expect("write");
    }
    until("the last of the burst", || {
        provider.document_version() == Some(22)
    })
    .await;
    assert!(!provider.get_bool("a", true, &()));
    provider.close();
}

/// A flag server on a shared Redis, on a free port.
async fn redis_server(url: &str) -> (String, tokio::sync::oneshot::Sender<()>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = flagyard_server::ServerConfig::new(dir.path().join("unused.sqlite"));
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.redis_url = Some(url.to_string());
    config.admin_token = Some("t".into());
    config.heartbeat = Duration::from_millis(200);
    let server = flagyard_server::Server::bind(config)
        .await
        .expect("server on redis");
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    (base, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_redis_fan_changes_out_to_each_others_clients() {
    let Some(mut redis) = TestRedis::start() else {
        return;
    };
    let (a, stop_a) = redis_server(&redis.url()).await;
    let (b, stop_b) = redis_server(&redis.url()).await;
    let policy = ReconnectPolicy::fast(Duration::from_millis(50));
    let on_a = FlagyardProvider::builder()
        .source(
            flagyard::SseSource::builder(format!("{a}/v1/stream"))
                .reconnect(policy.clone())
                .build()
                .expect("valid source"),
        )
        .build()
        .expect("provider builds");
    let on_b = FlagyardProvider::builder()
        .source(
            flagyard::SseSource::builder(format!("{b}/v1/stream"))
                .reconnect(policy)
                .build()
                .expect("valid source"),
        )
        .build()
        .expect("provider builds");
    assert!(on_a.wait_until_ready(Duration::from_secs(10)).await.success);
    assert!(on_b.wait_until_ready(Duration::from_secs(10)).await.success);

    let put = |base: String, on: bool| async move {
        let response = reqwest::Client::new()
            .put(format!("{base}/v1/admin/flags/shared"))
            .bearer_auth("t")
            .json(&serde_json::json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": if on { "on" } else { "off" }}))
            .send()
            .await
            .expect("admin write");
        assert!(response.status().is_success(), "{}", response.status());
    };
    put(a.clone(), true).await;
    until("server B's client sees A's change", || {
        on_b.get_bool("shared", false, &())
    })
    .await;
    until("server A's client too", || {
        on_a.get_bool("shared", false, &())
    })
    .await;
    put(b.clone(), false).await;
    until("A's client sees B's change", || {
        !on_a.get_bool("shared", true, &())
    })
    .await;
    // B's own client may see it a moment later than A's.
    until("B's client sees its own server's change", || {
        !on_b.get_bool("shared", true, &())
    })
    .await;
    assert_eq!(on_a.document_version(), on_b.document_version());

    // Redis restarts: both servers reconnect; a later change still reaches both.
    redis.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = reqwest::Client::new()
            .put(format!("{a}/v1/admin/flags/after-restart"))
            .bearer_auth("t")
            .json(&serde_json::json!({"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}))
            .send()
            .await
            .expect("admin write");
        if response.status().is_success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server A never wrote to the restarted Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until("B's client sees the change after the restart", || {
        on_b.get_bool("after-restart", false, &())
    })
    .await;
    assert!(on_b.get_bool("after-restart", false, &()));
    assert_eq!(on_b.status(), ProviderStatus::Ready);
    on_a.close();
    on_b.close();
    let _ = stop_a.send(());
    let _ = stop_b.send(());
}
