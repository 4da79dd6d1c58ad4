//! Where the conformance data lives.
//!
//! The flagd-testbed copy is not part of the repository. Its location comes from
//! `FLAGYARD_CONFORMANCE_DATA`, defaulting to `../shared/conformance-data` beside
//! the workspace. Where it is absent, runs skip with a visible message — except
//! under `CI=true`, where its absence is a failure.

use std::path::PathBuf;

/// The environment variable naming the conformance-data directory.
pub const DATA_ENV: &str = "FLAGYARD_CONFORMANCE_DATA";

/// The conformance-data directory, or `None` (after printing why) when it is absent
/// outside CI.
///
/// # Panics
/// When the directory is absent and `CI=true`: CI must run the conformance cases.
pub fn data_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os(DATA_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/conformance-data"
        )),
    };
    if dir.join("flagd-eval-cases.jsonl").is_file() {
        return Some(dir);
    }
    let message = format!(
        "conformance data not found at {} (set {DATA_ENV} to the directory holding flagd-eval-cases.jsonl)",
        dir.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}; it is required when CI=true");
    }
    eprintln!("SKIPPED: {message}");
    None
}
