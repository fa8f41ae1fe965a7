//! Rollbacks: indexed columns for what is searched (app, state, times, PR,
//! branch), JSON for the rest, and the timeline in the append-only
//! `rollback_events` table.

use chrono::{DateTime, Utc};

use rewind_domain::{
    AppRef, Approval, CommitId, PullRequestRef, Rollback, RollbackId, RollbackState, Strategy,
    TimelineEntry, TimelineEvent,
};

use crate::LedgerError;
use crate::db::{Arg, Conn, Row, sql};

macro_rules! rollback_columns {
    () => {
        "id, app, state, from_doc, to_doc, reason, trigger, strategy, branch, commit_sha, merge_commit_sha, pr, \
         diff, risks, approvals, created_at, updated_at, wave"
    };
}

fn from_row(row: &Row, timeline: Vec<TimelineEntry>) -> Result<Rollback, LedgerError> {
    let strategy = row.text("strategy")?;
    // `app` holds the app reference `name@cluster`.
    let app: AppRef = row.parsed("app")?;
    Ok(Rollback {
        id: row.parsed("id")?,
        app: app.name,
        cluster: app.cluster,
        from: row.json("from_doc")?,
        to: row.json("to_doc")?,
        state: row.parsed("state")?,
        reason: row.text("reason")?,
        trigger: row.json("trigger")?,
        strategy: serde_json::from_value::<Strategy>(serde_json::Value::String(strategy)).map_err(
            |e| {
                LedgerError::corrupt(sqlx::Error::ColumnDecode {
                    index: "strategy".into(),
                    source: e.into(),
                })
            },
        )?,
        branch: row.opt_text("branch")?,
        commit: row.opt_parsed::<CommitId>("commit_sha")?,
        merge_commit: row.opt_parsed::<CommitId>("merge_commit_sha")?,
        pr: row.opt_json("pr")?,
        diff: row.json("diff")?,
        risks: row.json("risks")?,
        approvals: row.json("approvals")?,
        timeline,
        verification: Vec::new(),
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        wave: row.opt_json("wave")?,
    })
}

async fn timeline(c: &mut Conn<'_>, id: &str) -> Result<Vec<TimelineEntry>, LedgerError> {
    let q = sql("SELECT at, event, detail FROM rollback_events WHERE rollback_id = $1 ORDER BY id")
        .bind(id);
    c.fetch_all(q)
        .await?
        .iter()
        .map(|row| {
            Ok(TimelineEntry {
                at: row.time("at")?,
                event: TimelineEvent::parse(&row.text("event")?),
                detail: row.text("detail")?,
            })
        })
        .collect()
}

async fn load_rows(c: &mut Conn<'_>, rows: Vec<Row>) -> Result<Vec<Rollback>, LedgerError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.text("id")?;
        let events = timeline(c, &id).await?;
        let mut rollback = from_row(&row, events)?;
        rollback.verification =
            super::checks::for_rollback(c, &id, rewind_domain::CheckPhase::Evaluation).await?;
        out.push(rollback);
    }
    Ok(out)
}

async fn load_one(c: &mut Conn<'_>, row: Option<Row>) -> Result<Option<Rollback>, LedgerError> {
    Ok(load_rows(c, row.into_iter().collect()).await?.pop())
}

pub(crate) async fn append(
    c: &mut Conn<'_>,
    id: RollbackId,
    entry: &TimelineEntry,
) -> Result<(), LedgerError> {
    let q =
        sql("INSERT INTO rollback_events (rollback_id, at, event, detail) VALUES ($1, $2, $3, $4)")
            .bind(id.to_string())
            .bind(entry.at)
            .bind(entry.event.as_str())
            .bind(entry.detail.as_str());
    c.execute(q).await?;
    Ok(())
}

/// Inserts the row; a unique violation is reported to the caller as is (it
/// decides whether the open-rollback index or the id caused it).
pub(crate) async fn insert(c: &mut Conn<'_>, r: &Rollback) -> Result<(), LedgerError> {
    let q = sql(
        "INSERT INTO rollbacks (id, app, state, from_deployment_id, to_deployment_id, \
                     from_doc, to_doc, reason, trigger, strategy, branch, commit_sha, pr_number, \
                     pr, diff, risks, approvals, created_at, updated_at, merge_commit_sha, wave) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                     $17, $18, $19, $20, $21)",
    )
    .bind(r.id.to_string())
    .bind(r.app_ref().to_string())
    .bind(r.state.as_str())
    .bind(r.from.id)
    .bind(r.to.id)
    .bind(Arg::json(&r.from)?)
    .bind(Arg::json(&r.to)?)
    .bind(r.reason.as_str())
    .bind(Arg::json(&r.trigger)?)
    .bind(r.strategy.as_str())
    .bind(r.branch.clone())
    .bind(r.commit.as_ref().map(CommitId::as_str))
    .bind(pr_number(r)?)
    .bind(optional_json(r.pr.as_ref())?)
    .bind(Arg::json(&r.diff)?)
    .bind(Arg::json(&r.risks)?)
    .bind(Arg::json(&r.approvals)?)
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(r.merge_commit.as_ref().map(CommitId::as_str))
    .bind(optional_json(r.wave.as_ref())?);
    c.execute(q).await?;
    for entry in &r.timeline {
        append(c, r.id, entry).await?;
    }
    Ok(())
}

