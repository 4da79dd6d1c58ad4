//! `flagyard validate` and `flagyard eval`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use flagyard_core::{
    CompileOptions, EvaluationContext, FractionalVersion, RequestedType, Snapshot,
};
use serde_json::{Value, json};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["flag", "batch", "all"])))]
pub(crate) struct EvalArgs {
    /// The flag document.
    #[arg(long)]
    flags: PathBuf,
    /// Evaluate one flag (needs --type and --default).
    #[arg(long, requires_all = ["kind", "default"])]
    flag: Option<String>,
    /// The requested type: bool|boolean, int|integer, float, string, object.
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<RequestedType>,
    /// The code default, as JSON (`false`, `0`, `"text"`, `{}`).
    #[arg(long)]
    default: Option<String>,
    /// The evaluation context as a JSON object (`targetingKey` plus attributes).
    #[arg(long)]
    context: Option<String>,
    /// Read JSON lines `{"flag", "type", "default", "context"}` from stdin; write one result per line.
    #[arg(long, conflicts_with_all = ["flag", "all"])]
    batch: bool,
    /// Evaluate every flag for one context.
    #[arg(long, conflicts_with_all = ["flag", "batch"])]
    all: bool,
    /// The fractional hashing: v2 (flagd today, default) or v3 (CBOR ADR).
    #[arg(long, default_value = "v2")]
    fractional: FractionalVersion,
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

pub(crate) fn validate(files: &[PathBuf]) -> Result<ExitCode, String> {
    let mut clean = true;
    let mut stdout = std::io::stdout().lock();
    for file in files {
        let lines: Vec<String> = match read(file) {
            Err(e) => vec![e],
            Ok(text) => match Snapshot::parse(&text) {
                Err(e) => vec![format!("{}: {e}", file.display())],
                Ok(snapshot) => {
                    // Lints warn (flagd accepts these documents); they do
                    // not fail the file.
                    if let Ok(document) = serde_json::from_str::<Value>(&text) {
                        for lint in flagyard_core::lint(&document) {
                            writeln!(stdout, "{}: warning: {lint}", file.display())
                                .map_err(|e| e.to_string())?;
                        }
                    }
                    snapshot
                        .problems()
                        .iter()
                        .map(|p| format!("{}: {p}", file.display()))
                        .collect()
                }
            },
        };
        clean &= lines.is_empty();
        for line in lines {
            writeln!(stdout, "{line}").map_err(|e| e.to_string())?;
        }
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn parse_json(text: &str, what: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{what} is not valid JSON: {e}"))
}

fn context_from(value: Value) -> Result<EvaluationContext, String> {
    EvaluationContext::from_json(value).map_err(|e| e.to_string())
}

pub(crate) fn eval(args: &EvalArgs) -> Result<ExitCode, String> {
    let text = read(&args.flags)?;
    let options = CompileOptions::default().fractional(args.fractional);
    let snapshot = Snapshot::parse_with(&text, &options)
        .map_err(|e| format!("{}: {e}", args.flags.display()))?;
    for problem in snapshot.problems() {
        eprintln!("warning: {}: {problem}", args.flags.display());
    }
    let context = match &args.context {
        Some(text) => context_from(parse_json(text, "--context")?)?,
        None => EvaluationContext::new(),
    };
    let mut stdout = std::io::stdout().lock();
    let mut emit = |line: String| writeln!(stdout, "{line}").map_err(|e| e.to_string());
    if args.batch {
        let stdin = std::io::stdin().lock();
        for line in stdin.lines() {
            let line = line.map_err(|e| format!("reading stdin: {e}"))?;
            // Every input line gets its answer line, a blank one too, so
            // output line N always answers input line N.
            emit(match eval_line(&snapshot, &line) {
                Ok(details) => details,
                Err(message) => json!({ "error": message }).to_string(),
            })?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.all {
        let evaluations: Vec<(&str, _)> = snapshot
            .keys()
            .into_iter()
            .map(|key| (key, snapshot.evaluate(key, &context)))
            .collect();
        let all: BTreeMap<&str, _> = evaluations
            .iter()
            .map(|(k, e)| (*k, e.as_resolution()))
            .collect();
        emit(to_line(&all)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(flag), Some(kind), Some(default)) = (&args.flag, args.kind, &args.default) else {
        return Err("--flag needs --type and --default".into());
    };
    let default = parse_json(default, "--default").map_err(|e| {
        if default.trim_start().starts_with(['"', '{', '[']) {
            e
        } else {
            format!("{e} (a string default needs JSON quotes: --default '\"{default}\"')")
        }
    })?;
    let details = snapshot
        .resolve_as(flag, kind, &default, &context)
        .map_err(|e| e.to_string())?;
    emit(to_line(&details)?)?;
    Ok(ExitCode::SUCCESS)
}

fn to_line(value: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("cannot encode the result: {e}"))
}

/// One `--batch` line: `{"flag", "type", "default", "context"}`.
fn eval_line(snapshot: &Snapshot, line: &str) -> Result<String, String> {
    if line.trim().is_empty() {
        return Err(
            "empty input line: expected {\"flag\", \"type\", \"default\", \"context\"}".into(),
        );
    }
    let request = parse_json(line, "input line")?;
    let field = |name: &str| request.get(name);
    let flag = field("flag")
        .and_then(Value::as_str)
        .ok_or("input line needs a string \"flag\"")?;
    let kind: RequestedType = field("type")
        .and_then(Value::as_str)
        .ok_or("input line needs a string \"type\"")?
        .parse()
        .map_err(|e| format!("{e}"))?;
    let default = field("default").ok_or("input line needs a \"default\"")?;
    let context = context_from(field("context").cloned().unwrap_or(Value::Null))?;
    let details = snapshot
        .resolve_as(flag, kind, default, &context)
        .map_err(|e| e.to_string())?;
    to_line(&details)
}
