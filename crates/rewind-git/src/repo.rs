//! The synchronous core: a bare cache of the remote, fetched before each
//! rollback, and the read helpers (heads, trees, ancestry, history).
//!
//! Everything here blocks; [`crate::RepoCache`] runs it off the async
//! runtime. A `GitRepo` is one writer: callers serialise access (the cache
//! holds it behind a mutex) and every write also takes the cross-process
//! [`CacheLock`].

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use git2::{AutotagOption, Commit, FetchOptions, FetchPrune, Oid, Repository, Tree};
use rewind_domain::CommitId;

use crate::auth::{self, Redactor};
use crate::lock::CacheLock;
use crate::remote_status::RemoteStatus;
use crate::settings::{check_branch, redact_url};
use crate::{GitError, GitSettings, GitTree};

/// Where fetched branches live in the cache. Only this namespace is ever
/// updated by fetch; the remote itself is only written by push.
pub(crate) const TRACKING_PREFIX: &str = "refs/remotes/origin/";

/// A bare cache of the GitOps repository.
pub struct GitRepo {
    pub(crate) settings: GitSettings,
    pub(crate) repo: Repository,
    pub(crate) dir: PathBuf,
    pub(crate) redactor: Redactor,
    pub(crate) remote_status: RemoteStatus,
    /// Bumped each time rolled-up packs were removed: a reader handle
    /// ([`GitRepo::reader`]) opened before still holds the old ones.
    pub(crate) pack_generation: Arc<AtomicU64>,
}

impl std::fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRepo")
            .field("settings", &self.settings)
            .field("dir", &self.dir)
            .finish()
    }
}

