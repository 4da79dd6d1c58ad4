//! [`SseSource`]: a Server-Sent Events stream of documents.

use std::sync::Arc;

use flagyard_core::BoxFuture;
use flagyard_core::{ErrorOrigin, ProviderError};
use flagyard_core::{Source, SourceUpdates};
use futures_util::StreamExt;

use super::sse_reader::{EventReader, Item};

use super::{
    Connects, Link, NetworkOptions, SessionEnd, decode, follow, is_auth_status,
    network_builder_methods, network_error,
};
use crate::BuildError;

/// Follows a Server-Sent Events stream (a flag server's `/v1/stream`): each
/// `document` event carries the whole document, applied as it arrives.
///
/// Needs the crate feature `sse`.
///
/// Reconnects with backoff after any failure (1 s doubling to 30 s, jitter),
/// slowly after 401/403; a stream silent for the read timeout (no event, no
/// heartbeat) is re-opened; an event over the payload cap (dropped as it
/// arrives, never buffered whole), a line that is not UTF-8 or a message that
/// is not a document is skipped and reported, and the stream goes on.
///
/// # Example
/// ```
/// use flagyard::SseSource;
///
/// let source = SseSource::builder("http://127.0.0.1:8013/v1/stream")
///     .sdk_key("my-sdk-key")
///     .build()?;
/// # Ok::<(), flagyard::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SseSource {
    url: String,
    options: NetworkOptions,
    client: reqwest::Client,
}

/// Configures an [`SseSource`]; [`build`](Self::build) checks the URL and
/// the headers.
#[derive(Debug, Clone)]
pub struct SseSourceBuilder {
    url: String,
    options: NetworkOptions,
}

impl SseSourceBuilder {
    network_builder_methods!();

    /// The source, or what is wrong with its URL or headers.
    pub fn build(self) -> Result<SseSource, BuildError> {
        let client = self.options.http_client("sse", &self.url)?;
        Ok(SseSource {
            url: self.url,
            options: self.options,
            client,
        })
    }
}

impl SseSource {
    /// Follows the stream at `url`.
    pub fn builder(url: impl Into<String>) -> SseSourceBuilder {
        SseSourceBuilder {
            url: url.into(),
            options: NetworkOptions::default(),
        }
    }
}

impl Connects for SseSource {
    type Shared = ();

    /// One stream; returns why it ended.
    async fn connection(&self, link: Link<'_, ()>) -> SessionEnd {
        let request = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .header(reqwest::header::CACHE_CONTROL, "no-cache");
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return SessionEnd::lost(link.from, e),
        };
        let status = response.status();
        if is_auth_status(status.as_u16()) {
            return SessionEnd::Refused(network_error(
                link.from,
                false,
                format!("the server refused the credentials ({status})"),
            ));
        }
        if !status.is_success() {
            return SessionEnd::lost(link.from, format!("the server answered {status}"));
        }
        link.backoff.connected();
        let mut reader = EventReader::new(self.options.max_payload);
        let mut body = response.bytes_stream();
        loop {
            let chunk = match body.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => return SessionEnd::lost(link.from, e),
                None => {
                    return SessionEnd::lost(link.from, "the stream ended");
                }
            };
            for item in reader.feed(&chunk) {
                match item {
                    Item::Event { event, data } if event == "document" || event == "message" => {
                        match decode(&data, self.options.max_payload, link.from) {
                            Ok((Some(version), document)) => {
                                link.updates.versioned_document(document, version)
                            }
                            Ok((None, document)) => link.updates.document(document),
                            // Reported; the stream goes on.
                            Err(e) => link.updates.error(e),
                        }
                    }
                    Item::Event { .. } => {}
                    Item::Skipped(why) => link.updates.error(ProviderError::new(
                        ErrorOrigin::Parser,
                        false,
                        format!("{}: {why}", link.from),
                    )),
                }
            }
        }
    }
}

impl Source for SseSource {
    fn describe(&self) -> String {
        format!("sse:{}", self.url)
    }

    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
        Box::pin(follow(self.options.reconnect.clone(), *self, updates, ()))
    }
}
