//! The `rewind` command: the service (`serve`), a guided `demo`, clients of a
//! running service (`apps`, `undo`, `approve`, ...) and offline tools that
//! work on a checkout (`hash`, `diff`, `doctor`).
//!
//! # Layout
//!
//! One file per command under `commands/`, chosen by the [`Command`] enum;
//! `commands/output.rs` prints (`--output table|json|yaml`, a global flag)
//! and maps failures to exit codes; `commands/progress.rs` shows a spinner
//! on a terminal; `logging` sets up tracing. Exit codes follow the
//! contract: 0 done, 1 error, 2 usage, 3 refused.

#![forbid(unsafe_code)]

mod commands;
pub(crate) mod logging;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use commands::output::{Failure, Output, report_failure};

/// GitOps rollbacks as reviewed commits.
#[derive(Debug, Parser)]
#[command(name = "rewind", version, about, propagate_version = true)]
struct Cli {
    /// How to print results and errors: aligned tables for people, or JSON
    /// or YAML for scripts (`text` is the same as `table`).
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::completions::CompletionsArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    // The demo logs to a file it names: its story owns the terminal.
    if !matches!(cli.command, Command::Demo(_)) {
        logging::init();
    }
    // One TLS stack for every client in the process (sqlx, reqwest,
    // octocrab): rustls with ring. Installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let output = cli.output;
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Config(command) => commands::config::run(command, output),
        Command::Apps(args) => commands::remote::apps(args, output),
        Command::History(args) => commands::remote::history(args, output),
        Command::Undo(args) => commands::remote::undo(args, output),
        Command::Rollbacks(args) => commands::remote::rollbacks(args, output),
        Command::Show(args) => commands::remote::show(args, output),
        Command::Approve(args) => commands::remote::act(args, "approve", output),
        Command::Merge(args) => commands::remote::merge(args, output),
        Command::Cancel(args) => commands::remote::act(args, "cancel", output),
        Command::Audit(args) => commands::remote::audit(args, output),
        Command::Token(command) => commands::remote::token(command, output),
        Command::Hash(args) => commands::hash::run(&args, output),
        Command::Diff(args) => commands::diff::run(&args, output),
        Command::Doctor(args) => commands::doctor::run(&args, output),
        Command::Healthcheck(args) => commands::healthcheck::run(args, output),
        Command::Completions(args) => Ok(commands::completions::run(&args, Cli::command())),
    };
    match result {
        Ok(code) => code,
        Err(e) => report_failure(&e, output),
    }
}

/// `--help` and `--version` print and exit 0; a usage error exits 2, as
/// `{error, detail}` too when `--output json` (or yaml) was asked for.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                2
            } else {
                0
            },
        );
    }
    let output = requested_output(std::env::args().skip(1));
    if output.is_structured() {
        let rendered = e.to_string();
        let detail = rendered
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_owned();
        return report_failure(&Failure::usage(detail).into(), output);
    }
    let _ = e.print();
    ExitCode::from(2)
}

/// The `--output` asked for on a command line clap could not parse.
fn requested_output(args: impl Iterator<Item = String>) -> Output {
    use clap::ValueEnum as _;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--output") {
            Some("") => args.peek().cloned(),
            Some(rest) => rest.strip_prefix('=').map(str::to_owned),
            None => None,
        };
        if let Some(output) = value.and_then(|v| Output::from_str(&v, true).ok()) {
            return output;
        }
    }
    Output::Table
}
