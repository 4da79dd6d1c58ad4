//! Cold start: from process start to the first correct read of a 10,000-flag
//! document served from a DiskStore or a SqliteStore (no source at all).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flagyard::core::Store;
use flagyard::{DiskStore, FlagyardProvider, SqliteStore};
use serde_json::{Value, json};

/// In the child process: build a provider on the cache, read a flag, say so.
pub fn child(args: &[String]) {
    let (kind, path) = (args[0].as_str(), Path::new(&args[1]));
    let provider = match kind {
        "disk" => FlagyardProvider::builder()
            .store(DiskStore::builder().directory(path).build())
            .offline(true)
            .build()
            .expect("provider builds"),
        _ => FlagyardProvider::builder()
            .store(SqliteStore::open(path.join("cache.sqlite")).expect("sqlite"))
            .offline(true)
            .build()
            .expect("provider builds"),
    };
    let ctx = flagyard::core::EvaluationContext::new().with_attribute("email", "a@example.com");
    let correct =
        provider.get_bool("email-rule", false, &ctx) && provider.get_bool("flag-9998", false, &());
    println!("{}", if correct { "ready" } else { "wrong" });
}

pub fn measure(dir: &Path) -> Vec<Value> {
    let document = super::docs::flagd(true).to_string();
    let disk = dir.join("disk-cache");
    let sqlite = dir.join("sqlite-cache");
    std::fs::create_dir_all(&sqlite).expect("dir");
    {
        let cache = DiskStore::builder().directory(&disk).build();
        cache.save(&document).expect("save");
        cache.flush().expect("flush");
        SqliteStore::open(sqlite.join("cache.sqlite"))
            .expect("sqlite")
            .save(&document)
            .expect("save");
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut out = Vec::new();
    for (kind, path) in [("disk", &disk), ("sqlite", &sqlite)] {
        let mut times: Vec<Duration> = (0..7)
            .map(|_| {
                let started = Instant::now();
                let mut child = Command::new(&exe)
                    .args(["cold-start-child", kind])
                    .arg(path)
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("child");
                let mut line = String::new();
                BufReader::new(child.stdout.take().expect("stdout"))
                    .read_line(&mut line)
                    .expect("read");
                let elapsed = started.elapsed();
                let _ = child.wait();
                assert_eq!(
                    line.trim(),
                    "ready",
                    "the cached document answered correctly"
                );
                elapsed
            })
            .collect();
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        out.push(json!({"store": kind, "flags": super::docs::LARGE + 3,
                        "median_ms": ms(times[3]), "min_ms": ms(times[0]), "max_ms": ms(times[6])}));
    }
    out
}
