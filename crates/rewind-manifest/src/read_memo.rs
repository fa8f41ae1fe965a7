//! [`ReadMemo`]: answers about an app kept by the Git ids of what they
//! read, so the same inputs at another commit cost a few lookups.
//!
//! A deployment's history comes in bursts (Argo CD reports the last ten
//! entries of each app; a fleet of 4,000 apps is 40,000 of them on a cold
//! start), and most entries of one app differ only outside the app: its
//! overlay, base and shared base are the same trees at many commits. An
//! answer computed only through a [`TreeSource`] is a pure function of the
//! directories it looked at, so it is stored under the ids of those
//! directories. Looking up an app at a new tree takes the directory lists
//! its earlier answers read, asks the tree for their ids now, and finds
//! the answer stored under them, if any.
//!
//! Both maps are size-capped LRUs: at most `capacity` answers and
//! `capacity` apps' directory lists. Sources without object ids (in-memory
//! trees) are never cached.

use std::sync::{Arc, Mutex};

use hashlink::LruCache;
use sha2::{Digest, Sha256};

use crate::inputs_cache::Recording;
use crate::source::{SourceError, TreeSource};

/// How many different directory lists are kept per app: an app whose
/// closure changed shape (a new base) has two for a while.
const LISTS_PER_APP: usize = 2;

/// Answers of type `T` by app path and the ids of what they read.
#[derive(Debug)]
pub struct ReadMemo<T> {
    answers: LruCache<Key, T>,
    /// Per app, the directory lists of its answers, newest first.
    lists: LruCache<String, Vec<Arc<[String]>>>,
    hits: u64,
    misses: u64,
}

/// The app path and a digest of (directory, id) over one directory list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    app_path: String,
    fingerprint: [u8; 32],
}

impl<T: Clone> ReadMemo<T> {
    /// At most `capacity` answers; 0 keeps nothing (every question is
    /// computed).
    pub fn new(capacity: usize) -> Self {
        ReadMemo {
            answers: LruCache::new(capacity),
            lists: LruCache::new(capacity),
            hits: 0,
            misses: 0,
        }
    }

