//! Pure decisions: may this app be rolled back now, and to what?
//!
//! No I/O here: the caller gathers the facts ([`Facts`]) from the ledger
//! and Git, and this module answers with a target or a [`Refusal`]. Keeping
//! the rules here makes every refusal testable in a line.

use rewind_config::AutoMerge;
use rewind_domain::{App, ConfigHash, Deployment, Risk, Rollback, RollbackState};

/// Why a rollback (or a review action) is refused. Each is recorded and
/// answered with 409 (429 for the breaker, 403 for a self-approval) and exit
/// code 3 in the CLI.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The app's current config hash already equals the target's.
    AlreadyOnTarget { target_revision: i64 },
    /// One open rollback per app: this one is returned to the caller.
    OpenRollbackExists(Box<Rollback>),
    /// A merged rollback is being verified; rolling back again would undo it.
    UndoesRollbackBeingVerified(Box<Rollback>),
    /// More than `policy.max_rollbacks_per_hour` for the app.
    BreakerOpen { count: u64, limit: u32 },
    /// Nothing to roll back to.
    NoKnownGood,
    /// The app syncs from another repository than `git.url`.
    ForeignRepository { detail: String },
    /// rewind has not seen the app deploy anything yet.
    NoCurrentDeployment,
    /// The target is not a Git commit (a Helm chart version).
    TargetHasNoCommit { target_revision: i64 },
    /// The named target is the current deployment.
    TargetIsCurrent { target_revision: i64 },
    /// A merge without `policy.required_approvals` distinct approvers (and
    /// without an admin's override).
    ApprovalsMissing {
        have: usize,
        required: u32,
        rollback: Box<Rollback>,
    },
    /// The requester approving their own rollback
    /// (`policy.allow_self_approval = false`).
    SelfApproval { who: String },
}

impl Refusal {
    /// Stable, machine-readable code (the API's `error` field).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::AlreadyOnTarget { .. } => "already on target",
            Refusal::OpenRollbackExists(_) => "open rollback exists",
            Refusal::UndoesRollbackBeingVerified(_) => "rollback being verified",
            Refusal::BreakerOpen { .. } => "breaker open",
            Refusal::NoKnownGood => "no known-good deployment",
            Refusal::ForeignRepository { .. } => "foreign repository",
            Refusal::NoCurrentDeployment => "no deployment",
            Refusal::TargetHasNoCommit { .. } => "target has no commit",
            Refusal::TargetIsCurrent { .. } => "target is current",
            Refusal::ApprovalsMissing { .. } => "approvals_missing",
            Refusal::SelfApproval { .. } => "self_approval",
        }
    }

    /// HTTP status the API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::BreakerOpen { .. } => 429,
            Refusal::SelfApproval { .. } => 403,
            _ => 409,
        }
    }

    /// One line a person understands.
    pub fn reason(&self) -> String {
        match self {
            Refusal::AlreadyOnTarget { target_revision } => format!(
                "already on target: the app's config hash equals cluster revision {target_revision}'s"
            ),
            Refusal::OpenRollbackExists(r) => format!(
                "an open rollback exists for {}: {} ({})",
                r.app, r.id, r.state
            ),
            Refusal::UndoesRollbackBeingVerified(r) => format!(
                "rollback {} of {} is still being verified ({}); rolling back again would undo it",
                r.id, r.app, r.state
            ),
            Refusal::BreakerOpen { count, limit } => format!(
                "breaker open: {count} rollbacks of this app in the last hour (policy.max_rollbacks_per_hour = {limit})"
            ),
            Refusal::NoKnownGood => {
                "no known-good deployment before the current one; name a target with to_revision or to_commit".into()
            }
            Refusal::ForeignRepository { detail } => {
                format!("the app syncs from another repository: {detail}")
            }
            Refusal::NoCurrentDeployment => "rewind has seen no deployment of this app yet".into(),
            Refusal::TargetHasNoCommit { target_revision } => format!(
                "cluster revision {target_revision} is not a Git commit (a chart version?); it cannot be restored from Git"
            ),
            Refusal::TargetIsCurrent { target_revision } => {
                format!("cluster revision {target_revision} is the current deployment")
            }
            Refusal::ApprovalsMissing { have, required, rollback } => format!(
                "approvals missing: rollback {} has {have} of the {required} approvals from distinct people that policy.required_approvals asks for; an admin may merge anyway with override and a reason",
                rollback.id
            ),
            Refusal::SelfApproval { who } => format!(
                "{who} requested this rollback and cannot approve it too (policy.allow_self_approval = false): another person must approve"
            ),
        }
    }

    /// The rollback to hand back with the refusal, if any.
    pub fn existing(&self) -> Option<&Rollback> {
        match self {
            Refusal::OpenRollbackExists(r)
            | Refusal::UndoesRollbackBeingVerified(r)
            | Refusal::ApprovalsMissing { rollback: r, .. } => Some(r),
            _ => None,
        }
    }
}

