//! The flagd-testbed evaluation cases, run through the compiled evaluator.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use flagyard_core::{
    CompileOptions, EvaluationContext, FractionalVersion, RequestedType, Snapshot,
};
use serde::Deserialize;
use serde_json::{Map, Value};

/// One line of `flagd-eval-cases.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    /// `file:line` of the Gherkin row.
    pub id: String,
    /// The feature file.
    pub feature: String,
    /// Gherkin tags, e.g. `@fractional-v3`.
    pub tags: Vec<String>,
    /// Flag file, relative to the data directory.
    pub flags_file: String,
    /// The flag key.
    pub flag: String,
    /// `boolean`, `string`, `integer`, `float` or `object`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The code default.
    pub default: Value,
    /// The evaluation context (`targetingKey` plus attributes).
    pub context: Value,
    /// What must come out.
    pub expect: Expect,
}

/// Expectations of one case; absent fields are not checked.
#[derive(Debug, Clone, Deserialize)]
pub struct Expect {
    /// The resolved value.
    pub value: Option<Value>,
    /// The reason (`STATIC`, `DEFAULT`, ...).
    pub reason: Option<String>,
    /// The error code.
    pub error_code: Option<String>,
    /// The exact flag metadata.
    pub metadata: Option<Map<String, Value>>,
    /// Whether the metadata must be empty.
    pub metadata_empty: Option<bool>,
}

/// A tag profile of the testbed: which `fractional` behaviour is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// flagd today: excludes `@fractional-v1`, `@fractional-v3`, `@deprecated`.
    V2,
    /// The CBOR ADR: excludes `@fractional-v1`, `@fractional-v2`, `@deprecated`.
    V3,
}

impl Profile {
    /// The tags this profile leaves out.
    pub fn excluded_tags(self) -> &'static [&'static str] {
        match self {
            Profile::V2 => &["@fractional-v1", "@fractional-v3", "@deprecated"],
            Profile::V3 => &["@fractional-v1", "@fractional-v2", "@deprecated"],
        }
    }

    /// The fractional hashing this profile runs with.
    pub fn fractional(self) -> FractionalVersion {
        match self {
            Profile::V2 => FractionalVersion::V2,
            Profile::V3 => FractionalVersion::V3,
        }
    }

    /// Whether a case belongs to this profile.
    pub fn includes(self, case: &Case) -> bool {
        !case
            .tags
            .iter()
            .any(|t| self.excluded_tags().contains(&t.as_str()))
    }
}

/// Pass/fail counts per feature file, and the failures in detail.
#[derive(Debug, Default)]
pub struct Report {
    /// `feature → (passed, failed)`.
    pub per_feature: BTreeMap<String, (usize, usize)>,
    /// One line per failed case.
    pub failures: Vec<String>,
}

impl Report {
    /// Total passed.
    pub fn passed(&self) -> usize {
        self.per_feature.values().map(|(p, _)| p).sum()
    }
    /// Total failed.
    pub fn failed(&self) -> usize {
        self.per_feature.values().map(|(_, f)| f).sum()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (feature, (passed, failed)) in &self.per_feature {
            writeln!(f, "  {feature}: {passed} passed, {failed} failed")?;
        }
        for failure in &self.failures {
            writeln!(f, "  FAIL {failure}")?;
        }
        write!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

/// Reads every case of `flagd-eval-cases.jsonl`.
pub fn load_cases(dir: &Path) -> Result<Vec<Case>, String> {
    let path = dir.join("flagd-eval-cases.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Runs every case of a profile.
pub fn run_profile(dir: &Path, profile: Profile) -> Result<Report, String> {
    let cases = load_cases(dir)?;
    let options = CompileOptions::default().fractional(profile.fractional());
    let mut snapshots: HashMap<String, Snapshot> = HashMap::new();
    let mut report = Report::default();
    for case in cases.iter().filter(|c| profile.includes(c)) {
        if !snapshots.contains_key(&case.flags_file) {
            let path = dir.join(&case.flags_file);
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let snapshot = Snapshot::parse_with(&text, &options)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            snapshots.insert(case.flags_file.clone(), snapshot);
        }
        let snapshot = &snapshots[&case.flags_file];
        let entry = report.per_feature.entry(case.feature.clone()).or_default();
        match check_case(snapshot, case) {
            Ok(()) => entry.0 += 1,
            Err(why) => {
                entry.1 += 1;
                report
                    .failures
                    .push(format!("{} ({}): {why}", case.id, case.flag));
            }
        }
    }
    Ok(report)
}

/// Evaluates one case and compares it with its expectations.
pub fn check_case(snapshot: &Snapshot, case: &Case) -> Result<(), String> {
    let ty: RequestedType = case.kind.parse().map_err(|e| format!("{e}"))?;
    let ctx = EvaluationContext::from_json(case.context.clone()).map_err(|e| e.to_string())?;
    let details = snapshot
        .resolve_as(&case.flag, ty, &case.default, &ctx)
        .map_err(|e| e.to_string())?;
    let got = details.to_json();
    let mismatch =
        |what: &str, want: &dyn std::fmt::Debug| format!("{what}: want {want:?}, got {got}");
    if let Some(want) = &case.expect.value
        && !same_value(want, &details.value)
    {
        return Err(mismatch("value", want));
    }
    if let Some(want) = &case.expect.reason
        && details.reason.as_str() != want
    {
        return Err(mismatch("reason", want));
    }
    if let Some(want) = &case.expect.error_code
        && details.error_code().map(|c| c.as_str()) != Some(want.as_str())
    {
        return Err(mismatch("error code", want));
    }
    if let Some(want) = &case.expect.metadata {
        let have: Map<String, Value> = details
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        if want.len() != have.len()
            || want
                .iter()
                .any(|(k, v)| !have.get(k).is_some_and(|h| same_value(v, h)))
        {
            return Err(mismatch("metadata", want));
        }
    }
    if case.expect.metadata_empty == Some(true) && !details.metadata.is_empty() {
        return Err(mismatch("metadata", &"empty"));
    }
    Ok(())
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}
