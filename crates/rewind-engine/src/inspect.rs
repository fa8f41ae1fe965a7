//! What a commit means for an app, read from the repository cache: its
//! tree id, config hash and images; and what a rollback changes (semantic
//! and text diff, risks).

use std::sync::{Arc, Mutex};

use rewind_domain::{CommitId, ConfigHash, Risk, RollbackDiff};
use rewind_git::GitRepo;
use rewind_manifest::{CachedTree, InputsCache, ReadMemo, TreeSource};

use crate::{Engine, EngineError};

/// An app at one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub tree: String,
    pub config_hash: ConfigHash,
    pub images: Vec<String>,
}

/// What a rollback commit changes, as a reviewer sees it.
#[derive(Debug, Clone)]
pub(crate) struct Changes {
    pub diff: RollbackDiff,
    pub risks: Vec<Risk>,
    /// What rewind cannot render or trust at the commit rolled away from,
    /// one line each (`file (code: detail)`).
    pub current_problems: Vec<String>,
}

/// Makes sure `commit` is in the cache, fetching once if not.
fn ensure_commit(repo: &mut GitRepo, commit: &CommitId) -> Result<(), rewind_git::GitError> {
    if !repo.commit_exists(commit)? {
        repo.fetch()?;
    }
    Ok(())
}

impl Engine {
    /// The app at `commit`: tree id of its path, config hash and images.
    pub(crate) async fn snapshot(
        &self,
        commit: &CommitId,
        app_path: &str,
    ) -> Result<Snapshot, EngineError> {
        let (commit, app_path) = (commit.clone(), app_path.to_string());
        let snapshots = Arc::clone(&self.snapshots);
        self.git
            .with_repo(move |repo| Ok(snapshot_in(repo, &snapshots, &commit, &app_path)))
            .await?
    }

    /// The app at `commit`, or `None` when rewind cannot compute its config
    /// hash there (a reference escaping the repository): a commit to roll
    /// away from, not a reason to fail.
    pub(crate) async fn snapshot_if_readable(
        &self,
        commit: &CommitId,
        app_path: &str,
    ) -> Result<Option<Snapshot>, EngineError> {
        readable(commit, self.snapshot(commit, app_path).await)
    }

    /// [`Engine::snapshot_if_readable`] for several commits of one app: an
    /// answer per commit, in order. Read through a handle of their own
    /// ([`rewind_git::RepoCache::with_reader`]), so two workers resolve on
    /// two cores; a commit the cache lacks goes through the exclusive
    /// handle, which fetches.
    pub(crate) async fn snapshots_if_readable(
        &self,
        commits: Vec<CommitId>,
        app_path: &str,
    ) -> Result<Vec<Result<Option<Snapshot>, EngineError>>, EngineError> {
        let (path, snapshots) = (app_path.to_string(), Arc::clone(&self.snapshots));
        // `None`: not in the cache (yet).
        let (commits, read) =
            self.git
                .with_reader(move |repo| {
                    let mut read = Vec::with_capacity(commits.len());
                    for commit in &commits {
                        read.push(repo.commit_exists(commit)?.then(|| {
                            readable(commit, snapshot_read(repo, &snapshots, commit, &path))
                        }));
                    }
                    Ok((commits, read))
                })
                .await?;
        let mut answers = Vec::with_capacity(read.len());
        for (commit, answer) in commits.iter().zip(read) {
            answers.push(match answer {
                Some(answer) => answer,
                None => self.snapshot_if_readable(commit, app_path).await,
            });
        }
        Ok(answers)
    }

    /// The head of `git.branch` (after a fetch) and the app there, when
    /// readable.
    pub(crate) async fn head_snapshot(
        &self,
        app_path: &str,
    ) -> Result<(CommitId, Option<Snapshot>), EngineError> {
        let head = self.git.fetch().await?;
        let snapshot = self.snapshot_if_readable(&head, app_path).await?;
        Ok((head, snapshot))
    }

