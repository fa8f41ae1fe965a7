//! Verification check results: append-only rows in `rollback_checks`, one
//! per evaluation, baseline or known-good value, written field by field
//! (never by rewriting the rollback).

use rewind_domain::{CheckPhase, CheckResult, RollbackId};

use crate::LedgerError;
use crate::db::{Arg, Conn, sql};

pub(crate) async fn record(
    c: &mut Conn<'_>,
    id: RollbackId,
    phase: CheckPhase,
    result: &CheckResult,
) -> Result<(), LedgerError> {
    let q = sql(
        "INSERT INTO rollback_checks (rollback_id, phase, check_name, at, result) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.to_string())
    .bind(phase.as_str())
    .bind(result.check.as_str())
    .bind(result.at)
    .bind(Arg::json(result)?);
    c.execute(q).await?;
    Ok(())
}

/// Oldest first.
pub(crate) async fn for_rollback(
    c: &mut Conn<'_>,
    id: &str,
    phase: CheckPhase,
) -> Result<Vec<CheckResult>, LedgerError> {
    let q =
        sql("SELECT result FROM rollback_checks WHERE rollback_id = $1 AND phase = $2 ORDER BY id")
            .bind(id)
            .bind(phase.as_str());
    c.fetch_all(q)
        .await?
        .iter()
        .map(|row| row.json("result"))
        .collect()
}
