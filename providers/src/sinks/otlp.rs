//! [`OtlpSink`]: exposures as OpenTelemetry log records (events named
//! `feature_flag.evaluation`) under OpenFeature's semantic conventions, sent
//! over OTLP/HTTP (protobuf) with the opentelemetry crates, so they reach any
//! observability stack.

use std::collections::HashMap;
use std::sync::Arc;

use flagyard_core::{Event, ExposureEvent, Sink, SinkError};
use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};

use crate::BuildError;

/// Sends every exposure to an OTLP/HTTP endpoint (`http://collector:4318/v1/logs`)
/// as a log record with the attributes `feature_flag.key`,
/// `feature_flag.result.variant`, `feature_flag.result.reason`,
/// `feature_flag.context.id`, `feature_flag.set.id` (the flag's `flagSetId`),
/// `feature_flag.version` and `feature_flag.provider.name` (`flagyard`). Tracking events and summaries
/// are not sent (they have no convention yet).
///
/// Needs the crate feature `otel`. Records are batched by the OpenTelemetry
/// SDK's batch processor on a thread of its own; `close()` flushes them.
///
/// # Example
/// ```
/// use flagyard::{FlagyardProvider, OtlpSink};
///
/// let sink = OtlpSink::builder("http://127.0.0.1:4318/v1/logs")
///     .service_name("checkout")
///     .build()?;
/// let provider = FlagyardProvider::builder()
///     .bootstrap_document(r#"{"flags": {}}"#)
///     .sink(sink)
///     .build()?;
/// # Ok::<(), flagyard::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct OtlpSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    provider: SdkLoggerProvider,
    logger: SdkLogger,
    /// Runs the HTTP requests (reqwest needs tokio; the SDK's batch thread
    /// has none). Taken by `drop`, which must not block inside async code.
    runtime: Option<tokio::runtime::Runtime>,
    endpoint: String,
}

/// Configures an [`OtlpSink`].
#[derive(Debug, Clone)]
pub struct OtlpSinkBuilder {
    endpoint: String,
    headers: HashMap<String, String>,
    service_name: String,
}

impl OtlpSink {
    /// Sends to `endpoint`, the full OTLP/HTTP logs URL (`…/v1/logs`).
    pub fn builder(endpoint: impl Into<String>) -> OtlpSinkBuilder {
        OtlpSinkBuilder {
            endpoint: endpoint.into(),
            headers: HashMap::new(),
            service_name: "flagyard".into(),
        }
    }
}

impl OtlpSinkBuilder {
    /// Adds a request header (an API key of the observability backend).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    flagyard_core::setters! {
        /// The `service.name` resource attribute (default `flagyard`).
        service_name(name: impl Into<String>) => service_name = name.into();
    }

    /// The sink, or what is wrong with its endpoint.
    pub fn build(self) -> Result<OtlpSink, BuildError> {
        let what = format!("otlp-sink:{}", self.endpoint);
        let config = |cause: crate::core::BoxError| BuildError::Config {
            what: what.clone(),
            cause,
        };
        let client = crate::NetworkOptions::default().http_client(&what, &self.endpoint)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("flagyard-otlp")
            .enable_all()
            .build()
            .map_err(|e| config(e.into()))?;
        let exporter = opentelemetry_otlp::LogExporter::builder()
            .with_http()
            .with_http_client(TokioClient {
                client,
                runtime: runtime.handle().clone(),
            })
            .with_endpoint(&self.endpoint)
            .with_headers(self.headers)
            .build()
            .map_err(|e| config(e.into()))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(self.service_name)
            .build();
        let provider = SdkLoggerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let logger = provider.logger("flagyard");
        Ok(OtlpSink {
            inner: Arc::new(Inner {
                provider,
                logger,
                runtime: Some(runtime),
                endpoint: self.endpoint,
            }),
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// reqwest on the sink's runtime, for the exporter.
#[derive(Debug)]
struct TokioClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for TokioClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move {
                let request = reqwest::Request::try_from(request)?;
                let response = client.execute(request).await?;
                let mut answer = http::Response::builder().status(response.status());
                if let Some(headers) = answer.headers_mut() {
                    *headers = response.headers().clone();
                }
                let body = response.bytes().await?;
                Ok(answer.body(body)?)
            })
            .await?
    }
}

impl OtlpSink {
    fn emit(&self, exposure: &ExposureEvent) {
        let logger = &self.inner.logger;
        let mut record = logger.create_log_record();
        record.set_event_name("feature_flag.evaluation");
        record.set_timestamp(exposure.at);
        record.set_severity_number(Severity::Info);
        record.add_attribute("feature_flag.key", exposure.flag.clone());
        if let Some(variant) = &exposure.variant {
            record.add_attribute("feature_flag.result.variant", variant.clone());
        }
        record.add_attribute(
            "feature_flag.result.reason",
            exposure.reason.as_str().to_ascii_lowercase(),
        );
        if let Some(key) = &exposure.targeting_key {
            record.add_attribute("feature_flag.context.id", key.clone());
        }
        if let Some(version) = exposure.version {
            record.add_attribute("feature_flag.version", version.to_string());
        }
        if let Some(set) = &exposure.flag_set_id {
            record.add_attribute("feature_flag.set.id", set.clone());
        }
        record.add_attribute("feature_flag.provider.name", AnyValue::from("flagyard"));
        logger.emit(record);
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> SinkError {
        SinkError::new(
            format!("otlp-sink:{}", self.inner.endpoint),
            true,
            format!("{what}: {e}"),
        )
    }
}

impl Sink for OtlpSink {
    fn record(&self, event: Event) {
        if let Event::Exposure(exposure) = &event {
            self.emit(exposure);
        }
    }

    fn flush(&self) -> Result<(), SinkError> {
        self.inner
            .provider
            .force_flush()
            .map_err(|e| self.error("flush", e))
    }

    fn close(&self) -> Result<(), SinkError> {
        let flushed = self.flush();
        let shut = self
            .inner
            .provider
            .shutdown()
            .map_err(|e| self.error("shutdown", e));
        flushed.and(shut)
    }
}