fn pr_number(r: &Rollback) -> Result<Option<i64>, LedgerError> {
    r.pr.as_ref()
        .map(|pr| {
            i64::try_from(pr.number)
                .map_err(|_| LedgerError::Invalid(format!("PR number {} is too large", pr.number)))
        })
        .transpose()
}

fn optional_json<T: serde::Serialize>(value: Option<&T>) -> Result<Arg, LedgerError> {
    match value {
        Some(v) => Arg::json(v),
        None => Ok(Arg::Json(None)),
    }
}

/// Runs a one-row `UPDATE` that bumps `version`; `NotFound` when no row
/// has the id.
async fn update_one(
    c: &mut Conn<'_>,
    q: crate::db::Sql,
    id: RollbackId,
) -> Result<(), LedgerError> {
    if c.execute(q).await? == 0 {
        return Err(LedgerError::not_found("rollback", id));
    }
    Ok(())
}

/// The rollback commit, and its branch when given. Touches no other column.
pub(crate) async fn set_commit(
    c: &mut Conn<'_>,
    id: RollbackId,
    commit: &CommitId,
    branch: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let q = sql(
        "UPDATE rollbacks SET commit_sha = $2, branch = COALESCE($3, branch), \
                     version = version + 1, updated_at = $4 WHERE id = $1",
    )
    .bind(id.to_string())
    .bind(commit.as_str())
    .bind(branch)
    .bind(at);
    update_one(c, q, id).await
}

/// The pull request (number and URL). Touches no other column.
pub(crate) async fn set_pr(
    c: &mut Conn<'_>,
    id: RollbackId,
    pr: &PullRequestRef,
    at: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let number = i64::try_from(pr.number)
        .map_err(|_| LedgerError::Invalid(format!("PR number {} is too large", pr.number)))?;
    let q = sql(
        "UPDATE rollbacks SET pr_number = $2, pr = $3, version = version + 1, updated_at = $4 \
         WHERE id = $1",
    )
    .bind(id.to_string())
    .bind(number)
    .bind(Arg::json(pr)?)
    .bind(at);
    update_one(c, q, id).await
}

/// The rollback's risks (a wave's first rollback learns it rolls back a
/// change every cluster reads).
pub(crate) async fn set_risks(
    c: &mut Conn<'_>,
    id: RollbackId,
    risks: &[rewind_domain::Risk],
    at: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let q = sql(
        "UPDATE rollbacks SET risks = $2, version = version + 1, updated_at = $3 WHERE id = $1",
    )
    .bind(id.to_string())
    .bind(Arg::json(&risks)?)
    .bind(at);
    update_one(c, q, id).await
}

/// The commit of `git.branch` that carries the merged rollback.
pub(crate) async fn set_merge_commit(
    c: &mut Conn<'_>,
    id: RollbackId,
    commit: &CommitId,
    at: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let q = sql(
        "UPDATE rollbacks SET merge_commit_sha = $2, version = version + 1, updated_at = $3 \
         WHERE id = $1",
    )
    .bind(id.to_string())
    .bind(commit.as_str())
    .bind(at);
    update_one(c, q, id).await
}

/// The approvals, state and version of a rollback, for compare-and-set.
pub(crate) async fn approvals_of(
    c: &mut Conn<'_>,
    id: RollbackId,
) -> Result<Option<(Vec<Approval>, RollbackState, i64)>, LedgerError> {
    let q =
        sql("SELECT approvals, state, version FROM rollbacks WHERE id = $1").bind(id.to_string());
    c.fetch_optional(q)
        .await?
        .map(|row| {
            Ok((
                row.json("approvals")?,
                row.parsed("state")?,
                row.i64("version")?,
            ))
        })
        .transpose()
}

/// Writes `approvals` if the row is still at `version`. Returns whether it
/// did: `false` means someone else wrote first; read again and retry.
pub(crate) async fn set_approvals_if(
    c: &mut Conn<'_>,
    id: RollbackId,
    approvals: &[Approval],
    version: i64,
    at: DateTime<Utc>,
) -> Result<bool, LedgerError> {
    let q = sql(
        "UPDATE rollbacks SET approvals = $2, version = version + 1, updated_at = $4 \
         WHERE id = $1 AND version = $3",
    )
    .bind(id.to_string())
    .bind(Arg::json(&approvals)?)
    .bind(version)
    .bind(at);
    Ok(c.execute(q).await? > 0)
}

