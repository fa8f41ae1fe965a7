//! Deployments: reading them, inserting observed ones (Argo CD history and
//! Flux's assigned sequence), health, resolution and known-good promotion.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use rewind_domain::{
    AppRef, CommitId, ConfigHash, Deployment, DeploymentObserved, Health, HealthObserved,
    SyncStatus,
};

use crate::LedgerError;
use crate::db::{Arg, Conn, Dialect, Row, rows_per_statement, sql, sql_repeated};

/// The columns `from_row` reads, in `SELECT` lists.
macro_rules! deployment_columns {
    () => {
        "id, app, cluster, cluster_revision, revision, commit_sha, tree, config_hash, images, \
         health, sync, deployed_at, source, known_good, healthy_since, alerted, initiated_by, \
         known_good_by_history"
    };
}

/// The columns [`from_row`] reads, for queries that name them elsewhere.
pub(crate) const COLUMNS: &str = deployment_columns!();

/// Sets health `$2`, sync `$3` (when not null) and the Healthy streak's
/// start `$4`; the caller adds the `WHERE`, with `$1` naming the row.
macro_rules! set_health {
    () => {
        "UPDATE deployments SET health = $2, sync = COALESCE($3, sync), \
         healthy_since = CASE WHEN $2 = 'Healthy' THEN COALESCE(healthy_since, $4) ELSE NULL END"
    };
}

pub(crate) fn from_row(row: &Row) -> Result<Deployment, LedgerError> {
    let source = row.text("source")?;
    // `app` holds the app reference `name@cluster`, the identity.
    let app: AppRef = row.parsed("app")?;
    Ok(Deployment {
        id: row.i64("id")?,
        app: app.name,
        cluster: app.cluster,
        cluster_revision: row.i64("cluster_revision")?,
        revision: row.text("revision")?,
        commit: row.opt_parsed::<CommitId>("commit_sha")?,
        tree: row.opt_text("tree")?,
        config_hash: row.opt_parsed::<ConfigHash>("config_hash")?,
        images: row.json("images")?,
        health: Health::parse_lenient(&row.text("health")?),
        sync: SyncStatus::parse_lenient(&row.text("sync")?),
        deployed_at: row.time("deployed_at")?,
        source: rewind_domain::Source::parse(&source).ok_or_else(|| {
            LedgerError::corrupt(sqlx::Error::ColumnDecode {
                index: "source".into(),
                source: format!("unknown source {source:?}").into(),
            })
        })?,
        known_good: row.bool("known_good")?,
        known_good_by_history: row.bool("known_good_by_history")?,
        healthy_since: row.opt_time("healthy_since")?,
        alerted: row.bool("alerted")?,
        initiated_by: row.opt_text("initiated_by")?,
    })
}

fn all(rows: Vec<Row>) -> Result<Vec<Deployment>, LedgerError> {
    rows.iter().map(from_row).collect()
}

fn one(row: Option<Row>) -> Result<Option<Deployment>, LedgerError> {
    row.as_ref().map(from_row).transpose()
}

pub(crate) async fn by_id(c: &mut Conn<'_>, id: i64) -> Result<Option<Deployment>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM deployments WHERE id = $1"
    ))
    .bind(id);
    one(c.fetch_optional(q).await?)
}

/// The deployments of `ids` that exist, in id order.
pub(crate) async fn by_ids(c: &mut Conn<'_>, ids: &[i64]) -> Result<Vec<Deployment>, LedgerError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let q = match c.dialect() {
        Dialect::Postgres => sql(concat!(
            "SELECT ",
            deployment_columns!(),
            " FROM deployments WHERE id = ANY(CAST($1 AS BIGINT[])) ORDER BY id"
        )),
        Dialect::Sqlite => sql(concat!(
            "SELECT ",
            deployment_columns!(),
            " FROM deployments WHERE id IN (SELECT CAST(value AS INTEGER) FROM json_each($1)) \
             ORDER BY id"
        )),
    }
    .bind(Arg::TextList(ids.iter().map(i64::to_string).collect()));
    all(c.fetch_all(q).await?)
}

