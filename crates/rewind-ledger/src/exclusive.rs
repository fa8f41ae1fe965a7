//! One `rewind serve` per SQLite file. SQLite itself would let a second
//! process open the file and queue behind the first's write lock, then
//! both would run workers on one queue with no shared view of each other's
//! leases and time out under load; a second replica is refused at start
//! instead, with a message that says why and what to use.
//!
//! The lock is an exclusive advisory lock (`flock`) on `FILE.lock` beside
//! the database, held for the life of the process: the kernel drops it
//! when the process dies, however it dies, so a crash never leaves a stale
//! lock behind.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;

use crate::LedgerError;

/// Holds the SQLite file for this process until dropped.
#[derive(Debug)]
pub struct ExclusiveUse {
    _file: File,
    pub lock_path: PathBuf,
}

/// The file a `sqlite:` URL names; `None` for PostgreSQL and in-memory
/// databases.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

/// Takes the database of `url` for this process when it is a SQLite file
/// (`None` otherwise: PostgreSQL is shared by design). `Conflict` names the
/// file when another process holds it.
pub fn exclusive_use(url: &str) -> Result<Option<ExclusiveUse>, LedgerError> {
    let Some(database) = sqlite_file(url) else {
        return Ok(None);
    };
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            LedgerError::Invalid(format!(
                "cannot create the database directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    let lock_path = lock_path(&database);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| LedgerError::Invalid(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(ExclusiveUse {
            _file: file,
            lock_path,
        })),
        Err(std::fs::TryLockError::WouldBlock) => Err(LedgerError::Conflict {
            open_rollback: None,
            reason: format!(
                "the SQLite database {} is in use by another rewind (it holds {}); \
                 SQLite serves one replica only: stop the other one, or use PostgreSQL \
                 (database.url = \"postgres://...\") to run several",
                database.display(),
                lock_path.display()
            ),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(LedgerError::Invalid(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_the_first_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("data/rewind.db").display());
        let first = exclusive_use(&url)
            .unwrap()
            .expect("a SQLite file is locked");
        let second = exclusive_use(&url).unwrap_err().to_string();
        assert!(second.contains("in use by another rewind"), "{second}");
        assert!(second.contains("PostgreSQL"), "{second}");
        drop(first);
        assert!(
            exclusive_use(&url).unwrap().is_some(),
            "free again once dropped"
        );
    }

    #[test]
    fn postgres_and_memory_need_no_lock() {
        assert!(exclusive_use("postgres://u@h/db").unwrap().is_none());
        assert!(exclusive_use("sqlite::memory:").unwrap().is_none());
    }
}
