//! `rewind diff --repo DIR --path P FROM TO`: the semantic diff of an app
//! between two revisions (objects, fields, images) and the unified diff of
//! its input files; `--output json|yaml` prints the diff as data.

use std::path::PathBuf;
use std::process::ExitCode;

use super::hash::{manifest_failure, open_repo, tree_at};
use super::output::Output;

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
}

pub fn run(args: &DiffArgs, output: Output) -> anyhow::Result<ExitCode> {
    let repo = open_repo(&args.repo)?;
    let (from, to) = (tree_at(&repo, &args.from)?, tree_at(&repo, &args.to)?);
    let diff = rewind_manifest::semantic_diff(&from, &to, &args.path).map_err(manifest_failure)?;
    output.print(&diff, || print!("{}", diff.render_text()));
    Ok(ExitCode::SUCCESS)
}
