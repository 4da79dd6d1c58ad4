//! The benchmark examples' server process: this executable started again with
//! `--server-child` and its own arguments, killed when dropped, and read for
//! its memory and CPU time. Included by each example with `#[path]`.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A server process, killed when dropped.
pub(crate) struct ServerChild(std::process::Child);

impl ServerChild {
    /// Starts this executable with `--server-child` and `args`, and returns
    /// it with the first line it prints (where it listens).
    /// `FT_SERVER_WORKERS`, when set, is the child's tokio worker count (else
    /// tokio's default, whatever `TOKIO_WORKER_THREADS` says to this process).
    pub(crate) fn start(args: &[&std::ffi::OsStr]) -> (ServerChild, String) {
        let mut command = Command::new(std::env::current_exe().expect("exe"));
        command
            .arg("--server-child")
            .args(args)
            .stdout(Stdio::piped());
        // `TOKIO_WORKER_THREADS` set for the tool is the clients' count, not
        // the child's.
        match std::env::var("FT_SERVER_WORKERS") {
            Ok(workers) => command.env("TOKIO_WORKER_THREADS", workers),
            Err(_) => command.env_remove("TOKIO_WORKER_THREADS"),
        };
        let mut child = command.spawn().expect("server child starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("server child says where it listens");
        (ServerChild(child), line)
    }

    /// Resident memory, in KiB.
    #[allow(dead_code)] // Not every example reads it.
    pub(crate) fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// CPU time the server used so far (user + system).
    pub(crate) fn cpu(&self) -> Duration {
        cpu_of(&self.0.id().to_string())
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU time this process used so far (user + system).
#[allow(dead_code)] // Not every example reads it.
pub(crate) fn own_cpu() -> Duration {
    cpu_of("self")
}

/// CPU time (user + system) of `/proc/{pid}`.
fn cpu_of(pid: &str) -> Duration {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which is in parentheses).
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of stat (11 and 12 here).
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    // Linux reports clock ticks of 1/100 s.
    Duration::from_millis(ticks * 10)
}
