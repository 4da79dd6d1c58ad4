//! [`PollingSource`]: `GET` the document every interval, with `If-None-Match`.

use std::sync::Arc;
use std::time::Duration;

use flagyard_core::BoxFuture;
use flagyard_core::{Source, SourceUpdates};
use reqwest::header::{ETAG, IF_NONE_MATCH};

use super::{
    Backoff, NetworkOptions, decode, is_auth_status, network_builder_methods, network_error,
    retry_after,
};
use crate::BuildError;

/// Polls a URL serving a flag document (such as a flag server's `/v1/flags`).
///
/// Needs the crate feature `http`.
///
/// Sends the last `ETag` as `If-None-Match`, so an unchanged document costs a
/// `304` and nothing else; honours `Retry-After` on 429/503; backs off on
/// errors; never gives up.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use flagyard::PollingSource;
///
/// let source = PollingSource::builder("http://127.0.0.1:8013/v1/flags")
///     .interval(Duration::from_secs(10))
///     .sdk_key("my-sdk-key")
///     .build()?;
/// # Ok::<(), flagyard::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PollingSource {
    settings: PollingSourceBuilder,
    client: reqwest::Client,
}

/// Configures a [`PollingSource`]; [`build`](Self::build) checks the URL and
/// the headers.
#[derive(Debug, Clone)]
pub struct PollingSourceBuilder {
    url: String,
    interval: Duration,
    options: NetworkOptions,
}

impl PollingSource {
    /// Polls `url` (every 30 s unless set otherwise).
    pub fn builder(url: impl Into<String>) -> PollingSourceBuilder {
        PollingSourceBuilder {
            url: url.into(),
            interval: Duration::from_secs(30),
            options: NetworkOptions::default(),
        }
    }
}

impl PollingSourceBuilder {
    flagyard_core::setters! {
        /// How often to poll (default 30 s).
        interval(interval: Duration) => interval = interval;
    }

    network_builder_methods!();

    /// The source, or what is wrong with its URL or headers.
    pub fn build(self) -> Result<PollingSource, BuildError> {
        let client = self.options.http_client("poll", &self.url)?;
        Ok(PollingSource {
            settings: self,
            client,
        })
    }
}

impl PollingSource {
    async fn poll(self, updates: Arc<dyn SourceUpdates>) {
        let from = self.describe();
        let PollingSource { settings, client } = self;
        let PollingSourceBuilder {
            url,
            interval,
            options,
        } = settings;
        let mut backoff = Backoff::new(options.reconnect.clone());
        let mut etag: Option<String> = None;
        loop {
            // The whole request is bounded too: a poll must not hang.
            let mut request = client.get(&url).timeout(options.read_timeout);
            if let Some(etag) = &etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            let wait = match request.send().await {
                Err(e) => {
                    updates.error(network_error(&from, true, e));
                    backoff.failed()
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    match status {
                        200 => {
                            let new_etag = response
                                .headers()
                                .get(ETAG)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string);
                            let header_version = response
                                .headers()
                                .get("x-flagyard-version")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse::<u64>().ok());
                            match read_capped(response, options.max_payload, &from).await {
                                Ok(body) => match decode(&body, options.max_payload, &from) {
                                    Ok((version, document)) => {
                                        backoff.connected();
                                        etag = new_etag;
                                        match version.or(header_version) {
                                            Some(v) => updates.versioned_document(document, v),
                                            None => updates.document(document),
                                        }
                                        interval
                                    }
                                    Err(e) => {
                                        updates.error(e);
                                        backoff.failed()
                                    }
                                },
                                Err(e) => {
                                    updates.error(e);
                                    backoff.failed()
                                }
                            }
                        }
                        304 => {
                            backoff.connected();
                            updates.recovered();
                            interval
                        }
                        s if is_auth_status(s) => {
                            updates.error(network_error(
                                &from,
                                false,
                                format!("the server refused the credentials ({s})"),
                            ));
                            backoff.refused()
                        }
                        429 | 503 => {
                            let after = retry_after(response.headers());
                            updates.error(network_error(
                                &from,
                                true,
                                format!("status {status}, retry after {after:?} s"),
                            ));
                            after.map_or_else(|| backoff.failed(), Duration::from_secs)
                        }
                        s => {
                            updates.error(network_error(
                                &from,
                                true,
                                format!("unexpected status {s}"),
                            ));
                            backoff.failed()
                        }
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Reads a body, refusing more than `max` bytes without buffering them all.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
    from: &str,
) -> Result<String, flagyard_core::ProviderError> {
    let too_big = |size: String| {
        flagyard_core::ProviderError::new(
            flagyard_core::ErrorOrigin::Parser,
            false,
            format!("{from}: payload dropped: {size} bytes, over the {max}-byte cap"),
        )
    };
    if let Some(n) = response.content_length().filter(|n| *n as usize > max) {
        return Err(too_big(n.to_string()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| network_error(from, true, e))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_big(format!("more than {max}")));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|e| {
        flagyard_core::ProviderError::new(
            flagyard_core::ErrorOrigin::Parser,
            false,
            format!("{from}: payload dropped: not UTF-8: {e}"),
        )
    })
}

impl Source for PollingSource {
    fn describe(&self) -> String {
        format!("poll:{}", self.settings.url)
    }

    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
        Box::pin(self.poll(updates))
    }
}
