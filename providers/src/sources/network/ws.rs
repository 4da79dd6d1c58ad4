//! [`WebSocketSource`]: documents over a WebSocket.

use std::sync::Arc;

use flagyard_core::BoxFuture;
use flagyard_core::{Source, SourceUpdates};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use super::{
    Connects, Link, NetworkOptions, SessionEnd, decode, follow, is_auth_status,
    network_builder_methods, network_error,
};
use crate::BuildError;

/// Follows a WebSocket (a flag server's `/v1/ws`): each text message carries the
/// whole document. Same reconnection, read-timeout and payload rules as
/// [`SseSource`](crate::SseSource); the server's pings keep the connection alive.
///
/// Needs the crate feature `ws`.
///
/// # Example
/// ```
/// use flagyard::WebSocketSource;
///
/// let source = WebSocketSource::builder("ws://127.0.0.1:8013/v1/ws").build()?;
/// # Ok::<(), flagyard::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct WebSocketSource {
    url: String,
    options: NetworkOptions,
    /// `options.headers`, checked and parsed once by `build`.
    headers: tungstenite::http::HeaderMap,
}

/// Configures a [`WebSocketSource`]; [`build`](Self::build) checks the URL
/// and the headers.
#[derive(Debug, Clone)]
pub struct WebSocketSourceBuilder {
    url: String,
    options: NetworkOptions,
}

impl WebSocketSourceBuilder {
    network_builder_methods!();

    /// The source, or what is wrong with its URL or headers.
    pub fn build(self) -> Result<WebSocketSource, BuildError> {
        let what = format!("ws:{}", self.url);
        self.url
            .as_str()
            .into_client_request()
            .map_err(|e| BuildError::Url {
                what: what.clone(),
                url: self.url.clone(),
                cause: e.into(),
            })?;
        let headers = self.options.header_map(&what)?;
        Ok(WebSocketSource {
            url: self.url,
            options: self.options,
            headers,
        })
    }
}

impl WebSocketSource {
    /// Follows the WebSocket at `url` (`ws://` or `wss://`).
    pub fn builder(url: impl Into<String>) -> WebSocketSourceBuilder {
        WebSocketSourceBuilder {
            url: url.into(),
            options: NetworkOptions::default(),
        }
    }
}

impl Connects for WebSocketSource {
    type Shared = ();

    /// One connection; returns why it ended.
    async fn connection(&self, link: Link<'_, ()>) -> SessionEnd {
        let mut request = match self.url.as_str().into_client_request() {
            Ok(request) => request,
            Err(e) => {
                return SessionEnd::Lost(network_error(link.from, false, format!("bad URL: {e}")));
            }
        };
        request.headers_mut().extend(self.headers.clone());
        let config = WebSocketConfig::default()
            .max_message_size(Some(self.options.max_payload))
            .max_frame_size(Some(self.options.max_payload));
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), false);
        let mut socket = match tokio::time::timeout(self.options.connect_timeout, connect).await {
            Ok(Ok((socket, _))) => socket,
            Ok(Err(tungstenite::Error::Http(response)))
                if is_auth_status(response.status().as_u16()) =>
            {
                return SessionEnd::Refused(network_error(
                    link.from,
                    false,
                    format!("the server refused the credentials ({})", response.status()),
                ));
            }
            Ok(Err(e)) => {
                return SessionEnd::lost(link.from, e);
            }
            Err(_) => {
                return SessionEnd::lost(
                    link.from,
                    format!("no connection within {:?}", self.options.connect_timeout),
                );
            }
        };
        link.backoff.connected();
        loop {
            match tokio::time::timeout(self.options.read_timeout, socket.next()).await {
                Err(_) => {
                    return SessionEnd::lost(
                        link.from,
                        format!("silent for {:?}; reconnecting", self.options.read_timeout),
                    );
                }
                Ok(None) => {
                    return SessionEnd::lost(link.from, "the connection closed");
                }
                Ok(Some(Err(tungstenite::Error::Capacity(e)))) => {
                    return SessionEnd::Lost(flagyard_core::ProviderError::new(
                        flagyard_core::ErrorOrigin::Parser,
                        false,
                        format!("{}: payload dropped: {e}", link.from),
                    ));
                }
                Ok(Some(Err(e))) => {
                    return SessionEnd::lost(link.from, e);
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    match decode(&text, self.options.max_payload, link.from) {
                        Ok((Some(version), document)) => {
                            link.updates.versioned_document(document, version)
                        }
                        Ok((None, document)) => link.updates.document(document),
                        Err(e) => {
                            let _ = socket.close(None).await;
                            return SessionEnd::Lost(e);
                        }
                    }
                }
                Ok(Some(Ok(Message::Close(_)))) => {
                    return SessionEnd::lost(link.from, "the server closed the connection");
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

impl Source for WebSocketSource {
    fn describe(&self) -> String {
        format!("ws:{}", self.url)
    }

    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
        Box::pin(follow(self.options.reconnect.clone(), *self, updates, ()))
    }
}
