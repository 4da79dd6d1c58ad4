//! [`GrpcSyncSource`]: documents over flagd's gRPC sync protocol.

use std::sync::Arc;

use flagyard_core::{BoxFuture, Source, SourceUpdates};
use flagyard_flagd_proto::sync::SyncFlagsRequest;
use flagyard_flagd_proto::sync::flag_sync_service_client::FlagSyncServiceClient;
use tonic::metadata::MetadataMap;

use super::{
    Connects, Link, NetworkOptions, SessionEnd, decode, follow, network_builder_methods,
    network_error,
};
use crate::BuildError;

/// Follows a flagd-compatible sync server (`flagd.sync.v1.FlagSyncService`:
/// a real flagd, or `flagyard serve --grpc-listen`): `SyncFlags` sends the
/// whole document on connect and on every change. Same reconnection,
/// read-timeout and payload rules as the other network sources; a refused
/// key (`UNAUTHENTICATED`, `PERMISSION_DENIED`) waits the slow retry.
///
/// Needs the crate feature `grpc`.
///
/// # Example
/// ```
/// use flagyard::GrpcSyncSource;
///
/// let source = GrpcSyncSource::builder("http://127.0.0.1:8015")
///     .selector("staging")
///     .build()?;
/// # Ok::<(), flagyard::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct GrpcSyncSource {
    endpoint: tonic::transport::Endpoint,
    url: String,
    options: NetworkOptions,
    /// `options.headers` and the selector as gRPC metadata, checked by `build`.
    metadata: MetadataMap,
}

/// Configures a [`GrpcSyncSource`]; [`build`](Self::build) checks the URL,
/// the headers and the selector.
#[derive(Debug, Clone)]
pub struct GrpcSyncSourceBuilder {
    url: String,
    selector: Option<String>,
    options: NetworkOptions,
}

impl GrpcSyncSourceBuilder {
    network_builder_methods!();

    flagyard_core::setters! {
        /// The selector, sent as the `Flagd-Selector` header: a flagd source
        /// name, or for `flagyard serve` an environment or an SDK key.
        selector(selector: impl Into<String>) => selector = Some(selector.into());
    }

    /// The source, or what is wrong with its URL, headers or selector.
    pub fn build(self) -> Result<GrpcSyncSource, BuildError> {
        let what = format!("grpc:{}", self.url);
        let endpoint = tonic::transport::Endpoint::from_shared(self.url.clone())
            .map_err(|e| BuildError::Url {
                what: what.clone(),
                url: self.url.clone(),
                cause: e.into(),
            })?
            .connect_timeout(self.options.connect_timeout)
            // flagd's sync streams send nothing between changes: HTTP/2
            // pings find a dead connection instead.
            .http2_keep_alive_interval(self.options.read_timeout / 3)
            .keep_alive_timeout(self.options.read_timeout)
            .keep_alive_while_idle(true);
        let mut options = self.options;
        if let Some(selector) = self.selector {
            options.headers.push(("flagd-selector".into(), selector));
        }
        let metadata = MetadataMap::from_headers(options.header_map(&what)?);
        Ok(GrpcSyncSource {
            endpoint,
            url: self.url,
            options,
            metadata,
        })
    }
}

impl GrpcSyncSource {
    /// Follows the sync service at `url` (`http://host:port`; flagd's sync
    /// port is 8015).
    pub fn builder(url: impl Into<String>) -> GrpcSyncSourceBuilder {
        GrpcSyncSourceBuilder {
            url: url.into(),
            selector: None,
            options: NetworkOptions::default(),
        }
    }
}

impl Connects for GrpcSyncSource {
    type Shared = ();

    /// One `SyncFlags` stream; returns why it ended.
    async fn connection(&self, link: Link<'_, ()>) -> SessionEnd {
        let channel = match self.endpoint.connect().await {
            Ok(channel) => channel,
            Err(e) => return SessionEnd::lost(link.from, e),
        };
        let mut client = FlagSyncServiceClient::new(channel)
            .max_decoding_message_size(self.options.max_payload.saturating_add(1024));
        let mut request = tonic::Request::new(SyncFlagsRequest::default());
        *request.metadata_mut() = self.metadata.clone();
        let mut stream = match client.sync_flags(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return ended(link.from, status),
        };
        link.backoff.connected();
        loop {
            let message = match stream.message().await {
                Err(status) => return ended(link.from, status),
                Ok(None) => return SessionEnd::lost(link.from, "the stream ended"),
                Ok(Some(message)) => message,
            };
            // flagd sends the bare document; the same decoding (and payload
            // cap) as every network source, so a bad one is reported here.
            match decode(
                &message.flag_configuration,
                self.options.max_payload,
                link.from,
            ) {
                Ok((Some(version), document)) => link.updates.versioned_document(document, version),
                Ok((None, document)) => link.updates.document(document),
                Err(e) => link.updates.error(e),
            }
        }
    }
}

/// Why a stream ended with `status`: a refused key waits the slow retry.
fn ended(from: &str, status: tonic::Status) -> SessionEnd {
    let refused = matches!(
        status.code(),
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
    );
    let message = format!("{:?}: {}", status.code(), status.message());
    if refused {
        SessionEnd::Refused(network_error(from, false, message))
    } else {
        SessionEnd::lost(from, message)
    }
}

impl Source for GrpcSyncSource {
    /// The URL (never the selector, which may be an SDK key).
    fn describe(&self) -> String {
        format!("grpc:{}", self.url)
    }

    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
        Box::pin(follow(self.options.reconnect.clone(), *self, updates, ()))
    }
}
