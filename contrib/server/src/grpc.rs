//! flagd's gRPC protocols on a port of their own (`--grpc-listen`), so that
//! flagd providers in every language connect unchanged: `FlagSyncService`
//! (what in-process providers follow: the whole document on connect and on
//! every change) and the evaluation `Service`, `flagd.evaluation.v1` and
//! `v2` (what RPC providers call: Go, Java and Rust use v1, Python and JS v2).
//!
//! The environment is chosen as for the HTTP reads, by the SDK key
//! (`authorization: Bearer <key>` or `x-api-key`), or by the selector
//! (`Flagd-Selector` header, or the deprecated `selector` field): a selector
//! that is an SDK key reads that key's environment — the one setting every
//! flagd provider has — and one naming an environment reads it when reads are
//! open (no SDK key exists) or when the presented key belongs to it.

use std::pin::Pin;
use std::sync::Arc;

use flagyard_core::{ErrorCode, Evaluation, EvaluationContext, FlagValue};
use flagyard_flagd_proto::convert;
use flagyard_flagd_proto::evaluation as v1;
use flagyard_flagd_proto::evaluation_v2 as v2;
use flagyard_flagd_proto::sync::flag_sync_service_server::{
    FlagSyncService, FlagSyncServiceServer,
};
use flagyard_flagd_proto::sync::{
    FetchAllFlagsRequest, FetchAllFlagsResponse, GetMetadataRequest, GetMetadataResponse,
    SyncFlagsRequest, SyncFlagsResponse,
};
use futures_util::Stream;
use serde_json::{Map, Value};
use tonic::{Request, Response, Status};

use crate::access::ReadAccess;
use crate::error::ApiError;
use crate::follow::{Follow, documents};
use crate::metrics::Protocol;
use crate::state::AppState;

/// A server stream of gRPC messages.
type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Both flagd services over `state`.
pub(crate) fn router(state: Arc<AppState>) -> tonic::transport::server::Router {
    tonic::transport::Server::builder()
        .add_service(FlagSyncServiceServer::new(Grpc(Arc::clone(&state))))
        .add_service(v1::service_server::ServiceServer::new(Grpc(Arc::clone(
            &state,
        ))))
        .add_service(v2::service_server::ServiceServer::new(Grpc(state)))
}

/// The services' shared handle on the server.
#[derive(Debug, Clone)]
struct Grpc(Arc<AppState>);

fn status(e: ApiError) -> Status {
    match e {
        ApiError::Unauthorized(m) => Status::unauthenticated(m),
        ApiError::Forbidden(m) => Status::permission_denied(m),
        ApiError::NotFound(m) => Status::not_found(m),
        ApiError::BadRequest(m) => Status::invalid_argument(m),
        other => Status::internal(other.to_string()),
    }
}

