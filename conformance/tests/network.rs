//! The conformance suite for the network sources (polling, SSE, WebSocket,
//! flagd's gRPC sync) against a real `flagyard-server` on loopback, each with
//! a memory, disk and SQLite store; bad payloads come from a rogue server on
//! the same port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::get;
use flagyard::core::{Source, Store};
use flagyard::{
    FlagyardProvider, GrpcSyncSource, MemoryStore, PollingSource, ReconnectPolicy, SqliteStore,
    SseSource, WebSocketSource,
};
use flagyard_conformance::suite::{ErrorLog, Harness, record_errors, run_all, test_disk_cache};
use flagyard_server::{Server, ServerConfig};
use flagyard_storage::{Change, SqliteDocuments};
use tokio::sync::oneshot;

const TOKEN: &str = "conformance-admin";
const CAP: usize = 64 * 1024;

#[derive(Clone, Copy, Debug)]
enum Wire {
    Poll,
    Sse,
    Ws,
    Grpc,
}

#[derive(Clone, Copy, Debug)]
enum StoreKind {
    Memory,
    Disk,
    Sqlite,
}

struct Running {
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.done).await;
    }
}

struct NetworkHarness {
    wire: Wire,
    store: StoreKind,
    dir: tempfile::TempDir,
    memory: MemoryStore,
    addr: Option<SocketAddr>,
    /// flagd's gRPC port (the gRPC wire only).
    grpc: Option<SocketAddr>,
    server: Option<Running>,
    rogue: bool,
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

impl NetworkHarness {
    fn new(wire: Wire, store: StoreKind) -> Self {
        let mut h = NetworkHarness {
            wire,
            store,
            dir: tempfile::tempdir().expect("temp dir"),
            memory: MemoryStore::new(),
            addr: None,
            grpc: None,
            server: None,
            rogue: false,
        };
        h.start_server();
        h
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("server.sqlite")
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr.expect("server started once"))
    }

