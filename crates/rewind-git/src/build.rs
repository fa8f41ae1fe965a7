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
        // One view per tree for the whole build: each caches the
        // directories it has read.
        let head_view = GitTree::new(&self.repo, head_tree.clone());
        let target_view = GitTree::new(&self.repo, target_tree);

        let target_inputs = inputs::app_inputs(&target_view, &req.to, &app_path)?;
        let head_inputs = inputs::app_inputs(&head_view, head, &app_path)?;
        let inputs = outermost(
            target_inputs
                .paths
                .iter()
                .chain(head_inputs.paths.iter())
                .cloned()
                .collect(),
        );
        let target_hash = match &req.target_config_hash {
            Some(hash) => Some(hash.clone()),
            None => inputs::config_hash(&target_view, &req.to, &app_path, &target_inputs)?,
        };

        let mut strategy_used = req.strategy;
        let mut reverted = Vec::new();
        let mut revert_conflicts = Vec::new();
        let tree_id = match req.strategy {
            Strategy::Restore => self.restore(&head_view, &target_view, &inputs)?,
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
                    self.restore(&head_view, &target_view, &inputs)?
                }
                Err(conflict) => return Err(conflict),
            },
        };

        let raw_tree = self
            .repo
            .find_tree(tree_id)
            .map_err(|e| self.git_error(e))?;
        let (tree_id, changed_paths, dropped_links) =
            self.without_escaping_links(&head_view, &raw_tree, &inputs, strategy_used)?;

        if tree_id == head_tree.id() {
            tracing::info!("already on target: nothing to commit");
            return Ok(BuildOutcome::AlreadyOnTarget);
        }
        let new_tree = self
            .repo
            .find_tree(tree_id)
            .map_err(|e| self.git_error(e))?;
        let new_view = GitTree::new(&self.repo, new_tree.clone());

        // The target's hash covers the links left out; without them the
        // promise is "the target minus those links", which the commit
        // message and the caller's risk say.
        if strategy_used == Strategy::Restore && dropped_links.is_empty() {
            self.check_hash(&app_path, &req.to, &new_view, target_hash.as_ref())?;
        }

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
            &dropped_links,
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
            dropped_links,
        }))
    }

    /// The outermost paths of the union of the app's inputs at each tree:
    /// a file read at head but not at the target must go too.
    pub(crate) fn inputs_union(
        &self,
        app_path: &str,
        trees: &[(&CommitId, &GitTree<'_>)],
    ) -> Result<Vec<String>, GitError> {
        let mut all = BTreeSet::new();
        for (commit, view) in trees {
            all.extend(inputs::app_inputs(view, commit, app_path)?.paths);
        }
        Ok(outermost(all))
    }

    /// The changed paths of `tree` against head, and `tree` itself, except
    /// that a symbolic link pointing outside the repository is never
    /// brought back: each such changed link is set to head's entry (or
    /// removed where head has none). Returns the final tree, its changed
    /// paths and the links left out.
    fn without_escaping_links(
        &self,
        head: &GitTree<'_>,
        tree: &Tree<'_>,
        inputs: &[String],
        strategy_used: Strategy,
    ) -> Result<(Oid, Vec<String>, Vec<String>), GitError> {
        let changed = |tree: &Tree<'_>| -> Result<Vec<String>, GitError> {
            let view = GitTree::new(&self.repo, tree.clone());
            match strategy_used {
                // A restore changes nothing outside the inputs, so only
                // their subtrees are compared; a revert may touch any path.
                Strategy::Restore => self.changed_paths_within(head, &view, inputs),
                Strategy::Revert => self.changed_paths(head.tree(), tree),
            }
        };
        let paths = changed(tree)?;
        let view = GitTree::new(&self.repo, tree.clone());
        let mut dropped = Vec::new();
        for path in &paths {
            let Some((id, mode)) = view.entry_info(path).map_err(|e| self.git_error(e))? else {
                continue;
            };
            if mode != 0o120000 {
                continue;
            }
            let blob = self.repo.find_blob(id).map_err(|e| self.git_error(e))?;
            let target = String::from_utf8_lossy(blob.content());
            if rewind_manifest::path::link_escapes(path, &target) {
                tracing::warn!(path = %path, "symbolic link pointing outside the repository left out of the rollback");
                dropped.push(path.clone());
            }
        }
        if dropped.is_empty() {
            return Ok((tree.id(), paths, dropped));
        }
        let mut update = git2::build::TreeUpdateBuilder::new();
        for path in &dropped {
            match head.entry_info(path).map_err(|e| self.git_error(e))? {
                Some((id, mode)) => {
                    let mode = crate::restore::file_mode(mode).map_err(|e| self.git_error(e))?;
                    update.upsert(path.as_str(), id, mode);
                }
                None => {
                    update.remove(path.as_str());
                }
            }
        }
        let id = update
            .create_updated(&self.repo, tree)
            .map_err(|e| self.git_error(e))?;
        let final_tree = self.repo.find_tree(id).map_err(|e| self.git_error(e))?;
        Ok((id, changed(&final_tree)?, dropped))
    }

    fn restore(
        &self,
        head: &GitTree<'_>,
        target: &GitTree<'_>,
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
        new_view: &GitTree<'_>,
        want: Option<&ConfigHash>,
    ) -> Result<(), GitError> {
        let Some(want) = want else {
            return Ok(());
        };
        let new_inputs = inputs::app_inputs(new_view, target, app_path)?;
        if let Some(got) = inputs::config_hash(new_view, target, app_path, &new_inputs)?
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

    /// File paths under `inputs` that differ between two views, sorted.
    /// Only the inputs' subtrees are read, whatever the repository's size.
    fn changed_paths_within(
        &self,
        old: &GitTree<'_>,
        new: &GitTree<'_>,
        inputs: &[String],
    ) -> Result<Vec<String>, GitError> {
        let mut paths = BTreeSet::new();
        for input in inputs {
            let before = old.entry_info(input).map_err(|e| self.git_error(e))?;
            let after = new.entry_info(input).map_err(|e| self.git_error(e))?;
            if before == after {
                continue;
            }
            let old_dir = old.subtree(input).map_err(|e| self.git_error(e))?;
            let new_dir = new.subtree(input).map_err(|e| self.git_error(e))?;
            // A file (or link) on either side is itself a changed path.
            let is_file =
                |entry: Option<(Oid, i32)>| entry.is_some_and(|(_, mode)| mode != 0o040000);
            if is_file(before) || is_file(after) {
                paths.insert(input.clone());
            }
            if old_dir.is_some() || new_dir.is_some() {
                for path in self.diff_paths(old_dir.as_ref(), new_dir.as_ref())? {
                    paths.insert(format!("{input}/{path}"));
                }
            }
        }
        Ok(paths.into_iter().collect())
    }

    /// File paths that differ between two trees, sorted. Equal subtrees
    /// are skipped by id.
    pub(crate) fn changed_paths(
        &self,
        old: &Tree<'_>,
        new: &Tree<'_>,
    ) -> Result<Vec<String>, GitError> {
        self.diff_paths(Some(old), Some(new))
    }

    /// Paths (relative to the trees) of every file added, removed or
    /// changed; a missing tree is empty.
    fn diff_paths(
        &self,
        old: Option<&Tree<'_>>,
        new: Option<&Tree<'_>>,
    ) -> Result<Vec<String>, GitError> {
        let mut options = DiffOptions::new();
        options.ignore_submodules(true);
        let diff = self
            .repo
            .diff_tree_to_tree(old, new, Some(&mut options))
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
