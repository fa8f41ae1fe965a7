//! Building a rollback commit on the head of `git.branch`: choose the
//! inputs, make the tree (restore or revert), check the config hash, write
//! the commit object. No ref moves here; pushing is separate.

use std::collections::BTreeSet;

use git2::{Commit, Delta, DiffOptions, Oid, Signature, Tree};
use rewind_domain::{CommitId, ConfigHash, Strategy};

use crate::inputs::{self, is_within, normalize_path, outermost};
use crate::repo::commit_id;
use crate::restore::restore_tree;
use crate::revert::{RevertResult, revert_commits};
use crate::rollback::{BuildOutcome, BuiltCommit, RollbackRequest, commit_message};
use crate::{GitError, GitRepo, GitTree};

impl GitRepo {
    /// Fetches, then builds the rollback on the fresh head of `git.branch`.
    pub fn build_rollback(&mut self, req: &RollbackRequest) -> Result<BuildOutcome, GitError> {
        let head = self.fetch()?;
        self.build_rollback_on(&head, req)
    }

    /// Builds the rollback on `head` (any commit in the cache) without
    /// fetching: what [`GitRepo::build_rollback`] and the merge's rebuild
    /// use, and what tests drive directly.
    #[tracing::instrument(skip_all, fields(app.name = %req.app, rollback.id = %req.rollback_id, commit.head = %head, commit.target = %req.to))]
    pub fn build_rollback_on(
        &self,
        head: &CommitId,
        req: &RollbackRequest,
    ) -> Result<BuildOutcome, GitError> {
        let app_path = normalize_path(&req.app_path)?;
        let head_commit = self.commit(head)?;
        let target_commit = self.commit(&req.to)?;
        let head_tree = head_commit.tree().map_err(|e| self.git_error(e))?;
        let target_tree = target_commit.tree().map_err(|e| self.git_error(e))?;

        let inputs =
            self.inputs_union(&app_path, &[(head, &head_tree), (&req.to, &target_tree)])?;
        let target_hash = match &req.target_config_hash {
            Some(hash) => Some(hash.clone()),
            None => inputs::config_hash(
                &GitTree::new(&self.repo, target_tree.clone()),
                &req.to,
                &app_path,
            )?,
        };

        let mut strategy_used = req.strategy;
        let mut reverted = Vec::new();
        let mut revert_conflicts = Vec::new();
        let tree_id = match req.strategy {
            Strategy::Restore => self.restore(&head_tree, &target_tree, &inputs)?,
            Strategy::Revert => match self.revert(&head_commit, &target_commit, &inputs)? {
                Ok((tree, commits)) => {
                    reverted = commits;
                    tree
                }
                Err(conflict) if req.allow_restore_fallback => {
                    tracing::info!(reason = %conflict, "revert conflicts; restoring instead, as policy allows");
                    if let GitError::RevertConflict { paths, .. } = &conflict {
                        revert_conflicts = paths.clone();
                    }
                    strategy_used = Strategy::Restore;
                    self.restore(&head_tree, &target_tree, &inputs)?
                }
                Err(conflict) => return Err(conflict),
            },
        };

        if tree_id == head_tree.id() {
            tracing::info!("already on target: nothing to commit");
            return Ok(BuildOutcome::AlreadyOnTarget);
        }
        let new_tree = self
            .repo
            .find_tree(tree_id)
            .map_err(|e| self.git_error(e))?;

        if strategy_used == Strategy::Restore {
            self.check_hash(&app_path, &req.to, &new_tree, target_hash.as_ref())?;
        }

        let changed_paths = self.changed_paths(&head_tree, &new_tree)?;
        let shared_paths = changed_paths
            .iter()
            .filter(|path| !is_within(path, &app_path))
            .cloned()
            .collect();
        let message = commit_message(
            req,
            strategy_used,
            target_hash.as_ref(),
            &reverted,
            &revert_conflicts,
        );
        let commit = self.write_commit(&message, &new_tree, &[&head_commit])?;
        tracing::info!(commit.sha = %commit, strategy = %strategy_used, "built rollback commit");
        Ok(BuildOutcome::Commit(BuiltCommit {
            commit,
            parent: head.clone(),
            tree: tree_id.to_string(),
            changed_paths,
            shared_paths,
            strategy_used,
            reverted,
            revert_conflicts,
            config_hash: target_hash,
        }))
    }

