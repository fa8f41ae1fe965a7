//! People decide: approvals, merge and cancel, from the API, the CLI, the
//! web UI, and GitHub reviews and `/rewind` comments (from users with write
//! access only).
//!
//! The review rule holds on every path: a merge needs
//! `policy.required_approvals` approvals from distinct people, and with
//! `policy.allow_self_approval = false` the requester's own approval is
//! refused. Only an admin's override (with a reason, checked for the role
//! by the server) merges without them; it is audited, on the timeline and
//! commented on the PR. Approvals are written field by field in the ledger
//! (compare-and-set), so an approval racing any workflow step is kept.

use chrono::Utc;
use rewind_domain::{Approval, Rollback, RollbackId, RollbackState, TimelineEvent};

use crate::decide::Refusal;
use crate::timeline::entry;
use crate::{Engine, EngineError};

impl Engine {
    async fn reviewable(&self, id: RollbackId, action: &str) -> Result<Rollback, EngineError> {
        let rollback = self.load(id).await?;
        if !rollback.state.is_reviewable() {
            return Err(EngineError::Conflict(format!(
                "rollback {id} is {}; it can no longer be {action}",
                rollback.state
            )));
        }
        Ok(rollback)
    }

    pub(crate) async fn load(&self, id: RollbackId) -> Result<Rollback, EngineError> {
        self.ledger
            .rollback(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no rollback {id}")))
    }

    /// Approvals that count now (distinct people, the requester left out
    /// unless self-approval is allowed).
    pub(crate) fn counted_approvals(&self, rollback: &Rollback) -> usize {
        rollback.counted_approvals(self.settings.policy.allow_self_approval)
    }

    /// Whether the counted approvals reach `policy.required_approvals`.
    pub(crate) fn approvals_complete(&self, rollback: &Rollback) -> bool {
        self.counted_approvals(rollback) >= self.settings.policy.required_approvals as usize
    }

    /// Records `who`'s approval (once per person). When approvals reach
    /// `policy.required_approvals`, the rollback is approved and merged by
    /// the next job. The requester approving their own rollback is refused
    /// (403) unless `policy.allow_self_approval`.
    #[tracing::instrument(skip_all, fields(rollback.id = %id, actor = %who))]
    pub async fn approve(
        &self,
        id: RollbackId,
        who: &str,
        via: &str,
    ) -> Result<Rollback, EngineError> {
        let rollback = self.reviewable(id, "approved").await?;
        if !self.settings.policy.allow_self_approval && rollback.is_self_approval(who) {
            self.note(
                &rollback,
                who,
                TimelineEvent::SelfApprovalRefused,
                format!(
                    "{who} requested this rollback; their approval via {via} does not count (policy.allow_self_approval = false)"
                ),
            )
            .await?;
            return Err(Refusal::SelfApproval {
                who: who.to_string(),
            }
            .into());
        }
        let approval = Approval {
            by: who.to_string(),
            at: Utc::now(),
            via: via.to_string(),
        };
        let added = match self.ledger.add_approval(id, &approval).await {
            Ok(added) => added,
            // Merged or cancelled meanwhile.
            Err(rewind_ledger::LedgerError::Conflict { reason, .. }) => {
                return Err(EngineError::Conflict(reason));
            }
            Err(e) => return Err(e.into()),
        };
        let mut rollback = self.load(id).await?;
        if added {
            self.note(
                &rollback,
                who,
                TimelineEvent::Approval,
                format!(
                    "{who} approved via {via} ({} of {} required)",
                    self.counted_approvals(&rollback),
                    self.settings.policy.required_approvals
                ),
            )
            .await?;
        }
        if self.approvals_complete(&rollback) {
            rollback = self.mark_approved(rollback).await?;
        }
        self.refresh_pull_request(&rollback).await;
        self.load(id).await
    }

    /// reviewable → approved, whatever step ran meanwhile (the PR step may
    /// move proposed → pr_open between our read and our write), then
    /// queues the merge.
    async fn mark_approved(&self, mut rollback: Rollback) -> Result<Rollback, EngineError> {
        for _ in 0..3 {
            if rollback.state == RollbackState::Approved || !rollback.state.is_reviewable() {
                break;
            }
            match self
                .ledger
                .transition_rollback(
                    rollback.id,
                    rollback.state,
                    RollbackState::Approved,
                    entry(
                        TimelineEvent::Approved,
                        "approvals complete; merging",
                        Utc::now(),
                    ),
                )
                .await
            {
                Ok(next) => {
                    rollback = next;
                    self.notify(
                        rewind_config::NotifyEvent::Approved,
                        &rollback,
                        &rollback.reason,
                    )
                    .await;
                }
                Err(rewind_ledger::LedgerError::Conflict { .. }) => {
                    rollback = self.load(rollback.id).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if rollback.state == RollbackState::Approved {
            self.enqueue_advance(rollback.id).await?;
        }
        Ok(rollback)
    }

    /// A dismissed GitHub review no longer counts.
    pub async fn withdraw_approval(&self, id: RollbackId, who: &str) -> Result<(), EngineError> {
        let Some(rollback) = self.ledger.rollback(id).await? else {
            return Ok(());
        };
        if rollback.state.is_reviewable() && self.ledger.remove_approval(id, who).await? {
            self.note(
                &rollback,
                who,
                TimelineEvent::ApprovalDismissed,
                format!("{who}'s approval was dismissed"),
            )
            .await?;
        }
        Ok(())
    }

    /// Merges now, on an approver's word (API `merge`, `/rewind merge`, the
    /// web UI), when the approvals are complete: else `approvals_missing`.
    #[tracing::instrument(skip_all, fields(rollback.id = %id, actor = %who))]
    pub async fn merge(
        &self,
        id: RollbackId,
        who: &str,
        via: &str,
    ) -> Result<Rollback, EngineError> {
        self.request_merge(id, who, via, None).await
    }

    /// An admin merges without the required approvals, giving `reason`.
    /// The caller checks the admin role; the reason must not be empty.
    #[tracing::instrument(skip_all, fields(rollback.id = %id, actor = %who))]
    pub async fn merge_override(
        &self,
        id: RollbackId,
        who: &str,
        via: &str,
        reason: &str,
    ) -> Result<Rollback, EngineError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(EngineError::Invalid(
                "reason: an override needs a reason (it goes to the audit log, the timeline and the pull request)".into(),
            ));
        }
        self.request_merge(id, who, via, Some(reason)).await
    }

    async fn request_merge(
        &self,
        id: RollbackId,
        who: &str,
        via: &str,
        override_reason: Option<&str>,
    ) -> Result<Rollback, EngineError> {
        let rollback = self.reviewable(id, "merged").await?;
        let have = self.counted_approvals(&rollback);
        let required = self.settings.policy.required_approvals;
        if self.approvals_complete(&rollback) {
            self.note(
                &rollback,
                who,
                TimelineEvent::MergeRequested,
                format!("{who} asked to merge via {via}"),
            )
            .await?;
        } else if let Some(reason) = override_reason {
            let detail = format!(
                "{who} merged via {via} with an admin override, without the required approvals ({have} of {required}): {reason}"
            );
            self.ledger
                .append_timeline(
                    id,
                    entry(TimelineEvent::MergeOverride, detail.clone(), Utc::now()),
                )
                .await?;
            self.audit(
                who,
                "rollback.merge_override",
                format!("rollback/{id}"),
                serde_json::json!({
                    "app": rollback.app, "via": via, "reason": reason,
                    "approvals": have, "required": required,
                }),
            )
            .await?;
            if let (Some(forge), Some(pr)) = (self.forge.as_ref(), rollback.pr.as_ref()) {
                let comment = format!(
                    "**Admin override.** `{}` merged this rollback via {via} with {have} of {required} required approvals. Reason: `{}`",
                    code_safe(who),
                    code_safe(reason)
                );
                if let Err(e) = forge.comment(pr.number, &comment).await {
                    tracing::warn!(error = %e, "cannot comment the override on the pull request");
                }
            }
        } else {
            self.note(
                &rollback,
                who,
                TimelineEvent::MergeRefused,
                format!("{who} asked to merge via {via}; refused: {have} of {required} approvals"),
            )
            .await?;
            return Err(Refusal::ApprovalsMissing {
                have,
                required,
                rollback: Box::new(rollback),
            }
            .into());
        }
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
        // A held wave member may be cancelled too: a stopped wave waits for
        // a person.
        let rollback = match self.ledger.rollback(id).await? {
            Some(r) if r.state == RollbackState::Held => r,
            _ => self.reviewable(id, "cancelled").await?,
        };
        let rollback = self
            .ledger
            .transition_rollback(
                id,
                rollback.state,
                RollbackState::Cancelled,
                entry(
                    TimelineEvent::Cancelled,
                    format!("{who} cancelled via {via}"),
                    Utc::now(),
                ),
            )
            .await?;
        self.audit(
            who,
            "rollback.cancel",
            format!("rollback/{id}"),
            serde_json::json!({"app": rollback.app_ref(), "via": via}),
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

/// Text that goes inside a Markdown code span: no backticks or line breaks
/// that could end it and make the rest live Markdown.
fn code_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '`' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .take(500)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::code_safe;

    #[test]
    fn override_text_cannot_leave_its_code_span() {
        assert_eq!(code_safe("a`b\nc"), "a'b c");
        assert_eq!(code_safe(&"x".repeat(600)).len(), 500);
    }
}