pub(crate) async fn current(
    c: &mut Conn<'_>,
    app: &AppRef,
) -> Result<Option<Deployment>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM deployments WHERE app = $1 ORDER BY cluster_revision DESC LIMIT 1"
    ))
    .bind(app.to_string());
    one(c.fetch_optional(q).await?)
}

/// Every app's current deployment and newest known-good one, keyed by
/// the app reference: two statements for the whole fleet instead of two
/// per app (the fleet page and `GET /api/v1/apps` list thousands).
pub(crate) async fn current_and_known_good_of_all(
    c: &mut Conn<'_>,
) -> Result<(HashMap<String, Deployment>, HashMap<String, Deployment>), LedgerError> {
    let current = sql(concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM (SELECT ",
        deployment_columns!(),
        ", ROW_NUMBER() OVER (PARTITION BY app ORDER BY cluster_revision DESC) AS newest \
           FROM deployments) ranked WHERE newest = 1"
    ));
    let known_good = sql(concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM (SELECT ",
        deployment_columns!(),
        ", ROW_NUMBER() OVER (PARTITION BY app ORDER BY cluster_revision DESC) AS newest \
           FROM deployments WHERE known_good) ranked WHERE newest = 1"
    ));
    let by_app = |rows: Vec<Row>| -> Result<HashMap<String, Deployment>, LedgerError> {
        rows.iter()
            .map(|row| from_row(row).map(|d| (d.app_ref().to_string(), d)))
            .collect()
    };
    Ok((
        by_app(c.fetch_all(current).await?)?,
        by_app(c.fetch_all(known_good).await?)?,
    ))
}

pub(crate) async fn newest_known_good(
    c: &mut Conn<'_>,
    app: &AppRef,
) -> Result<Option<Deployment>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM deployments WHERE app = $1 AND known_good \
         ORDER BY cluster_revision DESC LIMIT 1"
    ))
    .bind(app.to_string());
    one(c.fetch_optional(q).await?)
}

pub(crate) async fn history(
    c: &mut Conn<'_>,
    app: &AppRef,
    limit: u32,
) -> Result<Vec<Deployment>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM deployments WHERE app = $1 ORDER BY cluster_revision DESC LIMIT $2"
    ))
    .bind(app.to_string())
    .bind(i64::from(limit));
    all(c.fetch_all(q).await?)
}

/// Newest first, below cluster revision `before` when given.
pub(crate) async fn history_before(
    c: &mut Conn<'_>,
    app: &AppRef,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Deployment>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM deployments WHERE app = $1 AND ($3 IS NULL OR cluster_revision < $3) \
          ORDER BY cluster_revision DESC LIMIT $2"
    ))
    .bind(app.to_string())
    .bind(i64::from(limit))
    .bind(before);
    all(c.fetch_all(q).await?)
}

pub(crate) async fn by_revision(
    c: &mut Conn<'_>,
    app: &AppRef,
    cluster_revision: i64,
) -> Result<Option<Deployment>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM deployments WHERE app = $1 AND cluster_revision = $2"
    ))
    .bind(app.to_string())
    .bind(cluster_revision);
    one(c.fetch_optional(q).await?)
}

pub(crate) async fn by_commit(
    c: &mut Conn<'_>,
    app: &AppRef,
    commit: &CommitId,
) -> Result<Vec<Deployment>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM deployments WHERE app = $1 AND commit_sha = $2 ORDER BY cluster_revision DESC"
    ))
    .bind(app.to_string())
    .bind(commit.as_str());
    all(c.fetch_all(q).await?)
}

pub(crate) async fn at(
    c: &mut Conn<'_>,
    app: &AppRef,
    at: DateTime<Utc>,
) -> Result<Option<Deployment>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM deployments WHERE app = $1 AND deployed_at <= $2 \
         ORDER BY deployed_at DESC, cluster_revision DESC LIMIT 1"
    ))
    .bind(app.to_string())
    .bind(at);
    one(c.fetch_optional(q).await?)
}

pub(crate) async fn last_known_good_before(
    c: &mut Conn<'_>,
    app: &AppRef,
    cluster_revision: i64,
) -> Result<Option<Deployment>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        deployment_columns!(),
        " FROM deployments WHERE app = $1 AND known_good AND cluster_revision < $2 \
         ORDER BY cluster_revision DESC LIMIT 1"
    ))
    .bind(app.to_string())
    .bind(cluster_revision);
    one(c.fetch_optional(q).await?)
}

