//! Durable jobs: enqueue with deduplication, claim with a lease, complete,
//! fail with retry or give up, release on shutdown.
//!
//! A dedup key is unique among queued jobs (migration 0003): a running job
//! does not swallow the next one, and when it goes back to the queue while
//! a twin waits there, it is done instead (the twin does the work).
//!
//! A claim is one atomic statement: PostgreSQL picks the row with
//! `FOR UPDATE SKIP LOCKED` so concurrent workers never wait on (or take)
//! the same job; SQLite has a single writer, so its `UPDATE ... RETURNING`
//! in an immediate transaction is atomic as it stands.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::{Arg, Conn, Dialect, Row, sql};
use crate::{DEFAULT_MAX_ATTEMPTS, Job, JobCount, JobState, LedgerError};

macro_rules! job_columns {
    () => {
        "id, kind, payload, dedup_key, state, attempts, max_attempts, run_at, locked_by, \
         locked_until, last_error, created_at"
    };
}

fn from_row(row: &Row) -> Result<Job, LedgerError> {
    Ok(Job {
        id: row.i64("id")?,
        kind: row.text("kind")?,
        payload: row.json("payload")?,
        dedup_key: row.opt_text("dedup_key")?,
        state: row.parsed("state")?,
        attempts: u32::try_from(row.i64("attempts")?).unwrap_or(u32::MAX),
        max_attempts: u32::try_from(row.i64("max_attempts")?).unwrap_or(u32::MAX),
        run_at: row.time("run_at")?,
        locked_by: row.opt_text("locked_by")?,
        locked_until: row.opt_time("locked_until")?,
        last_error: row.opt_text("last_error")?,
        created_at: row.time("created_at")?,
    })
}

