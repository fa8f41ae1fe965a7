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
use crate::rollback::{rebuild_branch, rollback_branch};
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
        self.push_rollback_branch(rollback_branch(app, id), commit)
    }

    /// Pushes `commit` as rebuild `attempt` of the rollback
    /// (`rewind/<app-slug>/<id>-rebuild-<attempt>`), with the same
    /// idempotence as [`GitRepo::push_rollback`]: a rerun of the attempt
    /// after a crash finds its own branch.
    #[tracing::instrument(skip_all, fields(app.name = %app, rollback.id = %id, attempt, commit.sha = %commit))]
    pub fn push_rebuild(
        &mut self,
        app: &AppName,
        id: &RollbackId,
        attempt: u32,
        commit: &CommitId,
    ) -> Result<PushedBranch, GitError> {
        self.push_rollback_branch(rebuild_branch(app, id, attempt), commit)
    }

    fn push_rollback_branch(
        &mut self,
        branch: String,
        commit: &CommitId,
    ) -> Result<PushedBranch, GitError> {
        let local_tree = self.commit(commit)?.tree_id();
        // The branch name holds the rollback id, so it is new unless an
        // earlier run of this step pushed it: push at once, and look at the
        // remote only when the push is refused. A rerun that finds exactly
        // this commit there succeeds as an up-to-date push.
        let seen = self.head(&branch)?;
        let refused = match self.push_ref(oid(commit)?, &branch) {
            Ok(()) => {
                let reused = seen.as_ref() == Some(commit);
                tracing::info!(git.ref = %branch, reused, "pushed rollback branch");
                return Ok(PushedBranch {
                    branch,
                    commit: commit.clone(),
                    reused,
                });
            }
            Err(refused @ GitError::PushRejected { .. }) => refused,
            Err(e) => return Err(e),
        };
        self.fetch()?;
        let Some(existing) = self.head(&branch)? else {
            return Err(refused);
        };
        let existing_tree = self.commit(&existing)?.tree_id();
        if existing_tree == local_tree {
            tracing::info!(git.ref = %branch, "rollback branch already on the remote with the same tree");
            return Ok(PushedBranch {
                branch,
                commit: existing,
                reused: true,
            });
        }
        Err(GitError::BranchConflict { branch, existing })
    }

    /// Pushes `commit` to `refs/heads/<branch>` without force, then records
    /// it as the cache's view of that branch.
    pub(crate) fn push_ref(&self, commit: Oid, branch: &str) -> Result<(), GitError> {
        let _lock = CacheLock::acquire(&self.dir)?;
        let refname = format!("refs/heads/{branch}");
        let refspec = format!("{commit}:{refname}");
        self.send_refspec(&refspec, &refname)?;
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

    /// Sends one refspec (never forced) for `refname`; a refusal by libgit2
    /// or by the remote is [`GitError::PushRejected`]. The caller holds the
    /// cache lock.
    pub(crate) fn send_refspec(&self, refspec: &str, refname: &str) -> Result<(), GitError> {
        debug_assert!(!refspec.starts_with('+'));
        let url = redact_url(&self.settings.url);
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
            remote.push(&[refspec], Some(&mut options)).map_err(|e| {
                let message = self.redactor.git(&e);
                if e.code() == git2::ErrorCode::NotFastForward {
                    GitError::PushRejected {
                        url: url.clone(),
                        refname: refname.to_owned(),
                        message,
                    }
                } else {
                    GitError::Push {
                        url: url.clone(),
                        refname: refname.to_owned(),
                        message,
                    }
                }
            })?;
        }
        if let Some(message) = rejection.into_inner() {
            return Err(GitError::PushRejected {
                url,
                refname: refname.to_owned(),
                message: self.redactor.clean(&message),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GitSettings;
    use crate::test_remote::{TestRemote, git};

    #[test]
    fn a_push_that_is_not_a_fast_forward_is_rejected_never_forced() {
        let dir = tempfile::tempdir().unwrap();
        let TestRemote { remote, work } = TestRemote::new(dir.path());
        git(&work, &["push", "-q", remote.to_str().unwrap(), "main"]);

        let cache = tempfile::tempdir().unwrap();
        let settings =
            GitSettings::new(format!("file://{}", remote.display()), "main", cache.path());
        let mut repo = GitRepo::open(settings).unwrap();
        let a = repo.fetch().unwrap();

        // Someone else moves main; the cache does not know yet.
        std::fs::write(work.join("b.txt"), "b\n").unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", "b"]);
        git(&work, &["push", "-q", remote.to_str().unwrap(), "main"]);
        let b = git(&work, &["rev-parse", "HEAD"]);

        // A commit built on the stale head must not replace theirs.
        let parent = repo.commit(&a).unwrap();
        let tree = parent.tree().unwrap();
        let stale = repo.write_commit("stale", &tree, &[&parent]).unwrap();
        drop((tree, parent));
        let err = repo.push_ref(oid(&stale).unwrap(), "main").unwrap_err();
        assert!(matches!(err, GitError::PushRejected { .. }), "{err}");
        assert_eq!(git(&remote, &["rev-parse", "main"]), b);
    }
}
