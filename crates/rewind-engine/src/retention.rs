//! `[retention]`: a periodic durable job deletes the `rewind/*` branches of
//! rollbacks that finished more than `branches` ago, and delivery records
//! and finished jobs older than `deliveries`.
//!
//! The clock asks for the job at most once per [`RETENTION_EVERY`] across
//! replicas (the ledger checks when it was last created), a worker claims
//! it with a lease like any job, and every step is safe to run twice: a
//! branch deleted meanwhile is "gone already", a pruned row is not there.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rewind_domain::RollbackId;
use rewind_git::{rebuild_branch, rollback_branch};
use serde::{Deserialize, Serialize};

use crate::{Engine, EngineError};

/// Kind of the retention job.
pub const RETENTION: &str = "retention";

/// How often retention runs.
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// The job's payload: the clock's time when it was asked for, so the ages
/// are measured from the caller's `now` (tests simulate it).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RetentionJob {
    at: DateTime<Utc>,
}

/// What one retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Branches deleted on the remote and in the cache.
    pub branches_deleted: Vec<String>,
    pub deliveries_pruned: u64,
    pub jobs_pruned: u64,
}

impl Engine {
    /// Queues the retention job unless one was queued within the last
    /// [`RETENTION_EVERY`] (by any replica).
    pub(crate) async fn schedule_retention(&self, now: DateTime<Utc>) -> Result<(), EngineError> {
        let payload = serde_json::to_value(RetentionJob { at: now })
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        self.ledger
            .enqueue_periodic(RETENTION, payload, RETENTION, RETENTION_EVERY, now)
            .await?;
        Ok(())
    }

    /// Runs a retention job.
    pub(crate) async fn retention_job(
        &self,
        payload: &serde_json::Value,
    ) -> Result<(), EngineError> {
        let job: RetentionJob = serde_json::from_value(payload.clone())
            .map_err(|e| EngineError::Invalid(format!("retention job: {e}")))?;
        self.apply_retention(job.at).await.map(|_| ())
    }

    /// Applies `[retention]` as of `now`.
    pub async fn apply_retention(
        &self,
        now: DateTime<Utc>,
    ) -> Result<RetentionReport, EngineError> {
        let settings = &self.settings.retention;
        let mut report = RetentionReport::default();
        if let Some(before) = cutoff(now, settings.deliveries.get()) {
            let pruned = self.ledger.prune_deliveries(before).await?;
            report.deliveries_pruned = pruned.deliveries;
            report.jobs_pruned = pruned.jobs;
        }
        if let Some(before) = cutoff(now, settings.branches.get()) {
            report.branches_deleted = self.prune_branches(before).await?;
        }
        tracing::info!(
            branches.deleted = report.branches_deleted.len(),
            deliveries.pruned = report.deliveries_pruned,
            jobs.pruned = report.jobs_pruned,
            "retention applied"
        );
        Ok(report)
    }

    /// Deletes each `rewind/*` branch whose rollback finished before
    /// `before`. A branch is deleted only when its name is exactly one this
    /// rollback was proposed or rebuilt on; an unknown id, an open
    /// rollback or any other name is left alone.
    async fn prune_branches(&self, before: DateTime<Utc>) -> Result<Vec<String>, EngineError> {
        let mut deleted = Vec::new();
        // The cache's view as of its last fetch (which prunes): branches
        // pushed by other replicas since are seen next time.
        for branch in self.git.rollback_branches().await? {
            let Some((id, attempt)) = rollback_of_branch(&branch) else {
                continue;
            };
            let Some(rollback) = self.ledger.rollback(id).await? else {
                continue;
            };
            let own = match attempt {
                None => rollback_branch(&rollback.app, &id),
                Some(n) => rebuild_branch(&rollback.app, &id, n),
            };
            if own != branch || !rollback.state.is_terminal() || rollback.updated_at >= before {
                continue;
            }
            self.git.delete_rollback_branch(&branch).await?;
            self.audit(
                "system",
                "retention.branch_deleted",
                format!("rollback/{id}"),
                serde_json::json!({
                    "app": rollback.app_ref(),
                    "branch": branch,
                    "state": rollback.state.as_str(),
                    "finished_at": rollback.updated_at,
                }),
            )
            .await?;
            deleted.push(branch);
        }
        Ok(deleted)
    }
}

/// `now - keep`; `None` when `keep` is zero (keep forever) or out of range.
fn cutoff(now: DateTime<Utc>, keep: Duration) -> Option<DateTime<Utc>> {
    if keep.is_zero() {
        return None;
    }
    chrono::Duration::from_std(keep)
        .ok()
        .and_then(|keep| now.checked_sub_signed(keep))
}

/// The rollback id (and rebuild attempt) a `rewind/<slug>/<id>[-rebuild-N]`
/// branch names.
fn rollback_of_branch(branch: &str) -> Option<(RollbackId, Option<u32>)> {
    let last = branch.strip_prefix("rewind/")?.rsplit('/').next()?;
    match last.split_once("-rebuild-") {
        Some((id, n)) => Some((id.parse().ok()?, Some(n.parse().ok()?))),
        None => Some((last.parse().ok()?, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_give_their_rollback() {
        let id = "01890a5d-ac96-774b-bcce-b302099a8057";
        let parsed: RollbackId = id.parse().unwrap();
        assert_eq!(
            rollback_of_branch(&format!("rewind/shop-checkout/{id}")),
            Some((parsed, None))
        );
        assert_eq!(
            rollback_of_branch(&format!("rewind/shop-checkout/{id}-rebuild-2")),
            Some((parsed, Some(2)))
        );
        for other in [
            "main".to_owned(),
            format!("feature/{id}"),
            "rewind/shop-checkout/not-an-id".to_owned(),
            format!("rewind/shop-checkout/{id}-rebuild-x"),
        ] {
            assert_eq!(rollback_of_branch(&other), None, "{other}");
        }
    }

    #[test]
    fn zero_keeps_forever() {
        let now = Utc::now();
        assert_eq!(cutoff(now, Duration::ZERO), None);
        assert_eq!(
            cutoff(now, Duration::from_secs(60)),
            Some(now - chrono::Duration::seconds(60))
        );
    }
}