pub(crate) async fn enqueue(
    c: &mut Conn<'_>,
    kind: &str,
    payload: &serde_json::Value,
    dedup_key: Option<&str>,
    run_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<i64>, LedgerError> {
    if kind.is_empty() {
        return Err(LedgerError::Invalid("job kind must not be empty".into()));
    }
    // No conflict target: the dedup index is partial (live jobs only), and
    // DO NOTHING without a target covers it in both dialects.
    let q = sql(
        "INSERT INTO jobs (kind, payload, dedup_key, state, attempts, max_attempts, \
                     run_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $6) \
                 ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(kind)
    .bind(Arg::Json(Some(payload.clone())))
    .bind(dedup_key)
    .bind(i64::from(DEFAULT_MAX_ATTEMPTS))
    .bind(run_at)
    .bind(now);
    let id = c
        .fetch_optional(q)
        .await?
        .map(|r| r.i64("id"))
        .transpose()?;
    if let (None, Some(key)) = (id, dedup_key) {
        // The queued twin (perhaps waiting out a retry backoff) becomes due
        // no later than the work asked for now.
        let pull = sql("UPDATE jobs SET run_at = $2, updated_at = $3 \
                        WHERE dedup_key = $1 AND state = 'queued' AND run_at > $2")
        .bind(key)
        .bind(run_at)
        .bind(now);
        c.execute(pull).await?;
    }
    Ok(id)
}

pub(crate) async fn claim(
    c: &mut Conn<'_>,
    worker_id: &str,
    kinds: &[&str],
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<Option<Job>, LedgerError> {
    if kinds.is_empty() {
        return Ok(None);
    }
    let lease = chrono::Duration::from_std(lease)
        .map_err(|_| LedgerError::Invalid("job lease is too long".into()))?;
    let locked_until = now
        .checked_add_signed(lease)
        .ok_or_else(|| LedgerError::Invalid("job lease is too long".into()))?;
    let kinds = Arg::TextList(kinds.iter().map(|k| (*k).to_owned()).collect());

    // A job whose worker died with its last attempt will never be claimed
    // again: say so.
    let bury = sql(
        "UPDATE jobs SET state = 'dead', locked_by = NULL, locked_until = NULL, \
                        last_error = COALESCE(last_error, 'lease expired on the last attempt'), \
                        updated_at = $1 \
                    WHERE state = 'running' AND locked_until < $1 AND attempts >= max_attempts",
    )
    .bind(now);
    c.execute(bury).await?;

    let q = match c.dialect() {
        Dialect::Postgres => sql(concat!(
            "UPDATE jobs SET state = 'running', locked_by = $1, locked_until = $2, \
                 attempts = attempts + 1, updated_at = $3 \
             WHERE id = (SELECT id FROM jobs \
                         WHERE kind = ANY($4) AND run_at <= $3 \
                           AND (state = 'queued' OR (state = 'running' AND locked_until < $3)) \
                           AND attempts < max_attempts \
                         ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING ",
            job_columns!()
        )),
        Dialect::Sqlite => sql(concat!(
            "UPDATE jobs SET state = 'running', locked_by = $1, locked_until = $2, \
                 attempts = attempts + 1, updated_at = $3 \
             WHERE id = (SELECT id FROM jobs \
                         WHERE kind IN (SELECT value FROM json_each($4)) AND run_at <= $3 \
                           AND (state = 'queued' OR (state = 'running' AND locked_until < $3)) \
                           AND attempts < max_attempts \
                         ORDER BY run_at, id LIMIT 1) \
             RETURNING ",
            job_columns!()
        )),
    }
    .bind(worker_id)
    .bind(locked_until)
    .bind(now)
    .bind(kinds);
    c.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub(crate) async fn complete(
    c: &mut Conn<'_>,
    job_id: i64,
    worker_id: &str,
    now: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let q = sql(
        "UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, \
                     updated_at = $3 \
                 WHERE id = $1 AND locked_by = $2 AND state = 'running'",
    )
    .bind(job_id)
    .bind(worker_id)
    .bind(now);
    if c.execute(q).await? == 0 {
        return Err(LedgerError::not_found("job held by this worker", job_id));
    }
    Ok(())
}

pub(crate) async fn fail(
    c: &mut Conn<'_>,
    job_id: i64,
    worker_id: &str,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<JobState, LedgerError> {
    // Bound what a failing job can write into the table.
    let error: String = error.chars().take(4000).collect();
    // A queued twin (same dedup key, queued while this one ran) will do
    // the same work: this one is done instead of queued a second time.
    let q = sql("UPDATE jobs SET \
                     state = CASE WHEN $3 IS NULL OR attempts >= max_attempts THEN 'dead' \
                                  WHEN EXISTS (SELECT 1 FROM jobs twin \
                                               WHERE twin.dedup_key = jobs.dedup_key \
                                                 AND twin.state = 'queued' AND twin.id <> jobs.id) \
                                  THEN 'done' ELSE 'queued' END, \
                     run_at = COALESCE($3, run_at), \
                     locked_by = NULL, locked_until = NULL, last_error = $4, updated_at = $5 \
                 WHERE id = $1 AND locked_by = $2 AND state = 'running' \
                 RETURNING state")
    .bind(job_id)
    .bind(worker_id)
    .bind(retry_at)
    .bind(error)
    .bind(now);
    match c.fetch_optional(q).await? {
        Some(row) => row.parsed("state"),
        None => Err(LedgerError::not_found("job held by this worker", job_id)),
    }
}

pub(crate) async fn release(
    c: &mut Conn<'_>,
    worker_id: &str,
    now: DateTime<Utc>,
) -> Result<u64, LedgerError> {
    // The interrupted attempt is given back: shutting down is not the job's
    // fault.
    let q = sql(
        "UPDATE jobs SET state = CASE WHEN EXISTS (SELECT 1 FROM jobs twin \
                                       WHERE twin.dedup_key = jobs.dedup_key \
                                         AND twin.state = 'queued' AND twin.id <> jobs.id) \
                                  THEN 'done' ELSE 'queued' END, \
                     locked_by = NULL, locked_until = NULL, \
                     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
                     updated_at = $2 \
                 WHERE locked_by = $1 AND state = 'running'",
    )
    .bind(worker_id)
    .bind(now);
    c.execute(q).await
}

pub(crate) async fn by_id(c: &mut Conn<'_>, id: i64) -> Result<Option<Job>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE id = $1"
    ))
    .bind(id);
    c.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub(crate) async fn counts(c: &mut Conn<'_>) -> Result<Vec<JobCount>, LedgerError> {
    let q = sql(
        "SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state \
                 ORDER BY kind, state",
    );
    c.fetch_all(q)
        .await?
        .iter()
        .map(|row| {
            Ok(JobCount {
                kind: row.text("kind")?,
                state: row.parsed("state")?,
                count: u64::try_from(row.i64("n")?).unwrap_or(0),
            })
        })
        .collect()
}
