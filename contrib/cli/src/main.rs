//! `flagyard`: validate and evaluate flag documents, run the flag server, and
//! administer it.

mod admin;
mod config_file;
mod eval;
mod experiment;
mod pancake;
mod serve;
mod table;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Flagyard: feature flags evaluated locally.
#[derive(Debug, Parser)]
#[command(name = "flagyard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check flag documents: exit 0 when clean, 1 with one line per problem.
    Validate {
        /// Flag documents (flagd JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Evaluate flags and print the resolution details as JSON.
    Eval(eval::EvalArgs),
    /// Run the flag server (SQLite by default).
    Serve(Box<serve::ServeArgs>),
    /// Change flags on a running server through its admin API.
    Admin(admin::AdminArgs),
    /// A/B experiments on a running server: create, list, stop, delete, and
    /// read their results.
    Experiment(experiment::ExperimentArgs),
    /// flask-pancake's switches, flags and samples in Redis.
    Pancake(pancake::PancakeArgs),
    /// Follow a source as an app would: one JSON line per applied change and
    /// per status transition.
    Watch(watch::WatchArgs),
}

/// jemalloc returns freed memory to the system (see the `jemalloc` feature).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { files } => eval::validate(&files),
        Command::Eval(args) => eval::eval(&args),
        Command::Serve(args) => serve::serve(*args),
        Command::Admin(args) => admin::admin(args),
        Command::Experiment(args) => experiment::experiment(args),
        Command::Watch(args) => watch::watch(args),
        Command::Pancake(args) => pancake::pancake(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("flagyard: {message}");
            ExitCode::from(2)
        }
    }
}
