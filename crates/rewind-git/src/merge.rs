//! Merging a reviewed rollback into `git.branch` (the local forge): a
//! fast-forward when the branch has not moved; a merge commit when it moved
//! but the app's inputs come out exactly as reviewed; otherwise the
//! rollback is rebuilt on the new head. Pushes never force, and a push that
//! loses a race is retried from a fresh fetch.

use git2::MergeOptions;
use rewind_domain::CommitId;

use crate::inputs::normalize_path;
use crate::repo::{commit_id, oid};
use crate::rollback::{BuildOutcome, BuiltCommit, RollbackRequest, rollback_branch};
use crate::{GitError, GitRepo, GitTree};

/// How many times a merge restarts when `git.branch` moves under it.
const MERGE_ATTEMPTS: u32 = 3;

/// How the rollback reached `git.branch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeKind {
    /// `git.branch` had not moved: it now points at the reviewed commit.
    FastForward,
    /// `git.branch` moved without touching what the rollback changes: a
    /// merge commit joins the two.
    MergeCommit,
    /// `git.branch` moved in a way that changes the result: the rollback
    /// was rebuilt on the new head and that commit pushed.
    Rebuilt(BuiltCommit),
    /// The reviewed commit already is in `git.branch` (a second merge call).
    AlreadyMerged,
}

/// The result of a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    Merged {
        /// The new head of `git.branch`.
        head: CommitId,
        kind: MergeKind,
    },
    /// The branch moved and already holds the target's inputs: nothing was
    /// pushed.
    AlreadyOnTarget { head: CommitId },
}

impl GitRepo {
    /// Merges the reviewed rollback commit (the tip of its `rewind/*`
    /// branch) into `git.branch`.
    #[tracing::instrument(skip_all, fields(app.name = %req.app, rollback.id = %req.rollback_id, commit.sha = %reviewed))]
    pub fn merge_rollback(
        &mut self,
        req: &RollbackRequest,
        reviewed: &CommitId,
    ) -> Result<MergeOutcome, GitError> {
        let branch = self.settings.branch.clone();
        for attempt in 1..=MERGE_ATTEMPTS {
            let head = self.fetch()?;
            match self.merge_once(req, reviewed, &head, &branch) {
                Err(GitError::PushRejected { message, .. }) => {
                    tracing::info!(attempt, reason = %message, git.branch = %branch, "branch moved during merge; retrying");
                }
                other => return other,
            }
        }
        Err(GitError::MergeRace {
            branch,
            attempts: MERGE_ATTEMPTS,
        })
    }

    fn merge_once(
        &mut self,
        req: &RollbackRequest,
        reviewed: &CommitId,
        head: &CommitId,
        branch: &str,
    ) -> Result<MergeOutcome, GitError> {
        if self.is_ancestor(reviewed, head)? {
            return Ok(MergeOutcome::Merged {
                head: head.clone(),
                kind: MergeKind::AlreadyMerged,
            });
        }
        let reviewed_commit = self.commit(reviewed)?;
        let parent = match reviewed_commit.parent_ids().next() {
            Some(parent) => commit_id(parent)?,
            None => {
                return Err(GitError::Git(format!(
                    "rollback commit {reviewed} has no parent"
                )));
            }
        };
        if &parent == head {
            self.push_ref(oid(reviewed)?, branch)?;
            tracing::info!(git.branch = %branch, "fast-forwarded");
            return Ok(MergeOutcome::Merged {
                head: reviewed.clone(),
                kind: MergeKind::FastForward,
            });
        }
        if self.is_ancestor(&parent, head)?
            && let Some(merge) = self.merge_commit_if_same(req, reviewed, &parent, head)?
        {
            self.push_ref(oid(&merge)?, branch)?;
            tracing::info!(git.branch = %branch, commit.merge = %merge, "merged");
            return Ok(MergeOutcome::Merged {
                head: merge,
                kind: MergeKind::MergeCommit,
            });
        }
        match self.build_rollback_on(head, req)? {
            BuildOutcome::AlreadyOnTarget => {
                Ok(MergeOutcome::AlreadyOnTarget { head: head.clone() })
            }
            BuildOutcome::Commit(built) => {
                self.push_ref(oid(&built.commit)?, branch)?;
                tracing::info!(git.branch = %branch, commit.rebuilt = %built.commit, "branch moved; rebuilt the rollback on its head");
                Ok(MergeOutcome::Merged {
                    head: built.commit.clone(),
                    kind: MergeKind::Rebuilt(built),
                })
            }
        }
    }

    /// A merge commit of `reviewed` into `head`, when the three-way merge is
    /// clean and every input of the app comes out exactly as in the
    /// reviewed commit; `None` when the result would differ from what was
    /// reviewed.
    fn merge_commit_if_same(
        &self,
        req: &RollbackRequest,
        reviewed: &CommitId,
        parent: &CommitId,
        head: &CommitId,
    ) -> Result<Option<CommitId>, GitError> {
        let app_path = normalize_path(&req.app_path)?;
        let reviewed_commit = self.commit(reviewed)?;
        let head_commit = self.commit(head)?;
        let reviewed_tree = reviewed_commit.tree().map_err(|e| self.git_error(e))?;
        let head_tree = head_commit.tree().map_err(|e| self.git_error(e))?;
        let parent_tree = self.commit(parent)?.tree().map_err(|e| self.git_error(e))?;
        let target_tree = self
            .commit(&req.to)?
            .tree()
            .map_err(|e| self.git_error(e))?;

        let mut index = self
            .repo
            .merge_trees(
                &parent_tree,
                &head_tree,
                &reviewed_tree,
                Some(&MergeOptions::new()),
            )
            .map_err(|e| self.git_error(e))?;
        if index.has_conflicts() {
            return Ok(None);
        }
        let merged = index
            .write_tree_to(&self.repo)
            .map_err(|e| self.git_error(e))?;
        let merged = self.repo.find_tree(merged).map_err(|e| self.git_error(e))?;
        let merged_view = GitTree::new(&self.repo, merged);
        let reviewed_view = GitTree::new(&self.repo, reviewed_tree.clone());
        let inputs = self.inputs_union(
            &app_path,
            &[
                (&req.to, &GitTree::new(&self.repo, target_tree)),
                (head, &GitTree::new(&self.repo, head_tree)),
                (reviewed, &reviewed_view),
            ],
        )?;
        for path in &inputs {
            let merged_entry = merged_view
                .entry_info(path)
                .map_err(|e| self.git_error(e))?;
            let reviewed_entry = reviewed_view
                .entry_info(path)
                .map_err(|e| self.git_error(e))?;
            if merged_entry != reviewed_entry {
                return Ok(None);
            }
        }
        let message = format!(
            "Merge {} into {}\n\nRollback of {} reviewed as {}.\n\nRewind-Rollback-Id: {}\nRewind-App: {}\nRewind-Cluster: {}\n",
            rollback_branch(&req.app, &req.rollback_id),
            self.settings.branch,
            req.app_ref(),
            reviewed,
            req.rollback_id,
            req.app,
            req.cluster,
        );
        self.write_commit(
            &message,
            merged_view.tree(),
            &[&head_commit, &reviewed_commit],
        )
        .map(Some)
    }
}
