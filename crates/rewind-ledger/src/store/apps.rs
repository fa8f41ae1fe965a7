//! Apps: upserts from webhooks and configuration, holds, and the
//! placeholder row a deployment of a not-yet-known app creates. The key
//! column `app` is the app reference `name@cluster`; `name` and `cluster`
//! are kept beside it for listing and for resolving a plain name.

use chrono::{DateTime, Utc};

use rewind_domain::{App, AppName, AppRef, ClusterName, Drift, Source};

use crate::LedgerError;
use crate::db::{Arg, Conn, Dialect, Row, rows_per_statement, sql, sql_repeated};

macro_rules! app_columns {
    () => {
        "app, name, source, cluster, project, drift, drift_since, sources, path, rollbackable, status, held_since, \
         updated_at"
    };
}

fn from_row(row: &Row) -> Result<App, LedgerError> {
    let source = row.text("source")?;
    Ok(App {
        name: row.parsed("name")?,
        cluster: row.parsed("cluster")?,
        source: Source::parse(&source).ok_or_else(|| {
            LedgerError::corrupt(sqlx::Error::ColumnDecode {
                index: "source".into(),
                source: format!("unknown source {source:?}").into(),
            })
        })?,
        project: row.opt_text("project")?,
        sources: row.json("sources")?,
        path: row.opt_text("path")?,
        rollbackable: row.bool("rollbackable")?,
        status: row.opt_text("status")?,
        held_since: row.opt_time("held_since")?,
        updated_at: row.time("updated_at")?,
        drift: match (row.opt_text("drift")?, row.opt_time("drift_since")?) {
            (Some(detail), Some(since)) => Some(Drift { detail, since }),
            _ => None,
        },
    })
}

/// Creates or updates an app; an existing app keeps its hold.
pub(crate) async fn upsert(c: &mut Conn<'_>, app: &App) -> Result<(), LedgerError> {
    let q = sql(
        "INSERT INTO apps (app, name, source, cluster, project, sources, path, rollbackable, \
                     status, held_since, updated_at) \
                 VALUES ($11, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (app) DO UPDATE SET source = excluded.source, \
                     project = excluded.project, \
                     sources = excluded.sources, path = excluded.path, \
                     rollbackable = excluded.rollbackable, status = excluded.status, \
                     updated_at = excluded.updated_at",
    )
    .bind(app.name.as_str())
    .bind(app.source.as_str())
    .bind(app.cluster.as_str())
    .bind(app.project.clone())
    .bind(Arg::json(&app.sources)?)
    .bind(app.path.clone())
    .bind(app.rollbackable)
    .bind(app.status.clone())
    .bind(app.held_since)
    .bind(app.updated_at)
    .bind(app.app_ref().to_string());
    c.execute(q).await?;
    Ok(())
}

/// Makes sure the app has a row (a deployment may arrive before anything
/// describes its app), then locks it for the rest of the transaction so that
/// deliveries for the same app apply one after the other. SQLite needs no
/// row lock: it has one writer at a time.
pub(crate) async fn ensure_and_lock(
    c: &mut Conn<'_>,
    app: &AppRef,
    source: Source,
    now: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let q = sql(
        "INSERT INTO apps (app, name, source, cluster, sources, rollbackable, status, \
                     updated_at) \
                 VALUES ($7, $1, $2, $3, $4, FALSE, $5, $6) ON CONFLICT (app) DO NOTHING",
    )
    .bind(app.name.as_str())
    .bind(source.as_str())
    .bind(app.cluster.as_str())
    .bind(Arg::json(&Vec::<()>::new())?)
    .bind("seen in a deployment before its app was configured or reported")
    .bind(now)
    .bind(app.to_string());
    c.execute(q).await?;
    if c.dialect() == Dialect::Postgres {
        let lock = sql("SELECT app FROM apps WHERE app = $1 FOR UPDATE").bind(app.to_string());
        c.fetch_optional(lock).await?;
    }
    Ok(())
}

/// [`upsert`] for many apps, one statement per chunk. The caller passes
/// each app once (PostgreSQL refuses to update a row twice in one
/// statement), sorted, so concurrent batches lock rows in the same order.
pub(crate) async fn upsert_many(c: &mut Conn<'_>, apps: &[&App]) -> Result<(), LedgerError> {
    const COLUMNS: usize = 11;
    for chunk in apps.chunks(rows_per_statement(COLUMNS)) {
        let mut q = sql_repeated(
            "INSERT INTO apps (app, name, source, cluster, project, sources, path, rollbackable, \
                     status, held_since, updated_at) VALUES ",
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ", ",
            chunk.len(),
            " ON CONFLICT (app) DO UPDATE SET source = excluded.source, \
                     project = excluded.project, \
                     sources = excluded.sources, path = excluded.path, \
                     rollbackable = excluded.rollbackable, status = excluded.status, \
                     updated_at = excluded.updated_at",
        );
        for app in chunk {
            q = q
                .bind(app.app_ref().to_string())
                .bind(app.name.as_str())
                .bind(app.source.as_str())
                .bind(app.cluster.as_str())
                .bind(app.project.clone())
                .bind(Arg::json(&app.sources)?)
                .bind(app.path.clone())
                .bind(app.rollbackable)
                .bind(app.status.clone())
                .bind(app.held_since)
                .bind(app.updated_at);
        }
        c.execute(q).await?;
    }
    Ok(())
}

