//! What the fake does to the real bare repository: read branch tips, check
//! that a pull request has commits, and merge for real (merge commit,
//! squash or rebase), moving the base branch only if nobody moved it first.

use std::path::Path;

use git2::{Commit, Oid, Repository, Signature};

/// Why a merge did not happen.
#[derive(Debug)]
pub(crate) enum MergeRefusal {
    /// Conflicts, or commits the method cannot replay: GitHub's 405.
    NotMergeable(String),
    /// The repository failed: the fake's 500.
    Broken(String),
}

impl From<git2::Error> for MergeRefusal {
    fn from(e: git2::Error) -> Self {
        MergeRefusal::Broken(e.message().to_owned())
    }
}

/// Opens the repository; a bare one is what GitHub has, but a repository
/// with a work tree is accepted too (its work tree is left alone).
pub(crate) fn open(path: &Path) -> Result<Repository, git2::Error> {
    Repository::open(path)
}

/// The commit a branch points to, if the branch exists.
pub(crate) fn branch_tip(repo: &Repository, branch: &str) -> Option<Oid> {
    repo.find_reference(&format!("refs/heads/{branch}"))
        .ok()?
        .peel_to_commit()
        .ok()
        .map(|c| c.id())
}

pub(crate) fn commit_exists(repo: &Repository, sha: &str) -> bool {
    Oid::from_str(sha)
        .ok()
        .is_some_and(|oid| repo.find_commit(oid).is_ok())
}

/// Whether `head` has commits that `base` lacks.
pub(crate) fn has_new_commits(repo: &Repository, base: Oid, head: Oid) -> bool {
    head != base && !repo.graph_descendant_of(base, head).unwrap_or(false)
}

/// Whether merging `head` into `base` conflicts.
pub(crate) fn conflicts(repo: &Repository, base: Oid, head: Oid) -> Result<bool, git2::Error> {
    let index = repo.merge_commits(&repo.find_commit(base)?, &repo.find_commit(head)?, None)?;
    Ok(index.has_conflicts())
}

pub(crate) struct MergeRequest<'a> {
    pub base_branch: &'a str,
    pub head_branch: &'a str,
    pub method: &'a str,
    pub number: u64,
    pub title: &'a str,
    pub owner: &'a str,
    pub commit_title: Option<&'a str>,
    pub commit_message: Option<&'a str>,
}

/// Merges as GitHub does and returns the new tip of the base branch.
pub(crate) fn merge(repo: &Repository, request: &MergeRequest<'_>) -> Result<Oid, MergeRefusal> {
    let base_ref = format!("refs/heads/{}", request.base_branch);
    let base = repo.find_reference(&base_ref)?.peel_to_commit()?;
    let head = repo
        .find_reference(&format!("refs/heads/{}", request.head_branch))?
        .peel_to_commit()?;
    let committer = Signature::now("GitHub", "noreply@github.com")?;
    let new_tip = match request.method {
        "merge" | "squash" => {
            let mut index = repo.merge_commits(&base, &head, None)?;
            if index.has_conflicts() {
                return Err(MergeRefusal::NotMergeable("merge conflict".to_owned()));
            }
            let tree = repo.find_tree(index.write_tree_to(repo)?)?;
            if request.method == "merge" {
                let title = request.commit_title.map(str::to_owned).unwrap_or_else(|| {
                    format!(
                        "Merge pull request #{} from {}/{}",
                        request.number, request.owner, request.head_branch
                    )
                });
                let message = format!(
                    "{title}\n\n{}",
                    request.commit_message.unwrap_or(request.title)
                );
                repo.commit(
                    None,
                    &committer,
                    &committer,
                    &message,
                    &tree,
                    &[&base, &head],
                )?
            } else {
                let title = request
                    .commit_title
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{} (#{})", request.title, request.number));
                let message = match request.commit_message {
                    Some(body) => format!("{title}\n\n{body}"),
                    None => title,
                };
                let author = head.author();
                repo.commit(None, &author, &committer, &message, &tree, &[&base])?
            }
        }
        "rebase" => rebase(repo, &base, &head, &committer)?,
        other => {
            return Err(MergeRefusal::NotMergeable(format!(
                "unknown merge method {other:?}"
            )));
        }
    };
    // Compare-and-swap: a concurrent push to the base branch wins.
    repo.reference_matching(
        &base_ref,
        new_tip,
        true,
        base.id(),
        &format!("merge pull request #{}", request.number),
    )?;
    Ok(new_tip)
}

/// Replays the head's commits onto the base, oldest first.
fn rebase(
    repo: &Repository,
    base: &Commit<'_>,
    head: &Commit<'_>,
    committer: &Signature<'_>,
) -> Result<Oid, MergeRefusal> {
    let mut walk = repo.revwalk()?;
    walk.push(head.id())?;
    walk.hide(base.id())?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    let mut onto = base.clone();
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        if commit.parent_count() > 1 {
            return Err(MergeRefusal::NotMergeable(
                "rebase merging cannot replay merge commits".to_owned(),
            ));
        }
        let mut index = repo.cherrypick_commit(&commit, &onto, 0, None)?;
        if index.has_conflicts() {
            return Err(MergeRefusal::NotMergeable(format!(
                "commit {} does not apply on the base",
                commit.id()
            )));
        }
        let tree = repo.find_tree(index.write_tree_to(repo)?)?;
        let new = repo.commit(
            None,
            &commit.author(),
            committer,
            commit.message().unwrap_or_default(),
            &tree,
            &[&onto],
        )?;
        onto = repo.find_commit(new)?;
    }
    Ok(onto.id())
}
