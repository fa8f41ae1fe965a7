//! [`InputsCache`]: app inputs remembered across questions.
//!
//! `shared-change` needs the inputs of every other app in the repository,
//! for every proposal whose rollback touches files outside the app's own
//! path: thousands of kustomization closures. An app's inputs are a pure
//! function of the directories its closure looked at, so each answer is kept
//! with the Git object ids of those directories and reused while they are
//! unchanged: across proposals on the same head (no lookups at all) and
//! across heads where those directories did not move (a few lookups).
//! Sources without object ids (in-memory trees) are never cached.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use crate::error::ManifestError;
use crate::inputs::{AppInputs, app_inputs};
use crate::path;
use crate::source::{DirEntry, EntryKind, SourceError, TreeSource};

/// Inputs of apps by path, each with the fingerprint it was computed from.
#[derive(Debug, Default)]
pub struct InputsCache {
    entries: HashMap<String, Entry>,
}

#[derive(Debug)]
struct Entry {
    /// Every directory the computation read, with its object id then
    /// (`None`: it did not exist).
    dirs: Vec<(String, Option<String>)>,
    /// The root tree the entry was last known valid for.
    root: String,
    inputs: AppInputs,
}

impl InputsCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of remembered apps.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// [`app_inputs`], answered from the cache when every directory the
    /// previous answer read is unchanged in `src`.
    pub fn app_inputs(
        &mut self,
        src: &dyn TreeSource,
        app_path: &str,
    ) -> Result<AppInputs, ManifestError> {
        let Some(root) = src.object_id("")? else {
            return app_inputs(src, app_path);
        };
        if let Some(entry) = self.entries.get_mut(app_path)
            && (entry.root == root || still_valid(src, &entry.dirs)?)
        {
            entry.root = root;
            return Ok(entry.inputs.clone());
        }
        let recording = Recording {
            inner: src,
            dirs: RefCell::default(),
        };
        let inputs = app_inputs(&recording, app_path)?;
        let mut dirs = Vec::new();
        for dir in recording.dirs.into_inner() {
            let id = src.object_id(&dir)?;
            dirs.push((dir, id));
        }
        self.entries.insert(
            app_path.to_string(),
            Entry {
                dirs,
                root,
                inputs: inputs.clone(),
            },
        );
        Ok(inputs)
    }
}

fn still_valid(
    src: &dyn TreeSource,
    dirs: &[(String, Option<String>)],
) -> Result<bool, SourceError> {
    for (dir, id) in dirs {
        if &src.object_id(dir)? != id {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Forwards to `inner`, noting the directory behind every answer: the one
/// listed, or the parent of the entry read or looked up.
pub(crate) struct Recording<'a> {
    pub(crate) inner: &'a dyn TreeSource,
    pub(crate) dirs: RefCell<BTreeSet<String>>,
}

impl<'a> Recording<'a> {
    pub(crate) fn new(inner: &'a dyn TreeSource) -> Self {
        Recording {
            inner,
            dirs: RefCell::default(),
        }
    }

    fn note(&self, dir: &str) {
        let dir = dir.trim_matches('/');
        if !self.dirs.borrow().contains(dir) {
            self.dirs.borrow_mut().insert(dir.to_string());
        }
    }

    fn note_parent(&self, entry: &str) {
        self.note(path::parent(entry.trim_matches('/')));
    }
}

impl TreeSource for Recording<'_> {
    fn list_dir(&self, path: &str) -> Result<Option<Vec<DirEntry>>, SourceError> {
        // The directory's own id covers its listing, and is `None` while
        // it is missing.
        self.note(path);
        self.inner.list_dir(path)
    }

    fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        self.note_parent(path);
        self.inner.read_file(path)
    }

    fn object_id(&self, path: &str) -> Result<Option<String>, SourceError> {
        self.note_parent(path);
        self.inner.object_id(path)
    }

    fn kind(&self, path: &str) -> Result<Option<EntryKind>, SourceError> {
        self.note_parent(path);
        self.inner.kind(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemoryTree;
    use crate::test_tree::Hashed;

    fn repo(shared_replicas: u32, other: &str) -> Hashed {
        let mut t = MemoryTree::new();
        t.insert(
            "apps/a/kustomization.yaml",
            "resources: [../../bases/web, deploy.yaml]\n",
        );
        t.insert("apps/a/deploy.yaml", "kind: Deployment\n");
        t.insert("bases/web/kustomization.yaml", "resources: [svc.yaml]\n");
        t.insert(
            "bases/web/svc.yaml",
            format!("kind: Service\nreplicas: {shared_replicas}\n"),
        );
        t.insert("unrelated/x.yaml", other);
        Hashed(t)
    }

    #[test]
    fn answers_like_app_inputs_and_reuses_only_while_the_closure_is_unchanged() {
        let mut cache = InputsCache::new();
        let first = repo(1, "a: 1\n");
        let fresh = app_inputs(&first, "apps/a").unwrap();
        assert!(fresh.contains("bases/web/svc.yaml"));
        assert_eq!(cache.app_inputs(&first, "apps/a").unwrap(), fresh);
        assert_eq!(cache.len(), 1);

        // Something outside the closure moved: the entry is still valid.
        let unrelated = repo(1, "a: 2\n");
        assert_eq!(cache.app_inputs(&unrelated, "apps/a").unwrap(), fresh);

        // The shared base now references a new file: recomputed.
        let mut changed = repo(2, "a: 2\n");
        changed.0.insert(
            "bases/web/kustomization.yaml",
            "resources: [svc.yaml, extra.yaml]\n",
        );
        changed
            .0
            .insert("bases/web/extra.yaml", "kind: ConfigMap\n");
        let recomputed = cache.app_inputs(&changed, "apps/a").unwrap();
        assert_eq!(recomputed, app_inputs(&changed, "apps/a").unwrap());
        assert!(recomputed.contains("bases/web/extra.yaml"));
    }

    #[test]
    fn sources_without_ids_are_computed_every_time() {
        let mut cache = InputsCache::new();
        let tree = repo(1, "").0;
        assert_eq!(
            cache.app_inputs(&tree, "apps/a").unwrap(),
            app_inputs(&tree, "apps/a").unwrap()
        );
        assert!(cache.is_empty());
    }
}
