//! [`SseSource`]: a Server-Sent Events stream of documents.

use std::sync::Arc;

use flagyard_core::BoxFuture;
use flagyard_core::{Source, SourceUpdates};
use futures_util::StreamExt;
use reqwest_eventsource::{Event, EventSource, retry::Never};

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
/// heartbeat) is re-opened; a message over the payload cap or not a document is
/// dropped, reported, and the stream re-opened.
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
        let client = self
            .options
            .http_client(&format!("sse:{}", self.url), &self.url)?;
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
        let mut stream = match EventSource::new(self.client.get(&self.url)) {
            Ok(stream) => stream,
            Err(e) => return SessionEnd::Refused(network_error(link.from, false, e)),
        };
        stream.set_retry_policy(Box::new(Never));
        let end = loop {
            let Some(event) = stream.next().await else {
                break SessionEnd::Lost(network_error(link.from, true, "the stream ended"));
            };
            match event {
                Ok(Event::Open) => link.backoff.connected(),
                Ok(Event::Message(message)) => {
                    if message.event != "document" && message.event != "message" {
                        continue;
                    }
                    match decode(&message.data, self.options.max_payload, link.from) {
                        Ok((Some(version), document)) => {
                            link.updates.versioned_document(document, version)
                        }
                        Ok((None, document)) => link.updates.document(document),
                        Err(e) => break SessionEnd::Lost(e),
                    }
                }
                Err(reqwest_eventsource::Error::InvalidStatusCode(status, _))
                    if is_auth_status(status.as_u16()) =>
                {
                    break SessionEnd::Refused(network_error(
                        link.from,
                        false,
                        format!("the server refused the credentials ({status})"),
                    ));
                }
                Err(reqwest_eventsource::Error::StreamEnded) => {
                    break SessionEnd::Lost(network_error(link.from, true, "the stream ended"));
                }
                Err(e) => break SessionEnd::Lost(network_error(link.from, true, e)),
            }
        };
        stream.close();
        end
    }
}

impl Source for SseSource {
    fn describe(&self) -> String {
        format!("sse:{}", self.url)
    }

    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
        let policy = self.options.reconnect.clone();
        Box::pin(follow(*self, policy, updates, ()))
    }
}