impl Grpc {
    /// Who may read which environment, from the request's metadata and the
    /// deprecated selector field.
    fn read<T>(&self, request: &Request<T>, field: &str) -> Result<ReadAccess, Status> {
        let state = &self.0;
        let headers: &axum::http::HeaderMap = request.metadata().as_ref();
        let selector = headers
            .get("flagd-selector")
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())
            .or(Some(field).filter(|s| !s.is_empty()))
            .map(str::trim);
        let Some(selector) = selector else {
            return ReadAccess::check(headers, state).map_err(status);
        };
        if let Some(principal) = state.credentials.lookup(selector)
            && let crate::credentials::Grant::Sdk { environment } = &principal.grant
        {
            let environment = state.environment(environment.as_str()).ok_or_else(|| {
                Status::not_found(format!(
                    "this SDK key's environment '{environment}' is not served"
                ))
            })?;
            return Ok(ReadAccess {
                environment,
                credential: Some(principal),
            });
        }
        let read = ReadAccess::check(headers, state).map_err(status)?;
        if read.environment.name().as_str() == selector {
            return Ok(read);
        }
        if state.credentials.open_reads() {
            let environment = state
                .environment(selector)
                .ok_or_else(|| Status::not_found(format!("no environment '{selector}'")))?;
            return Ok(ReadAccess {
                environment,
                credential: read.credential,
            });
        }
        Err(Status::permission_denied(format!(
            "selector '{selector}' is neither an SDK key nor the presented key's environment"
        )))
    }

    /// A stream of `make(document, first)` on connect (`first` true) and on
    /// every change, until the server stops or the key is revoked (then an
    /// error status).
    fn documents<T: Send + 'static>(
        &self,
        read: ReadAccess,
        protocol: Protocol,
        make: fn(&crate::published::Published, bool) -> T,
    ) -> Streamed<T> {
        use futures_util::StreamExt;
        let state = Arc::clone(&self.0);
        let follow = Follow::new(Arc::clone(&self.0), read, protocol);
        let stream = documents(follow).map(move |(published, first)| Ok(make(&published, first)));
        // A stream never ends cleanly: it ends because the server stops
        // (`UNAVAILABLE`, which every flagd provider reconnects after; some
        // ignore a clean end) or because its key was revoked.
        let end = futures_util::stream::once(async move {
            Err(if state.stopping() {
                Status::unavailable("the server is stopping; reconnect")
            } else {
                Status::unauthenticated("the SDK key of this stream was revoked")
            })
        });
        Box::pin(stream.chain(end))
    }
}

fn body(published: &crate::published::Published) -> String {
    String::from_utf8_lossy(&published.body).into_owned()
}

#[tonic::async_trait]
impl FlagSyncService for Grpc {
    type SyncFlagsStream = Streamed<SyncFlagsResponse>;

    async fn sync_flags(
        &self,
        request: Request<SyncFlagsRequest>,
    ) -> Result<Response<Self::SyncFlagsStream>, Status> {
        // The deprecated field is still what several flagd providers send.
        #[allow(deprecated)]
        let read = self.read(&request, &request.get_ref().selector)?;
        Ok(Response::new(self.documents(
            read,
            Protocol::grpc_sync,
            |p, _| SyncFlagsResponse {
                flag_configuration: body(p),
                sync_context: None,
            },
        )))
    }

    async fn fetch_all_flags(
        &self,
        request: Request<FetchAllFlagsRequest>,
    ) -> Result<Response<FetchAllFlagsResponse>, Status> {
        #[allow(deprecated)]
        let read = self.read(&request, &request.get_ref().selector)?;
        Ok(Response::new(FetchAllFlagsResponse {
            flag_configuration: body(&read.environment.current()),
        }))
    }

    async fn get_metadata(
        &self,
        request: Request<GetMetadataRequest>,
    ) -> Result<Response<GetMetadataResponse>, Status> {
        // In-process providers ask before they sync, without their selector:
        // a caller that may not read gets an empty answer, not an error.
        let mut metadata = Map::new();
        if let Ok(read) = self.read(&request, "") {
            let env = &read.environment;
            metadata.insert("environment".into(), Value::from(env.name().as_str()));
            metadata.insert("version".into(), Value::from(env.current().version));
        }
        Ok(Response::new(GetMetadataResponse {
            metadata: Some(convert::to_struct(&metadata)),
        }))
    }
}

/// The evaluation context of an RPC request (absent: empty).
fn context(context: Option<&prost_types::Struct>) -> Result<EvaluationContext, Status> {
    let json = context.map_or(Value::Null, |s| Value::Object(convert::from_struct(s)));
    EvaluationContext::from_json(json)
        .map_err(|e| Status::invalid_argument(format!("INVALID_CONTEXT: {e}")))
}

