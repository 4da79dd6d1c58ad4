//! [`FileSource`]: a flag document in a local file, watched for changes.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flagyard_core::BoxFuture;
use flagyard_core::{ErrorOrigin, ProviderError, Source, SourceUpdates};
use notify::{RecursiveMode, Watcher};

/// Loads a flagd document from a file and follows it: edits in place, a rename
/// over it (how editors and `mv` replace files), and a delete followed by a
/// re-create. Changes are debounced and applied whole; a broken edit keeps the
/// last good document (the runtime reports it), and a missing file is reported
/// and waited for.
///
/// Needs the crate feature `file`.
///
/// The directory is watched with the platform's notifications (inotify, FSEvents,
/// ...); it is also re-read every `poll_interval` (default 5 s) in case a
/// notification is missed or watching is unavailable.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use flagyard::FileSource;
///
/// let source = FileSource::new("/etc/flagyard/flags.json").debounce(Duration::from_millis(50));
/// ```
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    debounce: Duration,
    poll_interval: Duration,
}

impl FileSource {
    /// Follows the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSource {
            path: path.into(),
            debounce: Duration::from_millis(100),
            poll_interval: Duration::from_secs(5),
        }
    }

    flagyard_core::setters! {
        /// How long to wait after a change for more changes (default 100 ms).
        debounce(debounce: Duration) => debounce = debounce;

        /// How often to re-read the file regardless of notifications (default 5 s).
        poll_interval(interval: Duration) => poll_interval = interval;
    }

    /// The file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What the last reads found, so unchanged content is not delivered again and a
/// missing file is reported once.
#[derive(Default)]
struct Seen {
    /// Hash of the last content delivered.
    delivered: Option<u64>,
    /// The error currently reported, if the file is unreadable.
    failed: Option<String>,
}

fn content_hash(text: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl FileSource {
    async fn read_once(&self, updates: &dyn SourceUpdates, seen: &mut Seen) {
        let text = match tokio::fs::read(&self.path).await {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    return self.fail(
                        updates,
                        seen,
                        format!("not UTF-8 at byte {}", e.utf8_error().valid_up_to()),
                    );
                }
            },
            Err(e) => return self.fail(updates, seen, e.to_string()),
        };
        let hash = content_hash(&text);
        let was_failed = seen.failed.take().is_some();
        if seen.delivered == Some(hash) {
            if was_failed {
                updates.recovered();
            }
            return;
        }
        seen.delivered = Some(hash);
        updates.document(text);
    }

    fn fail(&self, updates: &dyn SourceUpdates, seen: &mut Seen, why: String) {
        let message = format!("{}: {why}", self.path.display());
        if seen.failed.as_deref() != Some(message.as_str()) {
            updates.error(ProviderError::new(ErrorOrigin::Disk, true, message.clone()));
            seen.failed = Some(message);
        }
    }

    async fn follow(self, updates: Arc<dyn SourceUpdates>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let file_name = self.path.file_name().map(|n| n.to_os_string());
        let watch_dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let relevant = match &event {
                Ok(event) => event
                    .paths
                    .iter()
                    .any(|p| p.file_name().map(|n| n.to_os_string()) == file_name),
                Err(_) => true,
            };
            if relevant {
                let _ = tx.send(());
            }
        })
        .and_then(|mut w| w.watch(&watch_dir, RecursiveMode::NonRecursive).map(|()| w));
        let _watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot watch; polling only");
                None
            }
        };

        let mut seen = Seen::default();
        self.read_once(&*updates, &mut seen).await;
        let mut poll = tokio::time::interval(self.poll_interval);
        poll.tick().await;
        loop {
            tokio::select! {
                event = rx.recv() => {
                    if event.is_none() {
                        // The watcher is gone; keep polling.
                        poll.tick().await;
                    } else {
                        // Debounce: wait for the burst of events to end.
                        tokio::time::sleep(self.debounce).await;
                        while rx.try_recv().is_ok() {}
                    }
                }
                _ = poll.tick() => {}
            }
            self.read_once(&*updates, &mut seen).await;
        }
    }
}

impl Source for FileSource {
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
        Box::pin(self.follow(updates))
    }
}
