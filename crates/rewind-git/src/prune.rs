//! Retention: listing the `rewind/*` branches the cache knows and deleting
//! one on the remote. Only `rewind/*` names are accepted, and a deletion is
//! an ordinary (non-forced) push of an empty source.

use crate::lock::CacheLock;
use crate::repo::TRACKING_PREFIX;
use crate::settings::check_branch;
use crate::{GitError, GitRepo};

/// The only branches retention may delete.
const ROLLBACK_BRANCH_PREFIX: &str = "rewind/";

impl GitRepo {
    /// The `rewind/*` branches on the remote as of the last fetch, by name
    /// (`rewind/<app-slug>/<id>[-rebuild-N]`), sorted.
    pub fn rollback_branches(&self) -> Result<Vec<String>, GitError> {
        let glob = format!("{TRACKING_PREFIX}{ROLLBACK_BRANCH_PREFIX}*");
        let references = self
            .repo
            .references_glob(&glob)
            .map_err(|e| self.git_error(e))?;
        let mut names = Vec::new();
        for reference in references {
            let reference = reference.map_err(|e| self.git_error(e))?;
            if let Some(name) = reference
                .name()
                .ok()
                .and_then(|n| n.strip_prefix(TRACKING_PREFIX))
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Deletes `branch` (a `rewind/*` branch) on the remote and in the
    /// cache. A branch the remote no longer has (another replica, or a
    /// person, deleted it first) is not an error: remotes accept deleting
    /// a missing ref, and a refusal is checked against a fresh fetch.
    #[tracing::instrument(skip_all, fields(git.ref = %branch))]
    pub fn delete_rollback_branch(&mut self, branch: &str) -> Result<(), GitError> {
        check_branch(branch)?;
        if !branch.starts_with(ROLLBACK_BRANCH_PREFIX) {
            return Err(GitError::InvalidBranch {
                name: branch.chars().take(120).collect(),
                reason: "only rewind/* branches are ever deleted",
            });
        }
        let refname = format!("refs/heads/{branch}");
        let lock = CacheLock::acquire(&self.dir)?;
        match self.send_refspec(&format!(":{refname}"), &refname) {
            Ok(()) => drop(lock),
            Err(refused @ GitError::PushRejected { .. }) => {
                // Refused: gone already (fine), or the remote protects it
                // (an error worth reporting). Only a fetch tells.
                drop(lock);
                self.fetch()?;
                if self.head(branch)?.is_some() {
                    return Err(refused);
                }
            }
            Err(e) => return Err(e),
        }
        let tracking = format!("{TRACKING_PREFIX}{branch}");
        match self.repo.find_reference(&tracking) {
            Ok(mut reference) => reference.delete().map_err(|e| self.git_error(e))?,
            Err(e) if e.code() == git2::ErrorCode::NotFound => {}
            Err(e) => return Err(self.git_error(e)),
        }
        tracing::info!("deleted rollback branch");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GitSettings;
    use crate::test_remote::{TestRemote, git};

    #[test]
    fn deletes_only_rewind_branches_and_a_second_deletion_finds_it_gone() {
        let dir = tempfile::tempdir().unwrap();
        let TestRemote { remote, work } = TestRemote::new(dir.path());
        let url = remote.to_str().unwrap();
        for refspec in [
            "main",
            "main:rewind/app/one",
            "main:rewind/app/two",
            "main:feature",
        ] {
            git(&work, &["push", "-q", url, refspec]);
        }

        // Two replicas' caches of one remote.
        let open = |name: &str| {
            let settings = GitSettings::new(format!("file://{url}"), "main", dir.path().join(name));
            let mut repo = GitRepo::open(settings).unwrap();
            repo.fetch().unwrap();
            repo
        };
        let (mut first, mut second) = (open("cache-1"), open("cache-2"));
        assert_eq!(
            first.rollback_branches().unwrap(),
            ["rewind/app/one", "rewind/app/two"]
        );

        first.delete_rollback_branch("rewind/app/one").unwrap();
        assert_eq!(first.rollback_branches().unwrap(), ["rewind/app/two"]);
        // The other cache still lists it; deleting it there is not an error.
        assert_eq!(second.rollback_branches().unwrap().len(), 2);
        second.delete_rollback_branch("rewind/app/one").unwrap();
        assert_eq!(second.rollback_branches().unwrap(), ["rewind/app/two"]);

        for other in ["main", "feature", "rewinder/x"] {
            let err = first.delete_rollback_branch(other).unwrap_err();
            assert!(matches!(err, GitError::InvalidBranch { .. }), "{err}");
        }
        let left = git(&remote, &["for-each-ref", "--format=%(refname)"]);
        assert_eq!(
            left.lines().collect::<Vec<_>>(),
            [
                "refs/heads/feature",
                "refs/heads/main",
                "refs/heads/rewind/app/two"
            ]
        );
    }
}
