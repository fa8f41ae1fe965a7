//! Pull-request, review, comment and push events, kept as JSON documents
//! with the PR number indexed.

use chrono::{DateTime, Utc};

use rewind_domain::Observation;

use crate::db::{Arg, Conn, sql};
use crate::{ForgeEventRecord, LedgerError};

/// The kind, repository, PR number and time of a forge observation; `None`
/// for observations that are not forge events.
pub(crate) fn describe(
    o: &Observation,
) -> Option<(&'static str, &str, Option<u64>, DateTime<Utc>)> {
    match o {
        Observation::PullRequest(e) => Some(("pull_request", &e.repository, Some(e.number), e.at)),
        Observation::Review(e) => Some(("review", &e.repository, Some(e.pr_number), e.at)),
        Observation::Comment(e) => Some(("comment", &e.repository, Some(e.pr_number), e.at)),
        Observation::Push(e) => Some(("push", &e.repository, None, e.at)),
        _ => None,
    }
}

pub(crate) async fn insert(
    c: &mut Conn<'_>,
    o: &Observation,
    now: DateTime<Utc>,
) -> Result<Option<(i64, &'static str, Option<u64>)>, LedgerError> {
    let Some((kind, repository, pr_number, at)) = describe(o) else {
        return Ok(None);
    };
    let pr = pr_number
        .map(|n| {
            i64::try_from(n)
                .map_err(|_| LedgerError::Invalid(format!("PR number {n} is too large")))
        })
        .transpose()?;
    let q = sql(
        "INSERT INTO forge_events (kind, repository, pr_number, doc, at, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(kind)
    .bind(repository)
    .bind(pr)
    .bind(Arg::json(o)?)
    .bind(at)
    .bind(now);
    let id = c.fetch_one(q).await?.i64("id")?;
    Ok(Some((id, kind, pr_number)))
}

fn record(row: &crate::db::Row) -> Result<ForgeEventRecord, LedgerError> {
    Ok(ForgeEventRecord {
        id: row.i64("id")?,
        kind: row.text("kind")?,
        pr_number: row
            .opt_i64("pr_number")?
            .and_then(|n| u64::try_from(n).ok()),
        observation: row.json("doc")?,
        at: row.time("at")?,
        received_at: row.time("received_at")?,
    })
}

pub(crate) async fn by_id(
    c: &mut Conn<'_>,
    id: i64,
) -> Result<Option<ForgeEventRecord>, LedgerError> {
    let q = sql("SELECT id, kind, pr_number, doc, at, received_at FROM forge_events WHERE id = $1")
        .bind(id);
    c.fetch_optional(q).await?.as_ref().map(record).transpose()
}

pub(crate) async fn for_pr(
    c: &mut Conn<'_>,
    number: u64,
) -> Result<Vec<ForgeEventRecord>, LedgerError> {
    let Ok(number) = i64::try_from(number) else {
        return Ok(Vec::new());
    };
    let q = sql(
        "SELECT id, kind, pr_number, doc, at, received_at FROM forge_events \
                 WHERE pr_number = $1 ORDER BY id",
    )
    .bind(number);
    c.fetch_all(q).await?.iter().map(record).collect()
}
