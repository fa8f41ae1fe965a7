//! `restore`: every input of the app becomes exactly its tree at the
//! target; every other path stays as on head. Built in memory with
//! libgit2's tree updater, so the cost follows the depth of the changed
//! paths, not the size of the repository.

use git2::{FileMode, Oid, Repository};

use crate::GitTree;

/// The tree of `head` with each of `inputs` (outermost paths only) replaced
/// by its entry in `target`, or removed where the target has none.
/// Directories left empty by a removal disappear, as in Git.
pub(crate) fn restore_tree(
    repo: &Repository,
    head: &GitTree<'_>,
    target: &GitTree<'_>,
    inputs: &[String],
) -> Result<Oid, git2::Error> {
    let mut update = git2::build::TreeUpdateBuilder::new();
    let mut changes = 0usize;
    for path in inputs {
        let want = target.entry_info(path)?;
        if want == head.entry_info(path)? {
            continue;
        }
        changes += 1;
        match want {
            Some((id, mode)) => {
                update.upsert(path.as_str(), id, file_mode(mode)?);
            }
            None => {
                update.remove(path.as_str());
            }
        }
    }
    if changes == 0 {
        return Ok(head.tree().id());
    }
    update.create_updated(repo, head.tree())
}

pub(crate) fn file_mode(mode: i32) -> Result<FileMode, git2::Error> {
    Ok(match mode {
        0o040000 => FileMode::Tree,
        0o100644 => FileMode::Blob,
        0o100664 => FileMode::BlobGroupWritable,
        0o100755 => FileMode::BlobExecutable,
        0o120000 => FileMode::Link,
        0o160000 => FileMode::Commit,
        other => {
            return Err(git2::Error::from_str(&format!(
                "unsupported file mode {other:o} in tree"
            )));
        }
    })
}
