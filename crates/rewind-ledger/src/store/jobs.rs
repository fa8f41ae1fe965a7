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
//!
//! Jobs of one app run one at a time across every replica: the claim takes
//! the app's row in `app_locks` (migration 0009) in the same transaction,
//! only when no live job holds it, and passes over jobs of busy apps.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::{Arg, Conn, Dialect, Row, rows_per_statement, sql, sql_repeated};
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

/// [`enqueue`] for many jobs `(kind, payload, dedup_key, now)`, due now,
/// each with its own dedup key, in one statement per chunk. Answers, per
/// job in order, whether it was queued; a job whose key had a live twin
/// pulls that twin forward, as [`enqueue`] does.
pub(crate) async fn enqueue_many(
    c: &mut Conn<'_>,
    jobs: &[(&str, serde_json::Value, String, DateTime<Utc>)],
) -> Result<Vec<bool>, LedgerError> {
    const COLUMNS: usize = 9;
    let mut queued = std::collections::HashSet::new();
    for chunk in jobs.chunks(rows_per_statement(COLUMNS)) {
        let mut q = sql_repeated(
            "INSERT INTO jobs (kind, payload, dedup_key, state, attempts, max_attempts, \
                     run_at, created_at, updated_at) VALUES ",
            "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ", ",
            chunk.len(),
            " ON CONFLICT DO NOTHING RETURNING dedup_key",
        );
        for (kind, payload, key, now) in chunk {
            if kind.is_empty() {
                return Err(LedgerError::Invalid("job kind must not be empty".into()));
            }
            q = q
                .bind(*kind)
                .bind(Arg::Json(Some(payload.clone())))
                .bind(key.as_str())
                .bind("queued")
                .bind(0i64)
                .bind(i64::from(DEFAULT_MAX_ATTEMPTS))
                .bind(*now)
                .bind(*now)
                .bind(*now);
        }
        for row in c.fetch_all(q).await? {
            queued.insert(row.text("dedup_key")?);
        }
    }
    let mut answers = Vec::with_capacity(jobs.len());
    for (_, _, key, now) in jobs {
        let new = queued.contains(key);
        if !new {
            let pull = sql("UPDATE jobs SET run_at = $2, updated_at = $3 \
                            WHERE dedup_key = $1 AND state = 'queued' AND run_at > $2")
            .bind(key.as_str())
            .bind(*now)
            .bind(*now);
            c.execute(pull).await?;
        }
        answers.push(new);
    }
    Ok(answers)
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

    // Candidates in due order; one whose app another live job holds is
    // passed over (its turn comes when that job ends).
    let mut passed_over: Vec<String> = Vec::new();
    for _ in 0..MAX_CANDIDATES {
        let Some(candidate) = next_candidate(c, &kinds, &passed_over, now).await? else {
            return Ok(None);
        };
        if let Some(app) = app_of(c, &candidate).await?
            && !lock_app(c, &app, candidate.id, worker_id, locked_until, now).await?
        {
            passed_over.push(candidate.id.to_string());
            continue;
        }
        let q = sql(concat!(
            "UPDATE jobs SET state = 'running', locked_by = $1, locked_until = $2, \
                 attempts = attempts + 1, updated_at = $3 \
             WHERE id = $4 RETURNING ",
            job_columns!()
        ))
        .bind(worker_id)
        .bind(locked_until)
        .bind(now)
        .bind(candidate.id);
        return c
            .fetch_optional(q)
            .await?
            .as_ref()
            .map(from_row)
            .transpose();
    }
    Ok(None)
}