    /// Answers kept now.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// (answered from the memo, computed) since it was made.
    pub fn counts(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// `compute(src)` for the app at `app_path`, or the answer it gave for
    /// the same directories at another tree. `compute` must read the tree
    /// only through the source it is given. The lock is held to look up
    /// and to store, not while the tree is read or `compute` runs, so
    /// several threads resolve at once; two threads computing the same
    /// answer both store it, the second replacing the first with an equal
    /// one.
    pub fn get_or_compute<E>(
        memo: &Mutex<ReadMemo<T>>,
        src: &dyn TreeSource,
        app_path: &str,
        compute: impl FnOnce(&dyn TreeSource) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<SourceError>,
    {
        // A panic elsewhere cannot leave an entry half-inserted.
        let lock = || memo.lock().unwrap_or_else(|p| p.into_inner());
        let known: Vec<Arc<[String]>> = {
            let mut memo = lock();
            if memo.answers.capacity() == 0 {
                drop(memo);
                return compute(src);
            }
            memo.lists.get(app_path).cloned().unwrap_or_default()
        };
        if src.object_id("")?.is_none() {
            return compute(src);
        }
        let mut keys = Vec::with_capacity(known.len());
        for dirs in &known {
            keys.push(Key {
                app_path: app_path.to_string(),
                fingerprint: fingerprint(src, dirs)?,
            });
        }
        {
            let mut memo = lock();
            for key in &keys {
                if let Some(answer) = memo.answers.get(key).cloned() {
                    memo.hits += 1;
                    return Ok(answer);
                }
            }
            memo.misses += 1;
        }
        let recording = Recording::new(src);
        let answer = compute(&recording)?;
        let dirs: Arc<[String]> = recording.dirs.into_inner().into_iter().collect();
        let key = Key {
            app_path: app_path.to_string(),
            fingerprint: fingerprint(src, &dirs)?,
        };
        let mut memo = lock();
        memo.answers.insert(key, answer.clone());
        let mut lists = memo.lists.get(app_path).cloned().unwrap_or_default();
        if !lists.contains(&dirs) {
            lists.insert(0, dirs);
            lists.truncate(LISTS_PER_APP);
        }
        memo.lists.insert(app_path.to_string(), lists);
        Ok(answer)
    }
}

/// Digest of each directory's path and id in `src` (absent ones too:
/// "still missing" is part of what an answer read).
fn fingerprint(src: &dyn TreeSource, dirs: &[String]) -> Result<[u8; 32], SourceError> {
    let mut digest = Sha256::new();
    for dir in dirs {
        digest.update(dir.as_bytes());
        digest.update([0]);
        match src.object_id(dir)? {
            Some(id) => digest.update(id.as_bytes()),
            None => digest.update(b"-"),
        }
        digest.update([0]);
    }
    Ok(digest.finalize().into())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::source::MemoryTree;
    use crate::test_tree::Hashed;
    use crate::{ManifestError, config_hash};

    /// App `a` (overlay on a shared base) and an unrelated file.
    fn repo(replicas: u32, image: &str, other: &str) -> Hashed {
        let mut t = MemoryTree::new();
        t.insert(
            "apps/a/kustomization.yaml",
            format!("resources: [../../bases/web, deploy.yaml]\nimages:\n- name: web\n  newTag: \"{image}\"\n"),
        );
        t.insert(
            "apps/a/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: web}]\n",
        );
        t.insert("bases/web/kustomization.yaml", "resources: [svc.yaml]\n");
        t.insert(
            "bases/web/svc.yaml",
            format!("apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{replicas: {replicas}}}\n"),
        );
        t.insert("unrelated/x.yaml", other);
        Hashed(t)
    }

    /// The config hash through the memo, counting real computations.
    fn hash(
        memo: &Mutex<ReadMemo<String>>,
        tree: &Hashed,
        computed: &Cell<u32>,
    ) -> Result<String, ManifestError> {
        ReadMemo::get_or_compute(memo, tree, "apps/a", |src| {
            computed.set(computed.get() + 1);
            config_hash(src, "apps/a").map(|h| h.to_string())
        })
    }

    #[test]
    fn same_inputs_at_another_tree_are_a_lookup_and_the_same_answer() {
        let memo = Mutex::new(ReadMemo::new(16));
        let computed = Cell::new(0);
        let first = repo(1, "1.0", "x: 1\n");
        let fresh = config_hash(&first, "apps/a").unwrap().to_string();
        assert_eq!(hash(&memo, &first, &computed).unwrap(), fresh);
        assert_eq!(computed.get(), 1);

        // Another commit: only a file outside the app's closure moved.
        let elsewhere = repo(1, "1.0", "x: 2\n");
        assert_eq!(hash(&memo, &elsewhere, &computed).unwrap(), fresh);
        assert_eq!(computed.get(), 1, "answered from the memo");
        assert_eq!(memo.lock().unwrap().counts(), (1, 1));

        // The shared base changed, then the overlay: each is computed, and
        // matches a fresh computation.
        for tree in [repo(2, "1.0", "x: 2\n"), repo(2, "1.1", "x: 2\n")] {
            let before = computed.get();
            let memoised = hash(&memo, &tree, &computed).unwrap();
            assert_eq!(memoised, config_hash(&tree, "apps/a").unwrap().to_string());
            assert_ne!(memoised, fresh);
            assert_eq!(computed.get(), before + 1);
        }

        // Back to the first inputs: still remembered.
        assert_eq!(
            hash(&memo, &repo(1, "1.0", "x: 3\n"), &computed).unwrap(),
            fresh
        );
        assert_eq!(computed.get(), 3);
    }

    #[test]
    fn a_new_file_in_a_read_directory_is_seen() {
        let memo = Mutex::new(ReadMemo::new(16));
        let computed = Cell::new(0);
        let first = repo(1, "1.0", "");
        hash(&memo, &first, &computed).unwrap();
        let mut changed = repo(1, "1.0", "");
        changed.0.insert(
            "bases/web/kustomization.yaml",
            "resources: [svc.yaml, extra.yaml]\n",
        );
        changed.0.insert(
            "bases/web/extra.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n",
        );
        assert_eq!(
            hash(&memo, &changed, &computed).unwrap(),
            config_hash(&changed, "apps/a").unwrap().to_string()
        );
        assert_eq!(computed.get(), 2);
    }

    #[test]
    fn capacity_bounds_the_answers_and_zero_keeps_none() {
        let memo = Mutex::new(ReadMemo::new(2));
        let computed = Cell::new(0);
        for replicas in 1..=5 {
            hash(&memo, &repo(replicas, "1.0", ""), &computed).unwrap();
        }
        assert_eq!(memo.lock().unwrap().len(), 2);
        // The oldest was evicted: computed again.
        hash(&memo, &repo(1, "1.0", ""), &computed).unwrap();
        assert_eq!(computed.get(), 6);

        let off = Mutex::new(ReadMemo::new(0));
        let computed = Cell::new(0);
        for _ in 0..2 {
            hash(&off, &repo(1, "1.0", ""), &computed).unwrap();
        }
        assert_eq!((computed.get(), off.lock().unwrap().len()), (2, 0));
    }

    #[test]
    fn sources_without_ids_are_computed_every_time() {
        let memo = Mutex::new(ReadMemo::new(16));
        let computed = Cell::new(0);
        let tree = repo(1, "1.0", "").0;
        for _ in 0..2 {
            ReadMemo::get_or_compute(&memo, &tree, "apps/a", |src| {
                computed.set(computed.get() + 1);
                config_hash(src, "apps/a").map(|h| h.to_string())
            })
            .unwrap();
        }
        assert_eq!((computed.get(), memo.lock().unwrap().len()), (2, 0));
    }
}