    fn start_server(&mut self) {
        let mut config = ServerConfig::new(self.db());
        config.listen = self
            .addr
            .unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr"));
        config.admin_token = Some(TOKEN.into());
        config.heartbeat = Duration::from_millis(200);
        if matches!(self.wire, Wire::Grpc) {
            config.grpc_listen = Some(
                self.grpc
                    .unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr")),
            );
        }
        let server = block(Server::bind(config)).expect("server binds");
        self.addr = Some(server.local_addr());
        self.grpc = server.grpc_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            let _ = server
                .run(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        self.server = Some(Running { stop, done });
        self.rogue = false;
    }

    fn stop_server(&mut self) {
        if let Some(server) = self.server.take() {
            block(server.stop());
        }
    }

    /// Replaces the flag server with one that serves `payload` in the wire's shape.
    fn start_rogue(&mut self, payload: String) {
        self.stop_server();
        if matches!(self.wire, Wire::Grpc) {
            return self.start_rogue_grpc(payload);
        }
        let payload = Arc::new(payload);
        let (p1, p2, p3) = (Arc::clone(&payload), Arc::clone(&payload), payload);
        let app = Router::new()
            .route("/v1/flags", get(move || async move { (*p1).clone() }))
            .route(
                "/v1/stream",
                get(move || async move {
                    let body = format!(
                        "event: document\nid: 99\ndata: {}\n\n",
                        p2.replace('\n', " ")
                    );
                    ([("content-type", "text/event-stream")], body)
                }),
            )
            .route(
                "/v1/ws",
                get(move |ws: WebSocketUpgrade| async move {
                    ws.on_upgrade(move |mut socket| async move {
                        let _ = socket.send(Message::Text((*p3).clone().into())).await;
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    })
                    .into_response()
                }),
            );
        let addr = self.addr.expect("address");
        let listener =
            block(tokio::net::TcpListener::bind(addr)).expect("rogue binds the same port");
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        self.server = Some(Running { stop, done });
        self.rogue = true;
    }

    /// A flagd sync server that streams `payload` as the document.
    fn start_rogue_grpc(&mut self, payload: String) {
        let addr = self.grpc.expect("gRPC address");
        let listener =
            block(tokio::net::TcpListener::bind(addr)).expect("rogue binds the same port");
        let (stop, stopped) = oneshot::channel::<()>();
        let service =
            flagyard_flagd_proto::sync::flag_sync_service_server::FlagSyncServiceServer::new(
                RogueSync(Arc::new(payload)),
            );
        let done = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async move {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        self.server = Some(Running { stop, done });
        self.rogue = true;
    }

    fn source(&self) -> Box<dyn Source> {
        let policy = ReconnectPolicy::fast(Duration::from_millis(50));
        let base = self.base();
        match self.wire {
            Wire::Poll => Box::new(
                PollingSource::builder(format!("{base}/v1/flags"))
                    .interval(Duration::from_millis(100))
                    .reconnect(policy)
                    .max_payload(CAP)
                    .read_timeout(Duration::from_secs(2))
                    .build()
                    .expect("valid source"),
            ),
            Wire::Sse => Box::new(
                SseSource::builder(format!("{base}/v1/stream"))
                    .reconnect(policy)
                    .max_payload(CAP)
                    .read_timeout(Duration::from_secs(2))
                    .build()
                    .expect("valid source"),
            ),
            Wire::Ws => Box::new(
                WebSocketSource::builder(format!("{}/v1/ws", base.replace("http://", "ws://")))
                    .reconnect(policy)
                    .max_payload(CAP)
                    .read_timeout(Duration::from_secs(2))
                    .build()
                    .expect("valid source"),
            ),
            Wire::Grpc => Box::new(
                GrpcSyncSource::builder(format!("http://{}", self.grpc.expect("gRPC address")))
                    .reconnect(policy)
                    .max_payload(CAP)
                    .read_timeout(Duration::from_secs(2))
                    .build()
                    .expect("valid source"),
            ),
        }
    }
}

/// A flagd sync server whose every stream sends one payload.
struct RogueSync(Arc<String>);

#[tonic::async_trait]
impl flagyard_flagd_proto::sync::flag_sync_service_server::FlagSyncService for RogueSync {
    type SyncFlagsStream = std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<flagyard_flagd_proto::sync::SyncFlagsResponse, tonic::Status>,
                > + Send,
        >,
    >;

    async fn sync_flags(
        &self,
        _request: tonic::Request<flagyard_flagd_proto::sync::SyncFlagsRequest>,
    ) -> Result<tonic::Response<Self::SyncFlagsStream>, tonic::Status> {
        let first = flagyard_flagd_proto::sync::SyncFlagsResponse {
            flag_configuration: (*self.0).clone(),
            sync_context: None,
        };
        use futures_util::StreamExt;
        // The payload, then a second of silence and the end (as the
        // WebSocket rogue closes): stopping the rogue never waits long.
        let silence = futures_util::stream::once(tokio::time::sleep(Duration::from_secs(1)))
            .filter_map(|()| async { None });
        let stream = futures_util::stream::iter([Ok::<_, tonic::Status>(first)]).chain(silence);
        Ok(tonic::Response::new(Box::pin(stream)))
    }

    async fn fetch_all_flags(
        &self,
        _request: tonic::Request<flagyard_flagd_proto::sync::FetchAllFlagsRequest>,
    ) -> Result<tonic::Response<flagyard_flagd_proto::sync::FetchAllFlagsResponse>, tonic::Status>
    {
        Ok(tonic::Response::new(
            flagyard_flagd_proto::sync::FetchAllFlagsResponse {
                flag_configuration: (*self.0).clone(),
            },
        ))
    }

    async fn get_metadata(
        &self,
        _request: tonic::Request<flagyard_flagd_proto::sync::GetMetadataRequest>,
    ) -> Result<tonic::Response<flagyard_flagd_proto::sync::GetMetadataResponse>, tonic::Status>
    {
        Err(tonic::Status::unimplemented("rogue"))
    }
}

/// A boxed source is itself a source.
struct Boxed(Box<dyn Source>);

impl Source for Boxed {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn run(
        self: Box<Self>,
        updates: Arc<dyn flagyard::core::SourceUpdates>,
    ) -> flagyard::core::BoxFuture<()> {
        self.0.run(updates)
    }
}

impl Harness for NetworkHarness {
    fn name(&self) -> String {
        format!("{:?}+{:?}", self.wire, self.store).to_lowercase()
    }

    fn build(&mut self, errors: ErrorLog) -> FlagyardProvider {
        let store: Arc<dyn Store> = match self.store {
            StoreKind::Memory => Arc::new(self.memory.clone()),
            StoreKind::Disk => Arc::new(test_disk_cache(&self.dir.path().join("cache"))),
            StoreKind::Sqlite => Arc::new(
                SqliteStore::open(self.dir.path().join("cache.sqlite")).expect("sqlite cache"),
            ),
        };
        FlagyardProvider::builder()
            .source(Boxed(self.source()))
            .store(store)
            .on_error(record_errors(errors))
            .build()
            .expect("provider builds")
    }

    fn publish(&mut self, document: &str) {
        if self.rogue {
            self.stop_server();
            self.start_server();
        }
        if self.server.is_some() {
            let response = block(
                reqwest::Client::new()
                    .put(format!("{}/v1/admin/document", self.base()))
                    .bearer_auth(TOKEN)
                    .body(document.to_string())
                    .send(),
            )
            .expect("admin request");
            assert!(
                response.status().is_success(),
                "publish refused: {}",
                response.status()
            );
        } else {
            let db = SqliteDocuments::open(self.db()).expect("db");
            db.replace(&Change::new(document, "conformance", "put-document", ""))
                .expect("write while stopped");
        }
    }

    fn publish_bad(&mut self, payload: &str) {
        self.start_rogue(payload.to_string());
    }

    fn stop_source(&mut self) {
        self.stop_server();
    }

    fn restart_source(&mut self) {
        if self.server.is_none() {
            self.start_server();
        }
    }

    fn payload_cap(&self) -> Option<usize> {
        Some(CAP)
    }
}

impl Drop for NetworkHarness {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.stop.send(());
            server.done.abort();
        }
    }
}

async fn run(wire: Wire, store: StoreKind) {
    let (passed, failures) = run_all(|| Box::new(NetworkHarness::new(wire, store))).await;
    println!(
        "{wire:?}+{store:?}: {passed} passed, {} failed",
        failures.len()
    );
    assert!(passed > 0);
    assert!(failures.is_empty(), "{failures:#?}");
}

macro_rules! compositions {
    ($($name:ident: $wire:ident, $store:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run(Wire::$wire, StoreKind::$store).await;
        }
    )*};
}

compositions! {
    polling_memory: Poll, Memory;
    polling_disk: Poll, Disk;
    polling_sqlite: Poll, Sqlite;
    sse_memory: Sse, Memory;
    sse_disk: Sse, Disk;
    sse_sqlite: Sse, Sqlite;
    websocket_memory: Ws, Memory;
    websocket_disk: Ws, Disk;
    websocket_sqlite: Ws, Sqlite;
    grpc_memory: Grpc, Memory;
    grpc_disk: Grpc, Disk;
    grpc_sqlite: Grpc, Sqlite;
}
