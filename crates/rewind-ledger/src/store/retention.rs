//! Retention: deleting old delivery records and finished jobs, and the
//! "at most once per period" enqueue that schedules it across replicas.

use chrono::{DateTime, Utc};

use crate::db::{Arg, Conn, sql};
use crate::{DEFAULT_MAX_ATTEMPTS, LedgerError, Pruned};

/// Deletes delivery records received before `before` and finished jobs
/// (`done`, `dead`) last changed before it. Queued and running jobs are
/// never touched.
pub(crate) async fn prune(c: &mut Conn<'_>, before: DateTime<Utc>) -> Result<Pruned, LedgerError> {
    let deliveries = c
        .execute(sql("DELETE FROM webhook_deliveries WHERE received_at < $1").bind(before))
        .await?;
    let jobs = c
        .execute(
            sql("DELETE FROM jobs WHERE state IN ('done', 'dead') AND updated_at < $1")
                .bind(before),
        )
        .await?;
    Ok(Pruned { deliveries, jobs })
}

/// Enqueues the job unless one with `dedup_key` was created after
/// `since` (in any state): periodic work runs once per period whichever
/// replica's clock asks first. Two replicas asking at the same instant
/// both see none, and the queued-dedup index keeps one.
pub(crate) async fn enqueue_unless_since(
    c: &mut Conn<'_>,
    kind: &str,
    payload: &serde_json::Value,
    dedup_key: &str,
    since: DateTime<Utc>,
    run_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<i64>, LedgerError> {
    let q = sql(
        "INSERT INTO jobs (kind, payload, dedup_key, state, attempts, max_attempts, \
                           run_at, created_at, updated_at) \
         SELECT $1, $2, $3, 'queued', 0, $4, $5, $6, $6 \
         WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE dedup_key = $3 AND created_at > $7) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(kind)
    .bind(Arg::Json(Some(payload.clone())))
    .bind(dedup_key)
    .bind(i64::from(DEFAULT_MAX_ATTEMPTS))
    .bind(run_at)
    .bind(now)
    .bind(since);
    c.fetch_optional(q).await?.map(|r| r.i64("id")).transpose()
}