impl GitRepo {
    /// Opens the cache for `settings.url`, creating an empty bare
    /// repository on first use. Does not touch the network: call
    /// [`GitRepo::fetch`].
    pub fn open(settings: GitSettings) -> Result<Self, GitError> {
        settings.validate()?;
        let dir = settings.repo_dir();
        let redactor = Redactor::new(&settings);
        let cache_error = |e: git2::Error| GitError::Cache {
            path: dir.display().to_string(),
            message: redactor.git(&e),
        };
        let _lock = CacheLock::acquire(&dir)?;
        let repo = if dir.join("HEAD").exists() {
            Repository::open_bare(&dir).map_err(cache_error)?
        } else {
            Repository::init_bare(&dir).map_err(cache_error)?
        };
        Ok(GitRepo {
            settings,
            repo,
            dir,
            redactor,
            remote_status: RemoteStatus::default(),
            pack_generation: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Another handle on the same cache, for reads on another thread
    /// ([`crate::RepoCache::with_reader`]). It must not fetch or push: the
    /// cache's writes go through the one exclusive handle.
    pub(crate) fn reader(&self) -> Result<GitRepo, GitError> {
        let repo = Repository::open_bare(&self.dir).map_err(|e| GitError::Cache {
            path: self.dir.display().to_string(),
            message: self.redactor.git(&e),
        })?;
        Ok(GitRepo {
            settings: self.settings.clone(),
            repo,
            dir: self.dir.clone(),
            redactor: self.redactor.clone(),
            remote_status: self.remote_status.clone(),
            pack_generation: Arc::clone(&self.pack_generation),
        })
    }

    /// The outcome of the last fetch, readable without this repository.
    pub fn remote_status(&self) -> RemoteStatus {
        self.remote_status.clone()
    }

    pub fn settings(&self) -> &GitSettings {
        &self.settings
    }

    /// The bare repository on disk.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The underlying libgit2 handle, for reads this crate does not wrap.
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    pub(crate) fn git_error(&self, e: git2::Error) -> GitError {
        GitError::Git(self.redactor.git(&e))
    }

    /// Fetches `git.branch` and the `rewind/*` branches from the remote and
    /// answers the branch's head.
    #[tracing::instrument(skip_all, fields(git.url = %redact_url(&self.settings.url), git.branch = %self.settings.branch))]
    pub fn fetch(&mut self) -> Result<CommitId, GitError> {
        let result = self.fetch_branches();
        self.remote_status
            .record(result.as_ref().err().map(ToString::to_string));
        result
    }

    fn fetch_branches(&mut self) -> Result<CommitId, GitError> {
        let _lock = CacheLock::acquire(&self.dir)?;
        let branch = self.settings.branch.clone();
        // These forced refspecs update only this cache's tracking refs, so
        // the cache follows the remote even if someone rewrote it there.
        // Nothing is ever force-pushed.
        let refspecs = [
            format!("+refs/heads/{branch}:{TRACKING_PREFIX}{branch}"),
            format!("+refs/heads/rewind/*:{TRACKING_PREFIX}rewind/*"),
        ];
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(auth::callbacks(&self.settings))
            .download_tags(AutotagOption::None)
            .update_fetchhead(false)
            .prune(FetchPrune::On);
        let started = std::time::Instant::now();
        let mut remote = self
            .repo
            .remote_anonymous(&self.settings.url)
            .map_err(|e| self.fetch_error(&e))?;
        remote
            .fetch(&refspecs, Some(&mut options), None)
            .map_err(|e| self.fetch_error(&e))?;
        let received = remote.stats().received_objects();
        drop(remote);
        drop(options);
        if received > 0 {
            self.roll_up_packs();
            // Indexing a pack allocates and frees a lot (a first clone of
            // a large repository: ~120 MiB); give it back.
            crate::limits::release_free_memory();
        }
        let head = self
            .head(&branch)?
            .ok_or_else(|| GitError::BranchNotFound {
                url: redact_url(&self.settings.url),
                branch: branch.clone(),
            })?;
        tracing::debug!(
            commit.sha = %head,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "fetched"
        );
        Ok(head)
    }

    /// Rolls the newest small packs into one (`repack.rs`) and reopens the
    /// repository so libgit2 lets go of the old ones. A failure costs only
    /// an extra pack until the next fetch: logged, never the fetch's error.
    fn roll_up_packs(&mut self) {
        let started = std::time::Instant::now();
        match crate::repack::roll_up(&self.repo) {
            Ok(None) => {}
            Ok(Some(done)) => match Repository::open_bare(&self.dir) {
                Ok(repo) => {
                    self.repo = repo;
                    self.pack_generation.fetch_add(1, Ordering::SeqCst);
                    tracing::debug!(
                        git.packs = done.packs,
                        git.objects = done.objects,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "rolled up pack files"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %self.redactor.git(&e), "cannot reopen the cache after rolling up packs")
                }
            },
            Err(e) => {
                tracing::warn!(error = %self.redactor.git(&e), "cannot roll up the cache's pack files")
            }
        }
    }

    fn fetch_error(&self, e: &git2::Error) -> GitError {
        GitError::Fetch {
            url: redact_url(&self.settings.url),
            message: self.redactor.git(e),
        }
    }

    /// The head of `branch` as last fetched, or `None` when the remote has
    /// no such branch.
    pub fn head(&self, branch: &str) -> Result<Option<CommitId>, GitError> {
        check_branch(branch)?;
        match self
            .repo
            .refname_to_id(&format!("{TRACKING_PREFIX}{branch}"))
        {
            Ok(oid) => Ok(Some(commit_id(oid)?)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(self.git_error(e)),
        }
    }

    /// Whether the cache holds this commit.
    pub fn commit_exists(&self, commit: &CommitId) -> Result<bool, GitError> {
        let oid = oid(commit)?;
        match self.repo.find_commit(oid) {
            Ok(_) => Ok(true),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(false),
            // Present but not a commit (a tree or blob id).
            Err(e) if e.class() == git2::ErrorClass::Invalid => Ok(false),
            Err(e) => Err(self.git_error(e)),
        }
    }

    pub(crate) fn commit(&self, commit: &CommitId) -> Result<Commit<'_>, GitError> {
        let oid = oid(commit)?;
        self.repo.find_commit(oid).map_err(|e| {
            if e.code() == git2::ErrorCode::NotFound || e.class() == git2::ErrorClass::Invalid {
                GitError::CommitNotFound(commit.clone())
            } else {
                self.git_error(e)
            }
        })
    }

    /// `ancestor` is `descendant` or lies in its history (for "the merge
    /// commit or a descendant was deployed").
    pub fn is_ancestor(
        &self,
        ancestor: &CommitId,
        descendant: &CommitId,
    ) -> Result<bool, GitError> {
        let a = self.commit(ancestor)?.id();
        let d = self.commit(descendant)?.id();
        if a == d {
            return Ok(true);
        }
        self.repo
            .graph_descendant_of(d, a)
            .map_err(|e| self.git_error(e))
    }

    /// The tree of `commit`, readable by the manifest crate.
    pub fn tree(&self, commit: &CommitId) -> Result<GitTree<'_>, GitError> {
        let tree = self.commit(commit)?.tree().map_err(|e| self.git_error(e))?;
        Ok(GitTree::new(&self.repo, tree))
    }

    /// The commits after `from` up to `to` (first-parent history, newest
    /// first) that changed any of `paths` compared with their first parent.
    pub fn commits_touching(
        &self,
        paths: &[String],
        from: &CommitId,
        to: &CommitId,
    ) -> Result<Vec<CommitId>, GitError> {
        let paths = paths
            .iter()
            .map(|p| crate::inputs::normalize_path(p))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let paths = crate::inputs::outermost(paths);
        let from = self.commit(from)?.id();
        let to = self.commit(to)?.id();
        let mut walk = self.repo.revwalk().map_err(|e| self.git_error(e))?;
        walk.push(to).map_err(|e| self.git_error(e))?;
        walk.hide(from).map_err(|e| self.git_error(e))?;
        // First parent only: a merge is judged (and reverted) by what it
        // brought into the branch, not commit by commit of its side.
        walk.simplify_first_parent()
            .map_err(|e| self.git_error(e))?;
        let mut touching = Vec::new();
        let mut trees = TreeMemo::new(&self.repo);
        for oid in walk {
            let oid = oid.map_err(|e| self.git_error(e))?;
            let commit = self.repo.find_commit(oid).map_err(|e| self.git_error(e))?;
            let tree = Some(commit.tree_id());
            let parent_tree = commit.parents().next().map(|parent| parent.tree_id());
            let mut changed = false;
            for path in &paths {
                if trees
                    .path_differs(tree, parent_tree, path)
                    .map_err(|e| self.git_error(e))?
                {
                    changed = true;
                    break;
                }
            }
            if changed {
                touching.push(commit_id(oid)?);
            }
        }
        Ok(touching)
    }
}

/// Compares paths between trees one directory level at a time, loading
/// only the subtrees that differ, and keeping recently loaded trees: in a
/// walk a commit's parent is the next commit, so its trees are reused.
struct TreeMemo<'repo> {
    repo: &'repo Repository,
    trees: HashMap<Oid, Tree<'repo>>,
}

impl<'repo> TreeMemo<'repo> {
    /// Bounds memory on long walks over large trees.
    const CAPACITY: usize = 512;

