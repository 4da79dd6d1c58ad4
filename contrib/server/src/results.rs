//! An experiment's results ([`ExperimentResults`]): per variant and metric
//! the users, rates and means with their intervals, each treatment against
//! the control, the sample-ratio check against the split the flag's
//! `fractional` rule configures, and one sentence per comparison.

use std::collections::BTreeMap;

use flagyard_storage::experiments::{Experiment, MetricKind, Tally};
use serde::Serialize;
use serde_json::Value;

use crate::statistics::{
    self, Comparison, Moments, SRM_ALPHA, chi_square, two_proportions, welch, wilson,
};

/// What `GET /v1/admin/experiments/{flag}` answers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExperimentResults {
    experiment: Experiment,
    /// The variant the others are compared with.
    control: Option<String>,
    /// Users counted, over every variant.
    users: u64,
    /// Users exposed to more than one variant (excluded).
    excluded: u64,
    /// Counted users per variant, the control first.
    variants: Vec<VariantUsers>,
    metrics: Vec<MetricResults>,
    sample_ratio: SampleRatio,
    /// One sentence per treatment and metric, and the sample-ratio warning.
    summary: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VariantUsers {
    variant: String,
    users: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricResults {
    name: String,
    kind: MetricKind,
    variants: Vec<VariantMetric>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VariantMetric {
    variant: String,
    users: u64,
    /// Users who tracked the metric at least once.
    converted: u64,
    /// converted ÷ users.
    rate: Option<f64>,
    /// Wilson's 95 % interval of the rate.
    rate_ci: Option<[f64; 2]>,
    /// Value metrics: the total of the values.
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<f64>,
    /// Value metrics: the mean per user (0 for users without any).
    #[serde(skip_serializing_if = "Option::is_none")]
    mean: Option<f64>,
    /// Value metrics: the mean's 95 % interval (Student's t).
    #[serde(skip_serializing_if = "Option::is_none")]
    mean_ci: Option<[f64; 2]>,
    /// Against the control (absent for the control): conversions for a
    /// conversion metric, means per user for a value metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    versus_control: Option<Comparison>,
}

/// The sample-ratio check.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SampleRatio {
    /// Whether the check ran (the flag has one `fractional` split and users).
    checked: bool,
    /// Why it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The configured share per variant.
    expected: BTreeMap<String, f64>,
    /// Counted users per variant of the split.
    observed: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chi_square: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p_value: Option<f64>,
    /// p < 0.001: the split served is not the one configured.
    mismatch: bool,
}

/// The `[variant, weight]` pairs of a flag's `fractional` rule, if its
/// targeting has exactly one (weights default to 1).
fn configured_split(flag: &Value) -> Result<Vec<(String, f64)>, String> {
    fn find<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    if key == "fractional" {
                        out.push(inner);
                    }
                    find(inner, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| find(item, out)),
            _ => {}
        }
    }
    let mut rules = Vec::new();
    find(flag.get("targeting").unwrap_or(&Value::Null), &mut rules);
    let rule = match rules.as_slice() {
        [] => return Err("the flag's targeting has no fractional split".into()),
        [rule] => *rule,
        _ => return Err("the flag's targeting has more than one fractional split".into()),
    };
    let buckets: Vec<(String, f64)> = rule
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|bucket| {
            let bucket = bucket.as_array()?;
            let variant = bucket.first()?.as_str()?.to_string();
            let weight = bucket.get(1).map_or(Some(1.0), Value::as_f64)?;
            Some((variant, weight))
        })
        .collect();
    let total: f64 = buckets.iter().map(|(_, w)| w).sum();
    if buckets.len() < 2 || total <= 0.0 {
        return Err("the flag's fractional split has fewer than two weighted variants".into());
    }
    Ok(buckets)
}

