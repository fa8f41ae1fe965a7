//! `rewind hash --repo DIR --path P [REV]`: an app's config hash at a
//! revision, read offline from the repository's objects (no checkout
//! needed). Also the helpers the other offline commands share.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rewind_git::GitTree;
use rewind_manifest::ManifestError;

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

pub fn run(args: &HashArgs) -> anyhow::Result<ExitCode> {
    let repo = match open_repo(&args.repo) {
        Ok(repo) => repo,
        Err(code) => return Ok(code),
    };
    let tree = match tree_at(&repo, &args.rev) {
        Ok(tree) => tree,
        Err(code) => return Ok(code),
    };
    match rewind_manifest::config_hash(&tree, &args.path) {
        Ok(hash) => {
            println!("{hash}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => manifest_failure(e),
    }
}

/// A one-line reason on stderr and exit code 2 (usage).
pub fn usage(reason: impl std::fmt::Display) -> ExitCode {
    eprintln!("rewind: {reason}");
    ExitCode::from(2)
}

/// Opens the repository at (or above) `dir`; a missing one is a usage error.
pub fn open_repo(dir: &std::path::Path) -> Result<git2::Repository, ExitCode> {
    git2::Repository::discover(dir).map_err(|e| {
        usage(format_args!(
            "{} is not a Git repository: {}",
            dir.display(),
            e.message()
        ))
    })
}

/// The tree of `rev`; an unknown revision is a usage error.
pub fn tree_at<'r>(repo: &'r git2::Repository, rev: &str) -> Result<GitTree<'r>, ExitCode> {
    GitTree::at_rev(repo, rev)
        .map_err(|e| usage(format_args!("unknown revision {rev:?}: {}", e.message())))
}

/// Maps a manifest error: a wrong app path is a usage error (2), anything
/// else an error (1).
pub fn manifest_failure(e: ManifestError) -> anyhow::Result<ExitCode> {
    match e {
        ManifestError::AppNotFound { .. } | ManifestError::InvalidPath { .. } => Ok(usage(e)),
        other => Err(other).context("cannot read the app's manifests"),
    }
}
