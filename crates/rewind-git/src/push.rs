//! Pushing: the rollback branch `rewind/<app-slug>/<id>`, and `git.branch`
//! on merge. Refspecs are never forced (no `+`): libgit2 refuses a
//! non-fast-forward before sending, and the remote refuses an update whose
//! old value moved meanwhile.

use std::cell::RefCell;

use git2::{Oid, PushOptions};
use rewind_domain::{AppName, CommitId, RollbackId};

use crate::auth;
use crate::lock::CacheLock;
use crate::repo::{TRACKING_PREFIX, oid};
use crate::rollback::rollback_branch;
use crate::settings::redact_url;
use crate::{GitError, GitRepo};

/// The rollback branch on the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedBranch {
    /// `rewind/<app-slug>/<rollback-id>`.
    pub branch: String,
    /// The branch's commit on the remote: the one pushed, or the one
    /// already there when it had the same tree.
    pub commit: CommitId,
    /// The branch already existed with the same tree and was left as is.
    pub reused: bool,
}

impl GitRepo {
    /// Pushes `commit` as the rollback branch of `app`. Idempotent: an
    /// existing branch with the same tree is reused; one with a different
    /// tree is an error, never overwritten.
    #[tracing::instrument(skip_all, fields(app.name = %app, rollback.id = %id, commit.sha = %commit))]
    pub fn push_rollback(
        &mut self,
        app: &AppName,
        id: &RollbackId,
        commit: &CommitId,
    ) -> Result<PushedBranch, GitError> {
        let branch = rollback_branch(app, id);
        let local = self.commit(commit)?;
        let local_tree = local.tree_id();
        drop(local);
        self.fetch()?;
        if let Some(existing) = self.head(&branch)? {
            let existing_tree = self.commit(&existing)?.tree_id();
            if existing_tree == local_tree {
                tracing::info!(git.ref = %branch, "rollback branch already on the remote with the same tree");
                return Ok(PushedBranch {
                    branch,
                    commit: existing,
                    reused: true,
                });
            }
            return Err(GitError::BranchConflict { branch, existing });
        }
        self.push_ref(oid(commit)?, &branch)?;
        tracing::info!(git.ref = %branch, "pushed rollback branch");
        Ok(PushedBranch {
            branch,
            commit: commit.clone(),
            reused: false,
        })
    }

    /// Pushes `commit` to `refs/heads/<branch>` without force, then records
    /// it as the cache's view of that branch.
    pub(crate) fn push_ref(&self, commit: Oid, branch: &str) -> Result<(), GitError> {
        let _lock = CacheLock::acquire(&self.dir)?;
        let url = redact_url(&self.settings.url);
        let refname = format!("refs/heads/{branch}");
        let refspec = format!("{commit}:{refname}");
        debug_assert!(!refspec.starts_with('+'));
        let rejection: RefCell<Option<String>> = RefCell::new(None);
        {
            let mut callbacks = auth::callbacks(&self.settings);
            callbacks.push_update_reference(|name, status| {
                if let Some(status) = status {
                    *rejection.borrow_mut() = Some(format!("{name}: {status}"));
                }
                Ok(())
            });
            let mut options = PushOptions::new();
            options.remote_callbacks(callbacks);
            let mut remote = self
                .repo
                .remote_anonymous(&self.settings.url)
                .map_err(|e| self.git_error(e))?;
            remote
                .push(&[refspec.as_str()], Some(&mut options))
                .map_err(|e| {
                    let message = self.redactor.git(&e);
                    if e.code() == git2::ErrorCode::NotFastForward {
                        GitError::PushRejected {
                            url: url.clone(),
                            refname: refname.clone(),
                            message,
                        }
                    } else {
                        GitError::Push {
                            url: url.clone(),
                            refname: refname.clone(),
                            message,
                        }
                    }
                })?;
        }
        if let Some(message) = rejection.into_inner() {
            return Err(GitError::PushRejected {
                url,
                refname,
                message: self.redactor.clean(&message),
            });
        }
        self.repo
            .reference(
                &format!("{TRACKING_PREFIX}{branch}"),
                commit,
                true,
                "rewind: pushed",
            )
            .map_err(|e| self.git_error(e))?;
        Ok(())
    }
}
