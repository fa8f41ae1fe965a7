//! People decide: approvals, merge and cancel, from the API, the CLI, the
//! web UI, and GitHub reviews and `/rewind` comments (from users with write
//! access only).

use chrono::Utc;
use rewind_domain::{Approval, Rollback, RollbackId, RollbackState};

use crate::timeline::entry;
use crate::{Engine, EngineError};

impl Engine {
    async fn reviewable(&self, id: RollbackId, action: &str) -> Result<Rollback, EngineError> {
        let rollback = self
            .ledger
            .rollback(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no rollback {id}")))?;
        if !rollback.state.is_reviewable() {
            return Err(EngineError::Conflict(format!(
                "rollback {id} is {}; it can no longer be {action}",
                rollback.state
            )));
        }
        Ok(rollback)
    }

    /// Records `who`'s approval (once per person). When approvals reach
    /// `policy.required_approvals`, the rollback is approved and merged by
    /// the next job.
    #[tracing::instrument(skip_all, fields(rollback.id = %id, actor = %who))]
    pub async fn approve(
        &self,
        id: RollbackId,
        who: &str,
        via: &str,
    ) -> Result<Rollback, EngineError> {
        let mut rollback = self.reviewable(id, "approved").await?;
        if !rollback.approvals.iter().any(|a| a.by == who) {
            rollback.approvals.push(Approval {
                by: who.to_string(),
                at: Utc::now(),
                via: via.to_string(),
            });
            self.ledger.update_rollback(&rollback).await?;
            self.note(
                &rollback,
                who,
                "approval",
                format!(
                    "{who} approved via {via} ({} of {} required)",
                    rollback.approvals.len(),
                    self.settings.policy.required_approvals
                ),
            )
            .await?;
        }
        let required = self.settings.policy.required_approvals as usize;
        if rollback.approvals.len() >= required && rollback.state != RollbackState::Approved {
            self.ledger
                .transition_rollback(
                    id,
                    rollback.state,
                    RollbackState::Approved,
                    entry("approved", "approvals complete; merging", Utc::now()),
                )
                .await?;
            self.notify(
                rewind_config::NotifyEvent::Approved,
                &rollback,
                &rollback.reason,
            )
            .await;
            self.enqueue_advance(id).await?;
        }
        self.refresh_pull_request(&rollback).await;
        Ok(self.ledger.rollback(id).await?.unwrap_or(rollback))
    }

    /// A dismissed GitHub review no longer counts.
    pub async fn withdraw_approval(&self, id: RollbackId, who: &str) -> Result<(), EngineError> {
        let Some(mut rollback) = self.ledger.rollback(id).await? else {
            return Ok(());
        };
        let before = rollback.approvals.len();
        rollback.approvals.retain(|a| a.by != who);
        if rollback.approvals.len() != before && rollback.state.is_reviewable() {
            self.ledger.update_rollback(&rollback).await?;
            self.note(
                &rollback,
                who,
                "approval_dismissed",
                format!("{who}'s approval was dismissed"),
            )
            .await?;
        }
        Ok(())
    }

    /// Merges now, on an approver's word (API `merge`, `/rewind merge`).
    #[tracing::instrument(skip_all, fields(rollback.id = %id, actor = %who))]
    pub async fn merge(
        &self,
        id: RollbackId,
        who: &str,
        via: &str,
    ) -> Result<Rollback, EngineError> {
        let rollback = self.reviewable(id, "merged").await?;
        self.note(
            &rollback,
            who,
            "merge_requested",
            format!("{who} asked to merge via {via}"),
        )
        .await?;
        self.merge_now(rollback, who).await
    }

    /// Cancels a rollback that is not merged yet; its PR is closed.
    #[tracing::instrument(skip_all, fields(rollback.id = %id, actor = %who))]
    pub async fn cancel(
        &self,
        id: RollbackId,
        who: &str,
        via: &str,
    ) -> Result<Rollback, EngineError> {
        let rollback = self.reviewable(id, "cancelled").await?;
        let rollback = self
            .ledger
            .transition_rollback(
                id,
                rollback.state,
                RollbackState::Cancelled,
                entry(
                    "cancelled",
                    format!("{who} cancelled via {via}"),
                    Utc::now(),
                ),
            )
            .await?;
        self.audit(
            who,
            "rollback.cancel",
            format!("rollback/{id}"),
            serde_json::json!({"app": rollback.app, "via": via}),
        )
        .await?;
        if let (Some(forge), Some(pr)) = (self.forge.as_ref(), rollback.pr.as_ref()) {
            self.refresh_pull_request(&rollback).await;
            // A PR closed on GitHub is closed already.
            if via != "github-pr-closed"
                && let Err(e) = forge.close_pull_request(pr.number).await
            {
                tracing::warn!(error = %e, "cannot close the pull request");
            }
        }
        Ok(rollback)
    }
}
