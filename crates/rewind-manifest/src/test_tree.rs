//! Test fixture shared by the cache tests: an in-memory tree that also
//! answers Git-like object ids, so caches keyed by ids can be exercised
//! without a repository.

use sha2::{Digest, Sha256};

use crate::source::{DirEntry, EntryKind, MemoryTree, SourceError, TreeSource};

/// A [`MemoryTree`] with object ids: a digest of everything under a
/// path, so an id changes exactly when something under it changes.
pub(crate) struct Hashed(pub(crate) MemoryTree);

impl TreeSource for Hashed {
    fn list_dir(&self, path: &str) -> Result<Option<Vec<DirEntry>>, SourceError> {
        self.0.list_dir(path)
    }
    fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        self.0.read_file(path)
    }
    fn kind(&self, path: &str) -> Result<Option<EntryKind>, SourceError> {
        self.0.kind(path)
    }
    fn object_id(&self, path: &str) -> Result<Option<String>, SourceError> {
        fn walk(t: &MemoryTree, p: &str, h: &mut Sha256) -> Result<bool, SourceError> {
            if let Some(bytes) = t.read_file(p)? {
                h.update(p.as_bytes());
                h.update(&bytes);
                return Ok(true);
            }
            let Some(entries) = t.list_dir(p)? else {
                return Ok(false);
            };
            for e in entries {
                let child = if p.is_empty() {
                    e.name.clone()
                } else {
                    format!("{p}/{}", e.name)
                };
                walk(t, &child, h)?;
            }
            Ok(true)
        }
        let mut h = Sha256::new();
        Ok(walk(&self.0, path, &mut h)?
            .then(|| h.finalize().iter().map(|b| format!("{b:02x}")).collect()))
    }
}
