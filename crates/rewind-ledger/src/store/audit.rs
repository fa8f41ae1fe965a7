//! The audit log: append and read. There is deliberately no update or
//! delete here, and the database's triggers refuse them from anywhere else.

use crate::db::{Arg, Conn, Row, sql};
use crate::{AuditEntry, AuditRecord, LedgerError};

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
    })
}

pub(crate) async fn append(c: &mut Conn<'_>, e: &AuditEntry) -> Result<i64, LedgerError> {
    let q = sql(
        "INSERT INTO audit_log (at, actor, action, subject, detail, trace_id) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(e.at)
    .bind(e.actor.as_str())
    .bind(e.action.as_str())
    .bind(e.subject.as_str())
    .bind(Arg::json(&e.detail)?)
    .bind(e.trace_id.clone());
    c.fetch_one(q).await?.i64("id")
}

pub(crate) async fn log(
    c: &mut Conn<'_>,
    subject: Option<&str>,
    limit: u32,
) -> Result<Vec<AuditRecord>, LedgerError> {
    let q = sql(
        "SELECT id, at, actor, action, subject, detail, trace_id FROM audit_log \
                 WHERE ($1 IS NULL OR subject = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(subject)
    .bind(i64::from(limit));
    c.fetch_all(q).await?.iter().map(from_row).collect()
}
