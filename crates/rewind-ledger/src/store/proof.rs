//! What verification needs besides check results: the images the cluster
//! reports running for a deployment, and the one verification comment kept
//! up to date on a rollback's pull request. Both written field by field.

use rewind_domain::RollbackId;

use crate::LedgerError;
use crate::db::{Arg, Conn, sql};

pub(crate) async fn set_running_images(
    c: &mut Conn<'_>,
    deployment_id: i64,
    images: &[String],
) -> Result<(), LedgerError> {
    let q = sql("UPDATE deployments SET running_images = $2 WHERE id = $1")
        .bind(deployment_id)
        .bind(Arg::json(images)?);
    c.execute(q).await?;
    Ok(())
}

/// `None`: the controller never reported images for this deployment.
pub(crate) async fn running_images(
    c: &mut Conn<'_>,
    deployment_id: i64,
) -> Result<Option<Vec<String>>, LedgerError> {
    let q = sql("SELECT running_images FROM deployments WHERE id = $1").bind(deployment_id);
    match c.fetch_optional(q).await? {
        Some(row) => row.opt_json("running_images"),
        None => Err(LedgerError::not_found("deployment", deployment_id)),
    }
}

pub(crate) async fn verify_comment(
    c: &mut Conn<'_>,
    id: RollbackId,
) -> Result<Option<u64>, LedgerError> {
    let q = sql("SELECT verify_comment_id FROM rollbacks WHERE id = $1").bind(id.to_string());
    match c.fetch_optional(q).await? {
        Some(row) => Ok(row
            .opt_i64("verify_comment_id")?
            .and_then(|v| u64::try_from(v).ok())),
        None => Err(LedgerError::not_found("rollback", id)),
    }
}

pub(crate) async fn set_verify_comment(
    c: &mut Conn<'_>,
    id: RollbackId,
    comment_id: u64,
) -> Result<(), LedgerError> {
    let comment_id = i64::try_from(comment_id)
        .map_err(|_| LedgerError::Invalid(format!("comment id {comment_id} out of range")))?;
    let q = sql("UPDATE rollbacks SET verify_comment_id = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(comment_id);
    if c.execute(q).await? == 0 {
        return Err(LedgerError::not_found("rollback", id));
    }
    Ok(())
}
