//! Test support (feature `testing`): a fresh database per test, SQLite
//! always and PostgreSQL when `REWIND_TEST_POSTGRES_URL` names a server
//! (for example `postgres://postgres@127.0.0.1:5432/postgres`), so that one
//! test body runs against both through [`for_each_backend`].
//!
//! Each PostgreSQL test gets its own database `rewind_test_<random>`,
//! created through the given (admin) URL and dropped afterwards, also when
//! the test panics. SQLite tests get a file in a temporary directory (in a
//! subdirectory that does not exist yet, which `connect` must create).
//!
//! This is test code: failures to set up a database panic with a message.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Connection};

use rewind_domain::AppRef;

use crate::db::{Pools, sql};
use crate::{Backend, Ledger, LedgerError, SqlLedger, connect_sql};

/// The variable naming a PostgreSQL server for tests.
pub const POSTGRES_URL_VAR: &str = "REWIND_TEST_POSTGRES_URL";

/// Set (by `.ci/run`) to make a missing PostgreSQL a test failure.
pub const REQUIRE_POSTGRES_VAR: &str = "REWIND_REQUIRE_POSTGRES";

/// A throw-away database.
#[derive(Debug)]
pub struct TestDatabase {
    backend: Backend,
    url: String,
    /// PostgreSQL: the admin URL and the database name, to drop it.
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A SQLite database file in a fresh temporary directory.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let url = format!("sqlite://{}/var/ledger.db", dir.path().display());
        TestDatabase {
            backend: Backend::Sqlite,
            url,
            postgres: None,
            _dir: Some(dir),
        }
    }

    /// A fresh PostgreSQL database, when [`POSTGRES_URL_VAR`] is set.
    pub async fn postgres() -> Option<TestDatabase> {
        let Some(admin) = std::env::var(POSTGRES_URL_VAR)
            .ok()
            .filter(|u| !u.is_empty())
        else {
            // CI sets this so that a missing server fails loudly instead of
            // silently testing SQLite only.
            assert!(
                std::env::var_os(REQUIRE_POSTGRES_VAR).is_none(),
                "{REQUIRE_POSTGRES_VAR} is set but {POSTGRES_URL_VAR} is not: PostgreSQL tests would be skipped"
            );
            return None;
        };
        Some(TestDatabase::postgres_from(&admin).await)
    }

    /// A fresh PostgreSQL database on the server of `admin` (a URL whose
    /// user may create databases).
    pub async fn postgres_from(admin: &str) -> TestDatabase {
        let admin = admin.to_owned();
        let name = format!("rewind_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} does not connect: {e}"));
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = conn.close().await;
        TestDatabase {
            backend: Backend::Postgres,
            url: with_database(&admin, &name),
            postgres: Some((admin, name)),
            _dir: None,
        }
    }

    /// SQLite, plus PostgreSQL when configured.
    pub async fn all() -> Vec<TestDatabase> {
        let mut all = vec![TestDatabase::sqlite()];
        all.extend(TestDatabase::postgres().await);
        all
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL to hand to `connect` (or to the server's configuration).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connects (running the migrations).
    pub async fn connect(&self) -> Harness {
        let sql = connect_sql(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connect to test database {}: {e}", self.url));
        Harness {
            ledger: Arc::new(sql.clone()),
            sql,
            backend: self.backend,
        }
    }

    /// Builds the database as an older rewind left it: the migrations up
    /// to `version` only, then `statements` (rows in that schema). A later
    /// [`TestDatabase::connect`] applies the remaining migrations, so tests
    /// check that they carry existing data over.
    pub async fn at_schema_version(&self, version: i64, statements: &[&str]) {
        match self.backend {
            Backend::Sqlite => {
                let options =
                    <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&self.url)
                        .expect("SQLite URL")
                        .create_if_missing(true);
                if let Some(dir) = options.get_filename().parent() {
                    std::fs::create_dir_all(dir).expect("create the database directory");
                }
                let mut conn = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .expect("open the SQLite database");
                crate::connect::SQLITE_MIGRATIONS
                    .run_to(version, &mut conn)
                    .await
                    .expect("apply the old migrations");
                for statement in statements {
                    sqlx::query(AssertSqlSafe(statement.to_string()))
                        .execute(&mut conn)
                        .await
                        .unwrap_or_else(|e| panic!("{statement}: {e}"));
                }
                let _ = conn.close().await;
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect to the test database");
                crate::connect::POSTGRES_MIGRATIONS
                    .run_to(version, &mut conn)
                    .await
                    .expect("apply the old migrations");
                for statement in statements {
                    sqlx::query(AssertSqlSafe(statement.to_string()))
                        .execute(&mut conn)
                        .await
                        .unwrap_or_else(|e| panic!("{statement}: {e}"));
                }
                let _ = conn.close().await;
            }
        }
    }

    /// Drops the PostgreSQL database (best effort; it forces out
    /// connections still open). The SQLite directory goes with `self`.
    pub async fn cleanup(self) {
        if let Some((admin, name)) = &self.postgres
            && let Ok(mut conn) = sqlx::PgConnection::connect(admin).await
        {
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            if let Err(e) = sqlx::query(AssertSqlSafe(drop)).execute(&mut conn).await {
                eprintln!("could not drop test database {name}: {e}");
            }
            let _ = conn.close().await;
        }
    }
}

/// Runs one statement on the PostgreSQL server at `admin` (a superuser
/// URL): for tests that take a database away from rewind and give it back.
pub async fn admin_execute(admin: &str, statement: &str) -> Result<u64, sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    let result = sqlx::query(AssertSqlSafe(statement.to_string()))
        .execute(&mut conn)
        .await
        .map(|r| r.rows_affected());
    let _ = conn.close().await;
    result
}

