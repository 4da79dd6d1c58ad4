//! `flagyard pancake`: flask-pancake's switches, flags and samples in Redis.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use flagyard::storage::pancake::{
    DEFAULT_EXTENSION, DEFAULT_GROUP, Kind, Pancake, PancakeError, PancakeState,
};

/// `flagyard pancake` options.
#[derive(Debug, Args)]
pub(crate) struct PancakeArgs {
    /// The Redis that flask-pancake and Flagyard share.
    #[arg(
        long,
        env = "FLAGYARD_PANCAKE_REDIS",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
    /// The flask-pancake extension name.
    #[arg(long, default_value = DEFAULT_EXTENSION)]
    extension: String,
    /// Recorded in the history as who made the change.
    #[arg(long, env = "USER", default_value = "cli")]
    actor: String,
    #[command(subcommand)]
    command: PancakeCommand,
}

#[derive(Debug, Subcommand)]
enum PancakeCommand {
    /// Switches: global on/off.
    Switch {
        #[command(subcommand)]
        action: OnOff,
    },
    /// Flags: global on/off plus per-user (per-group) overrides.
    Flag {
        #[command(subcommand)]
        action: FlagAction,
    },
    /// Samples: on for a ratio (0–100) of checks.
    Sample {
        #[command(subcommand)]
        action: SampleAction,
    },
    /// Every switch, flag and sample with its current value.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The newest changes made through Flagyard.
    History {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
enum OnOff {
    /// Turn on (created if needed).
    Enable { name: String },
    /// Turn off (created if needed).
    Disable { name: String },
    /// Delete the stored value (apps fall back to their declared default).
    Clear { name: String },
}

#[derive(Debug, Subcommand)]
enum FlagAction {
    /// The flag's global value.
    #[command(flatten)]
    Global(OnOff),
    /// Turn on for one user (or object of --group).
    EnableUser(UserOverride),
    /// Turn off for one user (or object of --group).
    DisableUser(UserOverride),
    /// Remove one user's override.
    ClearUser(UserOverride),
    /// Remove every override of the group.
    ClearAllUsers {
        name: String,
        #[arg(long, default_value = DEFAULT_GROUP)]
        group: String,
    },
}

/// A flag and one object of a group.
#[derive(Debug, Args)]
struct UserOverride {
    name: String,
    id: String,
    #[arg(long, default_value = DEFAULT_GROUP)]
    group: String,
}

#[derive(Debug, Subcommand)]
enum SampleAction {
    /// Set the ratio, 0–100 (created if needed).
    Set { name: String, ratio: f64 },
    /// Delete the stored ratio.
    Clear { name: String },
}

pub(crate) fn pancake(args: PancakeArgs) -> Result<ExitCode, String> {
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(run(args))
}

async fn run(args: PancakeArgs) -> Result<ExitCode, String> {
    let pancake = Pancake::open(&args.redis, &args.extension)
        .await
        .map_err(|e| e.to_string())?;
    let actor = args.actor.as_str();
    let upper = |name: &str| name.to_uppercase();
    let done = match args.command {
        PancakeCommand::List { json } => {
            let state = pancake.list().await.map_err(|e| e.to_string())?;
            if json {
                let text = serde_json::to_string_pretty(&state).map_err(|e| e.to_string())?;
                println!("{text}");
            } else {
                print!("{}", table(&state));
            }
            for problem in &state.problems {
                eprintln!("flagyard: {problem}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        PancakeCommand::History { limit } => {
            for entry in pancake.history(limit).await.map_err(|e| e.to_string())? {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(entry.at_ms);
                println!(
                    "{:>5}  {}  {:<10} {:<16} {}",
                    entry.version,
                    humantime::format_rfc3339_seconds(at),
                    entry.actor,
                    entry.action,
                    entry.detail
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        PancakeCommand::Switch { action } => global(&pancake, Kind::Switch, action, actor).await,
        PancakeCommand::Flag { action } => match action {
            FlagAction::Global(action) => global(&pancake, Kind::Flag, action, actor).await,
            FlagAction::EnableUser(o) => set_user(&pancake, o, true, actor).await,
            FlagAction::DisableUser(o) => set_user(&pancake, o, false, actor).await,
            FlagAction::ClearUser(UserOverride { name, id, group }) => pancake
                .clear_user(&name, &group, &id, actor)
                .await
                .map(|()| format!("flag {}: override for {group} {id} cleared", upper(&name))),
            FlagAction::ClearAllUsers { name, group } => pancake
                .clear_all_users(&name, &group, actor)
                .await
                .map(|n| format!("flag {}: {n} {group} override(s) cleared", upper(&name))),
        },
        PancakeCommand::Sample { action } => match action {
            SampleAction::Set { name, ratio } => pancake
                .set_sample(&name, ratio, actor)
                .await
                .map(|()| format!("sample {} set to {ratio}%", upper(&name))),
            SampleAction::Clear { name } => pancake
                .clear(Kind::Sample, &name, actor)
                .await
                .map(|()| format!("sample {} cleared", upper(&name))),
        },
    };
    match done {
        Ok(line) => {
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("flagyard: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A switch's or flag's global value: on, off or cleared.
async fn global(
    pancake: &Pancake,
    kind: Kind,
    action: OnOff,
    actor: &str,
) -> Result<String, PancakeError> {
    let (result, name, done) = match action {
        OnOff::Enable { name } => (
            pancake.set_active(kind, &name, true, actor).await,
            name,
            "enabled",
        ),
        OnOff::Disable { name } => (
            pancake.set_active(kind, &name, false, actor).await,
            name,
            "disabled",
        ),
        OnOff::Clear { name } => (pancake.clear(kind, &name, actor).await, name, "cleared"),
    };
    result?;
    Ok(format!("{kind} {} {done}", name.to_uppercase()))
}

/// One object's override of a flag, on or off.
async fn set_user(
    pancake: &Pancake,
    o: UserOverride,
    active: bool,
    actor: &str,
) -> Result<String, PancakeError> {
    let UserOverride { name, id, group } = o;
    pancake.set_user(&name, &group, &id, active, actor).await?;
    let done = if active { "enabled" } else { "disabled" };
    Ok(format!(
        "flag {} {done} for {group} {id}",
        name.to_uppercase()
    ))
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// One line per switch, flag and sample.
fn table(state: &PancakeState) -> String {
    let mut out = String::new();
    for (name, on) in &state.switches {
        out.push_str(&format!("switch  {name:<24} {}\n", on_off(*on)));
    }
    for (name, flag) in &state.flags {
        let global = flag.active.map_or("(default)", on_off);
        let overrides: Vec<String> = flag
            .overrides
            .iter()
            .flat_map(|(group, ids)| {
                ids.iter()
                    .map(move |(id, on)| format!("{group}:{id}={}", on_off(*on)))
            })
            .collect();
        let line = format!("flag    {name:<24} {global:<9} {}", overrides.join(" "));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for (name, ratio) in &state.samples {
        out.push_str(&format!("sample  {name:<24} {ratio}%\n"));
    }
    out
}