/// [`ensure_and_lock`] for many apps (`(app, source, now)`, each once,
/// sorted): the placeholder rows in one statement per chunk, then in
/// PostgreSQL the locks in one more, in app order.
pub(crate) async fn ensure_and_lock_many(
    c: &mut Conn<'_>,
    apps: &[(AppRef, Source, DateTime<Utc>)],
) -> Result<(), LedgerError> {
    const COLUMNS: usize = 8;
    for chunk in apps.chunks(rows_per_statement(COLUMNS)) {
        let mut q = sql_repeated(
            "INSERT INTO apps (app, name, source, cluster, sources, rollbackable, status, \
                     updated_at) VALUES ",
            "(?, ?, ?, ?, ?, ?, ?, ?)",
            ", ",
            chunk.len(),
            " ON CONFLICT (app) DO NOTHING",
        );
        for (app, source, now) in chunk {
            q = q
                .bind(app.to_string())
                .bind(app.name.as_str())
                .bind(source.as_str())
                .bind(app.cluster.as_str())
                .bind(Arg::json(&Vec::<()>::new())?)
                .bind(false)
                .bind("seen in a deployment before its app was configured or reported")
                .bind(*now);
        }
        c.execute(q).await?;
        if c.dialect() == Dialect::Postgres {
            let mut lock = sql_repeated(
                "SELECT app FROM apps WHERE app IN (",
                "?",
                ", ",
                chunk.len(),
                ") ORDER BY app FOR UPDATE",
            );
            for (app, _, _) in chunk {
                lock = lock.bind(app.to_string());
            }
            c.fetch_all(lock).await?;
        }
    }
    Ok(())
}

pub(crate) async fn get(c: &mut Conn<'_>, app: &AppRef) -> Result<Option<App>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        app_columns!(),
        " FROM apps WHERE app = $1"
    ))
    .bind(app.to_string());
    c.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub(crate) async fn list(c: &mut Conn<'_>) -> Result<Vec<App>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        app_columns!(),
        " FROM apps ORDER BY name, cluster"
    ));
    c.fetch_all(q).await?.iter().map(from_row).collect()
}

/// At most `limit` apps after `after` in (name, cluster) order.
pub(crate) async fn page(
    c: &mut Conn<'_>,
    after: Option<&AppRef>,
    limit: u32,
) -> Result<Vec<App>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        app_columns!(),
        " FROM apps WHERE ($1 IS NULL OR name > $1 OR (name = $1 AND cluster > $2)) \
          ORDER BY name, cluster LIMIT $3"
    ))
    .bind(after.map(|a| a.name.as_str().to_owned()))
    .bind(after.map(|a| a.cluster.as_str().to_owned()))
    .bind(i64::from(limit));
    c.fetch_all(q).await?.iter().map(from_row).collect()
}

/// Records what the cluster reported and the drift derived from it
/// (`None`: cluster and Git agree). `drift_since` keeps the start of a
/// continuing drift.
pub(crate) async fn set_reported(
    c: &mut Conn<'_>,
    app: &AppRef,
    sync: Option<&str>,
    revision: Option<&str>,
    drift: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let q = sql(
        "UPDATE apps SET reported_sync = COALESCE($2, reported_sync), \
                     reported_revision = COALESCE($3, reported_revision), drift = $4, \
                     drift_since = CASE WHEN $4 IS NULL THEN NULL \
                                        ELSE COALESCE(drift_since, $5) END \
                 WHERE app = $1",
    )
    .bind(app.to_string())
    .bind(sync)
    .bind(revision)
    .bind(drift)
    .bind(at);
    c.execute(q).await?;
    Ok(())
}

/// The clusters that run an app named `name`, by cluster name.
pub(crate) async fn clusters_of(
    c: &mut Conn<'_>,
    name: &AppName,
) -> Result<Vec<ClusterName>, LedgerError> {
    let q = sql("SELECT cluster FROM apps WHERE name = $1 ORDER BY cluster").bind(name.as_str());
    c.fetch_all(q)
        .await?
        .iter()
        .map(|row| row.parsed("cluster"))
        .collect()
}

pub(crate) async fn paths(c: &mut Conn<'_>) -> Result<Vec<(AppRef, String)>, LedgerError> {
    let q = sql("SELECT app, path FROM apps WHERE path IS NOT NULL ORDER BY app");
    c.fetch_all(q)
        .await?
        .iter()
        .map(|row| Ok((row.parsed("app")?, row.text("path")?)))
        .collect()
}

pub(crate) async fn set_hold(
    c: &mut Conn<'_>,
    app: &AppRef,
    held_since: Option<DateTime<Utc>>,
) -> Result<(), LedgerError> {
    let q = sql("UPDATE apps SET held_since = $2 WHERE app = $1")
        .bind(app.to_string())
        .bind(held_since);
    if c.execute(q).await? == 0 {
        return Err(LedgerError::not_found("app", app));
    }
    Ok(())
}