pub(crate) async fn by_id(
    c: &mut Conn<'_>,
    id: RollbackId,
) -> Result<Option<Rollback>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        rollback_columns!(),
        " FROM rollbacks WHERE id = $1"
    ))
    .bind(id.to_string());
    let row = c.fetch_optional(q).await?;
    load_one(c, row).await
}

pub(crate) async fn state_of(
    c: &mut Conn<'_>,
    id: RollbackId,
) -> Result<Option<RollbackState>, LedgerError> {
    let q = sql("SELECT state FROM rollbacks WHERE id = $1").bind(id.to_string());
    c.fetch_optional(q)
        .await?
        .map(|row| row.parsed("state"))
        .transpose()
}

pub(crate) async fn open_for(
    c: &mut Conn<'_>,
    app: &AppRef,
) -> Result<Option<Rollback>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        rollback_columns!(),
        " FROM rollbacks WHERE app = $1 \
          AND state IN ('proposed', 'pr_open', 'approved', 'merged', 'synced', 'held')"
    ))
    .bind(app.to_string());
    let row = c.fetch_optional(q).await?;
    load_one(c, row).await
}

pub(crate) async fn list(
    c: &mut Conn<'_>,
    app: Option<&AppRef>,
    state: Option<RollbackState>,
    before: Option<RollbackId>,
    limit: u32,
) -> Result<Vec<Rollback>, LedgerError> {
    // `$n IS NULL OR ...` keeps one statement for all filter combinations;
    // ids are UUIDv7, so they break ties in creation order. A page starts
    // after `before` in (created_at, id) order (keyset pagination: a
    // rollback created meanwhile cannot shift the next page).
    let q = sql(concat!(
        "SELECT ",
        rollback_columns!(),
        " FROM rollbacks WHERE ($1 IS NULL OR app = $1) AND ($2 IS NULL OR state = $2) \
          AND ($4 IS NULL OR created_at < (SELECT b.created_at FROM rollbacks b WHERE b.id = $4) \
               OR (created_at = (SELECT b.created_at FROM rollbacks b WHERE b.id = $4) AND id < $4)) \
          ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(app.map(AppRef::to_string))
    .bind(state.map(RollbackState::as_str))
    .bind(i64::from(limit))
    .bind(before.map(|id| id.to_string()));
    let rows = c.fetch_all(q).await?;
    load_rows(c, rows).await
}

/// Moves `from → to` if the row is still in `from`. Returns whether it did.
pub(crate) async fn set_state(
    c: &mut Conn<'_>,
    id: RollbackId,
    from: RollbackState,
    to: RollbackState,
    at: DateTime<Utc>,
) -> Result<bool, LedgerError> {
    let q = sql(
        "UPDATE rollbacks SET state = $3, updated_at = $4, version = version + 1 \
         WHERE id = $1 AND state = $2",
    )
    .bind(id.to_string())
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(at);
    Ok(c.execute(q).await? > 0)
}

pub(crate) async fn count_since(
    c: &mut Conn<'_>,
    app: &AppRef,
    since: DateTime<Utc>,
) -> Result<u64, LedgerError> {
    let q = sql("SELECT COUNT(*) AS n FROM rollbacks WHERE app = $1 AND created_at >= $2")
        .bind(app.to_string())
        .bind(since);
    let n = c.fetch_one(q).await?.i64("n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) async fn by_pr(c: &mut Conn<'_>, number: u64) -> Result<Option<Rollback>, LedgerError> {
    let Ok(number) = i64::try_from(number) else {
        return Ok(None);
    };
    let q = sql(concat!(
        "SELECT ",
        rollback_columns!(),
        " FROM rollbacks WHERE pr_number = $1 ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(number);
    let row = c.fetch_optional(q).await?;
    load_one(c, row).await
}

pub(crate) async fn by_branch(
    c: &mut Conn<'_>,
    branch: &str,
) -> Result<Option<Rollback>, LedgerError> {
    let q = sql(concat!(
        "SELECT ",
        rollback_columns!(),
        " FROM rollbacks WHERE branch = $1 ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(branch);
    let row = c.fetch_optional(q).await?;
    load_one(c, row).await
}

/// Rollbacks per state.
pub(crate) async fn counts(c: &mut Conn<'_>) -> Result<Vec<(RollbackState, u64)>, LedgerError> {
    let q = sql("SELECT state, COUNT(*) AS n FROM rollbacks GROUP BY state");
    c.fetch_all(q)
        .await?
        .iter()
        .map(|row| {
            let state: RollbackState = row.parsed("state")?;
            Ok((state, u64::try_from(row.i64("n")?).unwrap_or(0)))
        })
        .collect()
}