/// flagd's answer for an evaluation that failed: the status code its
/// providers map back to the error code (`NOT_FOUND` is `FLAG_NOT_FOUND`,
/// `INVALID_ARGUMENT` `TYPE_MISMATCH`, `DATA_LOSS` `PARSE_ERROR`).
fn failed(key: &str, code: ErrorCode, message: &str) -> Status {
    let text = format!("{code}: flag '{key}': {message}");
    match code {
        ErrorCode::FlagNotFound => Status::not_found(text),
        ErrorCode::TypeMismatch => Status::invalid_argument(text),
        ErrorCode::ParseError => Status::data_loss(text),
        ErrorCode::InvalidContext | ErrorCode::TargetingKeyMissing => {
            Status::invalid_argument(text)
        }
        ErrorCode::ProviderNotReady => Status::unavailable(text),
        _ => Status::unknown(text),
    }
}

/// The metadata of an evaluation as a `Struct`.
fn metadata(evaluation: &Evaluation<'_>) -> Option<prost_types::Struct> {
    let map: Map<String, Value> = evaluation
        .metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_json()))
        .collect();
    Some(convert::to_struct(&map))
}

/// One typed resolution, as every `Resolve*` response carries it.
struct Resolved<T> {
    /// `None` without a served value (the caller's default applies).
    value: Option<T>,
    reason: String,
    /// `None` without a variant.
    variant: Option<String>,
    metadata: Option<prost_types::Struct>,
}

impl Grpc {
    /// Resolves `key` for the request's environment and context as `T`, or
    /// answers flagd's error status.
    fn typed<R, T>(
        &self,
        request: &Request<R>,
        key: &str,
        ctx: Option<&prost_types::Struct>,
        convert: impl Fn(&FlagValue) -> Option<T>,
        wanted: &str,
    ) -> Result<Resolved<T>, Status> {
        let read = self.read(request, "")?;
        let ctx = context(ctx)?;
        let published = read.environment.current();
        let evaluation = published.snapshot.evaluate(key, &ctx);
        if let Some(error) = &evaluation.error {
            return Err(failed(key, error.code, error.message.as_str()));
        }
        let value = match evaluation.value {
            Some(value) => Some(convert(value).ok_or_else(|| {
                failed(
                    key,
                    ErrorCode::TypeMismatch,
                    &format!("the served variant is not {wanted}"),
                )
            })?),
            None => None,
        };
        Ok(Resolved {
            value,
            reason: evaluation.reason.as_str().to_string(),
            variant: evaluation.variant().map(str::to_string),
            metadata: metadata(&evaluation),
        })
    }
}

fn bool_of(v: &FlagValue) -> Option<bool> {
    match v {
        FlagValue::Bool(b) => Some(*b),
        _ => None,
    }
}

fn string_of(v: &FlagValue) -> Option<String> {
    match v {
        FlagValue::String(s) => Some(s.to_string()),
        _ => None,
    }
}

fn float_of(v: &FlagValue) -> Option<f64> {
    match v {
        FlagValue::Float(f) => Some(*f),
        FlagValue::Int(i) => Some(*i as f64),
        _ => None,
    }
}

fn int_of(v: &FlagValue) -> Option<i64> {
    match v {
        FlagValue::Int(i) => Some(*i),
        _ => None,
    }
}

fn object_of(v: &FlagValue) -> Option<prost_types::Struct> {
    match v {
        FlagValue::Object(json) => json.as_object().map(convert::to_struct),
        _ => None,
    }
}

/// flagd's `EventStream` message for a document: `provider_ready` first, then
/// `configuration_change` naming every flag as updated (as flagd does).
fn event(
    published: &crate::published::Published,
    first: bool,
) -> (String, Option<prost_types::Struct>) {
    if first {
        return ("provider_ready".into(), None);
    }
    let flags: Map<String, Value> = published
        .snapshot
        .keys()
        .iter()
        .map(|key| (key.to_string(), serde_json::json!({"type": "update"})))
        .collect();
    let mut data = Map::new();
    data.insert("flags".into(), Value::Object(flags));
    (
        "configuration_change".into(),
        Some(convert::to_struct(&data)),
    )
}