/// For the worker that just claimed `lead`, a `resolve_deployment` job
/// (its claim took the app's hold), claims up to `max` more queued, due
/// resolve jobs of the same app, to run together under that hold. A
/// fleet's first reports queue ten per app (Argo CD's history); claimed
/// one at a time, each paid a claim, and a second worker passed over the
/// rest of the app's jobs one by one. Candidates come from the app's
/// unresolved deployments (an index probe) and are matched by dedup key
/// (the unique index of queued keys), so the queue's length costs
/// nothing. Other kinds have no siblings.
pub(crate) async fn claim_siblings(
    c: &mut Conn<'_>,
    lead: &Job,
    worker_id: &str,
    max: usize,
    now: DateTime<Utc>,
) -> Result<Vec<Job>, LedgerError> {
    if lead.kind != crate::job_kind::RESOLVE_DEPLOYMENT || max == 0 {
        return Ok(Vec::new());
    }
    let Some(app) = app_of(c, lead).await? else {
        return Ok(Vec::new());
    };
    let Some(locked_until) = lead.locked_until else {
        return Ok(Vec::new());
    };
    // The statement differs only in PostgreSQL's row locks: a concurrent
    // claim skips the rows this one takes.
    macro_rules! claim_siblings {
        ($lock:literal) => {
            concat!(
                "UPDATE jobs SET state = 'running', locked_by = $1, locked_until = $2, \
                     attempts = attempts + 1, updated_at = $3 \
                 WHERE id IN (SELECT j.id FROM jobs j \
                              WHERE j.state = 'queued' AND j.kind = 'resolve_deployment' \
                                AND j.dedup_key IN (SELECT 'resolve_deployment:' || d.id \
                                                    FROM deployments d \
                                                    WHERE d.app = $4 AND d.config_hash IS NULL) \
                                AND j.run_at <= $3 AND j.attempts < j.max_attempts \
                                AND j.id <> $6 \
                              ORDER BY j.run_at, j.id LIMIT $5",
                $lock,
                ") RETURNING ",
                job_columns!()
            )
        };
    }
    let q = match c.dialect() {
        Dialect::Postgres => sql(claim_siblings!(" FOR UPDATE SKIP LOCKED")),
        Dialect::Sqlite => sql(claim_siblings!("")),
    }
    .bind(worker_id)
    .bind(locked_until)
    .bind(now)
    .bind(app)
    .bind(i64::try_from(max).unwrap_or(i64::MAX))
    .bind(lead.id);
    let mut jobs = c
        .fetch_all(q)
        .await?
        .iter()
        .map(from_row)
        .collect::<Result<Vec<_>, _>>()?;
    jobs.sort_by_key(|j| (j.run_at, j.id));
    Ok(jobs)
}

/// How many due jobs of busy apps one claim passes over before it gives up
/// until the next poll.
const MAX_CANDIDATES: usize = 32;

/// The oldest due job not passed over yet. The redundant `state IN
/// ('queued', 'running')` is the `jobs_due` index's own predicate, spelled
/// out so the planners use it: without it SQLite scanned and sorted the
/// whole table on every claim, ~16 ms with 26,000 jobs queued by a fleet's
/// first reports (docs/benchmarks.md). PostgreSQL locks the row and
/// skips rows other claims hold, so concurrent workers never take (or wait
/// for) the same job; SQLite's claim runs in an immediate transaction, one
/// writer at a time.
async fn next_candidate(
    c: &mut Conn<'_>,
    kinds: &Arg,
    passed_over: &[String],
    now: DateTime<Utc>,
) -> Result<Option<Job>, LedgerError> {
    let q = match c.dialect() {
        Dialect::Postgres => sql(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs \
             WHERE state IN ('queued', 'running') AND kind = ANY($1) AND run_at <= $2 \
               AND (state = 'queued' OR (state = 'running' AND locked_until < $2)) \
               AND attempts < max_attempts AND NOT (id::text = ANY($3)) \
             ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
        )),
        Dialect::Sqlite => sql(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs \
             WHERE state IN ('queued', 'running') \
               AND kind IN (SELECT value FROM json_each($1)) AND run_at <= $2 \
               AND (state = 'queued' OR (state = 'running' AND locked_until < $2)) \
               AND attempts < max_attempts \
               AND CAST(id AS TEXT) NOT IN (SELECT value FROM json_each($3)) \
             ORDER BY run_at, id LIMIT 1"
        )),
    }
    .bind(kinds.clone())
    .bind(now)
    .bind(Arg::TextList(passed_over.to_vec()));
    c.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// The app (`name@cluster`) a job works on, read from the row its payload
