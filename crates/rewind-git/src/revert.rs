//! `revert`: undo, newest first, the commits since the target that touched
//! the app's inputs, each by a three-way merge as `git revert` does (base:
//! the commit, ours: the tree so far, theirs: the commit's parent). All in
//! memory: no work tree, no index file, no intermediate commits.

use git2::{Commit, MergeOptions, Oid, Repository};
use rewind_domain::CommitId;

/// How the reverts went.
#[derive(Debug)]
pub(crate) enum RevertResult {
    /// Every commit reverted cleanly; the final tree.
    Clean(Oid),
    /// Reverting `commit` conflicts in `paths`.
    Conflict {
        commit: CommitId,
        paths: Vec<String>,
    },
}

/// Reverts `commits` (newest first) on top of `head`.
pub(crate) fn revert_commits(
    repo: &Repository,
    head: &Commit<'_>,
    commits: &[Commit<'_>],
) -> Result<RevertResult, git2::Error> {
    let mut current = head.tree()?;
    let options = MergeOptions::new();
    for commit in commits {
        // Merges are reverted against their first parent (`git revert -m 1`).
        let parent_tree = match commit.parents().next() {
            Some(parent) => parent.tree()?,
            None => {
                // Reverting a root commit removes what it added.
                let empty = repo.treebuilder(None)?.write()?;
                repo.find_tree(empty)?
            }
        };
        let mut index =
            repo.merge_trees(&commit.tree()?, &current, &parent_tree, Some(&options))?;
        if index.has_conflicts() {
            let mut paths = Vec::new();
            for conflict in index.conflicts()? {
                let conflict = conflict?;
                let entry = conflict.our.or(conflict.their).or(conflict.ancestor);
                if let Some(entry) = entry {
                    paths.push(String::from_utf8_lossy(&entry.path).into_owned());
                }
            }
            paths.sort();
            paths.dedup();
            return Ok(RevertResult::Conflict {
                commit: crate::repo::commit_id(commit.id())
                    .map_err(|e| git2::Error::from_str(&e.to_string()))?,
                paths,
            });
        }
        let tree = index.write_tree_to(repo)?;
        current = repo.find_tree(tree)?;
    }
    Ok(RevertResult::Clean(current.id()))
}