    /// Diff and risks of moving the app from `current` to `proposed`.
    pub(crate) async fn changes(
        &self,
        current: &CommitId,
        proposed: &CommitId,
        app_path: &str,
        other_apps: Vec<(String, String)>,
    ) -> Result<Changes, EngineError> {
        let (current, proposed, app_path) =
            (current.clone(), proposed.clone(), app_path.to_string());
        let inputs = Arc::clone(&self.inputs);
        self.git
            .with_repo(move |repo| {
                ensure_commit(repo, &current)?;
                ensure_commit(repo, &proposed)?;
                let from = repo.tree(&current)?;
                let to = repo.tree(&proposed)?;
                // A panic elsewhere cannot leave an entry half-written: each
                // is inserted whole.
                let mut inputs = inputs.lock().unwrap_or_else(|p| p.into_inner());
                Ok(changes_between(
                    &from,
                    &to,
                    &app_path,
                    &other_apps,
                    &mut inputs,
                ))
            })
            .await?
    }
}

/// The app at `commit`, fetching once when the cache lacks it.
fn snapshot_in(
    repo: &mut GitRepo,
    snapshots: &Mutex<ReadMemo<Snapshot>>,
    commit: &CommitId,
    app_path: &str,
) -> Result<Snapshot, EngineError> {
    ensure_commit(repo, commit)?;
    snapshot_read(repo, snapshots, commit, app_path)
}

/// The app at `commit` (in the cache), through the memo of snapshots.
fn snapshot_read(
    repo: &GitRepo,
    snapshots: &Mutex<ReadMemo<Snapshot>>,
    commit: &CommitId,
    app_path: &str,
) -> Result<Snapshot, EngineError> {
    let tree = repo.tree(commit)?;
    ReadMemo::get_or_compute(snapshots, &tree, app_path, |src| snapshot_of(src, app_path))
}

/// A snapshot, or `None` when the app reads outside the repository there.
fn readable(
    commit: &CommitId,
    snapshot: Result<Snapshot, EngineError>,
) -> Result<Option<Snapshot>, EngineError> {
    match snapshot {
        Ok(snapshot) => Ok(Some(snapshot)),
        Err(EngineError::Manifest(e @ rewind_manifest::ManifestError::Escape { .. })) => {
            tracing::info!(commit.sha = %commit, error = %e, "app unreadable at this commit");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn snapshot_of(tree: &dyn TreeSource, app_path: &str) -> Result<Snapshot, EngineError> {
    // The hash and the render read the same kustomizations and files: one
    // cache for both reads each from Git once.
    let cached = CachedTree::new(tree);
    let tree = &cached;
    let config_hash = rewind_manifest::config_hash(tree, app_path)?;
    let images = rewind_manifest::images(tree, app_path)?;
    let tree_id = tree
        .object_id(app_path)
        .map_err(|e| EngineError::Invalid(e.to_string()))?
        .ok_or_else(|| {
            EngineError::Invalid(format!("path {app_path:?} does not exist at this commit"))
        })?;
    Ok(Snapshot {
        tree: tree_id,
        config_hash,
        images,
    })
}

fn changes_between(
    from: &dyn TreeSource,
    to: &dyn TreeSource,
    app_path: &str,
    other_apps: &[(String, String)],
    inputs: &mut InputsCache,
) -> Result<Changes, EngineError> {
    let assessment = rewind_manifest::assess_rollback(from, to, app_path, other_apps, inputs)?;
    Ok(Changes {
        diff: RollbackDiff {
            semantic: serde_json::to_value(&assessment.diff).unwrap_or_default(),
            text: assessment.diff.render_text(),
        },
        risks: assessment.risks,
        current_problems: assessment
            .current_problems
            .iter()
            .map(|f| match &f.path {
                Some(path) => format!("{path} ({}: {})", f.code, f.detail),
                None => format!("{}: {}", f.code, f.detail),
            })
            .collect(),
    })
}
