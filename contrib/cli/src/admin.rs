//! `flagyard admin`: the admin API from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;

/// Where the admin API is and the token it takes (`flagyard admin`,
/// `flagyard experiment`).
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// The server's base URL.
    #[arg(long, env = "FLAGYARD_SERVER", default_value = "http://127.0.0.1:8013")]
    server: String,
    /// The admin token.
    #[arg(long, env = "FLAGYARD_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl ApiArgs {
    /// The URL of `segments` below the server's base (each percent-encoded).
    pub(crate) fn url<S: AsRef<str>>(
        &self,
        segments: impl IntoIterator<Item = S>,
    ) -> Result<reqwest::Url, String> {
        let base = server_url(&self.server)?;
        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|()| format!("--server '{base}': not a base URL"))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends one request with the token; on success hands the answer's text
    /// to `answered`, else prints the server's error (and its problems) and
    /// exits 1.
    pub(crate) fn send(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        body: Option<String>,
        answered: impl FnOnce(&str) -> Result<(), String>,
    ) -> Result<ExitCode, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        let (status, text) = runtime.block_on(async {
            let mut request = reqwest::Client::new().request(method, url.clone());
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body);
            }
            let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = response.status();
            let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
            Ok::<_, String>((status, text))
        })?;
        if status.is_success() {
            answered(&text)?;
            return Ok(ExitCode::SUCCESS);
        }
        let body = serde_json::from_str::<Value>(&text).ok();
        let message = body
            .as_ref()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(text);
        eprintln!("flagyard: {url}: {status}: {message}");
        for problem in body
            .as_ref()
            .and_then(|b| b["problems"].as_array())
            .into_iter()
            .flatten()
        {
            eprintln!(
                "flagyard:   {}: {}",
                problem["pointer"].as_str().unwrap_or_default(),
                problem["reason"].as_str().unwrap_or_default()
            );
        }
        Ok(ExitCode::from(1))
    }
}

