//! [`TreeSource`] over a `git2::Tree`: how the manifest crate reads a commit
//! without a work tree.
//!
//! Paths are resolved one directory at a time through a per-view cache of
//! subtrees. libgit2 caches only small tree objects, so without it every
//! lookup below `apps/` would inflate and parse the whole `apps` tree again
//! (thousands of entries, often at the end of a long delta chain); with it
//! each directory is read once per view, and the cost of reading an app no
//! longer grows with the number of apps.

use std::cell::RefCell;
use std::collections::HashMap;

use git2::{ObjectType, Oid, Repository, Tree};
use rewind_manifest::{DirEntry, EntryKind, SourceError, TreeSource};

/// File mode of a symbolic link in a Git tree.
const MODE_SYMLINK: i32 = 0o120000;
/// File mode of a submodule (gitlink) in a Git tree.
const MODE_GITLINK: i32 = 0o160000;
/// File mode of a directory in a Git tree.
const MODE_TREE: i32 = 0o040000;

/// A commit's tree, readable by the manifest crate.
pub struct GitTree<'repo> {
    repo: &'repo Repository,
    tree: Tree<'repo>,
    /// Directory path (no leading or trailing `/`) → its tree; `None` when
    /// the path is missing or not a directory.
    dirs: RefCell<HashMap<String, Option<Tree<'repo>>>>,
}

impl std::fmt::Debug for GitTree<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitTree")
            .field("tree", &self.tree.id())
            .finish()
    }
}

impl<'repo> GitTree<'repo> {
    pub fn new(repo: &'repo Repository, tree: Tree<'repo>) -> Self {
        GitTree {
            repo,
            tree,
            dirs: RefCell::new(HashMap::new()),
        }
    }

    /// The tree of `rev` (anything `git rev-parse` accepts that names a
    /// commit or tree).
    pub fn at_rev(repo: &'repo Repository, rev: &str) -> Result<Self, git2::Error> {
        let tree = repo.revparse_single(rev)?.peel_to_tree()?;
        Ok(GitTree::new(repo, tree))
    }

    pub fn tree(&self) -> &Tree<'repo> {
        &self.tree
    }

    /// The id and file mode of the entry at `path`, or `None` when absent.
    /// The root is the view's tree itself.
    pub fn entry_info(&self, path: &str) -> Result<Option<(Oid, i32)>, git2::Error> {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Ok(Some((self.tree.id(), MODE_TREE)));
        }
        let (parent, name) = split(path);
        let Some(dir) = self.subtree(parent)? else {
            return Ok(None);
        };
        Ok(dir.get_name(name).map(|e| (e.id(), e.filemode())))
    }

    /// The directory at `path` (cached), or `None` when missing or not a
    /// directory.
    pub fn subtree(&self, path: &str) -> Result<Option<Tree<'repo>>, git2::Error> {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Ok(Some(self.tree.clone()));
        }
        if let Some(cached) = self.dirs.borrow().get(path) {
            return Ok(cached.clone());
        }
        let (parent, name) = split(path);
        let found = match self.subtree(parent)? {
            Some(dir) => match dir.get_name(name) {
                Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
                    Some(self.repo.find_tree(entry.id())?)
                }
                _ => None,
            },
            None => None,
        };
        self.dirs
            .borrow_mut()
            .insert(path.to_string(), found.clone());
        Ok(found)
    }
}

/// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

fn source_error(path: &str, e: git2::Error) -> SourceError {
    SourceError {
        path: path.to_string(),
        message: e.message().to_string(),
    }
}

impl TreeSource for GitTree<'_> {
    fn list_dir(&self, path: &str) -> Result<Option<Vec<DirEntry>>, SourceError> {
        let Some(tree) = self.subtree(path).map_err(|e| source_error(path, e))? else {
            return Ok(None);
        };
        let mut entries = Vec::with_capacity(tree.len());
        for entry in tree.iter() {
            // Git allows non-UTF-8 names; the manifest layer works on UTF-8
            // paths, so such entries are shown lossily and never match.
            let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
            let kind = match (entry.kind(), entry.filemode()) {
                (Some(ObjectType::Tree), _) => EntryKind::Dir,
                (_, MODE_SYMLINK) => EntryKind::Symlink,
                (_, MODE_GITLINK) | (Some(ObjectType::Commit), _) => EntryKind::Submodule,
                _ => EntryKind::File,
            };
            entries.push(DirEntry { name, kind });
        }
        entries.sort();
        Ok(Some(entries))
    }

    fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        if path.trim_matches('/').is_empty() {
            return Ok(None);
        }
        match self.entry_info(path).map_err(|e| source_error(path, e))? {
            Some((id, mode)) if mode != MODE_TREE && mode != MODE_GITLINK => {
                let blob = self.repo.find_blob(id).map_err(|e| source_error(path, e))?;
                Ok(Some(blob.content().to_vec()))
            }
            _ => Ok(None),
        }
    }

    fn object_id(&self, path: &str) -> Result<Option<String>, SourceError> {
        Ok(self
            .entry_info(path)
            .map_err(|e| source_error(path, e))?
            .map(|(id, _)| id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_dirs_and_ids_like_git() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let blob = repo.blob(b"kind: ConfigMap\n").unwrap();
        let mut update = git2::build::TreeUpdateBuilder::new();
        update.upsert("apps/a/base/cm.yaml", blob, git2::FileMode::Blob);
        update.upsert("apps/b/k.yaml", blob, git2::FileMode::Blob);
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let root = update
            .create_updated(&repo, &repo.find_tree(empty).unwrap())
            .unwrap();
        let view = GitTree::new(&repo, repo.find_tree(root).unwrap());

        assert_eq!(
            view.read_file("apps/a/base/cm.yaml").unwrap().as_deref(),
            Some(&b"kind: ConfigMap\n"[..])
        );
        assert_eq!(view.read_file("apps/a/base").unwrap(), None);
        assert_eq!(view.read_file("apps/a/missing.yaml").unwrap(), None);
        assert_eq!(view.read_file("apps/a/base/cm.yaml/x").unwrap(), None);
        let listing = view.list_dir("apps").unwrap().unwrap();
        assert_eq!(
            listing
                .iter()
                .map(|e| (e.name.as_str(), e.kind))
                .collect::<Vec<_>>(),
            vec![("a", EntryKind::Dir), ("b", EntryKind::Dir)]
        );
        assert_eq!(view.list_dir("apps/b/k.yaml").unwrap(), None);
        assert_eq!(view.list_dir("nope").unwrap(), None);
        assert_eq!(
            view.object_id("apps/b/k.yaml").unwrap(),
            Some(blob.to_string())
        );
        assert_eq!(view.object_id("").unwrap(), Some(root.to_string()));
        let sub = view
            .tree()
            .get_path(std::path::Path::new("apps/a"))
            .unwrap();
        assert_eq!(
            view.object_id("/apps/a/").unwrap(),
            Some(sub.id().to_string())
        );
    }
}
