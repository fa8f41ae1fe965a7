//! Test support: a git2-backed `TreeSource` (the real one lives in
//! `rewind-git`, which depends on this crate) and the repository generator.

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{ObjectType, Repository, Tree};

pub mod kubectl;
use rewind_manifest::{DirEntry, EntryKind, SourceError, TreeSource};

/// Same lookups as `rewind_git::GitTree` (`Tree::get_path` from the root),
/// or, with `subtree_cache`, through remembered subtrees: libgit2 does not
/// cache tree objects over 4 KiB, so a large `apps/` tree is inflated again
/// on every root lookup.
pub struct GitTree<'r> {
    repo: &'r Repository,
    tree: Tree<'r>,
    subtrees: Option<RefCell<HashMap<String, Tree<'r>>>>,
}

impl<'r> GitTree<'r> {
    pub fn at(repo: &'r Repository, rev: &str) -> GitTree<'r> {
        let tree = repo.revparse_single(rev).unwrap().peel_to_tree().unwrap();
        GitTree {
            repo,
            tree,
            subtrees: None,
        }
    }

    pub fn with_subtree_cache(mut self) -> Self {
        self.subtrees = Some(RefCell::default());
        self
    }

    fn subtree(&self, dir: &str) -> Option<Tree<'r>> {
        let cache = self.subtrees.as_ref()?;
        if dir.is_empty() {
            return Some(self.tree.clone());
        }
        if let Some(hit) = cache.borrow().get(dir) {
            return Some(hit.clone());
        }
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let parent = self.subtree(parent)?;
        let entry = parent.get_name(name)?;
        let tree = self.repo.find_tree(entry.id()).ok()?;
        cache.borrow_mut().insert(dir.to_string(), tree.clone());
        Some(tree)
    }

    fn entry(&self, path: &str) -> Option<git2::TreeEntry<'static>> {
        if path.is_empty() {
            return None;
        }
        if self.subtrees.is_some() {
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            return self.subtree(parent)?.get_name(name).map(|e| e.to_owned());
        }
        self.tree.get_path(Path::new(path)).ok()
    }
}

fn err(path: &str, e: git2::Error) -> SourceError {
    SourceError {
        path: path.into(),
        message: e.message().into(),
    }
}

impl TreeSource for GitTree<'_> {
    fn list_dir(&self, path: &str) -> Result<Option<Vec<DirEntry>>, SourceError> {
        let sub;
        let tree = if path.is_empty() {
            &self.tree
        } else {
            match self.entry(path) {
                Some(e) if e.kind() == Some(ObjectType::Tree) => {
                    sub = self.repo.find_tree(e.id()).map_err(|e| err(path, e))?;
                    &sub
                }
                _ => return Ok(None),
            }
        };
        let mut out: Vec<DirEntry> = tree
            .iter()
            .map(|e| DirEntry {
                name: String::from_utf8_lossy(e.name_bytes()).into_owned(),
                kind: match (e.kind(), e.filemode()) {
                    (Some(ObjectType::Tree), _) => EntryKind::Dir,
                    (_, 0o120000) => EntryKind::Symlink,
                    (Some(ObjectType::Commit), _) => EntryKind::Submodule,
                    _ => EntryKind::File,
                },
            })
            .collect();
        out.sort();
        Ok(Some(out))
    }

    fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match self.entry(path) {
            Some(e) if e.kind() == Some(ObjectType::Blob) => Ok(Some(
                self.repo
                    .find_blob(e.id())
                    .map_err(|e| err(path, e))?
                    .content()
                    .to_vec(),
            )),
            _ => Ok(None),
        }
    }

    fn object_id(&self, path: &str) -> Result<Option<String>, SourceError> {
        Ok(self.entry(path).map(|e| e.id().to_string()))
    }
}

/// The generator the workspace carries (`tests/tools`).
pub const GENERATOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/tools/gen-gitops-repo"
);

/// Generates a repository into `dir` and returns its summary.
pub fn generate(dir: &Path, args: &[&str]) -> serde_json::Value {
    let summary: PathBuf = dir.with_extension("summary.json");
    let status = Command::new(GENERATOR)
        .arg(dir)
        .args(args)
        .arg("--bare")
        .arg("--summary")
        .arg(&summary)
        .status()
        .expect("run gen-gitops-repo");
    assert!(status.success());
    serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap()
}
