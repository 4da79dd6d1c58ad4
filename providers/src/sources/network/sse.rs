//! [`SseSource`]: a Server-Sent Events stream of documents.

use std::sync::Arc;

use flagyard_core::BoxFuture;
use flagyard_core::{Source, SourceUpdates};
use futures_util::StreamExt;
use reqwest_eventsource::{Event, EventSource, retry::Never};

use super::{
    Backoff, NetworkOptions, decode, is_auth_status, network_builder_methods, network_error,
};

/// Follows a Server-Sent Events stream (a flag server's `/v1/stream`): each
/// `document` event carries the whole document, applied as it arrives.
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
/// let source = SseSource::new("http://127.0.0.1:8013/v1/stream").sdk_key("my-sdk-key");
/// ```
#[derive(Debug, Clone)]
pub struct SseSource {
    url: String,
    options: NetworkOptions,
}

impl SseSource {
    /// Follows the stream at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        SseSource {
            url: url.into(),
            options: NetworkOptions::default(),
        }
    }

    network_builder_methods!();

    async fn follow(self, updates: Arc<dyn SourceUpdates>) {
        let from = self.describe();
        let client = match self.options.http_client(&from) {
            Ok(client) => client,
            Err(e) => {
                updates.error(e);
                return;
            }
        };
        let mut backoff = Backoff::new(self.options.reconnect.clone());
        loop {
            let request = client.get(&self.url);
            let mut stream = match EventSource::new(request) {
                Ok(stream) => stream,
                Err(e) => {
                    updates.error(network_error(&from, false, e));
                    return;
                }
            };
            stream.set_retry_policy(Box::new(Never));
            let mut refused = false;
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Event::Open) => backoff.connected(),
                    Ok(Event::Message(message)) => {
                        if message.event != "document" && message.event != "message" {
                            continue;
                        }
                        match decode(&message.data, self.options.max_payload, &from) {
                            Ok((Some(version), document)) => {
                                updates.versioned_document(document, version)
                            }
                            Ok((None, document)) => updates.document(document),
                            Err(e) => {
                                updates.error(e);
                                break;
                            }
                        }
                    }
                    Err(reqwest_eventsource::Error::InvalidStatusCode(status, _))
                        if is_auth_status(status.as_u16()) =>
                    {
                        updates.error(network_error(
                            &from,
                            false,
                            format!("the server refused the credentials ({status})"),
                        ));
                        refused = true;
                        break;
                    }
                    Err(reqwest_eventsource::Error::StreamEnded) => {
                        updates.error(network_error(&from, true, "the stream ended"));
                        break;
                    }
                    Err(e) => {
                        updates.error(network_error(&from, true, e));
                        break;
                    }
                }
            }
            stream.close();
            let wait = if refused {
                backoff.refused()
            } else {
                backoff.failed()
            };
            tokio::time::sleep(wait).await;
        }
    }
}

impl Source for SseSource {
    fn describe(&self) -> String {
        format!("sse:{}", self.url)
    }

    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
        Box::pin(self.follow(updates))
    }
}