fn sample_ratio(tally: &Tally, flag: Option<&Value>) -> SampleRatio {
    let mut check = SampleRatio {
        checked: false,
        reason: None,
        expected: BTreeMap::new(),
        observed: BTreeMap::new(),
        chi_square: None,
        p_value: None,
        mismatch: false,
    };
    let split = match flag.map(configured_split) {
        None => Err("the flag is not in the experiment's environment".to_string()),
        Some(split) => split,
    };
    let split = match split {
        Ok(split) => split,
        Err(reason) => {
            check.reason = Some(reason);
            return check;
        }
    };
    let total: f64 = split.iter().map(|(_, w)| w).sum();
    let mut observed = Vec::new();
    let mut shares = Vec::new();
    for (variant, weight) in &split {
        let users = tally.variants.get(variant).map_or(0, |v| v.users);
        check.expected.insert(variant.clone(), weight / total);
        check.observed.insert(variant.clone(), users);
        observed.push(users);
        shares.push(weight / total);
    }
    match chi_square(&observed, &shares) {
        Some((statistic, p)) => {
            check.checked = true;
            check.chi_square = statistic.is_finite().then_some(statistic);
            check.p_value = Some(p);
            check.mismatch = p < SRM_ALPHA;
        }
        None => check.reason = Some("no users in the split yet".into()),
    }
    check
}