/// `flagyard admin` options.
#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The environment the flag commands change and read (default: the
    /// server's `default` environment); for `events`, only the events
    /// collected there (default: every environment's).
    #[arg(long, short = 'e', env = "FLAGYARD_ENVIRONMENT")]
    environment: Option<String>,
    #[command(subcommand)]
    action: AdminAction,
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// Create or replace one flag: its definition from --json or --file.
    SetFlag {
        /// The flag key.
        key: String,
        /// The flag definition as JSON.
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        json: Option<String>,
        /// A file holding the flag definition.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Delete one flag.
    DeleteFlag {
        /// The flag key.
        key: String,
    },
    /// Replace the whole document with a file.
    PutDocument {
        /// The flag document.
        file: PathBuf,
    },
    /// Show the newest changes as a table: version, when (UTC), environment,
    /// who, what, and what changed.
    History {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only the changes of this flag.
        #[arg(long)]
        flag: Option<String>,
        /// Only the changes by this actor (a token's name).
        #[arg(long)]
        actor: Option<String>,
        /// Print the server's JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Print the document as an earlier version had it.
    ShowVersion {
        /// The version.
        version: u64,
    },
    /// Serve an earlier version's document again (a new version, recorded
    /// as a rollback).
    Rollback {
        /// The version to go back to.
        version: u64,
    },
    /// Show the collected events (one JSON object per line), newest last.
    Events(EventsArgs),
    /// Who the token belongs to: its name, role and environments.
    Whoami,
    /// List the environments, or create one.
    Environments {
        /// Create this environment (with an empty document).
        #[arg(long)]
        create: Option<String>,
    },
    /// Copy one flag (or, without FLAG, the whole document) from one
    /// environment to another; both histories record it.
    Promote {
        /// The flag; absent: the whole document.
        flag: Option<String>,
        /// The environment copied from.
        #[arg(long)]
        from: String,
        /// The environment copied to.
        #[arg(long)]
        to: String,
    },
    /// SDK keys and admin tokens (needs the admin role).
    #[command(subcommand)]
    Credentials(CredentialAction),
}

#[derive(Debug, Subcommand)]
enum CredentialAction {
    /// Every SDK key and admin token (never their tokens).
    List,
    /// A new SDK key reading one environment; prints it once.
    CreateKey {
        /// A label for it.
        name: String,
        /// The environment it reads.
        #[arg(long = "for", value_name = "ENVIRONMENT")]
        environment: String,
    },
    /// A new admin token; prints it once. Its name is the actor in history.
    CreateToken {
        /// Its name.
        name: String,
        /// viewer, editor or admin.
        #[arg(long)]
        role: String,
        /// An editor's environments (repeat; none: every one).
        #[arg(long = "may-edit", value_name = "ENVIRONMENT")]
        environments: Vec<String>,
    },
    /// Revoke one (requests refused at once, its streams closed).
    Revoke {
        /// The credential's id (`key_…`, `tok_…`).
        id: String,
    },
    /// A new token for one; the old one stops working at once.
    Rotate {
        /// The credential's id.
        id: String,
    },
}

/// `flagyard admin events` filters.
#[derive(Debug, Args)]
struct EventsArgs {
    /// Exposures (and summaries) of this flag.
    #[arg(long)]
    flag: Option<String>,
    /// Tracking events of this name.
    #[arg(long)]
    name: Option<String>,
    /// Events of this targeting key.
    #[arg(long)]
    key: Option<String>,
    /// exposure, tracking or summary.
    #[arg(long)]
    kind: Option<String>,
    /// How many of the newest to show first.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Every kept event, oldest first (instead of the newest `--limit`).
    #[arg(long, conflicts_with = "limit")]
    all: bool,
    /// Keep showing new events as they arrive (every second), until stopped.
    #[arg(long)]
    follow: bool,
}

pub(crate) fn admin(args: AdminArgs) -> Result<ExitCode, String> {
    let base = server_url(&args.api.server)?;
    let client = reqwest::Client::new();
    let read = |file: &PathBuf| {
        std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))
    };
    // The method, the path below the base as segments (each percent-encoded,
    // so a key with `/`, `?` or `#` stays one segment), and the body.
    // The flag commands' path: the environment's, or the default's.
    let scoped = |tail: &[&str]| -> Vec<String> {
        let mut path: Vec<String> = vec!["v1".into(), "admin".into()];
        if let Some(env) = &args.environment {
            path.extend(["environments".to_string(), env.clone()]);
        }
        path.extend(tail.iter().map(|s| s.to_string()));
        path
    };
    let fixed =
        |segments: &[&str]| -> Vec<String> { segments.iter().map(|s| s.to_string()).collect() };
    let json_body = |value: Value| Some(value.to_string());
    let (method, path, body): (reqwest::Method, Vec<String>, Option<String>) = match &args.action {
        AdminAction::SetFlag { key, json, file } => {
            let text = match (json, file) {
                (Some(json), _) => json.clone(),
                (None, Some(file)) => read(file)?,
                (None, None) => return Err("set-flag needs --json or --file".into()),
            };
            serde_json::from_str::<Value>(&text)
                .map_err(|e| format!("the flag definition is not JSON: {e}"))?;
            (reqwest::Method::PUT, scoped(&["flags", key]), Some(text))
        }
        AdminAction::DeleteFlag { key } => (reqwest::Method::DELETE, scoped(&["flags", key]), None),
        AdminAction::PutDocument { file } => (
            reqwest::Method::PUT,
            scoped(&["document"]),
            Some(read(file)?),
        ),
        AdminAction::History { .. } => (reqwest::Method::GET, scoped(&["history"]), None),
        AdminAction::ShowVersion { version } => (
            reqwest::Method::GET,
            scoped(&["versions", &version.to_string()]),
            None,
        ),
        AdminAction::Rollback { version } => (
            reqwest::Method::POST,
            scoped(&["rollback"]),
            json_body(serde_json::json!({ "version": version })),
        ),
        AdminAction::Whoami => (
            reqwest::Method::GET,
            fixed(&["v1", "admin", "whoami"]),
            None,
        ),
        AdminAction::Environments { create: None } => (
            reqwest::Method::GET,
            fixed(&["v1", "admin", "environments"]),
            None,
        ),
        AdminAction::Environments { create: Some(name) } => (
            reqwest::Method::POST,
            fixed(&["v1", "admin", "environments"]),
            json_body(serde_json::json!({ "name": name })),
        ),
        AdminAction::Promote { flag, from, to } => {
            let mut body = serde_json::json!({ "from": from });
            if let Some(flag) = flag {
                body["flag"] = Value::from(flag.as_str());
            }
            (
                reqwest::Method::POST,
                fixed(&["v1", "admin", "environments", to, "promote"]),
                json_body(body),
            )
        }
        AdminAction::Credentials(action) => match action {
            CredentialAction::List => (
                reqwest::Method::GET,
                fixed(&["v1", "admin", "credentials"]),
                None,
            ),
            CredentialAction::CreateKey { name, environment } => (
                reqwest::Method::POST,
                fixed(&["v1", "admin", "credentials"]),
                json_body(
                    serde_json::json!({"kind": "sdk", "name": name, "environment": environment}),
                ),
            ),
            CredentialAction::CreateToken {
                name,
                role,
                environments,
            } => (
                reqwest::Method::POST,
                fixed(&["v1", "admin", "credentials"]),
                json_body(serde_json::json!({
                    "kind": "admin", "name": name, "role": role, "environments": environments
                })),
            ),
            CredentialAction::Revoke { id } => (
                reqwest::Method::DELETE,
                fixed(&["v1", "admin", "credentials", id]),
                None,
            ),
            CredentialAction::Rotate { id } => (
                reqwest::Method::POST,
                fixed(&["v1", "admin", "credentials", id, "rotate"]),
                None,
            ),
        },
        // Pages and follows: a loop of its own.
        AdminAction::Events(filters) => {
            return events(
                &client,
                &base,
                args.api.token.as_deref(),
                args.environment.as_deref(),
                filters,
            );
        }
    };
    let mut url = args.api.url(path)?;
    let mut table = false;
    if let AdminAction::History {
        limit,
        flag,
        actor,
        json,
    } = &args.action
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("limit", &limit.to_string());
        if let Some(flag) = flag {
            query.append_pair("flag", flag);
        }
        if let Some(actor) = actor {
            query.append_pair("actor", actor);
        }
        table = !json;
    }
    args.api.send(method, url, body, |text| {
        let answer = serde_json::from_str::<Value>(text).ok();
        match &answer {
            Some(page) if table => print!("{}", history_table(page)),
            _ => println!("{text}"),
        }
        // What the lints found in an accepted write.
        if let Some(written) = &answer {
            for warning in written["warnings"].as_array().into_iter().flatten() {
                eprintln!(
                    "flagyard: warning: {}: {}",
                    warning["pointer"].as_str().unwrap_or_default(),
                    warning["reason"].as_str().unwrap_or_default()
                );
            }
        }
        Ok(())
    })
}