/// The cluster revisions of `app` in `low..=high` that the ledger has.
pub(crate) async fn revisions_between(
    c: &mut Conn<'_>,
    app: &AppRef,
    low: i64,
    high: i64,
) -> Result<BTreeSet<i64>, LedgerError> {
    let q = sql("SELECT cluster_revision FROM deployments \
                 WHERE app = $1 AND cluster_revision BETWEEN $2 AND $3")
    .bind(app.to_string())
    .bind(low)
    .bind(high);
    c.fetch_all(q)
        .await?
        .iter()
        .map(|r| r.i64("cluster_revision"))
        .collect()
}

/// Applies a health report to the deployment it is about: the newest one
/// with the reported revision, else the newest with the reported commit,
/// else the current one. The common case, a revision the ledger has, takes
/// one statement. Answers the deployment it applied to, if any.
pub(crate) async fn apply_health(
    c: &mut Conn<'_>,
    h: &HealthObserved,
) -> Result<Option<i64>, LedgerError> {
    if let Some(revision) = h.revision.as_deref() {
        let q = sql(concat!(
            set_health!(),
            " WHERE id = (SELECT id FROM deployments WHERE app = $1 AND revision = $5 \
               ORDER BY cluster_revision DESC LIMIT 1) RETURNING id"
        ))
        .bind(h.app_ref().to_string())
        .bind(h.health.as_str())
        .bind(h.sync.map(|s| s.as_str()))
        .bind(h.at)
        .bind(revision);
        if let Some(row) = c.fetch_optional(q).await? {
            return Ok(Some(row.i64("id")?));
        }
    }
    let app = h.app_ref();
    let by_commit = match &h.commit {
        Some(commit) => by_commit(c, &app, commit).await?.first().map(|d| d.id),
        None => None,
    };
    let target = match by_commit {
        Some(id) => Some(id),
        None => current(c, &app).await?.map(|d| d.id),
    };
    if let Some(id) = target {
        set_health(c, id, h.health, h.sync, h.at).await?;
    }
    Ok(target)
}

/// Inserts an observed deployment unless the ledger has it already.
/// Returns the new row's id when it inserted one.
///
/// Argo CD names the cluster revision (its history id): the row is new when
/// `(app, cluster_revision)` is. Flux does not: the next number of the
/// app's sequence is assigned, but only when the revision differs from the
/// app's current one (Flux re-announces the same revision on every
/// reconciliation). The caller holds the app's lock, so two deliveries
/// cannot assign the same number.
pub(crate) async fn insert_observed(
    c: &mut Conn<'_>,
    d: &DeploymentObserved,
    now: DateTime<Utc>,
) -> Result<Option<i64>, LedgerError> {
    let cluster_revision = match d.cluster_revision {
        Some(n) => n,
        None => {
            let latest = sql("SELECT cluster_revision, revision FROM deployments \
                              WHERE app = $1 ORDER BY cluster_revision DESC LIMIT 1")
            .bind(d.app_ref().to_string());
            match c.fetch_optional(latest).await? {
                Some(row) if row.text("revision")? == d.revision => return Ok(None),
                Some(row) => row.i64("cluster_revision")?.saturating_add(1),
                None => 1,
            }
        }
    };
    let q = sql(
        "INSERT INTO deployments (app, cluster, cluster_revision, revision, commit_sha, images, \
             health, sync, deployed_at, source, known_good, alerted, initiated_by, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, FALSE, FALSE, $11, $12) \
         ON CONFLICT (app, cluster_revision) DO NOTHING \
         RETURNING id",
    )
    .bind(d.app_ref().to_string())
    .bind(d.cluster.as_str())
    .bind(cluster_revision)
    .bind(d.revision.as_str())
    .bind(d.commit.as_ref().map(CommitId::as_str))
    .bind(Arg::json(&Vec::<String>::new())?)
    .bind(Health::Unknown.as_str())
    .bind(SyncStatus::Unknown.as_str())
    .bind(d.deployed_at)
    .bind(d.source.as_str())
    .bind(d.initiated_by.clone())
    .bind(now);
    c.fetch_optional(q).await?.map(|r| r.i64("id")).transpose()
}