    fn new(repo: &'repo Repository) -> Self {
        TreeMemo {
            repo,
            trees: HashMap::new(),
        }
    }

    fn tree(&mut self, id: Oid) -> Result<Tree<'repo>, git2::Error> {
        if let Some(tree) = self.trees.get(&id) {
            return Ok(tree.clone());
        }
        if self.trees.len() >= Self::CAPACITY {
            self.trees.clear();
        }
        let tree = self.repo.find_tree(id)?;
        self.trees.insert(id, tree.clone());
        Ok(tree)
    }

    /// Whether the entry at `path` differs between the trees `a` and `b`
    /// (`None`: an empty tree).
    fn path_differs(
        &mut self,
        a: Option<Oid>,
        b: Option<Oid>,
        path: &str,
    ) -> Result<bool, git2::Error> {
        let (mut a, mut b) = (a, b);
        let mut components = path.split('/').peekable();
        while let Some(name) = components.next() {
            if a == b {
                return Ok(false);
            }
            let entry_a = match a {
                Some(id) => self
                    .tree(id)?
                    .get_name(name)
                    .map(|e| (e.id(), e.filemode())),
                None => None,
            };
            let entry_b = match b {
                Some(id) => self
                    .tree(id)?
                    .get_name(name)
                    .map(|e| (e.id(), e.filemode())),
                None => None,
            };
            if entry_a == entry_b {
                return Ok(false);
            }
            if components.peek().is_none() {
                return Ok(true);
            }
            // Descend where the entry is a directory; anything else holds
            // nothing below it.
            let dir = |entry: Option<(Oid, i32)>| {
                entry
                    .filter(|(_, mode)| *mode == 0o040000)
                    .map(|(id, _)| id)
            };
            a = dir(entry_a);
            b = dir(entry_b);
            if a.is_none() && b.is_none() {
                return Ok(false);
            }
        }
        Ok(false)
    }
}

pub(crate) fn oid(commit: &CommitId) -> Result<Oid, GitError> {
    // A `CommitId` is 40 hex digits by construction; this cannot fail, but
    // stays an error rather than a panic.
    Oid::from_str(commit.as_str()).map_err(|_| GitError::CommitNotFound(commit.clone()))
}

pub(crate) fn commit_id(oid: Oid) -> Result<CommitId, GitError> {
    // libgit2 prints 40 lowercase hex digits for SHA-1 ids; a SHA-256
    // repository would not fit the contract's commit format.
    CommitId::new(oid.to_string())
        .map_err(|_| GitError::Git(format!("object id {oid} is not a 40-digit SHA-1 commit id")))
}
