//! The audit log: append and read. There is deliberately no update or
//! delete here, and the database's triggers refuse them from anywhere else.

use crate::db::{Arg, Conn, Row, sql};
use crate::{AUDIT_VIA, AuditEntry, AuditFilter, AuditRecord, LedgerError};

fn from_row(row: &Row) -> Result<AuditRecord, LedgerError> {
    Ok(AuditRecord {
        id: row.i64("id")?,
        entry: AuditEntry {
            at: row.time("at")?,
            actor: row.text("actor")?,
            action: row.text("action")?,
            subject: row.text("subject")?,
            detail: row.json("detail")?,
            trace_id: row.opt_text("trace_id")?,
        },
        app: row.opt_text("app")?,
        via: row.opt_text("via")?,
    })
}

/// The app an entry is about: `detail.app` (a name, or an object with a
/// `ref` or `name`), else an `app/<name>` subject.
fn app_of(e: &AuditEntry) -> Option<String> {
    let from_detail = match e.detail.get("app") {
        Some(serde_json::Value::String(name)) => Some(name.clone()),
        Some(serde_json::Value::Object(app)) => app
            .get("ref")
            .or_else(|| app.get("name"))
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        _ => None,
    };
    from_detail.or_else(|| e.subject.strip_prefix("app/").map(str::to_owned))
}

/// How the entry arrived: `detail.via`, else the request's [`AUDIT_VIA`].
fn via_of(e: &AuditEntry) -> Option<String> {
    e.detail
        .get("via")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .or_else(|| AUDIT_VIA.try_with(|via| (*via).to_owned()).ok())
}

pub(crate) async fn append(c: &mut Conn<'_>, e: &AuditEntry) -> Result<i64, LedgerError> {
    let q = sql(
        "INSERT INTO audit_log (at, actor, action, subject, detail, trace_id, app, via) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(e.at)
    .bind(e.actor.as_str())
    .bind(e.action.as_str())
    .bind(e.subject.as_str())
    .bind(Arg::json(&e.detail)?)
    .bind(e.trace_id.clone())
    .bind(app_of(e))
    .bind(via_of(e));
    c.fetch_one(q).await?.i64("id")
}

pub(crate) async fn log(
    c: &mut Conn<'_>,
    subject: Option<&str>,
    limit: u32,
) -> Result<Vec<AuditRecord>, LedgerError> {
    let q = sql(
        "SELECT id, at, actor, action, subject, detail, trace_id, app, via FROM audit_log \
                 WHERE ($1 IS NULL OR subject = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(subject)
    .bind(i64::from(limit));
    c.fetch_all(q).await?.iter().map(from_row).collect()
}

/// Newest first, filtered by app, actor and time.
pub(crate) async fn search(
    c: &mut Conn<'_>,
    filter: &AuditFilter,
) -> Result<Vec<AuditRecord>, LedgerError> {
    // A plain app name also matches its entries on every cluster
    // (`name@cluster`); the prefix test is spelled with `substr` so that no
    // character of the name acts as a wildcard.
    let q = sql(
        "SELECT id, at, actor, action, subject, detail, trace_id, app, via FROM audit_log \
         WHERE ($1 IS NULL OR app = $1 OR substr(app, 1, length($1) + 1) = $1 || '@') \
           AND ($2 IS NULL OR actor = $2) \
           AND ($3 IS NULL OR at >= $3) \
           AND ($5 IS NULL OR id < $5) \
         ORDER BY id DESC LIMIT $4",
    )
    .bind(filter.app.clone())
    .bind(filter.actor.clone())
    .bind(filter.since)
    .bind(i64::from(filter.limit.max(1)))
    .bind(filter.before);
    c.fetch_all(q).await?.iter().map(from_row).collect()
}