/// The `(app, cluster_revision)` pairs the ledger has among the given
/// `(app, low, high)` ranges: one query per chunk for a whole batch.
pub(crate) async fn revisions_in(
    c: &mut Conn<'_>,
    ranges: &[(String, i64, i64)],
) -> Result<HashSet<(String, i64)>, LedgerError> {
    // SQLite nests a chain of ORs one level per term and refuses depths
    // past 1,000: a few hundred terms per query.
    const TERMS: usize = 250;
    let mut known = HashSet::new();
    for chunk in ranges.chunks(TERMS.min(rows_per_statement(3))) {
        let mut q = sql_repeated(
            "SELECT app, cluster_revision FROM deployments WHERE ",
            "(app = ? AND cluster_revision BETWEEN ? AND ?)",
            " OR ",
            chunk.len(),
            "",
        );
        for (app, low, high) in chunk {
            q = q.bind(app.as_str()).bind(*low).bind(*high);
        }
        for row in c.fetch_all(q).await? {
            known.insert((row.text("app")?, row.i64("cluster_revision")?));
        }
    }
    Ok(known)
}

/// [`insert_observed`] for Argo CD deployments (cluster revision named)
/// known to be new, `(deployment, now)`, in one statement per chunk. Ids
/// follow the order given. Answers the new ids by `(app, cluster_revision)`.
pub(crate) async fn insert_numbered_many(
    c: &mut Conn<'_>,
    rows: &[(&DeploymentObserved, DateTime<Utc>)],
) -> Result<HashMap<(String, i64), i64>, LedgerError> {
    const COLUMNS: usize = 14;
    let mut ids = HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(rows_per_statement(COLUMNS)) {
        let mut q = sql_repeated(
            "INSERT INTO deployments (app, cluster, cluster_revision, revision, commit_sha, \
                 images, health, sync, deployed_at, source, known_good, alerted, initiated_by, \
                 recorded_at) VALUES ",
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ", ",
            chunk.len(),
            " ON CONFLICT (app, cluster_revision) DO NOTHING RETURNING id, app, cluster_revision",
        );
        for (d, now) in chunk {
            let cluster_revision = d.cluster_revision.ok_or_else(|| {
                LedgerError::Invalid("a batched deployment needs a cluster revision".into())
            })?;
            q = q
                .bind(d.app_ref().to_string())
                .bind(d.cluster.as_str())
                .bind(cluster_revision)
                .bind(d.revision.as_str())
                .bind(d.commit.as_ref().map(CommitId::as_str))
                .bind(Arg::json(&Vec::<String>::new())?)
                .bind(Health::Unknown.as_str())
                .bind(SyncStatus::Unknown.as_str())
                .bind(d.deployed_at)
                .bind(d.source.as_str())
                .bind(false)
                .bind(false)
                .bind(d.initiated_by.clone())
                .bind(*now);
        }
        for row in c.fetch_all(q).await? {
            ids.insert(
                (row.text("app")?, row.i64("cluster_revision")?),
                row.i64("id")?,
            );
        }
    }
    Ok(ids)
}

/// Sets health (and sync when given). `healthy_since` keeps the start of the
/// current Healthy streak: set on the first Healthy report, kept on the
/// next ones, cleared by anything else.
pub(crate) async fn set_health(
    c: &mut Conn<'_>,
    id: i64,
    health: Health,
    sync: Option<SyncStatus>,
    at: DateTime<Utc>,
) -> Result<bool, LedgerError> {
    let q = sql(concat!(set_health!(), " WHERE id = $1"))
        .bind(id)
        .bind(health.as_str())
        .bind(sync.map(|s| s.as_str()))
        .bind(at);
    Ok(c.execute(q).await? > 0)
}

/// A firing alert spoils the app's current deployment: it is not, and can
/// no longer become, known good. Returns the deployment's id.
pub(crate) async fn mark_alerted(
    c: &mut Conn<'_>,
    app: &AppRef,
) -> Result<Option<i64>, LedgerError> {
    let Some(current) = current(c, app).await? else {
        return Ok(None);
    };
    let q = sql("UPDATE deployments SET alerted = TRUE, known_good = FALSE WHERE id = $1")
        .bind(current.id);
    c.execute(q).await?;
    Ok(Some(current.id))
}

