//! In-cluster rollbacks reported by Flagger and Argo Rollouts, one row per
//! report, newest last; read by app (and cluster) for catch-up proposals.

use chrono::{DateTime, Utc};

use rewind_domain::{AppName, ClusterRolledBack, RollbackSender};

use crate::db::{Arg, Conn, Row, sql};
use crate::{LedgerError, StoredClusterRollback};

macro_rules! columns {
    () => {
        "id, app, cluster, namespace, workload, sender, running_revision, running_images, \
         rejected_revision, rejected_images, message, at, received_at"
    };
}

fn from_row(row: &Row) -> Result<StoredClusterRollback, LedgerError> {
    let sender = row.text("sender")?;
    let sender = RollbackSender::parse(&sender)
        .ok_or_else(|| LedgerError::Invalid(format!("unknown rollback sender {sender:?}")))?;
    Ok(StoredClusterRollback {
        id: row.i64("id")?,
        rollback: ClusterRolledBack {
            app: row.parsed("app")?,
            cluster: row.text("cluster")?,
            namespace: row.text("namespace")?,
            workload: row.text("workload")?,
            sender,
            running_revision: row.opt_text("running_revision")?,
            running_images: row.json("running_images")?,
            rejected_revision: row.opt_text("rejected_revision")?,
            rejected_images: row.json("rejected_images")?,
            at: row.time("at")?,
            message: row.text("message")?,
        },
        received_at: row.time("received_at")?,
    })
}

/// Records one report; returns its id.
pub(crate) async fn insert(
    c: &mut Conn<'_>,
    r: &ClusterRolledBack,
    now: DateTime<Utc>,
) -> Result<i64, LedgerError> {
    let q = sql(
        "INSERT INTO cluster_rollbacks (app, cluster, namespace, workload, sender, \
             running_revision, running_images, rejected_revision, rejected_images, message, \
             at, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(r.app.as_str())
    .bind(r.cluster.as_str())
    .bind(r.namespace.as_str())
    .bind(r.workload.as_str())
    .bind(r.sender.as_str())
    .bind(r.running_revision.clone())
    .bind(Arg::json(&r.running_images)?)
    .bind(r.rejected_revision.clone())
    .bind(Arg::json(&r.rejected_images)?)
    .bind(r.message.as_str())
    .bind(r.at)
    .bind(now);
    c.fetch_one(q).await?.i64("id")
}

/// The app's reports, newest first; on one cluster when `cluster` is given.
pub(crate) async fn for_app(
    c: &mut Conn<'_>,
    app: &AppName,
    cluster: Option<&str>,
    limit: u32,
) -> Result<Vec<StoredClusterRollback>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        columns!(),
        " FROM cluster_rollbacks WHERE app = $1 AND ($2 IS NULL OR cluster = $2) \
          ORDER BY id DESC LIMIT $3"
    ))
    .bind(app.as_str())
    .bind(cluster)
    .bind(i64::from(limit));
    c.fetch_all(q).await?.iter().map(from_row).collect()
}

/// One report by id.
pub(crate) async fn by_id(
    c: &mut Conn<'_>,
    id: i64,
) -> Result<Option<StoredClusterRollback>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        columns!(),
        " FROM cluster_rollbacks WHERE id = $1"
    ))
    .bind(id);
    c.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}
