//! Helpers shared by the process-level tests.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A child process killed when the test ends, pass or fail.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `command` (stdout piped, stderr dropped) and hands each line it
/// prints that is JSON to the channel, until it ends or is killed.
pub(crate) fn json_lines(
    mut command: Command,
) -> (Killed, std::sync::mpsc::Receiver<serde_json::Value>) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str(&line) {
                let _ = tx.send(value);
            }
        }
    });
    (Killed(child), rx)
}

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_flagyard")
}

/// Starts `flagyard serve` on a free port; returns the process and its base URL.
pub(crate) fn serve(db: &Path, extra: &[&str]) -> (Child, String) {
    serve_at("127.0.0.1:0", db, extra)
}

/// Starts `flagyard serve` listening on `listen`.
pub(crate) fn serve_at(listen: &str, db: &Path, extra: &[&str]) -> (Child, String) {
    let mut command = Command::new(bin());
    command
        .args(["serve", "--listen", listen, "--db"])
        .arg(db)
        .args(extra);
    announced(command)
}

/// Starts `flagyard serve` with at most `files` open file descriptors
/// (`ulimit -n`, through bash).
pub(crate) fn serve_with_fd_limit(db: &Path, files: u32, extra: &[&str]) -> (Child, String) {
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!(
            "ulimit -n {files} && exec \"$0\" serve --listen 127.0.0.1:0 --db \"$@\""
        ))
        .arg(bin())
        .arg(db)
        .args(extra);
    announced(command)
}

/// Runs a server command and waits for its announcement line.
fn announced(mut command: Command) -> (Child, String) {
    let mut child = command
        .env("FLAGYARD_ADMIN_TOKEN", "tok")
        .env_remove("FLAGYARD_SDK_KEY")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("flagyard serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server announces itself")
            .expect("utf-8 line");
        if let Some(rest) = line.strip_prefix("flagyard: serving ") {
            break rest.split_whitespace().next().expect("url").to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if std::env::var_os("FLAGYARD_TEST_SERVER_LOG").is_some() {
                eprintln!("server: {line}");
            }
        }
    });
    (child, base)
}
