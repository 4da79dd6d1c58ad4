//! OtlpSink against an OTLP/HTTP receiver on loopback that decodes each
//! request with the official `opentelemetry-proto` types: exposures arrive as
//! `feature_flag.evaluation` log records with OpenFeature's semantic-convention
//! attributes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flagyard::core::{EvaluationContext, ExposureMode};
use flagyard::{FlagyardProvider, OtlpSink};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;

type Records = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

/// The receiver: every log record's event name and string attributes.
async fn receiver() -> (String, Records) {
    let records: Records = Arc::default();
    let got = Arc::clone(&records);
    let app = axum::Router::new().route(
        "/v1/logs",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let got = Arc::clone(&got);
                async move {
                    assert_eq!(headers["content-type"], "application/x-protobuf");
                    let request =
                        ExportLogsServiceRequest::decode(body).expect("an OTLP logs request");
                    for resource in &request.resource_logs {
                        let service = resource
                            .resource
                            .as_ref()
                            .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                            .and_then(|a| a.value.as_ref()?.value.clone());
                        assert_eq!(service, Some(AnyValue::StringValue("checkout".into())));
                        for scope in &resource.scope_logs {
                            for record in &scope.log_records {
                                let attributes = record
                                    .attributes
                                    .iter()
                                    .filter_map(|a| match a.value.as_ref()?.value.as_ref()? {
                                        AnyValue::StringValue(s) => {
                                            Some((a.key.clone(), s.clone()))
                                        }
                                        _ => None,
                                    })
                                    .collect();
                                got.lock()
                                    .expect("lock")
                                    .push((record.event_name.clone(), attributes));
                            }
                        }
                    }
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/v1/logs", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposures_reach_an_otlp_receiver_with_the_semantic_convention_attributes() {
    let (url, records) = receiver().await;
    let sink = OtlpSink::builder(url)
        .service_name("checkout")
        .build()
        .expect("sink");
    let provider = FlagyardProvider::builder()
        .bootstrap_document(
            r#"{"flags": {"new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false},
               "defaultVariant": "off", "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "on", "off"]}}},
               "metadata": {"flagSetId": "shop"}}"#,
        )
        .sink(sink)
        .exposures(ExposureMode::Full)
        .build()
        .expect("provider");
    for i in 0..20_u32 {
        let tier = if i.is_multiple_of(4) { "gold" } else { "basic" };
        let user = EvaluationContext::new()
            .with_targeting_key(format!("user-{i}"))
            .with_attribute("tier", tier);
        provider.get_bool("new-checkout", false, &user);
    }
    let closer = provider.clone();
    tokio::task::spawn_blocking(move || closer.close())
        .await
        .expect("closed");
    // Dropped inside async code: the sink's runtime must not block here.
    drop(provider);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while records.lock().expect("lock").len() < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "20 records within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let records = records.lock().expect("lock");
    assert_eq!(records.len(), 20);
    for (name, attributes) in records.iter() {
        assert_eq!(name, "feature_flag.evaluation");
        assert_eq!(attributes["feature_flag.key"], "new-checkout");
        assert_eq!(attributes["feature_flag.result.reason"], "targeting_match");
        assert_eq!(attributes["feature_flag.provider.name"], "flagyard");
        assert_eq!(attributes["feature_flag.set.id"], "shop");
        let user: usize = attributes["feature_flag.context.id"]
            .trim_start_matches("user-")
            .parse()
            .expect("user number");
        let expected = if user.is_multiple_of(4) { "on" } else { "off" };
        assert_eq!(
            attributes["feature_flag.result.variant"], expected,
            "{attributes:?}"
        );
    }
}