    /// The outermost paths of the union of the app's inputs at each tree:
    /// a file read at head but not at the target must go too.
    pub(crate) fn inputs_union(
        &self,
        app_path: &str,
        trees: &[(&CommitId, &Tree<'_>)],
    ) -> Result<Vec<String>, GitError> {
        let mut all = BTreeSet::new();
        for (commit, tree) in trees {
            let view = GitTree::new(&self.repo, (*tree).clone());
            all.extend(inputs::app_inputs(&view, commit, app_path)?);
        }
        Ok(outermost(all))
    }

    fn restore(
        &self,
        head: &Tree<'_>,
        target: &Tree<'_>,
        inputs: &[String],
    ) -> Result<Oid, GitError> {
        restore_tree(&self.repo, head, target, inputs).map_err(|e| {
            GitError::Git(format!(
                "building the restored tree: {}",
                self.redactor.git(&e)
            ))
        })
    }

    /// `Ok(Ok(..))` when every revert is clean; `Ok(Err(conflict))` when
    /// one conflicts or the target is not in head's history.
    #[allow(clippy::type_complexity)]
    fn revert(
        &self,
        head: &Commit<'_>,
        target: &Commit<'_>,
        inputs: &[String],
    ) -> Result<Result<(Oid, Vec<CommitId>), GitError>, GitError> {
        let head_id = commit_id(head.id())?;
        let target_id = commit_id(target.id())?;
        if !self.is_ancestor(&target_id, &head_id)? {
            return Ok(Err(GitError::NotAncestor {
                target: target_id,
                head: head_id,
            }));
        }
        let touching = self.commits_touching(inputs, &target_id, &head_id)?;
        let commits = touching
            .iter()
            .map(|id| self.commit(id))
            .collect::<Result<Vec<_>, _>>()?;
        match revert_commits(&self.repo, head, &commits).map_err(|e| self.git_error(e))? {
            RevertResult::Clean(tree) => Ok(Ok((tree, touching))),
            RevertResult::Conflict { commit, paths } => {
                Ok(Err(GitError::RevertConflict { commit, paths }))
            }
        }
    }

    /// Guards the promise: after a restore the app's config hash is the
    /// target's.
    fn check_hash(
        &self,
        app_path: &str,
        target: &CommitId,
        new_tree: &Tree<'_>,
        want: Option<&ConfigHash>,
    ) -> Result<(), GitError> {
        let Some(want) = want else {
            return Ok(());
        };
        let view = GitTree::new(&self.repo, new_tree.clone());
        if let Some(got) = inputs::config_hash(&view, target, app_path)?
            && &got != want
        {
            return Err(GitError::ConfigHashMismatch {
                app_path: app_path.to_string(),
                want: want.to_string(),
                got: got.to_string(),
            });
        }
        Ok(())
    }

    /// File paths that differ between two trees, sorted. Equal subtrees
    /// are skipped by id, so this is cheap however large the repository.
    pub(crate) fn changed_paths(
        &self,
        old: &Tree<'_>,
        new: &Tree<'_>,
    ) -> Result<Vec<String>, GitError> {
        let mut options = DiffOptions::new();
        options.ignore_submodules(true);
        let diff = self
            .repo
            .diff_tree_to_tree(Some(old), Some(new), Some(&mut options))
            .map_err(|e| self.git_error(e))?;
        let mut paths = BTreeSet::new();
        for delta in diff.deltas() {
            let file = match delta.status() {
                Delta::Deleted => delta.old_file(),
                _ => delta.new_file(),
            };
            if let Some(path) = file.path() {
                paths.insert(path.to_string_lossy().into_owned());
            }
        }
        Ok(paths.into_iter().collect())
    }

    pub(crate) fn signature(&self) -> Result<Signature<'static>, GitError> {
        Signature::now(&self.settings.author_name, &self.settings.author_email)
            .map_err(|e| self.git_error(e))
    }

    /// Writes a commit object (no ref moves).
    pub(crate) fn write_commit(
        &self,
        message: &str,
        tree: &Tree<'_>,
        parents: &[&Commit<'_>],
    ) -> Result<CommitId, GitError> {
        let _lock = crate::lock::CacheLock::acquire(&self.dir)?;
        let signature = self.signature()?;
        let oid = self
            .repo
            .commit(None, &signature, &signature, message, tree, parents)
            .map_err(|e| self.git_error(e))?;
        commit_id(oid)
    }
}
