//! `rewind hash --repo DIR --path P [REV]`: an app's config hash at a
//! revision, read offline from the repository's objects (no checkout
//! needed). Also the helpers the other offline commands share.

use std::path::PathBuf;
use std::process::ExitCode;

use rewind_git::GitTree;
use rewind_manifest::ManifestError;
use serde_json::json;

use super::output::{Failure, Output};

#[derive(Debug, clap::Args)]
pub struct HashArgs {
    /// The GitOps repository: a checkout or a bare repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The app's path inside the repository (`apps/checkout/overlays/prod`).
    #[arg(long)]
    pub path: String,
    /// The revision: anything `git rev-parse` accepts.
    #[arg(default_value = "HEAD")]
    pub rev: String,
}

pub fn run(args: &HashArgs, output: Output) -> anyhow::Result<ExitCode> {
    let repo = open_repo(&args.repo)?;
    let tree = tree_at(&repo, &args.rev)?;
    let hash = rewind_manifest::config_hash(&tree, &args.path).map_err(manifest_failure)?;
    output.print(
        &json!({"path": args.path, "rev": args.rev, "config_hash": hash.to_string()}),
        || println!("{hash}"),
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens the repository at (or above) `dir`; a missing one is a usage error.
pub fn open_repo(dir: &std::path::Path) -> anyhow::Result<git2::Repository> {
    git2::Repository::discover(dir).map_err(|e| {
        Failure::usage(format_args!(
            "{} is not a Git repository: {}",
            dir.display(),
            e.message()
        ))
        .into()
    })
}

/// The tree of `rev`; an unknown revision is a usage error.
pub fn tree_at<'r>(repo: &'r git2::Repository, rev: &str) -> anyhow::Result<GitTree<'r>> {
    GitTree::at_rev(repo, rev).map_err(|e| {
        Failure::usage(format_args!("unknown revision {rev:?}: {}", e.message())).into()
    })
}

/// Maps a manifest error: a wrong app path is a usage error (2), anything
/// else an error (1).
pub fn manifest_failure(e: ManifestError) -> anyhow::Error {
    match e {
        ManifestError::AppNotFound { .. } | ManifestError::InvalidPath { .. } => {
            Failure::usage(e).into()
        }
        other => anyhow::Error::new(other).context("cannot read the app's manifests"),
    }
}
