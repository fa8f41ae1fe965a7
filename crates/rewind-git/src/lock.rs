//! The cache's lock file: one writer per repository across processes.
//!
//! Inside one process a mutex per repository serialises work (see
//! [`crate::RepoCache`]); this advisory `flock` extends that to several
//! rewind processes sharing a `cache_dir`. The kernel drops the lock when
//! the process dies, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::GitError;

/// Held while a process writes to the cache; released on drop.
#[derive(Debug)]
pub(crate) struct CacheLock {
    // The lock lives as long as the open file.
    _file: File,
}

impl CacheLock {
    /// The lock file that guards `repo_dir` (a sibling, so it exists
    /// before the repository does).
    pub(crate) fn path_for(repo_dir: &Path) -> PathBuf {
        let mut name = repo_dir.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        repo_dir.with_file_name(name)
    }

    /// Blocks until this process is the only writer of `repo_dir`.
    pub(crate) fn acquire(repo_dir: &Path) -> Result<Self, GitError> {
        let path = Self::path_for(repo_dir);
        let cache_error = |e: std::io::Error| GitError::Cache {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(cache_error)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(cache_error)?;
        // Fully qualified: newer std has an inherent `File::lock` that the
        // workspace's minimum Rust version does not.
        fs4::FileExt::lock(&file).map_err(cache_error)?;
        Ok(CacheLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};

    #[test]
    fn second_holder_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        let first = CacheLock::acquire(&repo).unwrap();
        let acquired = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let flag = acquired.clone();
        let repo2 = repo.clone();
        let waiter = std::thread::spawn(move || {
            tx.send(()).unwrap();
            let _second = CacheLock::acquire(&repo2).unwrap();
            flag.store(true, Ordering::SeqCst);
        });
        rx.recv().unwrap();
        // A separate open file description conflicts even in one process,
        // which is what makes this observable in a test. While the first
        // lock is held the waiter cannot have finished.
        let probe = File::open(CacheLock::path_for(&repo)).unwrap();
        assert!(fs4::FileExt::try_lock(&probe).is_err());
        assert!(!acquired.load(Ordering::SeqCst));
        drop(first);
        waiter.join().unwrap();
        assert!(acquired.load(Ordering::SeqCst));
    }
}
