//! The conformance suite for RedisSource (with memory and disk stores) against
//! a real redis-server, plus Redis scenarios.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use flagyard::core::{ProviderError, Store};
use flagyard::{
    DiskCache, FlagyardProvider, MemoryStore, ProviderStatus, ReconnectPolicy, RedisSource,
};
use flagyard_conformance::redis_server::TestRedis;
use flagyard_conformance::suite::{ErrorLog, Harness, document, run_all};
use flagyard_storage::RedisDocuments;

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
        block(self.docs().replace(body, "conformance", "put-document", "")).expect("write");
    }
}

fn source(url: &str) -> RedisSource {
    RedisSource::new(url, "flags")
        .check_every(Duration::from_millis(200))
        .reconnect(ReconnectPolicy::fast(Duration::from_millis(50)))
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
        let store: Arc<dyn Store> = if self.disk {
            Arc::new(
                DiskCache::builder()
                    .directory(self.dir.path())
                    .coalesce(Duration::from_millis(50))
                    .build(),
            )
        } else {
            Arc::new(self.memory.clone())
        };
        FlagyardProvider::builder()
            .source(source(&self.redis.url()))
            .store_arc(store)
            .on_error(move |e| {
                errors
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(e.clone())
            })
            .build()
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
    docs.replace(&document(&[("a", false)]), "t", "put-document", "")
        .await
        .expect("write");
    let errors: Arc<Mutex<Vec<ProviderError>>> = Arc::default();
    let log = Arc::clone(&errors);
    let provider = FlagyardProvider::builder()
        .source(source(&redis.url()))
        .on_error(move |e| log.lock().unwrap().push(e.clone()))
        .build();
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
    docs.replace(&document(&[("a", true)]), "t", "put-document", "")
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
        docs.replace(&document(&[("a", i % 2 == 0)]), "t", "put-document", "")
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