/// One evaluation `Service` (flagd.evaluation.`$version`): `value` and
/// `variant` shape a resolution for the version's responses (v1 cannot leave
/// a value out, v2 can); `$extra` are the methods only that version has.
macro_rules! evaluation_service {
    ($version:ident, value: $value:expr, object: $object:expr, variant: $variant:expr, $($extra:item)*) => {
        evaluation_service!(@service $version, $variant, [$($extra)*],
            resolve_boolean(ResolveBooleanRequest => ResolveBooleanResponse, bool_of, "a boolean", $value),
            resolve_string(ResolveStringRequest => ResolveStringResponse, string_of, "a string", $value),
            resolve_float(ResolveFloatRequest => ResolveFloatResponse, float_of, "a number", $value),
            resolve_int(ResolveIntRequest => ResolveIntResponse, int_of, "an integer", $value),
            resolve_object(ResolveObjectRequest => ResolveObjectResponse, object_of, "an object", $object),
        );
    };
    (@service $version:ident, $variant:expr, [$($extra:item)*],
        $($method:ident($request:ident => $response:ident, $of:expr, $wanted:literal, $shape:expr),)*) => {
        #[tonic::async_trait]
        impl $version::service_server::Service for Grpc {
            type EventStreamStream = Streamed<$version::EventStreamResponse>;

            $($extra)*

            $(
                async fn $method(
                    &self,
                    request: Request<$version::$request>,
                ) -> Result<Response<$version::$response>, Status> {
                    let r = request.get_ref();
                    let x = self.typed(&request, &r.flag_key, r.context.as_ref(), $of, $wanted)?;
                    Ok(Response::new($version::$response {
                        value: $shape(x.value),
                        reason: x.reason,
                        variant: $variant(x.variant),
                        metadata: x.metadata,
                    }))
                }
            )*

            async fn event_stream(
                &self,
                request: Request<$version::EventStreamRequest>,
            ) -> Result<Response<Self::EventStreamStream>, Status> {
                let read = self.read(&request, "")?;
                Ok(Response::new(self.documents(read, Protocol::grpc_events, |published, first| {
                    let (r#type, data) = event(published, first);
                    $version::EventStreamResponse { r#type, data }
                })))
            }
        }
    };
}

evaluation_service!(
    v1,
    value: Option::unwrap_or_default,
    object: std::convert::identity,
    variant: Option::unwrap_or_default,
    async fn resolve_all(
        &self,
        request: Request<v1::ResolveAllRequest>,
    ) -> Result<Response<v1::ResolveAllResponse>, Status> {
        let read = self.read(&request, "")?;
        let ctx = context(request.get_ref().context.as_ref())?;
        let published = read.environment.current();
        let mut flags = std::collections::HashMap::new();
        for key in published.snapshot.keys() {
            let evaluation = published.snapshot.evaluate(key, &ctx);
            // flagd leaves out what did not evaluate to a value.
            let (Some(value), None) = (evaluation.value, &evaluation.error) else {
                continue;
            };
            let value = match value {
                FlagValue::Bool(b) => v1::any_flag::Value::BoolValue(*b),
                FlagValue::String(s) => v1::any_flag::Value::StringValue(s.to_string()),
                FlagValue::Int(i) => v1::any_flag::Value::DoubleValue(*i as f64),
                FlagValue::Float(f) => v1::any_flag::Value::DoubleValue(*f),
                FlagValue::Object(json) => match json.as_object() {
                    Some(map) => v1::any_flag::Value::ObjectValue(convert::to_struct(map)),
                    None => continue,
                },
            };
            flags.insert(
                key.to_string(),
                v1::AnyFlag {
                    reason: evaluation.reason.as_str().to_string(),
                    variant: evaluation.variant().unwrap_or_default().to_string(),
                    value: Some(value),
                    metadata: metadata(&evaluation),
                },
            );
        }
        Ok(Response::new(v1::ResolveAllResponse {
            flags,
            metadata: None,
        }))
    }
);

// As v1, without `ResolveAll`; no value or variant is sent where there is
// none (the caller's code default applies).
evaluation_service!(
    v2,
    value: std::convert::identity,
    object: std::convert::identity,
    variant: std::convert::identity,
);
