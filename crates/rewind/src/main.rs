//! The `rewind` command: the service (`serve`), a guided `demo`, clients of a
//! running service (`apps`, `undo`, `approve`, ...) and offline tools that
//! work on a checkout (`hash`, `diff`, `doctor`).
//!
//! # Layout
//!
//! One file per command under `commands/`, chosen by the [`Command`] enum;
//! `logging` sets up tracing. Exit codes follow the contract: 0 done,
//! 1 error, 2 usage, 3 refused.

#![forbid(unsafe_code)]

mod commands;
mod logging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// GitOps rollbacks as reviewed commits.
#[derive(Debug, Parser)]
#[command(name = "rewind", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service.
    Serve(commands::serve::ServeArgs),
    /// Build a throw-away GitOps repo and database, deploy a good and a bad
    /// version, fire an alert and show the rollback rewind proposes.
    Demo(commands::demo::DemoArgs),
    /// Show or check the configuration.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// List apps with their current and known-good deployments.
    Apps(commands::remote::AppsArgs),
    /// Deployments of an app, newest first.
    History(commands::remote::HistoryArgs),
    /// Propose a rollback of an app.
    Undo(commands::remote::UndoArgs),
    /// List rollbacks.
    Rollbacks(commands::remote::RollbacksArgs),
    /// Show one rollback with its diff, risks and timeline.
    Show(commands::remote::IdArgs),
    /// Approve a rollback.
    Approve(commands::remote::IdArgs),
    /// Merge an approved rollback (`--override --reason TEXT`: admin only,
    /// without the approvals).
    Merge(commands::remote::MergeArgs),
    /// Cancel a rollback that is not merged yet.
    Cancel(commands::remote::IdArgs),
    /// The audit log, newest first: who did what, when, via what.
    Audit(commands::remote::AuditArgs),
    /// Manage API tokens stored in rewind's database (admin).
    #[command(subcommand)]
    Token(commands::remote::TokenCommand),
    /// Print an app's config hash at a revision (offline, on a checkout).
    Hash(commands::hash::HashArgs),
    /// Semantic diff of an app between two revisions (offline).
    Diff(commands::diff::DiffArgs),
    /// Rollback-readiness findings across a repository (offline).
    Doctor(commands::doctor::DoctorArgs),
    /// Exit 0 when the service's `/readyz` answers 200 (container health checks).
    Healthcheck(commands::healthcheck::HealthcheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    // One TLS stack for every client in the process (sqlx, reqwest,
    // octocrab): rustls with ring. Installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Config(command) => commands::config::run(command),
        Command::Apps(args) => commands::remote::apps(args),
        Command::History(args) => commands::remote::history(args),
        Command::Undo(args) => commands::remote::undo(args),
        Command::Rollbacks(args) => commands::remote::rollbacks(args),
        Command::Show(args) => commands::remote::show(args),
        Command::Approve(args) => commands::remote::act(args, "approve"),
        Command::Merge(args) => commands::remote::merge(args),
        Command::Cancel(args) => commands::remote::act(args, "cancel"),
        Command::Audit(args) => commands::remote::audit(args),
        Command::Token(command) => commands::remote::token(command),
        Command::Hash(args) => commands::hash::run(&args),
        Command::Diff(args) => commands::diff::run(&args),
        Command::Doctor(args) => commands::doctor::run(&args),
        Command::Healthcheck(args) => commands::healthcheck::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rewind: {e:#}");
            ExitCode::from(1)
        }
    }
}
