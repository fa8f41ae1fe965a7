//! Where manifests come from: a read-only view of one Git tree.
//!
//! The manifest crate does no I/O of its own. Callers hand it a
//! [`TreeSource`]; `rewind-git` implements it over a `git2::Tree`, and tests
//! use [`MemoryTree`].

use std::collections::BTreeMap;

/// What kind of entry a directory listing holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    File,
    Dir,
    /// Symbolic links are never followed: they could point outside the
    /// repository. They are reported (and hashed by their target text).
    Symlink,
    /// Git submodules (gitlinks) are reported but not entered.
    Submodule,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DirEntry {
    /// The entry's own name (no `/`).
    pub name: String,
    pub kind: EntryKind,
}

/// A failure of the underlying store (a corrupt object, an I/O error).
/// Missing paths are not errors: they are `Ok(None)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {path:?}: {message}")]
pub struct SourceError {
    pub path: String,
    pub message: String,
}

/// A read-only view of a repository tree at one commit.
///
/// Paths are relative to the repository root, `/`-separated, without a
/// leading `/`, `.` or `..` components; the empty string is the root.
pub trait TreeSource {
    /// Entries of the directory at `path`, sorted by name; `None` when
    /// `path` is missing or not a directory.
    fn list_dir(&self, path: &str) -> Result<Option<Vec<DirEntry>>, SourceError>;

    /// Content of the file (or symlink target) at `path`; `None` when
    /// `path` is missing or a directory.
    fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError>;

    /// Git object id (hex) of the tree or blob at `path`, when the source
    /// has one. Lets callers compare subtrees without reading them.
    fn object_id(&self, _path: &str) -> Result<Option<String>, SourceError> {
        Ok(None)
    }
}

/// An in-memory tree for tests: file path → bytes. Directories are implied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree {
    files: BTreeMap<String, Vec<u8>>,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.insert(path, content);
        self
    }

    pub fn insert(&mut self, path: &str, content: impl Into<Vec<u8>>) {
        self.files
            .insert(path.trim_matches('/').to_string(), content.into());
    }

    pub fn remove(&mut self, path: &str) -> Option<Vec<u8>> {
        self.files.remove(path.trim_matches('/'))
    }

    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(p, c)| (p.as_str(), c.as_slice()))
    }
}

impl TreeSource for MemoryTree {
    fn list_dir(&self, path: &str) -> Result<Option<Vec<DirEntry>>, SourceError> {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{}/", path.trim_matches('/'))
        };
        let mut entries = std::collections::BTreeSet::new();
        for file in self.files.keys() {
            if let Some(rest) = file.strip_prefix(&prefix) {
                match rest.split_once('/') {
                    Some((dir, _)) => entries.insert(DirEntry {
                        name: dir.to_string(),
                        kind: EntryKind::Dir,
                    }),
                    None => entries.insert(DirEntry {
                        name: rest.to_string(),
                        kind: EntryKind::File,
                    }),
                };
            }
        }
        if entries.is_empty() && !path.is_empty() {
            return Ok(None);
        }
        Ok(Some(entries.into_iter().collect()))
    }

    fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(self.files.get(path.trim_matches('/')).cloned())
    }
}
