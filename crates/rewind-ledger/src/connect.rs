//! Opening a ledger from a database URL: the backend is chosen by the URL's
//! scheme, the SQLite file (and its directory) is created when missing, and
//! migrations run before the ledger is handed out.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::MigrateError;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::db::Pools;
use crate::error::classify;
use crate::store::SqlLedger;
use crate::{Ledger, LedgerError};

/// How long to wait for a connection before reporting the database
/// unavailable: long enough for a busy pool, short enough that a webhook
/// sender gets its `503` before it times out.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite waits for another process's write lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const SQLITE_READERS: u32 = 4;
const POSTGRES_CONNECTIONS: u32 = 10;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `sqlite:` → SQLite; `postgres://` or `postgresql://` → PostgreSQL.
    pub fn from_url(url: &str) -> Result<Backend, LedgerError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            Err(LedgerError::Invalid(format!(
                "database URL scheme {scheme:?} is not supported: use sqlite://PATH, \
                 postgres:// or postgresql://"
            )))
        }
    }
}

/// Opens the ledger at `url` and brings its schema up to date.
pub async fn connect(url: &str) -> Result<Arc<dyn Ledger>, LedgerError> {
    Ok(Arc::new(connect_sql(url).await?))
}

/// [`connect`], returning the concrete type (tests and benchmarks close
/// it explicitly).
pub async fn connect_sql(url: &str) -> Result<SqlLedger, LedgerError> {
    let pools = match Backend::from_url(url)? {
        Backend::Sqlite => connect_sqlite(url).await?,
        Backend::Postgres => connect_postgres(url).await?,
    };
    Ok(SqlLedger::new(pools))
}

/// The embedded migrations of each dialect (same file names in both).
pub(crate) static SQLITE_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/sqlite");
pub(crate) static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/postgres");

async fn connect_sqlite(url: &str) -> Result<Pools, LedgerError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| LedgerError::Invalid(format!("SQLite URL: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true);
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if !in_memory {
        create_parent_dir(options.get_filename())?;
    }
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // An in-memory database lives as long as its connection.
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options.clone())
        .await
        .map_err(classify)?;
    SQLITE_MIGRATIONS.run(&write).await.map_err(migrate_error)?;
    let read = if in_memory {
        // A second pool would open a second, empty database.
        write.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(SQLITE_READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(classify)?
    };
    tracing::info!(
        db.backend = "sqlite",
        db.in_memory = in_memory,
        "ledger ready"
    );
    Ok(Pools::Sqlite { write, read })
}

fn create_parent_dir(file: &Path) -> Result<(), LedgerError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir).map_err(|e| {
            LedgerError::Invalid(format!(
                "cannot create the database directory {}: {e}",
                dir.display()
            ))
        }),
        _ => Ok(()),
    }
}

async fn connect_postgres(url: &str) -> Result<Pools, LedgerError> {
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(url)
        .await
        .map_err(classify)?;
    // sqlx takes an advisory lock around migrations, so replicas starting
    // together apply them once.
    POSTGRES_MIGRATIONS
        .run(&pool)
        .await
        .map_err(migrate_error)?;
    tracing::info!(db.backend = "postgres", "ledger ready");
    Ok(Pools::Postgres(pool))
}

fn migrate_error(e: MigrateError) -> LedgerError {
    match e {
        MigrateError::Execute(e) => classify(e),
        other => LedgerError::Database(Arc::new(sqlx::Error::Migrate(Box::new(other)))),
    }
}
