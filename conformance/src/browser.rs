//! Headless Chromium for the browser tests: whether it can run here (the
//! test venv's Python with Selenium, Debian's chromium and chromedriver),
//! and running a script of `conformance/browser/` style that prints one JSON
//! line per step. Where something is missing a test skips with a visible
//! message, except under `CI=true`, where that is a failure (`scripts/test.sh`
//! installs it all).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn on_path(names: &[&str]) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| names.iter().any(|n| dir.join(n).is_file()))
}

/// The Python that drives Chromium (`FLAGYARD_TEST_PYTHON`), when the browser
/// tests can run here; `None` after saying why (a panic under `CI=true`).
pub fn python() -> Option<String> {
    let python = std::env::var("FLAGYARD_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty());
    let missing = if python.is_none() {
        "FLAGYARD_TEST_PYTHON is not set (Selenium)"
    } else if !on_path(&["chromium", "chromium-browser"]) || !on_path(&["chromedriver"]) {
        "chromium or chromedriver not found"
    } else {
        return python;
    };
    skip(missing);
    None
}

/// Skips a test for `why`, visibly; under `CI=true` fails it instead.
pub fn skip(why: &str) {
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{why}; it is required when CI=true (scripts/test.sh installs it)"
    );
    eprintln!("SKIPPED: {why} (run scripts/test.sh)");
}

/// Runs `script` with `args` under `python`; its steps (one JSON object per
/// stdout line), or a panic with both outputs when it fails.
pub fn steps(python: &str, script: &Path, args: &[&str]) -> Vec<Value> {
    let output = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} does not run: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} failed\nstdout: {stdout}\nstderr: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("step {l:?}: {e}")))
        .collect()
}

/// The step named `name` of `steps`.
pub fn step<'a>(steps: &'a [Value], name: &str) -> &'a Value {
    steps
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name:?} in {steps:?}"))
}
