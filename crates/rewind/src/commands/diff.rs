//! `rewind diff --repo DIR --path P FROM TO`: the semantic diff of an app
//! between two revisions (objects, fields, images) and the unified diff of
//! its input files; `--output json` prints the diff as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use super::hash::{manifest_failure, open_repo, tree_at};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The GitOps repository: a checkout or a bare repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The app's path inside the repository.
    #[arg(long)]
    pub path: String,
    /// The revision to compare from.
    pub from: String,
    /// The revision to compare to.
    pub to: String,
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

pub fn run(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let repo = match open_repo(&args.repo) {
        Ok(repo) => repo,
        Err(code) => return Ok(code),
    };
    let (from, to) = match (tree_at(&repo, &args.from), tree_at(&repo, &args.to)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(code), _) | (_, Err(code)) => return Ok(code),
    };
    let diff = match rewind_manifest::semantic_diff(&from, &to, &args.path) {
        Ok(diff) => diff,
        Err(e) => return manifest_failure(e),
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&diff)?),
        Output::Text => print!("{}", diff.render_text()),
    }
    Ok(ExitCode::SUCCESS)
}
