//! Network sources: HTTP polling with ETag, Server-Sent Events, WebSocket, and
//! a streaming-with-polling-fallback composition. They share the connection
//! options, the reconnection policy and message decoding here.

mod backoff;
mod connection;
mod fallback;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "http")]
mod polling;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sse")]
mod sse;
#[cfg(feature = "sse")]
mod sse_reader;
#[cfg(feature = "ws")]
mod ws;

use std::time::Duration;

pub use backoff::{Backoff, ReconnectPolicy};
#[cfg(any(feature = "sse", feature = "ws", feature = "redis", feature = "grpc"))]
pub(crate) use connection::{Connects, Link, follow};
pub use connection::{Session, SessionEnd, keep_connected};
pub use fallback::FallbackSource;
#[cfg(feature = "grpc")]
pub use grpc::{GrpcSyncSource, GrpcSyncSourceBuilder};
#[cfg(feature = "http")]
pub use polling::{PollingSource, PollingSourceBuilder};
#[cfg(feature = "redis")]
pub use redis::{RedisSource, RedisSourceBuilder};
#[cfg(feature = "sse")]
pub use sse::{SseSource, SseSourceBuilder};
#[cfg(feature = "ws")]
pub use ws::{WebSocketSource, WebSocketSourceBuilder};

#[cfg(any(feature = "http", feature = "ws", feature = "redis", feature = "grpc"))]
use flagyard_core::{BoxError, ErrorOrigin, ProviderError};

#[cfg(any(feature = "http", feature = "ws", feature = "redis", feature = "grpc"))]
use crate::BuildError;

/// Default payload cap: 5 MB.
pub const DEFAULT_MAX_PAYLOAD: usize = 5 * 1024 * 1024;

/// Connection settings shared by the network sources.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// Extra request headers (the SDK key goes here as `Authorization`).
    pub headers: Vec<(String, String)>,
    /// Largest message or response accepted (default 5 MB); larger ones are
    /// dropped, reported, and (for streams) the connection is re-opened.
    pub max_payload: usize,
    /// Reconnection timing.
    pub reconnect: ReconnectPolicy,
    /// A stream that sends nothing (not even a heartbeat) for this long is
    /// considered dead and re-opened (default 45 s: three missed 15 s heartbeats).
    pub read_timeout: Duration,
    /// Connection timeout (default 10 s).
    pub connect_timeout: Duration,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            headers: Vec::new(),
            max_payload: DEFAULT_MAX_PAYLOAD,
            reconnect: ReconnectPolicy::default(),
            read_timeout: Duration::from_secs(45),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

#[cfg(any(feature = "http", feature = "ws", feature = "grpc"))]
impl NetworkOptions {
    /// The configured headers, parsed; a name or value that is not valid
    /// HTTP is an error naming the header.
    pub(crate) fn header_map(&self, what: &str) -> Result<http::HeaderMap, BuildError> {
        let mut headers = http::HeaderMap::new();
        for (name, value) in &self.headers {
            let header = |cause: BoxError| BuildError::Header {
                what: what.to_string(),
                name: name.clone(),
                cause,
            };
            let name =
                http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| header(e.into()))?;
            let value = http::HeaderValue::from_str(value).map_err(|e| header(e.into()))?;
            headers.insert(name, value);
        }
        Ok(headers)
    }
}

#[cfg(feature = "http")]
impl NetworkOptions {
    /// The HTTP client of the HTTP-based source `kind` (`poll`, `sse`) for
    /// `url`: connection and read timeouts, and the configured headers on
    /// every request. A URL that is not `http(s)://` or a header that is not
    /// valid HTTP is an error naming it (as `kind:url`).
    pub(crate) fn http_client(&self, kind: &str, url: &str) -> Result<reqwest::Client, BuildError> {
        let what = &format!("{kind}:{url}");
        check_http_url(what, url)?;
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .default_headers(self.header_map(what)?)
            .build()
            .map_err(|e| BuildError::Config {
                what: what.to_string(),
                cause: e.into(),
            })
    }
}

/// An `http://` or `https://` URL, or the error naming it.
#[cfg(feature = "http")]
fn check_http_url(what: &str, url: &str) -> Result<(), BuildError> {
    let bad = |cause: BoxError| BuildError::Url {
        what: what.to_string(),
        url: url.to_string(),
        cause,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.into()))?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        other => Err(bad(format!(
            "the scheme must be http or https, not {other}"
        )
        .into())),
    }
}

/// A URL the Redis client accepts (`redis://`, `rediss://`, `unix://`), or the
/// error naming it (password masked). Nothing is connected.
#[cfg(feature = "redis")]
pub(crate) fn check_redis_url(what: &str, url: &str) -> Result<(), BuildError> {
    ::redis::Client::open(url)
        .map(drop)
        .map_err(|e| BuildError::Url {
            what: what.to_string(),
            url: flagyard_storage::masked_url(url),
            cause: e.into(),
        })
}

/// Builder methods shared by everything that connects (the network sources
/// and `HttpSink`): credentials, headers, retry timing, read timeout.
#[cfg(any(feature = "http", feature = "ws", feature = "grpc"))]
macro_rules! connection_builder_methods {
    () => {
        /// Sends `Authorization: Bearer <key>` (the server's SDK key).
        pub fn sdk_key(mut self, key: impl Into<String>) -> Self {
            self.options
                .headers
                .push(("authorization".into(), format!("Bearer {}", key.into())));
            self
        }

        /// Adds a request header.
        pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.options.headers.push((name.into(), value.into()));
            self
        }

        flagyard_core::setters! {
            /// Reconnection (and retry) timing.
            reconnect(policy: $crate::sources::ReconnectPolicy) => options.reconnect = policy;

            /// Silence after which a connection is considered dead (default 45 s).
            read_timeout(timeout: std::time::Duration) => options.read_timeout = timeout;
        }
    };
}
#[cfg(any(feature = "http", feature = "ws", feature = "grpc"))]
pub(crate) use connection_builder_methods;

