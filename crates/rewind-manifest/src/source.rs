//! Where manifests come from: a read-only view of one Git tree.
//!
//! The manifest crate does no I/O of its own. Callers hand it a
//! [`TreeSource`]; `rewind-git` implements it over a `git2::Tree`, and tests
//! use [`MemoryTree`].

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

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

    /// What `path` is, or `None` when it is missing. The default looks the
    /// name up in the parent's listing.
    fn kind(&self, path: &str) -> Result<Option<EntryKind>, SourceError> {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Ok(Some(EntryKind::Dir));
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        Ok(self
            .list_dir(parent)?
            .and_then(|entries| entries.into_iter().find(|e| e.name == name).map(|e| e.kind)))
    }
}

/// A [`TreeSource`] that remembers every listing and file it read, for the
/// length of one question: rendering, hashing and diffing the same app read
/// the same kustomizations and listings many times, and each lookup in a
/// Git tree walks it from the root.
pub struct CachedTree<'a> {
    inner: &'a dyn TreeSource,
    dirs: RefCell<HashMap<String, Option<Rc<Vec<DirEntry>>>>>,
    files: RefCell<HashMap<String, Option<Rc<Vec<u8>>>>>,
}

impl std::fmt::Debug for CachedTree<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedTree")
            .field("dirs", &self.dirs.borrow().len())
            .field("files", &self.files.borrow().len())
            .finish()
    }
}

impl<'a> CachedTree<'a> {
    pub fn new(inner: &'a dyn TreeSource) -> Self {
        CachedTree {
            inner,
            dirs: RefCell::default(),
            files: RefCell::default(),
        }
    }

    fn listing(&self, path: &str) -> Result<Option<Rc<Vec<DirEntry>>>, SourceError> {
        if let Some(hit) = self.dirs.borrow().get(path) {
            return Ok(hit.clone());
        }
        let listing = self.inner.list_dir(path)?.map(Rc::new);
        self.dirs
            .borrow_mut()
            .insert(path.to_string(), listing.clone());
        Ok(listing)
    }
}

impl TreeSource for CachedTree<'_> {
    fn list_dir(&self, path: &str) -> Result<Option<Vec<DirEntry>>, SourceError> {
        Ok(self
            .listing(path.trim_matches('/'))?
            .map(|l| l.as_ref().clone()))
    }

    fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let path = path.trim_matches('/');
        if let Some(hit) = self.files.borrow().get(path) {
            return Ok(hit.as_ref().map(|c| c.as_ref().clone()));
        }
        // Only files that exist are read from the store.
        let content = match self.kind(path)? {
            Some(EntryKind::File | EntryKind::Symlink) => self.inner.read_file(path)?.map(Rc::new),
            _ => None,
        };
        self.files
            .borrow_mut()
            .insert(path.to_string(), content.clone());
        Ok(content.map(|c| c.as_ref().clone()))
    }

    fn object_id(&self, path: &str) -> Result<Option<String>, SourceError> {
        self.inner.object_id(path)
    }

    fn kind(&self, path: &str) -> Result<Option<EntryKind>, SourceError> {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Ok(Some(EntryKind::Dir));
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        Ok(self.listing(parent)?.and_then(|entries| {
            match entries.binary_search_by(|e| e.name.as_str().cmp(name)) {
                Ok(i) => Some(entries[i].kind),
                // A source that does not sort its listings still answers.
                Err(_) => entries.iter().find(|e| e.name == name).map(|e| e.kind),
            }
        }))
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
