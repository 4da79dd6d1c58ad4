//! The anchor of `flagd_throughput`: the least a server can do on each of the
//! two protocols, on their standard Rust stacks — plain tonic answering every
//! `flagd.evaluation.v1` `ResolveBoolean` with one constant message, plain
//! axum answering every OFREP evaluation with one constant body — served
//! from a process of its own as Flagyard is. Whatever flagd's client reaches
//! against it bounds what any server built on those stacks could give that
//! client. Included by the example with `#[path]`.

use std::io;
use std::pin::Pin;

use axum::Router;
use axum::routing::post;
use axum::serve::ListenerExt;
use flagyard_flagd_proto::evaluation as v1;
use futures_util::Stream;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

/// The answer to every call: what Flagyard answers for the example's flag.
#[derive(Clone, Copy)]
struct Constant;

/// OFREP's answer for the example's flag, as Flagyard writes it.
const OFREP_ANSWER: &str =
    r#"{"key":"banner","value":true,"reason":"TARGETING_MATCH","variant":"on","metadata":{}}"#;

fn unimplemented<T>() -> Result<T, Status> {
    Err(Status::unimplemented(
        "the anchor answers ResolveBoolean only",
    ))
}

#[tonic::async_trait]
impl v1::service_server::Service for Constant {
    type EventStreamStream =
        Pin<Box<dyn Stream<Item = Result<v1::EventStreamResponse, Status>> + Send>>;

    async fn resolve_boolean(
        &self,
        _request: Request<v1::ResolveBooleanRequest>,
    ) -> Result<Response<v1::ResolveBooleanResponse>, Status> {
        Ok(Response::new(v1::ResolveBooleanResponse {
            value: true,
            reason: "TARGETING_MATCH".into(),
            variant: "on".into(),
            metadata: None,
        }))
    }

    async fn resolve_all(
        &self,
        _: Request<v1::ResolveAllRequest>,
    ) -> Result<Response<v1::ResolveAllResponse>, Status> {
        unimplemented()
    }

    async fn resolve_string(
        &self,
        _: Request<v1::ResolveStringRequest>,
    ) -> Result<Response<v1::ResolveStringResponse>, Status> {
        unimplemented()
    }

    async fn resolve_float(
        &self,
        _: Request<v1::ResolveFloatRequest>,
    ) -> Result<Response<v1::ResolveFloatResponse>, Status> {
        unimplemented()
    }

    async fn resolve_int(
        &self,
        _: Request<v1::ResolveIntRequest>,
    ) -> Result<Response<v1::ResolveIntResponse>, Status> {
        unimplemented()
    }

    async fn resolve_object(
        &self,
        _: Request<v1::ResolveObjectRequest>,
    ) -> Result<Response<v1::ResolveObjectResponse>, Status> {
        unimplemented()
    }

    async fn event_stream(
        &self,
        _: Request<v1::EventStreamRequest>,
    ) -> Result<Response<Self::EventStreamStream>, Status> {
        unimplemented()
    }
}

/// Serves the anchor on two loopback ports (OFREP over HTTP, gRPC), prints
/// `listening HTTP_PORT GRPC_PORT`, and serves until killed.
pub(crate) async fn serve() {
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let http_port = http.local_addr().expect("addr").port();
    // As Flagyard's listeners: small answers leave at once.
    let http = http.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!(
        "listening {} {}",
        http_port,
        grpc.local_addr().expect("addr").port()
    );
    let ofrep = Router::new().route(
        "/ofrep/v1/evaluate/flags/{key}",
        post(|| async { ([("content-type", "application/json")], OFREP_ANSWER) }),
    );
    let incoming = futures_util::stream::unfold(grpc, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((accepted, listener))
    });
    let grpc = tonic::transport::Server::builder()
        .add_service(v1::service_server::ServiceServer::new(Constant))
        .serve_with_incoming(incoming);
    let (http, grpc) = tokio::join!(async { axum::serve(http, ofrep).await }, grpc);
    http.expect("the anchor's HTTP side serves");
    grpc.map_err(io::Error::other)
        .expect("the anchor's gRPC side serves");
}