/// Builder methods shared by the network sources: the connection's, and the
/// largest payload.
#[cfg(any(feature = "http", feature = "ws", feature = "grpc"))]
macro_rules! network_builder_methods {
    () => {
        $crate::sources::connection_builder_methods!();

        flagyard_core::setters! {
            /// The largest payload accepted (default 5 MB).
            max_payload(bytes: usize) => options.max_payload = bytes;
        }
    };
}
#[cfg(any(feature = "http", feature = "ws", feature = "grpc"))]
pub(crate) use network_builder_methods;

/// The seconds a `Retry-After` header asks for (the delta form).
#[cfg(feature = "http")]
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// The server's envelope `{"version": N, "document": {...}}`, or a bare flag
/// document (then only `flags` is looked at). The document is borrowed from
/// the payload as raw JSON: its bytes are scanned once here and parsed once,
/// into the snapshot, by the runtime.
#[cfg(any(feature = "http", feature = "ws", feature = "grpc"))]
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    version: Option<u64>,
    #[serde(borrow)]
    document: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    flags: Option<&'a serde_json::value::RawValue>,
}

/// Decodes one message or response body: the server's envelope
/// `{"version": N, "document": {...}}` or a bare flag document.
#[cfg(any(feature = "http", feature = "ws", feature = "grpc"))]
pub(crate) fn decode(
    payload: &str,
    max: usize,
    from: &str,
) -> Result<(Option<u64>, String), ProviderError> {
    let bad = |why: String| {
        ProviderError::new(
            ErrorOrigin::Parser,
            false,
            format!("{from}: payload dropped: {why}"),
        )
    };
    if payload.len() > max {
        return Err(bad(format!(
            "{} bytes, over the {max}-byte cap",
            payload.len()
        )));
    }
    if !payload.trim_start().starts_with('{') {
        return match serde_json::from_str::<serde::de::IgnoredAny>(payload) {
            Err(e) => Err(bad(format!("not JSON: {e}"))),
            Ok(_) => Err(bad("not a JSON object".into())),
        };
    }
    let envelope: Envelope<'_> =
        serde_json::from_str(payload).map_err(|e| bad(format!("not JSON: {e}")))?;
    match envelope {
        Envelope {
            document: Some(document),
            version,
            ..
        } => {
            if !document.get().starts_with('{') {
                return Err(bad("\"document\" is not a JSON object".into()));
            }
            Ok((version, document.get().to_string()))
        }
        Envelope { flags: Some(_), .. } => Ok((None, payload.to_string())),
        _ => Err(bad(
            "neither a flag document nor a {\"version\", \"document\"} message".into(),
        )),
    }
}

/// A network error for `on_error`: `from` names the source, `cause` is kept
/// as the error's source.
#[cfg(any(feature = "http", feature = "ws", feature = "redis", feature = "grpc"))]
pub(crate) fn network_error(
    from: &str,
    transient: bool,
    cause: impl Into<BoxError>,
) -> ProviderError {
    let cause: BoxError = cause.into();
    ProviderError::new(ErrorOrigin::Network, transient, format!("{from}: {cause}"))
        .with_source(cause)
}

/// Whether an HTTP status means "your credentials are wrong" (slow retry).
#[cfg(any(feature = "http", feature = "ws"))]
pub(crate) fn is_auth_status(status: u16) -> bool {
    status == 401 || status == 403
}

#[cfg(all(test, any(feature = "http", feature = "ws", feature = "grpc")))]
mod tests {
    use super::*;

    #[cfg(feature = "http")]
    #[test]
    fn a_bad_header_is_a_clear_error_naming_it() {
        let mut options = NetworkOptions::default();
        options.headers.push(("bad header".into(), "x".into()));
        let e = options
            .http_client("poll", "http://x")
            .expect_err("refused");
        assert!(matches!(e, BuildError::Header { .. }), "{e}");
        assert!(e.to_string().contains("bad header"), "{e}");
        options.headers = vec![("authorization".into(), "Bearer k".into())];
        assert!(options.http_client("poll", "http://x").is_ok());
    }

    #[test]
    fn decodes_envelopes_and_bare_documents_and_refuses_the_rest() {
        assert_eq!(
            decode(r#"{"version": 3, "document": {"flags": {}}}"#, 100, "x").expect("envelope"),
            (Some(3), r#"{"flags": {}}"#.to_string())
        );
        assert_eq!(decode(r#"{"flags": {}}"#, 100, "x").expect("bare").0, None);
        for bad in [
            "[1]",
            "{nope",
            r#"{"version": 1, "document": 5}"#,
            r#"{"other": 1}"#,
        ] {
            let e = decode(bad, 100, "src").expect_err(bad);
            assert_eq!(e.origin(), ErrorOrigin::Parser);
            assert!(
                e.message().starts_with("src: payload dropped"),
                "{}",
                e.message()
            );
        }
        let e = decode(
            &format!(r#"{{"flags": {{}}, "pad": "{}"}}"#, "x".repeat(200)),
            100,
            "src",
        )
        .expect_err("too big");
        assert!(
            e.message().contains("over the 100-byte cap"),
            "{}",
            e.message()
        );
    }
}
