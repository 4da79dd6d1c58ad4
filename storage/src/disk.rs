//! The disk cache: one file, written atomically, writes coalesced.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flagyard_core::{Store, StoreError};

/// Default coalescing delay: several updates within it cost one write.
pub const DEFAULT_COALESCE: Duration = Duration::from_millis(2500);

/// Keeps the last good document in a file so a provider can start without its
/// source (offline, or before the network answers).
///
/// Needs the crate feature `disk`.
///
/// - Default location: `$XDG_DATA_HOME/flagyard/cache/flags.json`
///   (`~/.local/share/flagyard/cache/flags.json`).
/// - Writes are atomic: a temporary file in the same directory, `fsync`, rename.
/// - Writes are coalesced (default 2.5 s) on a background thread; `flush()` (the
///   provider's `close()`) writes what is pending at once.
/// - An unreadable file (or one that is not UTF-8) is an error from `load()`; a
///   file that is not a valid flag document is found when the provider compiles
///   it. Either way the provider reports it (`Disk`) and goes on: never fatal.
///
/// # Example
/// ```
/// use flagyard_core::Store;
/// use flagyard_storage::DiskStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let cache = DiskStore::builder().directory(dir.path()).build();
/// cache.save(r#"{"flags": {}}"#).unwrap();
/// cache.flush().unwrap();
/// assert_eq!(cache.load().unwrap().as_deref(), Some(r#"{"flags": {}}"#));
/// ```
#[derive(Debug)]
pub struct DiskStore {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct State {
    /// The newest document not yet written, and when it arrived.
    pending: Option<(String, Instant)>,
    /// The error of the last background write, reported by the next call.
    failed: Option<StoreError>,
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    /// The cache file: chosen by the builder, or derived from the sources it
    /// caches (`cache_for`), else `flags.json` in the directory.
    path: OnceLock<PathBuf>,
    directory: PathBuf,
    coalesce: Duration,
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn path(&self) -> &Path {
        self.path.get_or_init(|| self.directory.join("flags.json"))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Builds a [`DiskStore`].
#[derive(Debug, Clone, Default)]
pub struct DiskStoreBuilder {
    directory: Option<PathBuf>,
    file_name: Option<String>,
    coalesce: Option<Duration>,
}

impl DiskStoreBuilder {
    flagyard_core::setters! {
        /// The directory (default `$XDG_DATA_HOME/flagyard/cache`).
        directory(directory: impl Into<PathBuf>) => directory = Some(directory.into());

        /// The file name inside the directory (default `flags.json`); use one per
        /// flag set when several providers share a directory.
        file_name(name: impl Into<String>) => file_name = Some(name.into());

        /// How long to wait for more updates before writing (default 2.5 s).
        coalesce(delay: Duration) => coalesce = Some(delay);
    }

    /// Builds the cache and starts its writer thread. Nothing is read or created
    /// on disk until `load` or the first write.
    pub fn build(self) -> DiskStore {
        let directory = self.directory.unwrap_or_else(default_directory);
        let path = OnceLock::new();
        if let Some(name) = self.file_name {
            let _ = path.set(directory.join(name));
        }
        let shared = Arc::new(Shared {
            path,
            directory,
            coalesce: self.coalesce.unwrap_or(DEFAULT_COALESCE),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("flagyard-disk-cache".into())
            .spawn(move || write_loop(&worker))
            .map_err(|e| tracing::error!(error = %e, "cannot start the disk cache writer; writes happen on flush"))
            .ok();
        DiskStore {
            shared,
            writer: Mutex::new(writer),
        }
    }
}

/// `$XDG_DATA_HOME/flagyard/cache` (see [`data_directory`](crate::data_directory)).
pub fn default_directory() -> PathBuf {
    crate::data_directory().join("cache")
}

impl DiskStore {
    /// A builder with the defaults.
    pub fn builder() -> DiskStoreBuilder {
        DiskStoreBuilder::default()
    }

    /// A cache at the default location.
    pub fn new() -> DiskStore {
        Self::builder().build()
    }

    /// The cache file: the builder's file name, or `flags-<hash of the
    /// sources>.json` once a provider said what it caches, else `flags.json`.
    pub fn path(&self) -> &Path {
        self.shared.path()
    }
}

impl Default for DiskStore {
    fn default() -> Self {
        Self::new()
    }
}

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `document` to `path` atomically: temporary file, fsync, rename, fsync dir.
fn write_atomically(path: &Path, document: &str) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let file_name = path
        .file_name()
        .map_or_else(|| "flags.json".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
        file.write_all(document.as_bytes())
            .map_err(|e| io_error(&tmp, e))?;
        file.sync_all().map_err(|e| io_error(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| io_error(path, e))?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_loop(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        if state.stop {
            return;
        }
        match &state.pending {
            None => {
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            Some((_, since)) => {
                let due = *since + shared.coalesce;
                let now = Instant::now();
                if now < due {
                    state = shared
                        .wake
                        .wait_timeout(state, due - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    continue;
                }
                let Some((document, _)) = state.pending.take() else {
                    continue;
                };
                drop(state);
                let result = write_atomically(shared.path(), &document);
                state = shared.lock();
                if let Err(e) = result {
                    tracing::warn!(error = %e, "disk cache write failed");
                    state.failed = Some(e);
                }
            }
        }
    }
}

impl Store for DiskStore {
    fn describe(&self) -> String {
        format!("disk:{}", self.path().display())
    }

    fn cache_for(&self, sources: &str) {
        // Ignored when the builder named the file or it is already in use.
        let name = format!(
            "flags-{:08x}.json",
            flagyard_core::murmur3::hash(sources.as_bytes(), 0)
        );
        let _ = self.shared.path.set(self.shared.directory.join(name));
    }

    fn load(&self) -> Result<Option<String>, StoreError> {
        let path = self.path();
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(path, e)),
        };
        let text = String::from_utf8(bytes).map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("not UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        })?;
        Ok(Some(text))
    }

    fn save(&self, document: &str) -> Result<(), StoreError> {
        let mut state = self.shared.lock();
        state.pending = Some((document.to_string(), Instant::now()));
        let failed = state.failed.take();
        drop(state);
        self.shared.wake.notify_one();
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        let mut state = self.shared.lock();
        let pending = state.pending.take();
        let failed = state.failed.take();
        drop(state);
        if let Some((document, _)) = pending {
            write_atomically(self.path(), &document)?;
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "disk cache flush on drop failed");
        }
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(writer) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = writer.join();
        }
    }
}
