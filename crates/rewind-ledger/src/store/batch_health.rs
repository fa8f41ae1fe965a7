//! The health reports of a set-based run (`batch.rs`), recorded together:
//! one read for all of them (per report: the deployment it is about, its
//! app's current deployment and drift), then one update of deployments,
//! one of apps, one insert of drift jobs. The caller passes reports about
//! distinct app names, so none of them sees another's writes one by one
//! either. A report off the common path (its revision unknown, or an app
//! already drifting that Git may not have caught up with) is recorded by
//! the per-delivery code instead, which reads what it needs itself.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use rewind_domain::{Deployment, HealthObserved, SyncStatus};

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
    let Known {
        targets,
        current,
        drifting,
    } = known(c, reports, &apps).await?;

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

/// What the ledger knows about the reports' apps, read in one statement.
struct Known {
    /// The deployment a report is about: the newest of its app with its
    /// revision, by `(app, revision)`.
    targets: HashMap<(String, String), i64>,
    /// Each app's current deployment (highest cluster revision).
    current: HashMap<String, Deployment>,
    /// Whether each app drifts now (as `apps::get` reads it: detail and
    /// start).
    drifting: HashMap<String, bool>,
}

/// After the reports' `VALUES`: per report, the newest deployment of its
/// app with its revision, the app's drift, and its current deployment's
/// columns (as `cur`, named as `deployments::from_row` reads them).
static KNOWN_TAIL: LazyLock<String> = LazyLock::new(|| {
    let current: Vec<String> = deployments::COLUMNS
        .split(',')
        .map(|c| format!("cur.{0} AS {0}", c.trim()))
        .collect();
    // The two ids first (index scans on `(app, revision, …)` and
    // `(app, cluster_revision)`), then the rows by primary key.
    format!(
        "), w AS (SELECT v.app, v.revision, \
             (SELECT t.id FROM deployments t WHERE t.app = v.app AND t.revision = v.revision \
              ORDER BY t.cluster_revision DESC LIMIT 1) AS target_id, \
             (SELECT n.id FROM deployments n WHERE n.app = v.app \
              ORDER BY n.cluster_revision DESC LIMIT 1) AS current_id \
             FROM v) \
         SELECT w.app AS report_app, w.revision AS report_revision, w.target_id AS target_id, \
             a.drift AS app_drift, a.drift_since AS app_drift_since, {} \
         FROM w \
         LEFT JOIN apps a ON a.app = w.app \
         LEFT JOIN deployments cur ON cur.id = w.current_id",
        current.join(", ")
    )
});

async fn known(
    c: &mut Conn<'_>,
    reports: &[(&HealthObserved, DateTime<Utc>)],
    apps: &[String],
) -> Result<Known, LedgerError> {
    let group = match c.dialect() {
        Dialect::Sqlite => "(?, ?)",
        Dialect::Postgres => "(CAST(? AS TEXT), CAST(? AS TEXT))",
    };
    let mut known = Known {
        targets: HashMap::new(),
        current: HashMap::new(),
        drifting: HashMap::new(),
    };
    let wanted: Vec<(&str, Option<&str>)> = reports
        .iter()
        .zip(apps)
        .map(|((h, _), app)| (app.as_str(), h.revision.as_deref()))
        .collect();
    for chunk in wanted.chunks(rows_per_statement(2)) {
        let mut q = sql_repeated(
            "WITH v(app, revision) AS (VALUES ",
            group,
            ", ",
            chunk.len(),
            &KNOWN_TAIL,
        );
        for (app, revision) in chunk {
            q = q.bind(*app).bind(*revision);
        }
        for row in c.fetch_all(q).await? {
            let app = row.text("report_app")?;
            if let (Some(revision), Some(id)) =
                (row.opt_text("report_revision")?, row.opt_i64("target_id")?)
            {
                known.targets.insert((app.clone(), revision), id);
            }
            let drifts =
                row.opt_text("app_drift")?.is_some() && row.opt_time("app_drift_since")?.is_some();
            known.drifting.insert(app.clone(), drifts);
            if row.opt_i64("id")?.is_some() {
                known.current.insert(app, deployments::from_row(&row)?);
            }
        }
    }
    Ok(known)
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