/// `flagyard admin events`: the newest events oldest first, then (with
/// `--follow`) each new one as it arrives.
fn events(
    client: &reqwest::Client,
    base: &reqwest::Url,
    token: Option<&str>,
    environment: Option<&str>,
    filters: &EventsArgs,
) -> Result<ExitCode, String> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| format!("--server '{base}': not a base URL"))?
        .pop_if_empty()
        .extend(["v1", "admin", "events"]);
    let filtered = |after: Option<u64>, limit: usize| {
        let mut url = url.clone();
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in [
                ("flag", &filters.flag),
                ("name", &filters.name),
                ("targetingKey", &filters.key),
                ("kind", &filters.kind),
            ] {
                if let Some(value) = value {
                    query.append_pair(name, value);
                }
            }
            if let Some(environment) = environment {
                query.append_pair("environment", environment);
            }
            query.append_pair("limit", &limit.to_string());
            if let Some(after) = after {
                query.append_pair("after", &after.to_string());
            }
        }
        url
    };
    let get = |url: reqwest::Url| async move {
        let mut request = client.get(url.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
        let page: Value =
            serde_json::from_str(&text).map_err(|e| format!("{url}: {status}: not JSON: {e}"))?;
        if !status.is_success() {
            let message = page["error"].as_str().unwrap_or(&text).to_string();
            return Err(format!("{url}: {status}: {message}"));
        }
        Ok::<Value, String>(page)
    };
    let print = |events: &[Value]| {
        for event in events {
            println!("{event}");
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let mut after = 0;
        if !filters.all {
            let page = get(filtered(None, filters.limit.clamp(1, 1000))).await?;
            let mut newest: Vec<Value> = page["events"].as_array().cloned().unwrap_or_default();
            newest.reverse();
            print(&newest);
            if !filters.follow {
                return Ok(ExitCode::SUCCESS);
            }
            after = newest.last().and_then(|e| e["id"].as_u64()).unwrap_or(0);
        }
        loop {
            let page = get(filtered(Some(after), 1000)).await?;
            let events = page["events"].as_array().cloned().unwrap_or_default();
            print(&events);
            after = page["next"].as_u64().unwrap_or(after);
            if events.len() < 1000 {
                if !filters.follow {
                    return Ok(ExitCode::SUCCESS);
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    })
}

/// The server's base URL from `--server` / `FLAGYARD_SERVER`: a full URL, or
/// `host:port` (then `http://`).
fn server_url(server: &str) -> Result<reqwest::Url, String> {
    let text = if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    };
    reqwest::Url::parse(&text).map_err(|e| format!("--server '{server}': not a URL: {e}"))
}

/// A history page (`{"history": [...]}`) as a table, newest first.
fn history_table(page: &Value) -> String {
    let mut rows = vec![
        [
            "VERSION",
            "WHEN (UTC)",
            "ENVIRONMENT",
            "WHO",
            "WHAT",
            "CHANGED",
        ]
        .map(String::from),
    ];
    for entry in page["history"].as_array().into_iter().flatten() {
        let at = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(entry["atMs"].as_u64().unwrap_or(0));
        let when = humantime::format_rfc3339_seconds(at)
            .to_string()
            .replace('T', " ")
            .trim_end_matches('Z')
            .to_string();
        let text = |key: &str| entry[key].as_str().unwrap_or_default().to_string();
        let what = match text("detail") {
            detail if detail.is_empty() => text("action"),
            detail => format!("{} {detail}", text("action")),
        };
        rows.push([
            entry["version"].as_u64().unwrap_or(0).to_string(),
            when,
            text("environment"),
            text("actor"),
            what,
            changed(&entry["diff"]),
        ]);
    }
    crate::table::render(&rows, &[0])
}

/// A diff in a few words: `flag banner: defaultVariant off → on`, `flag x
/// created`, `evaluator beta deleted`; `-` without one.
fn changed(diff: &Value) -> String {
    let Some(changes) = diff.as_array() else {
        return "-".into();
    };
    if changes.is_empty() {
        return "nothing".into();
    }
    let parts: Vec<String> = changes
        .iter()
        .map(|change| {
            let (kind, name) = ["flag", "evaluator", "field"]
                .iter()
                .find_map(|k| change[*k].as_str().map(|n| (*k, n)))
                .unwrap_or(("?", "?"));
            let (before, after) = (&change["before"], &change["after"]);
            match (before.is_null(), after.is_null()) {
                (true, _) => format!("{kind} {name} created"),
                (_, true) => format!("{kind} {name} deleted"),
                _ => {
                    let fields = changed_fields(before, after);
                    if fields.is_empty() {
                        format!("{kind} {name} changed")
                    } else {
                        format!("{kind} {name}: {}", fields.join(", "))
                    }
                }
            }
        })
        .collect();
    parts.join("; ")
}

/// The members that differ between two objects: `state ENABLED → DISABLED`
/// for short values, the member's name for the rest.
fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return Vec::new();
    };
    let mut names: Vec<&String> = b.keys().chain(a.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| b.get(*n) != a.get(*n))
        .map(|n| {
            let short = |v: Option<&Value>| match v {
                None => Some("(none)".to_string()),
                Some(Value::String(s)) if s.len() <= 24 => Some(s.clone()),
                Some(v @ (Value::Bool(_) | Value::Number(_))) => Some(v.to_string()),
                _ => None,
            };
            match (short(b.get(n)), short(a.get(n))) {
                (Some(x), Some(y)) => format!("{n} {x} → {y}"),
                _ => n.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_reads_as_a_table() {
        let page = serde_json::json!({"history": [
            {"version": 3, "atMs": 1764600000000u64, "environment": "default", "actor": "ada",
             "action": "set-flag", "detail": "banner",
             "diff": [{"flag": "banner", "before": {"state": "ENABLED", "defaultVariant": "off"},
                       "after": {"state": "ENABLED", "defaultVariant": "on"}}]},
            {"version": 2, "atMs": 1764590000000u64, "environment": "default", "actor": "seed",
             "action": "seed", "detail": ""}
        ]});
        let table = history_table(&page);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("VERSION  WHEN (UTC)"), "{table}");
        assert!(lines[1].contains("2025-12-01 14:40:00"), "{table}");
        assert!(lines[1].contains("set-flag banner"), "{table}");
        assert!(
            lines[1].ends_with("flag banner: defaultVariant off → on"),
            "{table}"
        );
        assert!(lines[2].ends_with("-"), "{table}");
    }
}
