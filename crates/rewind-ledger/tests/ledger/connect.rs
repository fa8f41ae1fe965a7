//! Connecting: URL schemes, SQLite file creation and reopening, and a
//! database that is down.

use rewind_ledger::testing::TestDatabase;
use rewind_ledger::{Backend, LedgerError, connect};

use crate::fixtures::*;

#[tokio::test]
async fn unsupported_urls_are_invalid() {
    for url in ["mysql://localhost/db", "", "file:///tmp/x.db"] {
        let err = connect(url).await.unwrap_err();
        assert!(matches!(err, LedgerError::Invalid(_)), "{url}: {err}");
    }
    assert_eq!(
        Backend::from_url("postgresql://h/db").unwrap(),
        Backend::Postgres
    );
    assert_eq!(Backend::from_url("sqlite://x.db").unwrap(), Backend::Sqlite);
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable() {
    // Nothing listens on port 1. The outer timeout only keeps a broken
    // implementation from hanging the suite.
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        connect("postgres://postgres@127.0.0.1:1/postgres"),
    )
    .await
    .expect("connect gave up within its acquire timeout");
    let err = result.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

#[tokio::test]
async fn sqlite_creates_its_directory_and_keeps_data_across_reconnects() {
    let db = TestDatabase::sqlite();
    {
        let h = db.connect().await;
        h.ledger.upsert_app(&app("shop")).await.unwrap();
        h.ledger.ping().await.unwrap();
        assert_eq!(h.ledger.backend(), "sqlite");
    }
    // Migrations run again at connect, and are a no-op the second time.
    let again = connect(db.url()).await.unwrap();
    assert_eq!(
        again.get_app(&name("shop")).await.unwrap(),
        Some(app("shop"))
    );
}

#[tokio::test]
async fn in_memory_sqlite_works() {
    let l = connect("sqlite::memory:").await.unwrap();
    l.upsert_app(&app("shop")).await.unwrap();
    assert_eq!(l.list_apps().await.unwrap().len(), 1);
}

#[tokio::test]
async fn postgres_reports_its_backend() {
    if let Some(db) = TestDatabase::postgres().await {
        let h = db.connect().await;
        assert_eq!(h.ledger.backend(), "postgres");
        h.ledger.ping().await.unwrap();
        drop(h);
        db.cleanup().await;
    }
}

/// The database goes away under a connected ledger: calls fail with
/// `Unavailable` (the server's `503`), nothing is half-written, and the
/// ledger recovers when the database is back.
#[tokio::test]
async fn postgres_going_away_is_unavailable_and_recoverable() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let admin = std::env::var(rewind_ledger::testing::POSTGRES_URL_VAR).unwrap();
    let dbname = db.url().rsplit('/').next().unwrap().to_owned();
    let h = db.connect().await;
    let l = h.ledger.clone();
    l.record_delivery(delivery("argocd", "before", vec![argo("shop", 1, 1, 0)]))
        .await
        .unwrap();

    let admin_sql = |statement: String| {
        let admin = admin.clone();
        async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    };
    admin_sql(format!(
        "ALTER DATABASE {dbname} WITH ALLOW_CONNECTIONS false"
    ))
    .await;
    admin_sql(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}'"
    ))
    .await;

    let err = l
        .record_delivery(delivery("argocd", "during", vec![argo("shop", 2, 2, 10)]))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let err = l.ping().await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");

    admin_sql(format!(
        "ALTER DATABASE {dbname} WITH ALLOW_CONNECTIONS true"
    ))
    .await;
    l.ping().await.unwrap();
    let history = l.history(&name("shop"), 10).await.unwrap();
    assert_eq!(history.len(), 1, "the failed delivery left nothing behind");
    // The sender's retry is recorded, not taken for a duplicate.
    let retried = l
        .record_delivery(delivery("argocd", "during", vec![argo("shop", 2, 2, 10)]))
        .await
        .unwrap();
    assert!(matches!(
        retried,
        rewind_ledger::DeliveryOutcome::Recorded { .. }
    ));
    drop((l, h));
    db.cleanup().await;
}

/// Readiness asks whether a write would go through, not whether the
/// database answers: a read-only PostgreSQL (a standby, or
/// `default_transaction_read_only`) still answers `ping` but fails
/// `ping_write`, and passes again once it takes writes.
#[tokio::test]
async fn postgres_read_only_fails_ping_write_but_not_ping() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let admin = std::env::var(rewind_ledger::testing::POSTGRES_URL_VAR).unwrap();
    let dbname = db.url().rsplit('/').next().unwrap().to_owned();
    let h = db.connect().await;
    let l = h.ledger.clone();
    l.ping_write().await.unwrap();

    let admin_sql = |statement: String| {
        let admin = admin.clone();
        async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    };
    // New sessions start read-only; ending the pool's sessions makes it
    // open new ones.
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}' AND pid <> pg_backend_pid()"
    );
    admin_sql(format!(
        "ALTER DATABASE {dbname} SET default_transaction_read_only = on"
    ))
    .await;
    admin_sql(terminate.clone()).await;
    // The first call after the sessions ended may see the broken
    // connection; the pool replaces it.
    let _ = l.ping().await;
    l.ping().await.unwrap();
    let err = l.ping_write().await.unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");

    admin_sql(format!(
        "ALTER DATABASE {dbname} SET default_transaction_read_only = off"
    ))
    .await;
    admin_sql(terminate).await;
    let _ = l.ping().await;
    l.ping_write().await.unwrap();
    drop((l, h));
    db.cleanup().await;
}