/// `admin` with its database path replaced by `name`.
fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A connected ledger for one test, with access below the trait for what
/// tests must do that the API forbids (tampering with the audit log).
#[derive(Debug, Clone)]
pub struct Harness {
    pub ledger: Arc<dyn Ledger>,
    sql: SqlLedger,
    pub backend: Backend,
}

impl Harness {
    /// Runs one raw SQL statement on the write connection.
    pub async fn execute_raw(&self, statement: &str) -> Result<u64, LedgerError> {
        let statement = AssertSqlSafe(statement.to_owned());
        match &self.sql.db {
            Pools::Sqlite { write, .. } => sqlx::query(statement)
                .execute(write)
                .await
                .map(|r| r.rows_affected()),
            Pools::Postgres(pool) => sqlx::query(statement)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
        .map_err(crate::error::classify)
    }

    /// The SQL ledger itself (test hooks below the trait).
    pub fn sql(&self) -> &SqlLedger {
        &self.sql
    }

    /// A single-value query, as `i64` (counting rows in tests).
    pub async fn count(&self, statement: &'static str) -> Result<i64, LedgerError> {
        let mut c = self.sql.db.read().await?;
        c.conn().fetch_one(sql(statement)).await?.i64("n")
    }

    /// Bulk-inserts `count` Argo CD deployments of `app` (cluster revisions
    /// 1..=count, one minute apart from `start`, every tenth known good) in
    /// one statement: seeding for benchmarks, far faster than webhooks.
    pub async fn seed_deployments(
        &self,
        app: &AppRef,
        count: i64,
        start: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let mut tx = self.sql.db.begin().await?;
        let mut c = tx.conn();
        crate::store::ensure_app(&mut c, app, start).await?;
        let seed = match self.backend {
            Backend::Postgres => sql(
                "INSERT INTO deployments (app, cluster, cluster_revision, revision, images, \
                     health, sync, deployed_at, source, known_good, alerted, recorded_at) \
                 SELECT $1, $4, g, 'rev-' || g, '[]'::jsonb, 'Healthy', 'Synced', \
                     $2 + g * interval '1 minute', 'argocd', g % 10 = 0, FALSE, $2 \
                 FROM generate_series(1::bigint, $3) AS g",
            ),
            Backend::Sqlite => sql(
                "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $3) \
                 INSERT INTO deployments (app, cluster, cluster_revision, revision, images, \
                     health, sync, deployed_at, source, known_good, alerted, recorded_at) \
                 SELECT $1, $4, g, 'rev-' || g, '[]', 'Healthy', 'Synced', \
                     $2 + g * 60000000, 'argocd', g % 10 = 0, FALSE, $2 \
                 FROM s",
            ),
        }
        .bind(app.to_string())
        .bind(start)
        .bind(count)
        .bind(app.cluster.as_str());
        c.execute(seed).await?;
        tx.commit().await?;
        // Fresh statistics, as a long-running database would have.
        self.execute_raw("ANALYZE").await?;
        Ok(())
    }
}

/// Runs `body` once per backend ([`TestDatabase::all`]), each on a fresh
/// database, and drops the databases afterwards. A panic in `body` is
/// re-raised after cleanup, naming the backend.
pub async fn for_each_backend<F, Fut>(body: F)
where
    F: Fn(Harness) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for db in TestDatabase::all().await {
        let harness = db.connect().await;
        let backend = db.backend();
        let outcome = tokio::spawn(body(harness.clone())).await;
        harness.sql.close().await;
        db.cleanup().await;
        if let Err(e) = outcome {
            if e.is_panic() {
                eprintln!("test failed on {backend:?}");
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("test task on {backend:?} did not finish: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "t2"),
            "postgresql://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "t3"),
            "postgres://h:5432/t3"
        );
    }
}
