//! The provider's costs beside the anchors measured in the same run:
//! - the OpenFeature client over a provider returning a constant (the SDK's own
//!   cost) versus the same client over Flagyard;
//! - the synchronous path with and without exposure events recorded, beside the
//!   `ArcSwap<HashMap>` floor;
//! - 1 versus 2 threads reading (scaling).
//!
//! Run: `cargo bench -p flagyard --bench provider`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use flagyard::core::EvaluationContext;
use flagyard::{FlagyardProvider, NoopSink};
use open_feature::provider::{FeatureProvider, ProviderMetadata, ResolutionDetails};
use open_feature::{EvaluationContext as OfContext, EvaluationResult, OpenFeature, StructValue};

const DOC: &str = r#"{"flags": {
  "static-bool": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
  "email-rule": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                 "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}}
}}"#;

/// The anchor: a provider that answers a constant.
struct ConstantProvider(ProviderMetadata);

#[async_trait]
impl FeatureProvider for ConstantProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.0
    }
    async fn resolve_bool_value(
        &self,
        _: &str,
        _: &OfContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        Ok(ResolutionDetails::new(true))
    }
    async fn resolve_int_value(
        &self,
        _: &str,
        _: &OfContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        Ok(ResolutionDetails::new(1))
    }
    async fn resolve_float_value(
        &self,
        _: &str,
        _: &OfContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        Ok(ResolutionDetails::new(1.0))
    }
    async fn resolve_string_value(
        &self,
        _: &str,
        _: &OfContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        Ok(ResolutionDetails::new("x".to_string()))
    }
    async fn resolve_struct_value(
        &self,
        _: &str,
        _: &OfContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        Ok(ResolutionDetails::new(StructValue::default()))
    }
}

/// The email of user `i` of the pool: one in ten at example.com.
fn email(i: usize) -> String {
    let domain = if i.is_multiple_of(10) {
        "example.com"
    } else {
        "mail.test"
    };
    format!("user{i}@{domain}")
}

fn users() -> Vec<EvaluationContext> {
    (0..10_000)
        .map(|i| {
            EvaluationContext::new()
                .with_targeting_key(format!("user-{i}"))
                .with_attribute("email", email(i))
        })
        .collect()
}

fn of_users() -> Vec<OfContext> {
    (0..10_000)
        .map(|i| {
            OfContext::default()
                .with_targeting_key(format!("user-{i}"))
                .with_custom_field("email", email(i))
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let flagyard = FlagyardProvider::from_document(DOC).expect("valid");
    let recording = FlagyardProvider::builder()
        .bootstrap_document(DOC)
        .offline(true)
        .sink(NoopSink)
        .build()
        .expect("provider builds");
    let recording_all = FlagyardProvider::builder()
        .bootstrap_document(DOC)
        .offline(true)
        .sink(NoopSink)
        .dedup_exposures(false)
        .build()
        .expect("provider builds");
    let (constant_client, flagyard_client) = runtime.block_on(async {
        let mut api = OpenFeature::singleton_mut().await;
        api.set_named_provider(
            "constant",
            ConstantProvider(ProviderMetadata::new("constant")),
        )
        .await;
        api.set_named_provider("flagyard", flagyard.clone()).await;
        (
            api.create_named_client("constant"),
            api.create_named_client("flagyard"),
        )
    });
    let users = users();
    let of_users = of_users();
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 1) % 10_000;
        i
    };

    let mut group = c.benchmark_group("provider");
    group.bench_function("openfeature/constant-provider", |b| {
        b.iter(|| {
            let ctx = &of_users[next()];
            runtime.block_on(constant_client.get_bool_value(
                black_box("static-bool"),
                Some(ctx),
                None,
            ))
        })
    });
    group.bench_function("openfeature/flagyard/static-bool", |b| {
        b.iter(|| {
            let ctx = &of_users[next()];
            runtime.block_on(flagyard_client.get_bool_value(
                black_box("static-bool"),
                Some(ctx),
                None,
            ))
        })
    });
    group.bench_function("openfeature/flagyard/ends-with-rule", |b| {
        b.iter(|| {
            let ctx = &of_users[next()];
            runtime.block_on(flagyard_client.get_bool_value(
                black_box("email-rule"),
                Some(ctx),
                None,
            ))
        })
    });

    let floor: ArcSwap<HashMap<String, bool>> =
        ArcSwap::from_pointee([("static-bool".to_string(), true)].into_iter().collect());
    group.bench_function("floor/hashmap-bool", |b| {
        b.iter(|| {
            black_box(&users[next()]);
            black_box(floor.load().get(black_box("static-bool")).copied())
        })
    });
    group.bench_function("sync/static-bool", |b| {
        b.iter(|| flagyard.get_bool(black_box("static-bool"), false, &users[next()]))
    });
    group.bench_function("sync/ends-with-rule", |b| {
        b.iter(|| flagyard.get_bool(black_box("email-rule"), false, &users[next()]))
    });
    group.bench_function("sync+exposures/static-bool", |b| {
        b.iter(|| recording.get_bool(black_box("static-bool"), false, &users[next()]))
    });
    group.bench_function("sync+exposures/ends-with-rule", |b| {
        b.iter(|| recording.get_bool(black_box("email-rule"), false, &users[next()]))
    });
    group.bench_function("sync+exposures-no-dedup/static-bool", |b| {
        b.iter(|| recording_all.get_bool(black_box("static-bool"), false, &users[next()]))
    });
    group.finish();

    let mut threads = c.benchmark_group("threads");
    let users = Arc::new(users);
    for n in [1usize, 2] {
        let provider = flagyard.clone();
        let users = Arc::clone(&users);
        threads.bench_function(format!("sync/ends-with-rule/{n}-thread"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..n {
                        let (provider, users) = (&provider, &users);
                        s.spawn(move || {
                            for k in 0..iters as usize {
                                black_box(provider.get_bool(
                                    "email-rule",
                                    false,
                                    &users[(k * 7 + t * 13) % 10_000],
                                ));
                            }
                        });
                    }
                });
                // Time per call of the whole machine: wall time / calls made.
                start.elapsed() / n as u32
            })
        });
    }
    threads.finish();
}

criterion_group! {
    name = provider;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(provider);
