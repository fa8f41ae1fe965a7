//! The health reports of a set-based run (`batch.rs`), recorded together:
//! three reads for all of them (the deployment each is about, each app's
//! current deployment, each app's drift), then one update of deployments,
//! one of apps, one insert of drift jobs. The caller passes reports about
//! distinct app names, so none of them sees another's writes one by one
//! either. A report off the common path (its revision unknown, or an app
//! already drifting that Git may not have caught up with) is recorded by
//! the per-delivery code instead, which reads what it needs itself.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use rewind_domain::{HealthObserved, SyncStatus};

use crate::db::{Conn, Dialect, rows_per_statement, sql_repeated};
use crate::store::{deliveries, deployments, jobs, proof};
use crate::{LedgerError, job_kind};

/// Records `reports` (`(report, now)`, each about another app name);
/// answers the jobs each one queued.
pub(crate) async fn record_many(
    c: &mut Conn<'_>,
    reports: &[(&HealthObserved, DateTime<Utc>)],
) -> Result<Vec<usize>, LedgerError> {
    let mut queued = vec![0usize; reports.len()];
    if reports.is_empty() {
        return Ok(queued);
    }
    let apps: Vec<String> = reports
        .iter()
        .map(|(h, _)| h.app_ref().to_string())
        .collect();
    let targets = by_revision(c, reports, &apps).await?;
    let current = deployments::current_many(c, &apps).await?;
    let drifting = drifting(c, &apps).await?;

    let mut health_rows = Vec::new();
    let mut app_rows = Vec::new();
    let mut drift_jobs = Vec::new();
    let mut drift_job_of = Vec::new();
    for (k, (h, now)) in reports.iter().enumerate() {
        let app = &apps[k];
        let target = h
            .revision
            .as_ref()
            .and_then(|r| targets.get(&(app.clone(), r.clone())).copied());
        let current = current.get(app);
        let drifting_before = drifting.get(app).copied().unwrap_or(false);
        let drift = deliveries::drift_of(h, current);
        let (Some(id), false) = (target, drift.is_none() && drifting_before) else {
            queued[k] = deliveries::record_health(c, h, *now).await?;
            continue;
        };
        if let Some(images) = &h.running_images {
            proof::set_running_images(c, id, images).await?;
        }
        health_rows.push((id, *h));
        app_rows.push((app.as_str(), *h, drift.clone()));
        if let (Some(detail), false) = (drift, drifting_before) {
            let (key, payload) = deliveries::drift_job(&h.app_ref(), &detail, h.at);
            drift_jobs.push((job_kind::DRIFT, payload, key, *now));
            drift_job_of.push(k);
        }
    }
    set_health(c, &health_rows).await?;
    set_reported(c, &app_rows).await?;
    for (k, new) in drift_job_of
        .into_iter()
        .zip(jobs::enqueue_many(c, &drift_jobs).await?)
    {
        queued[k] += usize::from(new);
    }
    Ok(queued)
}

/// The deployment each report with a revision is about: the newest of its
/// app with that revision, by `(app, revision)`.
async fn by_revision(
    c: &mut Conn<'_>,
    reports: &[(&HealthObserved, DateTime<Utc>)],
    apps: &[String],
) -> Result<HashMap<(String, String), i64>, LedgerError> {
    let wanted: Vec<(&str, &str)> = reports
        .iter()
        .zip(apps)
        .filter_map(|((h, _), app)| Some((app.as_str(), h.revision.as_deref()?)))
        .collect();
    let mut found = HashMap::new();
    for chunk in wanted.chunks(rows_per_statement(2)) {
        let mut q = sql_repeated(
            "SELECT id, app, revision FROM deployments WHERE id IN (",
            "(SELECT id FROM deployments WHERE app = ? AND revision = ? \
             ORDER BY cluster_revision DESC LIMIT 1)",
            ", ",
            chunk.len(),
            ")",
        );
        for (app, revision) in chunk {
            q = q.bind(*app).bind(*revision);
        }
        for row in c.fetch_all(q).await? {
            found.insert((row.text("app")?, row.text("revision")?), row.i64("id")?);
        }
    }
    Ok(found)
}

/// Whether each app drifts now (as `apps::get` reads it: detail and start).
async fn drifting(c: &mut Conn<'_>, apps: &[String]) -> Result<HashMap<String, bool>, LedgerError> {
    let mut found = HashMap::new();
    for chunk in apps.chunks(rows_per_statement(1)) {
        let mut q = sql_repeated(
            "SELECT app, drift, drift_since FROM apps WHERE app IN (",
            "?",
            ", ",
            chunk.len(),
            ")",
        );
        for app in chunk {
            q = q.bind(app.as_str());
        }
        for row in c.fetch_all(q).await? {
            let drifts = row.opt_text("drift")?.is_some() && row.opt_time("drift_since")?.is_some();
            found.insert(row.text("app")?, drifts);
        }
    }
    Ok(found)
}

/// `deployments::set_health` for many rows: `(id, report)`.
async fn set_health(c: &mut Conn<'_>, rows: &[(i64, &HealthObserved)]) -> Result<(), LedgerError> {
    // PostgreSQL types a VALUES list by its values, so parameters there
    // need casts; SQLite keeps times as microseconds.
    let group = match c.dialect() {
        Dialect::Sqlite => "(?, ?, ?, ?)",
        Dialect::Postgres => {
            "(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TIMESTAMPTZ))"
        }
    };
    for chunk in rows.chunks(rows_per_statement(4)) {
        let mut q = sql_repeated(
            "WITH v(id, health, sync, at) AS (VALUES ",
            group,
            ", ",
            chunk.len(),
            ") UPDATE deployments SET health = v.health, \
               sync = COALESCE(v.sync, deployments.sync), \
               healthy_since = CASE WHEN v.health = 'Healthy' \
                   THEN COALESCE(deployments.healthy_since, v.at) ELSE NULL END \
             FROM v WHERE deployments.id = v.id",
        );
        for (id, h) in chunk {
            q = q
                .bind(*id)
                .bind(h.health.as_str())
                .bind(h.sync.map(SyncStatus::as_str))
                .bind(h.at);
        }
        c.execute(q).await?;
    }
    Ok(())
}

/// `apps::set_reported` for many apps: `(app, report, drift)`.
async fn set_reported(
    c: &mut Conn<'_>,
    rows: &[(&str, &HealthObserved, Option<String>)],
) -> Result<(), LedgerError> {
    let group = match c.dialect() {
        Dialect::Sqlite => "(?, ?, ?, ?, ?)",
        Dialect::Postgres => {
            "(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), \
             CAST(? AS TIMESTAMPTZ))"
        }
    };
    for chunk in rows.chunks(rows_per_statement(5)) {
        let mut q = sql_repeated(
            "WITH v(app, sync, revision, drift, at) AS (VALUES ",
            group,
            ", ",
            chunk.len(),
            ") UPDATE apps SET reported_sync = COALESCE(v.sync, apps.reported_sync), \
               reported_revision = COALESCE(v.revision, apps.reported_revision), \
               drift = v.drift, \
               drift_since = CASE WHEN v.drift IS NULL THEN NULL \
                   ELSE COALESCE(apps.drift_since, v.at) END \
             FROM v WHERE apps.app = v.app",
        );
        for (app, h, drift) in chunk {
            q = q
                .bind(*app)
                .bind(h.sync.map(SyncStatus::as_str))
                .bind(h.sync_revision.clone())
                .bind(drift.clone())
                .bind(h.at);
        }
        c.execute(q).await?;
    }
    Ok(())
}
