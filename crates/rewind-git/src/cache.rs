//! [`RepoCache`]: the async facade over [`GitRepo`]. Every call runs on
//! tokio's blocking pool (`spawn_blocking`), one at a time per repository
//! (a mutex; the lock file does the same across processes), except reads
//! through [`RepoCache::with_reader`], which have handles of their own.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rewind_domain::{AppName, CommitId, RollbackId};

use crate::merge::MergeOutcome;
use crate::push::PushedBranch;
use crate::rollback::{BuildOutcome, RollbackRequest};
use crate::{GitError, GitRepo, GitSettings, RemoteStatus};

/// Reader handles kept open between [`RepoCache::with_reader`] calls; each
/// holds its own descriptors and a share of libgit2's object cache.
const MAX_IDLE_READERS: usize = 4;

/// A shareable handle on the repository cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RepoCache {
    core: Arc<Mutex<GitRepo>>,
    /// Idle reader handles ([`RepoCache::with_reader`]), each with the
    /// pack generation it was opened at.
    readers: Arc<Mutex<Vec<(u64, GitRepo)>>>,
    pack_generation: Arc<AtomicU64>,
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
            readers: Arc::default(),
            pack_generation: Arc::clone(&repo.pack_generation),
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

    /// Runs `work` on the blocking pool with a handle of its own on the
    /// cache, beside other readers and beside [`RepoCache::with_repo`]:
    /// for reads of objects already fetched that take a while (resolving
    /// a fleet's history on every core instead of one). It sees what
    /// fetches bring meanwhile (libgit2 rescans the packs for an object it
    /// lacks). A handle opened before rolled-up packs were removed is
    /// closed instead of reused, so it lets go of them.
    pub async fn with_reader<T, F>(&self, work: F) -> Result<T, GitError>
    where
        F: FnOnce(&GitRepo) -> Result<T, GitError> + Send + 'static,
        T: Send + 'static,
    {
        let (core, readers, generation) = (
            Arc::clone(&self.core),
            Arc::clone(&self.readers),
            Arc::clone(&self.pack_generation),
        );
        tokio::task::spawn_blocking(move || {
            let lock = || readers.lock().unwrap_or_else(|p| p.into_inner());
            let now = generation.load(Ordering::SeqCst);
            let idle = {
                let mut idle = lock();
                idle.retain(|(opened, _)| *opened == now);
                idle.pop()
            };
            let (opened, reader) = match idle {
                Some(idle) => idle,
                None => {
                    let core = core.lock().unwrap_or_else(|p| p.into_inner());
                    (core.pack_generation.load(Ordering::SeqCst), core.reader()?)
                }
            };
            let answer = work(&reader);
            let mut idle = lock();
            if opened == generation.load(Ordering::SeqCst) && idle.len() < MAX_IDLE_READERS {
                idle.push((opened, reader));
            }
            answer
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_remote::{TestRemote, git};

    impl RepoCache {
        fn idle_reader_generations(&self) -> Vec<u64> {
            let idle = self.readers.lock().unwrap();
            idle.iter().map(|(opened, _)| *opened).collect()
        }
    }

    /// A reader handle sees what later fetches bring, and one opened before
    /// a pack roll-up is closed instead of reused (it would hold the
    /// removed packs' descriptors).
    #[tokio::test]
    async fn readers_see_new_fetches_and_let_go_of_rolled_up_packs() {
        let dir = tempfile::tempdir().unwrap();
        let TestRemote { remote, work } = TestRemote::new(dir.path());
        let url = remote.to_str().unwrap().to_string();
        git(&work, &["push", "-q", &url, "main"]);
        let settings = GitSettings::new(format!("file://{url}"), "main", dir.path().join("cache"));
        let cache = RepoCache::open(settings).await.unwrap();
        let first = cache.fetch().await.unwrap();
        let exists = |commit: &CommitId| {
            let commit = commit.clone();
            cache.with_reader(move |repo| repo.commit_exists(&commit))
        };
        assert!(exists(&first).await.unwrap());
        assert_eq!(cache.idle_reader_generations(), vec![0]);

        let mut n = 0;
        while cache.pack_generation.load(Ordering::SeqCst) == 0 {
            n += 1;
            assert!(n < 10, "no roll-up after {n} fetches");
            std::fs::write(work.join(format!("f{n}.txt")), format!("{n}\n")).unwrap();
            git(&work, &["add", "."]);
            git(&work, &["commit", "-q", "-m", &format!("c{n}")]);
            git(&work, &["push", "-q", &url, "main"]);
            let head = cache.fetch().await.unwrap();
            // The pooled reader predates this fetch and still finds it.
            assert!(exists(&head).await.unwrap(), "fetch {n}");
        }
        assert!(cache.idle_reader_generations().iter().all(|g| *g >= 1));
        assert!(exists(&first).await.unwrap());
        let now = cache.pack_generation.load(Ordering::SeqCst);
        assert_eq!(cache.idle_reader_generations(), vec![now]);
    }
}
