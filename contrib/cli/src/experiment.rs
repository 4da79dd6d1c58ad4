//! `flagyard experiment`: A/B experiments through the admin API — create,
//! list, stop, delete, and results as a table (or the server's JSON).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::admin::ApiArgs;
use crate::table;

/// `flagyard experiment` options.
#[derive(Debug, Args)]
pub(crate) struct ExperimentArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    action: ExperimentAction,
}

#[derive(Debug, Subcommand)]
enum ExperimentAction {
    /// Start an experiment on a flag: its users are counted from now on.
    Create {
        /// The flag whose variants are compared.
        flag: String,
        /// A tracking event name (a conversion), or `name:value` (the sum of
        /// its values per user). Repeat for several.
        #[arg(long = "metric", required = true)]
        metrics: Vec<String>,
        /// The variant the others are compared with (default: the first in
        /// alphabetical order).
        #[arg(long)]
        control: Option<String>,
        /// The environment whose flag gives the configured split.
        #[arg(long, short = 'e')]
        environment: Option<String>,
    },
    /// Every experiment.
    List,
    /// Stop counting: exposures and conversions after now are ignored.
    Stop {
        /// The flag.
        flag: String,
    },
    /// Delete an experiment and its tallies (the events stay).
    Delete {
        /// The flag.
        flag: String,
    },
    /// The results: per variant and metric, the lift against the control,
    /// its 95 % interval, the p-value, and the sample-ratio check.
    Results {
        /// The flag.
        flag: String,
        /// Print the server's JSON instead of the tables.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn experiment(args: ExperimentArgs) -> Result<ExitCode, String> {
    let api = &args.api;
    let print = |text: &str| {
        println!("{text}");
        Ok(())
    };
    match &args.action {
        ExperimentAction::Create {
            flag,
            metrics,
            control,
            environment,
        } => {
            let mut body = json!({ "flag": flag, "metrics": metrics });
            if let Some(control) = control {
                body["control"] = json!(control);
            }
            if let Some(environment) = environment {
                body["environment"] = json!(environment);
            }
            api.send(
                reqwest::Method::POST,
                api.url(["v1", "admin", "experiments"])?,
                Some(body.to_string()),
                print,
            )
        }
        ExperimentAction::List => api.send(
            reqwest::Method::GET,
            api.url(["v1", "admin", "experiments"])?,
            None,
            print,
        ),
        ExperimentAction::Stop { flag } => api.send(
            reqwest::Method::POST,
            api.url(["v1", "admin", "experiments", flag, "stop"])?,
            None,
            print,
        ),
        ExperimentAction::Delete { flag } => api.send(
            reqwest::Method::DELETE,
            api.url(["v1", "admin", "experiments", flag])?,
            None,
            |_| {
                println!("experiment on {flag} deleted");
                Ok(())
            },
        ),
        ExperimentAction::Results { flag, json } => api.send(
            reqwest::Method::GET,
            api.url(["v1", "admin", "experiments", flag])?,
            None,
            |text| {
                if *json {
                    println!("{text}");
                } else {
                    let results: Value = serde_json::from_str(text)
                        .map_err(|e| format!("the server's results are not JSON: {e}"))?;
                    print!("{}", results_tables(&results));
                }
                Ok(())
            },
        ),
    }
}

fn percent(x: &Value) -> String {
    x.as_f64()
        .map_or("-".into(), |x| format!("{:.1} %", x * 100.0))
}

fn signed_percent(x: &Value) -> String {
    x.as_f64()
        .map_or("-".into(), |x| format!("{:+.1} %", x * 100.0))
}

fn number(x: &Value, decimals: usize) -> String {
    x.as_f64().map_or("-".into(), |x| format!("{x:.decimals$}"))
}

fn interval(ci: &Value, show: impl Fn(f64) -> String) -> String {
    match (ci[0].as_f64(), ci[1].as_f64()) {
        (Some(lo), Some(hi)) => format!("{} to {}", show(lo), show(hi)),
        _ => "-".into(),
    }
}

fn p_value(x: &Value) -> String {
    match x.as_f64() {
        Some(p) if p < 0.0001 => format!("{p:.1e}"),
        Some(p) => format!("{p:.4}"),
        None => "-".into(),
    }
}

/// The results as text: a header, one table per metric, the sample-ratio
/// check and the summary sentences.
fn results_tables(results: &Value) -> String {
    let experiment = &results["experiment"];
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let mut out = format!(
        "experiment on {} (environment {}, control {}), {}\n",
        text(&experiment["flag"]),
        text(&experiment["environment"]),
        text(&results["control"]),
        if experiment["stop"].is_null() {
            "running"
        } else {
            "stopped"
        },
    );
    out.push_str(&format!(
        "{} users counted, {} excluded (exposed to more than one variant)\n",
        results["users"], results["excluded"]
    ));
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    let signed = |x: f64| format!("{:+.1} %", x * 100.0);
    for metric in results["metrics"].as_array().into_iter().flatten() {
        let value = metric["kind"] == "value";
        out.push_str(&format!(
            "\n{} ({})\n",
            text(&metric["name"]),
            text(&metric["kind"])
        ));
        let header = if value {
            [
                "VARIANT", "USERS", "TOTAL", "MEAN", "95 % CI", "LIFT", "95 % CI", "P-VALUE",
            ]
        } else {
            [
                "VARIANT",
                "USERS",
                "CONVERTED",
                "RATE",
                "95 % CI",
                "LIFT",
                "95 % CI",
                "P-VALUE",
            ]
        };
        let mut rows = vec![header.map(String::from)];
        for v in metric["variants"].as_array().into_iter().flatten() {
            let versus = &v["versusControl"];
            let (lift, lift_ci, p) = if versus.is_null() {
                ("(control)".to_string(), "-".to_string(), "-".to_string())
            } else {
                (
                    signed_percent(&versus["relative"]),
                    interval(&versus["relativeCi"], signed),
                    p_value(&versus["pValue"]),
                )
            };
            let (third, fourth, ci) = if value {
                (
                    number(&v["total"], 2),
                    number(&v["mean"], 3),
                    interval(&v["meanCi"], |x| format!("{x:.3}")),
                )
            } else {
                (
                    v["converted"].to_string(),
                    percent(&v["rate"]),
                    interval(&v["rateCi"], pct),
                )
            };
            rows.push([
                text(&v["variant"]),
                v["users"].to_string(),
                third,
                fourth,
                ci,
                lift,
                lift_ci,
                p,
            ]);
        }
        out.push_str(&table::render(&rows, &[1, 2, 3]));
    }
    let srm = &results["sampleRatio"];
    out.push('\n');
    if srm["checked"] == true {
        let observed: Vec<String> = srm["observed"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(variant, users)| format!("{variant} {users}"))
            .collect();
        let expected: Vec<String> = srm["expected"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(variant, share)| format!("{variant} {}", percent(share)))
            .collect();
        out.push_str(&format!(
            "sample ratio: {} for {} configured, p = {}: {}\n",
            observed.join(", "),
            expected.join(", "),
            p_value(&srm["pValue"]),
            if srm["mismatch"] == true {
                "MISMATCH"
            } else {
                "as configured"
            }
        ));
    } else {
        out.push_str(&format!(
            "sample ratio: not checked ({})\n",
            text(&srm["reason"])
        ));
    }
    for sentence in results["summary"].as_array().into_iter().flatten() {
        out.push_str(&format!("{}\n", text(sentence)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_read_as_tables() {
        let results = json!({
            "experiment": {"flag": "banner-color", "environment": "default", "start": 1},
            "control": "red", "users": 200, "excluded": 3,
            "metrics": [{"name": "purchase_completed", "kind": "conversion", "variants": [
                {"variant": "red", "users": 100, "converted": 30, "rate": 0.3, "rateCi": [0.22, 0.4]},
                {"variant": "green", "users": 100, "converted": 40, "rate": 0.4, "rateCi": [0.31, 0.5],
                 "versusControl": {"absolute": 0.1, "relative": 0.3333, "relativeCi": [-0.05, 0.86],
                                   "pValue": 0.14, "significant": false}}]}],
            "sampleRatio": {"checked": true, "expected": {"green": 0.5, "red": 0.5},
                            "observed": {"green": 100, "red": 100}, "pValue": 1.0, "mismatch": false},
            "summary": ["green converts 33.3 % better than red"]
        });
        let text = results_tables(&results);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("banner-color") && lines[0].contains("running"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("200 users counted, 3 excluded"),
            "{text}"
        );
        let green = lines
            .iter()
            .find(|l| l.starts_with("green"))
            .expect("green row");
        assert!(
            green.contains("40.0 %") && green.contains("+33.3 %"),
            "{green}"
        );
        assert!(
            green.contains("-5.0 % to +86.0 %") && green.ends_with("0.1400"),
            "{green}"
        );
        assert!(text.contains("as configured"), "{text}");
    }
}
