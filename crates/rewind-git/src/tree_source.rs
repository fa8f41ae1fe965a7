//! [`TreeSource`] over a `git2::Tree`: how the manifest crate reads a commit
//! without a work tree.

use git2::{ObjectType, Repository, Tree};
use rewind_manifest::{DirEntry, EntryKind, SourceError, TreeSource};

/// File mode of a symbolic link in a Git tree.
const MODE_SYMLINK: i32 = 0o120000;
/// File mode of a submodule (gitlink) in a Git tree.
const MODE_GITLINK: i32 = 0o160000;

/// A commit's tree, readable by the manifest crate.
pub struct GitTree<'repo> {
    repo: &'repo Repository,
    tree: Tree<'repo>,
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
        GitTree { repo, tree }
    }

    /// The tree of `rev` (anything `git rev-parse` accepts that names a
    /// commit or tree).
    pub fn at_rev(repo: &'repo Repository, rev: &str) -> Result<Self, git2::Error> {
        let tree = repo.revparse_single(rev)?.peel_to_tree()?;
        Ok(GitTree { repo, tree })
    }

    pub fn tree(&self) -> &Tree<'repo> {
        &self.tree
    }

    fn entry(&self, path: &str) -> Result<Option<git2::TreeEntry<'static>>, SourceError> {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Ok(None);
        }
        match self.tree.get_path(std::path::Path::new(path)) {
            Ok(entry) => Ok(Some(entry)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(source_error(path, e)),
        }
    }
}

fn source_error(path: &str, e: git2::Error) -> SourceError {
    SourceError {
        path: path.to_string(),
        message: e.message().to_string(),
    }
}

impl TreeSource for GitTree<'_> {
    fn list_dir(&self, path: &str) -> Result<Option<Vec<DirEntry>>, SourceError> {
        let subtree;
        let tree = if path.trim_matches('/').is_empty() {
            &self.tree
        } else {
            match self.entry(path)? {
                Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
                    subtree = self
                        .repo
                        .find_tree(entry.id())
                        .map_err(|e| source_error(path, e))?;
                    &subtree
                }
                _ => return Ok(None),
            }
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
        match self.entry(path)? {
            Some(entry) if entry.kind() == Some(ObjectType::Blob) => {
                let blob = self
                    .repo
                    .find_blob(entry.id())
                    .map_err(|e| source_error(path, e))?;
                Ok(Some(blob.content().to_vec()))
            }
            _ => Ok(None),
        }
    }

    fn object_id(&self, path: &str) -> Result<Option<String>, SourceError> {
        if path.trim_matches('/').is_empty() {
            return Ok(Some(self.tree.id().to_string()));
        }
        Ok(self.entry(path)?.map(|entry| entry.id().to_string()))
    }
}
