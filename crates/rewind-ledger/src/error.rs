//! The ledger's one error type, and how database errors map onto it.
//!
//! The split matters to callers: `Unavailable` means "try again later" (the
//! server answers `503` so webhook senders retry), `Conflict` and `NotFound`
//! are answers about the data, `Invalid` is a caller's mistake, and
//! `Database` is everything else.

use std::sync::Arc;

use rewind_domain::RollbackId;

/// Cloneable (sources are shared) so that one failure of a group commit can
/// be reported to every delivery in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    /// The database cannot be reached (connection refused, pool timed out,
    /// server shutting down): nothing was written.
    #[error("database unavailable: {0}")]
    Unavailable(Arc<sqlx::Error>),
    #[error("{what} {key} not found")]
    NotFound { what: &'static str, key: String },
    /// A uniqueness or state conflict. `open_rollback` names the app's open
    /// rollback when that is what blocked the write.
    #[error("conflict: {reason}")]
    Conflict {
        reason: String,
        open_rollback: Option<RollbackId>,
    },
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(Arc<sqlx::Error>),
}

impl LedgerError {
    pub(crate) fn not_found(what: &'static str, key: impl ToString) -> Self {
        LedgerError::NotFound {
            what,
            key: key.to_string(),
        }
    }

    /// A stored value that does not decode.
    pub(crate) fn corrupt(err: sqlx::Error) -> Self {
        LedgerError::Database(Arc::new(err))
    }

    pub(crate) fn conflict(reason: impl Into<String>) -> Self {
        LedgerError::Conflict {
            reason: reason.into(),
            open_rollback: None,
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, LedgerError::Unavailable(_))
    }
}

/// PostgreSQL error classes and codes that mean "the server is not there for
/// us right now": connection exceptions (08), operator intervention (57P),
/// insufficient resources (53).
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P") || code.starts_with("53")
}

/// Deadlocks and serialization failures: the transaction may simply be run
/// again.
pub(crate) fn is_retryable(err: &LedgerError) -> bool {
    match err {
        LedgerError::Database(e) => match e.as_ref() {
            sqlx::Error::Database(db) => {
                matches!(db.code().as_deref(), Some("40001") | Some("40P01"))
            }
            _ => false,
        },
        _ => false,
    }
}

/// Maps a sqlx error onto the ledger's error.
pub(crate) fn classify(err: sqlx::Error) -> LedgerError {
    match &err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => LedgerError::Unavailable(Arc::new(err)),
        sqlx::Error::Configuration(e) => LedgerError::Invalid(format!("database URL: {e}")),
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                // The database's own wording names tables and indexes:
                // logged, never handed to a caller.
                tracing::debug!(error = %db.message(), "unique violation");
                LedgerError::conflict("a record with the same key exists already")
            } else if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
                && db.code().is_some_and(|c| c.starts_with("22"))
            {
                // PostgreSQL data exceptions (class 22: a NUL byte or an
                // invalid byte sequence, a value out of range) are about
                // the value, not the database: retrying cannot help.
                tracing::debug!(error = %db.message(), "value refused by the database");
                LedgerError::Invalid(
                    "a value cannot be stored: it contains a character or number the database refuses (such as NUL)".into(),
                )
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLITE_BUSY / SQLITE_LOCKED (primary codes 5 and 6) after
                // the busy timeout: another process holds the write lock.
                // SQLITE_READONLY (8), SQLITE_IOERR (10), SQLITE_FULL (13)
                // and SQLITE_CANTOPEN (14): the volume is read-only, failing
                // or full. Both are "not now": the sender retries, and
                // nothing of the transaction was kept.
                let not_now = db
                    .code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .is_some_and(|c| matches!(c & 0xff, 5 | 6 | 8 | 10 | 13 | 14));
                if not_now {
                    LedgerError::Unavailable(Arc::new(err))
                } else {
                    LedgerError::Database(Arc::new(err))
                }
            } else if db.code().is_some_and(|c| is_unavailable_code(&c)) {
                LedgerError::Unavailable(Arc::new(err))
            } else {
                LedgerError::Database(Arc::new(err))
            }
        }
        _ => LedgerError::Database(Arc::new(err)),
    }
}

/// An error while getting a connection or starting a transaction: whatever
/// the server said (too many clients, database not accepting connections,
/// a killed session), nothing was written and a later try may work.
pub(crate) fn connection_error(err: sqlx::Error) -> LedgerError {
    match classify(err) {
        LedgerError::Database(e) => LedgerError::Unavailable(e),
        other => other,
    }
}
