//! A flag server on loopback for the tests: started on a free port with the
//! admin token [`TOKEN`], stopped gracefully.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use flagyard_server::{Server, ServerConfig};
use tokio::sync::oneshot;

pub(crate) const TOKEN: &str = "admin-secret";

pub(crate) struct Running {
    pub(crate) base: String,
    /// `http://addr` of flagd's gRPC services, when `grpc_listen` was set.
    pub(crate) grpc: Option<String>,
    /// What it was started with, on the ports it got (for [`Running::restart`]).
    config: ServerConfig,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops the server and starts it again as it was, on the same ports
    /// over the same database: what clients see of a restart.
    pub(crate) async fn restart(self) -> Running {
        let config = self.config.clone();
        self.stop().await;
        run(config).await
    }

    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("server stops in time")
            .expect("server task")
            .expect("server ran");
    }
}

pub(crate) async fn start(db: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> Running {
    let mut config = ServerConfig::new(db);
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin_token = Some(TOKEN.into());
    config.heartbeat = Duration::from_millis(200);
    tweak(&mut config);
    run(config).await
}

async fn run(mut config: ServerConfig) -> Running {
    let server = Server::bind(config.clone()).await.expect("server binds");
    config.listen = server.local_addr();
    config.grpc_listen = server.grpc_addr();
    let base = format!("http://{}", server.local_addr());
    let grpc = server.grpc_addr().map(|a| format!("http://{a}"));
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running {
        base,
        grpc,
        config,
        stop: Some(stop),
        done,
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// The Python interpreter of the test venv (`FLAGYARD_TEST_PYTHON`, which
/// `scripts/test.sh` sets after installing `peers` into it), or `None`: the
/// test skips with a message, except under `CI=true` where it fails.
pub(crate) fn python(peers: &str) -> Option<String> {
    match std::env::var("FLAGYARD_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "FLAGYARD_TEST_PYTHON is not set; scripts/test.sh installs {peers} and sets it"
            );
            eprintln!(
                "SKIPPED: FLAGYARD_TEST_PYTHON not set (run scripts/test.sh to install {peers})"
            );
            None
        }
    }
}
