//! The conformance suite for FileSource + MemoryStore and FileSource + DiskStore.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flagyard::core::Store;
use flagyard::{FileSource, FlagyardProvider, MemoryStore};
use flagyard_conformance::suite::{ErrorLog, Harness, record_errors, run_all, test_disk_cache};

enum StoreKind {
    Memory(MemoryStore),
    Disk(PathBuf),
}

/// A flag file in a temporary directory; stopping the source moves the file away.
struct FileHarness {
    dir: tempfile::TempDir,
    store: StoreKind,
    stopped: bool,
}

impl FileHarness {
    fn new(disk: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = if disk {
            StoreKind::Disk(dir.path().join("cache"))
        } else {
            StoreKind::Memory(MemoryStore::new())
        };
        FileHarness {
            dir,
            store,
            stopped: false,
        }
    }

    fn flags(&self) -> PathBuf {
        self.dir.path().join("flags.json")
    }

    fn parked(&self) -> PathBuf {
        self.dir.path().join("parked.json")
    }

    /// Writes like an editor: a temporary file renamed over the flag file.
    fn write(&self, text: &str) {
        let target = if self.stopped {
            self.parked()
        } else {
            self.flags()
        };
        let tmp = self.dir.path().join(".flags.json.tmp");
        std::fs::write(&tmp, text).expect("write temp");
        std::fs::rename(&tmp, target).expect("rename over");
    }
}

impl Harness for FileHarness {
    fn name(&self) -> String {
        match self.store {
            StoreKind::Memory(_) => "file+memory".into(),
            StoreKind::Disk(_) => "file+disk".into(),
        }
    }

    fn build(&mut self, errors: ErrorLog) -> FlagyardProvider {
        let store: Arc<dyn Store> = match &self.store {
            StoreKind::Memory(m) => Arc::new(m.clone()),
            StoreKind::Disk(dir) => Arc::new(test_disk_cache(dir)),
        };
        FlagyardProvider::builder()
            .source(
                FileSource::new(self.flags())
                    .debounce(Duration::from_millis(20))
                    .poll_interval(Duration::from_millis(500)),
            )
            .store(store)
            .on_error(record_errors(errors))
            .build()
            .expect("provider builds")
    }

    fn publish(&mut self, document: &str) {
        self.write(document);
    }

    fn publish_bad(&mut self, payload: &str) {
        self.write(payload);
    }

    fn stop_source(&mut self) {
        if !self.stopped {
            if self.flags().exists() {
                std::fs::rename(self.flags(), self.parked()).expect("park the flag file");
            }
            self.stopped = true;
        }
    }

    fn restart_source(&mut self) {
        if self.stopped {
            if self.parked().exists() {
                std::fs::rename(self.parked(), self.flags()).expect("restore the flag file");
            }
            self.stopped = false;
        }
    }
}

async fn run(disk: bool) {
    let (passed, failures) = run_all(|| Box::new(FileHarness::new(disk))).await;
    println!("{passed} passed, {} failed", failures.len());
    assert!(passed > 0);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_source_with_memory_store() {
    run(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_source_with_disk_cache() {
    run(true).await;
}