/// names; `None` for jobs that concern no app (notifications, forge events
/// on PRs rewind did not open).
async fn app_of(c: &mut Conn<'_>, job: &Job) -> Result<Option<String>, LedgerError> {
    let field = |name: &str| job.payload.get(name).cloned();
    let q = match job.kind.as_str() {
        crate::job_kind::RESOLVE_DEPLOYMENT => {
            match field("deployment_id").and_then(|v| v.as_i64()) {
                Some(id) => sql("SELECT app FROM deployments WHERE id = $1").bind(id),
                None => return Ok(None),
            }
        }
        crate::job_kind::ALERT_FIRED => match field("alert_id").and_then(|v| v.as_i64()) {
            Some(id) => sql("SELECT app FROM alerts WHERE id = $1").bind(id),
            None => return Ok(None),
        },
        crate::job_kind::ADVANCE_ROLLBACK => {
            match field("rollback_id").and_then(|v| v.as_str().map(str::to_owned)) {
                Some(id) => sql("SELECT app FROM rollbacks WHERE id = $1").bind(id),
                None => return Ok(None),
            }
        }
        crate::job_kind::FORGE_EVENT => match field("pr_number").and_then(|v| v.as_i64()) {
            Some(number) => sql(
                "SELECT app FROM rollbacks WHERE pr_number = $1 ORDER BY created_at DESC LIMIT 1",
            )
            .bind(number),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    c.fetch_optional(q)
        .await?
        .map(|row| row.text("app"))
        .transpose()
}

/// Takes `app` for `job_id` unless a live job holds it. On PostgreSQL a
/// concurrent claim of the same app waits on the row and then sees the new
/// holder, so at most one wins.
async fn lock_app(
    c: &mut Conn<'_>,
    app: &str,
    job_id: i64,
    worker_id: &str,
    locked_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, LedgerError> {
    let q = sql(
        "INSERT INTO app_locks (app, job_id, locked_by, locked_until) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (app) DO UPDATE SET job_id = excluded.job_id, \
             locked_by = excluded.locked_by, locked_until = excluded.locked_until \
         WHERE app_locks.locked_until < $5 OR app_locks.job_id = excluded.job_id \
         RETURNING app",
    )
    .bind(app)
    .bind(job_id)
    .bind(worker_id)
    .bind(locked_until)
    .bind(now);
    Ok(c.fetch_optional(q).await?.is_some())
}

/// Extends the lease of a job this worker runs (and of its app's hold).
/// `NotFound` when the job is no longer this worker's.
pub(crate) async fn renew(
    c: &mut Conn<'_>,
    job_id: i64,
    worker_id: &str,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let locked_until = chrono::Duration::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .ok_or_else(|| LedgerError::Invalid("job lease is too long".into()))?;
    let q = sql("UPDATE jobs SET locked_until = $3, updated_at = $4 \
                 WHERE id = $1 AND locked_by = $2 AND state = 'running'")
    .bind(job_id)
    .bind(worker_id)
    .bind(locked_until)
    .bind(now);
    if c.execute(q).await? == 0 {
        return Err(LedgerError::not_found("job held by this worker", job_id));
    }
    let q = sql("UPDATE app_locks SET locked_until = $3 WHERE job_id = $1 AND locked_by = $2")
        .bind(job_id)
        .bind(worker_id)
        .bind(locked_until);
    c.execute(q).await?;
    Ok(())
}

/// Ends the app hold of a job that stopped running.
async fn unlock_app(c: &mut Conn<'_>, job_id: i64) -> Result<(), LedgerError> {
    c.execute(sql("DELETE FROM app_locks WHERE job_id = $1").bind(job_id))
        .await?;
    Ok(())
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
    unlock_app(c, job_id).await
}

/// [`complete`] for several jobs in one statement; answers how many this
/// worker still held (the others' leases ran out and another worker took
/// them: it does the work again, which every job allows).
pub(crate) async fn complete_many(
    c: &mut Conn<'_>,
    job_ids: &[i64],
    worker_id: &str,
    now: DateTime<Utc>,
) -> Result<u64, LedgerError> {
    if job_ids.is_empty() {
        return Ok(0);
    }
    let ids = Arg::TextList(job_ids.iter().map(i64::to_string).collect());
    let (done, unlock) = match c.dialect() {
        Dialect::Postgres => (
            sql(
                "UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, \
                     updated_at = $3 \
                 WHERE id = ANY(CAST($1 AS BIGINT[])) AND locked_by = $2 AND state = 'running'",
            ),
            sql(
                "DELETE FROM app_locks WHERE job_id = ANY(CAST($1 AS BIGINT[])) AND locked_by = $2",
            ),
        ),
        Dialect::Sqlite => (
            sql(
                "UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, \
                     updated_at = $3 \
                 WHERE id IN (SELECT CAST(value AS INTEGER) FROM json_each($1)) \
                   AND locked_by = $2 AND state = 'running'",
            ),
            sql("DELETE FROM app_locks \
                 WHERE job_id IN (SELECT CAST(value AS INTEGER) FROM json_each($1)) \
                   AND locked_by = $2"),
        ),
    };
    let n = c
        .execute(done.bind(ids.clone()).bind(worker_id).bind(now))
        .await?;
    c.execute(unlock.bind(ids).bind(worker_id)).await?;
    Ok(n)
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
    let state = match c.fetch_optional(q).await? {
        Some(row) => row.parsed("state")?,
        None => return Err(LedgerError::not_found("job held by this worker", job_id)),
    };
    unlock_app(c, job_id).await?;
    Ok(state)
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
    let released = c.execute(q).await?;
    c.execute(sql("DELETE FROM app_locks WHERE locked_by = $1").bind(worker_id))
        .await?;
    Ok(released)
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
