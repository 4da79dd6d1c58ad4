//! A real `redis-server` for tests: started on a free loopback port with its own
//! data directory, stopped (and restartable with its data) on demand.
//!
//! Where `redis-server` is not installed, [`TestRedis::start`] returns `None`
//! after printing why, except under `CI=true`, where it panics: CI must run the
//! Redis tests (`scripts/test.sh` installs `redis-server`).
//!
//! This is test support: a server that cannot be started (no free port, no
//! temporary directory, no answer to PING within 10 s) panics with the reason,
//! failing the test that asked for it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) test Redis.
#[derive(Debug)]
pub struct TestRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    binary: PathBuf,
}

fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FLAGYARD_REDIS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .chain([
            PathBuf::from("/usr/bin/redis-server"),
            PathBuf::from("/usr/local/bin/redis-server"),
        ])
        .find(|p| p.is_file())
}

impl TestRedis {
    /// Starts `redis-server` on a free port, or `None` when it is not installed
    /// (outside CI).
    pub fn start() -> Option<TestRedis> {
        let Some(binary) = find_binary() else {
            let message = "redis-server not found (install Debian's redis-server, or set FLAGYARD_REDIS_SERVER)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{message}; it is required when CI=true");
            }
            eprintln!("SKIPPED: {message}");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut redis = TestRedis {
            port,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            binary,
        };
        redis.restart();
        Some(redis)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (its data stays on disk: append-only file, fsync always).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(&self.binary)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "yes",
            ])
            .args(["--appendfsync", "always", "--protected-mode", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server answers PING.
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