pub(crate) async fn set_resolution(
    c: &mut Conn<'_>,
    id: i64,
    tree: String,
    config_hash: &ConfigHash,
    images: &[String],
) -> Result<(), LedgerError> {
    let q = sql("UPDATE deployments SET tree = $2, config_hash = $3, images = $4 WHERE id = $1")
        .bind(id)
        .bind(tree)
        .bind(config_hash.as_str())
        .bind(Arg::json(images)?);
    if c.execute(q).await? == 0 {
        return Err(LedgerError::not_found("deployment", id));
    }
    Ok(())
}

/// `policy.trust_history`: marks known good, *by history*, each deployment
/// of `app` that rewind never saw healthy or unhealthy (health `Unknown`:
/// back-filled from Argo CD's history), that ran at least `healthy_for`
/// before the next deployment, that no alert was recorded against, and
/// during whose run no alert of the app started. Returns the promoted ids.
pub(crate) async fn promote_by_history(
    c: &mut Conn<'_>,
    app: &AppRef,
    healthy_for: Duration,
) -> Result<Vec<i64>, LedgerError> {
    let healthy_for = chrono::Duration::from_std(healthy_for)
        .map_err(|_| LedgerError::Invalid("healthy_for is too long".into()))?;
    // Newest first; Argo CD keeps ten entries, so a page of history is
    // every candidate.
    let deployments = history(c, app, 100).await?;
    let alert_starts: Vec<DateTime<Utc>> = crate::store::alerts::for_app(c, app, 1000)
        .await?
        .into_iter()
        .map(|a| a.alert.starts_at)
        .collect();
    let mut promoted = Vec::new();
    for pair in deployments.windows(2) {
        let (next, d) = (&pair[0], &pair[1]);
        let ran_until = next.deployed_at;
        let quiet = !alert_starts
            .iter()
            .any(|at| *at >= d.deployed_at && *at < ran_until);
        if d.known_good
            || d.alerted
            || d.health != Health::Unknown
            || d.commit.is_none()
            || ran_until - d.deployed_at < healthy_for
            || !quiet
        {
            continue;
        }
        let q = sql(
            "UPDATE deployments SET known_good = TRUE, known_good_by_history = TRUE \
                     WHERE id = $1 AND NOT known_good AND NOT alerted",
        )
        .bind(d.id);
        if c.execute(q).await? > 0 {
            promoted.push(d.id);
        }
    }
    Ok(promoted)
}

pub(crate) async fn promote_known_good(
    c: &mut Conn<'_>,
    now: DateTime<Utc>,
    healthy_for: Duration,
) -> Result<Vec<i64>, LedgerError> {
    let healthy_for = chrono::Duration::from_std(healthy_for)
        .map_err(|_| LedgerError::Invalid("healthy_for is too long".into()))?;
    let cutoff = now
        .checked_sub_signed(healthy_for)
        .ok_or_else(|| LedgerError::Invalid("healthy_for reaches before the epoch".into()))?;
    // Start from each app's current deployment (one index probe per app)
    // rather than from all Healthy rows, which grow with history.
    // A firing alert counts for the app when recorded against it
    // (`name@cluster`) or against its bare name (an alert without a cluster
    // label for a name several clusters run).
    let q = sql("UPDATE deployments SET known_good = TRUE \
                 WHERE id IN (SELECT (SELECT d.id FROM deployments d WHERE d.app = a.app \
                                      ORDER BY d.cluster_revision DESC LIMIT 1) \
                              FROM apps a \
                              WHERE NOT EXISTS (SELECT 1 FROM alerts al \
                                   WHERE al.app IN (a.app, a.name) AND al.status = 'firing')) \
                   AND NOT known_good AND NOT alerted AND health = 'Healthy' \
                   AND healthy_since <= $1 \
                 RETURNING id")
    .bind(cutoff);
    let mut ids = c
        .fetch_all(q)
        .await?
        .iter()
        .map(|r| r.i64("id"))
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}