fn percent(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// One sentence for a treatment against the control.
fn sentence(
    metric: &str,
    kind: MetricKind,
    variant: &str,
    control: &str,
    c: &Comparison,
) -> String {
    let verdict = match c.p_value {
        Some(p) if p < statistics::ALPHA => format!("significant (p = {p:.3})"),
        Some(p) => format!("not significant (p = {p:.3})"),
        None => "not testable yet".to_string(),
    };
    let Some(relative) = c.relative else {
        return format!("{variant} against {control} on {metric}: no baseline yet; {verdict}");
    };
    let interval = c
        .relative_ci
        .map(|[lo, hi]| {
            format!(
                "; 95 % CI {}–{}",
                percent(lo).trim_end_matches(" %"),
                percent(hi)
            )
        })
        .unwrap_or_default();
    let size = percent(relative.abs());
    match kind {
        MetricKind::Conversion => {
            let direction = if relative >= 0.0 { "better" } else { "worse" };
            format!(
                "{variant} converts {size} {direction} than {control} on {metric}{interval}; {verdict}"
            )
        }
        MetricKind::Value => {
            let direction = if relative >= 0.0 { "higher" } else { "lower" };
            format!(
                "{variant}'s {metric} per user is {size} {direction} than {control}'s{interval}; {verdict}"
            )
        }
    }
}

impl ExperimentResults {
    /// Results from an experiment's tally; `flag`: the flag's definition in
    /// the experiment's environment (for the configured split).
    pub(crate) fn compute(
        experiment: Experiment,
        tally: &Tally,
        flag: Option<&Value>,
    ) -> ExperimentResults {
        let sample_ratio = sample_ratio(tally, flag);
        // The variants: counted ones and those the split names.
        let mut names: Vec<String> = tally.variants.keys().cloned().collect();
        for variant in sample_ratio.expected.keys() {
            if !names.contains(variant) {
                names.push(variant.clone());
            }
        }
        names.sort();
        let control = experiment
            .control
            .clone()
            .or_else(|| names.first().cloned());
        if let Some(control) = &control {
            if !names.contains(control) {
                names.push(control.clone());
            }
            names.sort_by_key(|name| name != control);
        }
        let users_of = |variant: &str| tally.variants.get(variant).map_or(0, |v| v.users);
        let metric_of = |variant: &str, metric: &str| {
            tally
                .variants
                .get(variant)
                .and_then(|v| v.metrics.get(metric))
                .cloned()
                .unwrap_or_default()
        };
        let mut summary = Vec::new();
        let metrics = experiment
            .metrics
            .iter()
            .map(|metric| {
                let control_tally = control
                    .as_deref()
                    .map(|c| (users_of(c), metric_of(c, &metric.name)));
                let variants = names
                    .iter()
                    .map(|variant| {
                        let users = users_of(variant);
                        let m = metric_of(variant, &metric.name);
                        let moments = Moments {
                            n: users,
                            sum: m.total,
                            sum_squares: m.total_squares,
                        };
                        let is_value = metric.kind == MetricKind::Value;
                        let versus_control = match (&control, control_tally.as_ref()) {
                            (Some(c), Some((control_users, cm))) if c != variant => {
                                let comparison = match metric.kind {
                                    MetricKind::Conversion => two_proportions(
                                        m.converted,
                                        users,
                                        cm.converted,
                                        *control_users,
                                    ),
                                    MetricKind::Value => welch(
                                        moments,
                                        Moments {
                                            n: *control_users,
                                            sum: cm.total,
                                            sum_squares: cm.total_squares,
                                        },
                                    ),
                                };
                                if let Some(comparison) = &comparison {
                                    summary.push(sentence(
                                        &metric.name,
                                        metric.kind,
                                        variant,
                                        c,
                                        comparison,
                                    ));
                                }
                                comparison
                            }
                            _ => None,
                        };
                        VariantMetric {
                            variant: variant.clone(),
                            users,
                            converted: m.converted,
                            rate: (users > 0).then(|| m.converted as f64 / users as f64),
                            rate_ci: wilson(m.converted, users),
                            total: is_value.then_some(m.total),
                            mean: if is_value { moments.mean() } else { None },
                            mean_ci: if is_value { moments.mean_ci() } else { None },
                            versus_control,
                        }
                    })
                    .collect();
                MetricResults {
                    name: metric.name.clone(),
                    kind: metric.kind,
                    variants,
                }
            })
            .collect();
        if sample_ratio.mismatch {
            let observed: Vec<String> =
                sample_ratio.observed.values().map(u64::to_string).collect();
            let expected: Vec<String> = sample_ratio
                .expected
                .values()
                .map(|share| format!("{:.0}", share * 100.0))
                .collect();
            summary.push(format!(
                "Sample ratio mismatch: {} users for a configured {} split (p = {:.1e}); the results may be biased",
                observed.join(" : "),
                expected.join(" : "),
                sample_ratio.p_value.unwrap_or(0.0)
            ));
        }
        ExperimentResults {
            control,
            users: tally.variants.values().map(|v| v.users).sum(),
            excluded: tally.excluded,
            variants: names
                .iter()
                .map(|variant| VariantUsers {
                    variant: variant.clone(),
                    users: users_of(variant),
                })
                .collect(),
            metrics,
            sample_ratio,
            summary,
            experiment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Users split 50/50 and converting at the same rate in both variants.
    fn null_experiment(seed: u64, users: u64) -> ExperimentResults {
        use flagyard_storage::experiments::{Metric, VariantTally};
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut tally = Tally::default();
        for _ in 0..users {
            let variant = if rng.bool() { "a" } else { "b" };
            let v: &mut VariantTally = tally.variants.entry(variant.into()).or_default();
            v.users += 1;
            if rng.f64() < 0.3 {
                v.metrics.entry("buy".into()).or_default().converted += 1;
            }
        }
        let experiment = Experiment {
            flag: "f".into(),
            metrics: vec![Metric {
                name: "buy".into(),
                kind: MetricKind::Conversion,
            }],
            control: Some("a".into()),
            environment: "default".into(),
            start: 0,
            stop: None,
            created_by: None,
        };
        let flag = json!({"targeting": {"fractional": [["a", 50], ["b", 50]]}});
        ExperimentResults::compute(experiment, &tally, Some(&flag))
    }

    #[test]
    fn of_twenty_null_experiments_at_most_two_look_significant() {
        let significant = (0..20)
            .filter(|&seed| {
                let results = null_experiment(seed, 4000);
                assert!(!results.sample_ratio.mismatch, "seed {seed}: a fair split");
                let b = &results.metrics[0].variants[1];
                assert_eq!(b.variant, "b");
                b.versus_control
                    .as_ref()
                    .and_then(|c| c.p_value)
                    .is_some_and(|p| p < 0.05)
            })
            .count();
        assert!(
            significant <= 2,
            "{significant} of 20 null experiments at p < 0.05"
        );
    }

    #[test]
    fn the_split_is_read_from_the_one_fractional_rule() {
        let flag = json!({"targeting": {"if": [{"==": [1, 1]},
            {"fractional": [{"var": "email"}, ["a", 25], ["b", 75]]}, "a"]}});
        assert_eq!(
            configured_split(&flag),
            Ok(vec![("a".into(), 25.0), ("b".into(), 75.0)])
        );
        let unweighted = json!({"targeting": {"fractional": [["a"], ["b"]]}});
        assert_eq!(
            configured_split(&unweighted),
            Ok(vec![("a".into(), 1.0), ("b".into(), 1.0)])
        );
        assert!(configured_split(&json!({"targeting": {}})).is_err());
        let two = json!({"targeting": {"if": [true, {"fractional": [["a"], ["b"]]},
            {"fractional": [["a"], ["b"]]}]}});
        assert!(configured_split(&two).is_err());
    }
}
