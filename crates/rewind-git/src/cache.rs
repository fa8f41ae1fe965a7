//! [`RepoCache`]: the async facade over [`GitRepo`]. Every call runs on
//! tokio's blocking pool (`spawn_blocking`), one at a time per repository
//! (a mutex; the lock file does the same across processes).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rewind_domain::{AppName, CommitId, RollbackId};

use crate::merge::MergeOutcome;
use crate::push::PushedBranch;
use crate::rollback::{BuildOutcome, RollbackRequest};
use crate::{GitError, GitRepo, GitSettings, RemoteStatus};

/// A shareable handle on the repository cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RepoCache {
    core: Arc<Mutex<GitRepo>>,
    remote_status: RemoteStatus,
    cache_dir: PathBuf,
}

impl RepoCache {
    /// Opens (or creates) the cache; no network.
    pub async fn open(settings: GitSettings) -> Result<Self, GitError> {
        let cache_dir = settings.cache_dir.clone();
        let repo = tokio::task::spawn_blocking(move || GitRepo::open(settings))
            .await
            .map_err(|e| GitError::Task(e.to_string()))??;
        Ok(RepoCache {
            remote_status: repo.remote_status(),
            core: Arc::new(Mutex::new(repo)),
            cache_dir,
        })
    }

    /// Bytes an unprivileged writer may still use on the filesystem holding
    /// `git.cache_dir` (statvfs). Never waits for the repository, so
    /// `/readyz` and `/metrics` can report a full disk at once.
    pub fn free_space(&self) -> std::io::Result<u64> {
        fs4::available_space(&self.cache_dir)
    }

    /// The last fetch's outcome; never waits for the repository.
    pub fn remote_status(&self) -> &RemoteStatus {
        &self.remote_status
    }

    /// Runs `work` on the blocking pool with exclusive access to the
    /// repository: the escape hatch for reads this facade does not name
    /// (config hashes, diffs through [`GitRepo::tree`]).
    pub async fn with_repo<T, F>(&self, work: F) -> Result<T, GitError>
    where
        F: FnOnce(&mut GitRepo) -> Result<T, GitError> + Send + 'static,
        T: Send + 'static,
    {
        let core = Arc::clone(&self.core);
        tokio::task::spawn_blocking(move || {
            // A panic in an earlier job poisons the mutex; the repository
            // on disk is still consistent (libgit2 writes atomically), so
            // carry on with it.
            let mut repo = core.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut repo)
        })
        .await
        .map_err(|e| GitError::Task(e.to_string()))?
    }

    /// Fetches and answers the head of `git.branch`.
    pub async fn fetch(&self) -> Result<CommitId, GitError> {
        self.with_repo(|repo| repo.fetch()).await
    }

    /// The head of `branch` as last fetched.
    pub async fn head(&self, branch: &str) -> Result<Option<CommitId>, GitError> {
        let branch = branch.to_string();
        self.with_repo(move |repo| repo.head(&branch)).await
    }

    pub async fn commit_exists(&self, commit: &CommitId) -> Result<bool, GitError> {
        let commit = commit.clone();
        self.with_repo(move |repo| repo.commit_exists(&commit))
            .await
    }

    pub async fn is_ancestor(
        &self,
        ancestor: &CommitId,
        descendant: &CommitId,
    ) -> Result<bool, GitError> {
        let (a, d) = (ancestor.clone(), descendant.clone());
        self.with_repo(move |repo| repo.is_ancestor(&a, &d)).await
    }

    pub async fn commits_touching(
        &self,
        paths: Vec<String>,
        from: &CommitId,
        to: &CommitId,
    ) -> Result<Vec<CommitId>, GitError> {
        let (from, to) = (from.clone(), to.clone());
        self.with_repo(move |repo| repo.commits_touching(&paths, &from, &to))
            .await
    }

    /// Fetches, then builds the rollback commit on the head of `git.branch`.
    pub async fn build_rollback(&self, req: RollbackRequest) -> Result<BuildOutcome, GitError> {
        self.with_repo(move |repo| repo.build_rollback(&req)).await
    }

    /// Builds the rollback commit on `head` (a commit already fetched),
    /// without fetching again.
    pub async fn build_rollback_on(
        &self,
        head: &CommitId,
        req: RollbackRequest,
    ) -> Result<BuildOutcome, GitError> {
        let head = head.clone();
        self.with_repo(move |repo| repo.build_rollback_on(&head, &req))
            .await
    }

    /// Pushes `rewind/<app-slug>/<id>` at `commit` (never forced).
    pub async fn push_rollback(
        &self,
        app: &AppName,
        id: &RollbackId,
        commit: &CommitId,
    ) -> Result<PushedBranch, GitError> {
        let (app, id, commit) = (app.clone(), *id, commit.clone());
        self.with_repo(move |repo| repo.push_rollback(&app, &id, &commit))
            .await
    }

    /// Pushes rebuild `attempt` of the rollback at `commit` (never forced).
    pub async fn push_rebuild(
        &self,
        app: &AppName,
        id: &RollbackId,
        attempt: u32,
        commit: &CommitId,
    ) -> Result<PushedBranch, GitError> {
        let (app, id, commit) = (app.clone(), *id, commit.clone());
        self.with_repo(move |repo| repo.push_rebuild(&app, &id, attempt, &commit))
            .await
    }

    /// Merges the reviewed rollback commit into `git.branch`.
    pub async fn merge_rollback(
        &self,
        req: RollbackRequest,
        reviewed: &CommitId,
    ) -> Result<MergeOutcome, GitError> {
        let reviewed = reviewed.clone();
        self.with_repo(move |repo| repo.merge_rollback(&req, &reviewed))
            .await
    }

    /// The `rewind/*` branches as of the last fetch.
    pub async fn rollback_branches(&self) -> Result<Vec<String>, GitError> {
        self.with_repo(|repo| repo.rollback_branches()).await
    }

    /// Deletes a `rewind/*` branch on the remote and in the cache (one
    /// already gone is not an error).
    pub async fn delete_rollback_branch(&self, branch: &str) -> Result<(), GitError> {
        let branch = branch.to_owned();
        self.with_repo(move |repo| repo.delete_rollback_branch(&branch))
            .await
    }
}