/// Everything the decision needs, gathered by the caller.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub app: &'a App,
    pub current: Option<&'a Deployment>,
    /// The named target, or the last known-good deployment before current.
    pub target: Option<&'a Deployment>,
    pub open_rollback: Option<&'a Rollback>,
    pub rollbacks_last_hour: u64,
    pub max_rollbacks_per_hour: u32,
    /// Config hash of the app at the head of `git.branch`: what the cluster
    /// is told to run now, whatever the ledger last saw deployed.
    pub head_config_hash: Option<&'a ConfigHash>,
}

/// The checked decision: roll `from` back to `to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision<'a> {
    pub from: &'a Deployment,
    pub to: &'a Deployment,
}

/// Applies the refusal rules in a fixed order, cheapest and most useful
/// first: an open rollback is returned before anything else is said.
pub fn decide<'a>(facts: &Facts<'a>) -> Result<Decision<'a>, Refusal> {
    if let Some(open) = facts.open_rollback {
        return Err(
            if matches!(open.state, RollbackState::Merged | RollbackState::Synced) {
                Refusal::UndoesRollbackBeingVerified(Box::new(open.clone()))
            } else {
                Refusal::OpenRollbackExists(Box::new(open.clone()))
            },
        );
    }
    if !facts.app.rollbackable {
        return Err(Refusal::ForeignRepository {
            detail: facts
                .app
                .status
                .clone()
                .unwrap_or_else(|| "no source of the app is git.url".into()),
        });
    }
    let current = facts.current.ok_or(Refusal::NoCurrentDeployment)?;
    if facts.rollbacks_last_hour >= u64::from(facts.max_rollbacks_per_hour) {
        return Err(Refusal::BreakerOpen {
            count: facts.rollbacks_last_hour,
            limit: facts.max_rollbacks_per_hour,
        });
    }
    let to = facts.target.ok_or(Refusal::NoKnownGood)?;
    if to.id == current.id {
        return Err(Refusal::TargetIsCurrent {
            target_revision: to.cluster_revision,
        });
    }
    if to.commit.is_none() {
        return Err(Refusal::TargetHasNoCommit {
            target_revision: to.cluster_revision,
        });
    }
    // Compare with what Git says now when known (a revert may already be
    // merged but not yet synced); else with the current deployment.
    let now_hash = facts.head_config_hash.or(current.config_hash.as_ref());
    if let (Some(now), Some(target)) = (now_hash, to.config_hash.as_ref())
        && now == target
    {
        return Err(Refusal::AlreadyOnTarget {
            target_revision: to.cluster_revision,
        });
    }
    Ok(Decision { from: current, to })
}

/// Whether `policy.auto_merge` merges a rollback with these risks without
/// waiting for people: `always` does, `never` does not, `safe` only when
/// there is no risk at all, whatever its code (a code added later blocks
/// too, so "safe" cannot come to mean less).
pub fn auto_merge_allowed(policy: AutoMerge, risks: &[Risk]) -> bool {
    match policy {
        AutoMerge::Always => true,
        AutoMerge::Safe => risks.is_empty(),
        AutoMerge::Never => false,
    }
}

#[cfg(test)]
mod tests;
