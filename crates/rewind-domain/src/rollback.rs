//! The rollback proposal and its state machine.
//!
//! ```text
//! proposed → pr_open → approved → merged → synced → verified
//!     └──────────┴─────────┴─────────┴────────┴──→ failed | cancelled | superseded
//! ```
//! `proposed` may go straight to `approved` (local forge, no PR) or `merged`
//! (auto-merge); `pr_open` may go straight to `merged` (a `/rewind merge`).
//! A later rollback of a multi-cluster wave starts `held` and becomes
//! `proposed` once the one before it is verified.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    AppName, AppRef, CheckResult, ClusterName, CommitId, Deployment, DomainError, Risk, RollbackId,
    TimelineEvent,
};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RollbackState {
    Proposed,
    PrOpen,
    Approved,
    Merged,
    Synced,
    Verified,
    Failed,
    Cancelled,
    Superseded,
    /// Part of a wave, waiting for the rollback before it to be verified.
    Held,
}

impl RollbackState {
    pub const ALL: [RollbackState; 10] = [
        RollbackState::Proposed,
        RollbackState::PrOpen,
        RollbackState::Approved,
        RollbackState::Merged,
        RollbackState::Synced,
        RollbackState::Verified,
        RollbackState::Failed,
        RollbackState::Cancelled,
        RollbackState::Superseded,
        RollbackState::Held,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RollbackState::Proposed => "proposed",
            RollbackState::PrOpen => "pr_open",
            RollbackState::Approved => "approved",
            RollbackState::Merged => "merged",
            RollbackState::Synced => "synced",
            RollbackState::Verified => "verified",
            RollbackState::Failed => "failed",
            RollbackState::Cancelled => "cancelled",
            RollbackState::Superseded => "superseded",
            RollbackState::Held => "held",
        }
    }

    /// Terminal states never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RollbackState::Verified
                | RollbackState::Failed
                | RollbackState::Cancelled
                | RollbackState::Superseded
        )
    }

    /// An open rollback blocks a second one for the same app.
    pub fn is_open(self) -> bool {
        !self.is_terminal()
    }

    /// Not merged yet: people can still approve, merge or cancel it.
    pub fn is_reviewable(self) -> bool {
        matches!(
            self,
            RollbackState::Proposed | RollbackState::PrOpen | RollbackState::Approved
        )
    }

    /// Whether the state machine allows `self → to`. Staying in the same
    /// state is allowed so that every step can run twice.
    pub fn can_become(self, to: RollbackState) -> bool {
        use RollbackState::*;
        if self == to {
            return true;
        }
        if self.is_terminal() {
            return false;
        }
        match to {
            Failed | Superseded => true,
            Cancelled => self.is_reviewable() || self == Held,
            PrOpen => self == Proposed,
            Approved => matches!(self, Proposed | PrOpen),
            Merged => self.is_reviewable(),
            Synced => self == Merged,
            Verified => matches!(self, Merged | Synced),
            // Only a held wave member is released into `proposed`.
            Proposed => self == Held,
            // Wave members are recorded held; nothing moves back into it.
            Held => false,
        }
    }

    /// Checked transition.
    pub fn transition(self, to: RollbackState) -> Result<RollbackState, DomainError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(DomainError::Transition { from: self, to })
        }
    }
}

impl fmt::Display for RollbackState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RollbackState {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RollbackState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| DomainError::invalid("rollback state", s, "unknown state"))
    }
}

/// How the rollback commit is built (`policy.strategy`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Every input of the app becomes its tree at the target commit.
    #[default]
    Restore,
    /// `git revert` of the commits since the target that touched the app.
    Revert,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Restore => "restore",
            Strategy::Revert => "revert",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What started a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Trigger {
    /// A firing alert; `group_key` is Alertmanager's group key.
    Alert {
        group_key: String,
        alert_name: String,
        fingerprint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        severity: Option<String>,
    },
    /// A person or script through the API or CLI; `caller` is the API
    /// token's name.
    Manual { caller: String },
    /// Git catching up with what the cluster runs (`policy.catch_up`):
    /// someone rolled the app back in the cluster; `detail` says what and
    /// when.
    Drift { detail: String },
}

/// A pull request on the forge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PullRequestRef {
    pub number: u64,
    pub url: String,
}

/// An approval that counts towards `policy.required_approvals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    pub by: String,
    pub at: DateTime<Utc>,
    /// `api`, `cli`, `ui` or `github-review`.
    pub via: String,
}

/// One line of a rollback's story.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// The event's snake_case name (`proposed`, `pushed`, `merged`, ...).
    #[schema(value_type = String)]
    pub event: TimelineEvent,
    pub detail: String,
}

/// The diff a rollback applies: semantic (objects and fields, as the manifest
/// crate renders it to JSON) and textual (unified diff of the files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct RollbackDiff {
    #[schema(value_type = Object)]
    pub semantic: serde_json::Value,
    pub text: String,
}

/// A rollback's place in a multi-cluster plan: every member shares `group`;
/// `index` orders them (`policy.cluster_order`); `after` is the rollback
/// that must be verified before this one leaves `held`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Wave {
    pub group: String,
    pub index: u32,
    #[serde(default)]
    pub after: Option<RollbackId>,
}

/// A rollback, with the contract's JSON fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rollback {
    pub id: RollbackId,
    pub app: AppName,
    /// With `app`, the app's identity; the rollback changes only what this
    /// cluster's app reads.
    #[serde(default)]
    pub cluster: ClusterName,
    pub from: Deployment,
    pub to: Deployment,
    pub state: RollbackState,
    pub reason: String,
    pub trigger: Trigger,
    pub strategy: Strategy,
    pub branch: Option<String>,
    pub commit: Option<CommitId>,
    /// The commit of `git.branch` that carries the rollback once merged
    /// (the fast-forward target, merge or squash commit): deployments of it
    /// or its descendants mean the rollback synced.
    #[serde(default)]
    pub merge_commit: Option<CommitId>,
    pub pr: Option<PullRequestRef>,
    pub diff: RollbackDiff,
    pub risks: Vec<Risk>,
    pub approvals: Vec<Approval>,
    pub timeline: Vec<TimelineEntry>,
    /// Every evaluation of a verification check, oldest first.
    #[serde(default)]
    pub verification: Vec<CheckResult>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when the rollback is part of a multi-cluster wave.
    #[serde(default)]
    pub wave: Option<Wave>,
}

impl Rollback {
    /// `app@cluster`.
    pub fn app_ref(&self) -> AppRef {
        AppRef::new(self.app.clone(), self.cluster.clone())
    }
}

impl Rollback {
    /// Whether the timeline says `event` happened: how a step that ran
    /// before a crash is recognised.
    pub fn has_event(&self, event: &TimelineEvent) -> bool {
        self.timeline.iter().any(|e| &e.event == event)
    }

    /// How often `event` happened.
    pub fn count_events(&self, event: &TimelineEvent) -> usize {
        self.timeline.iter().filter(|e| &e.event == event).count()
    }

    /// Whether a rebuild started and did not finish (a crash in between):
    /// the next step resumes that attempt.
    pub fn rebuild_in_progress(&self) -> bool {
        self.count_events(&TimelineEvent::RebuildStarted)
            > self.count_events(&TimelineEvent::Rebuilt)
    }

    /// The person (API token name) who asked for this rollback; `None` for
    /// automatic proposals (an alert), which any person may approve.
    pub fn requester(&self) -> Option<&str> {
        match &self.trigger {
            Trigger::Manual { caller } => Some(caller.as_str()),
            Trigger::Alert { .. } | Trigger::Drift { .. } => None,
        }
    }

    /// Whether `who` approving counts as the requester approving their
    /// own rollback. The open API (no tokens: everyone is `anonymous`)
    /// has no identities to tell apart, so the rule cannot apply there.
    pub fn is_self_approval(&self, who: &str) -> bool {
        who != ANONYMOUS && self.requester() == Some(who)
    }

    /// Approvals from distinct people that count towards
    /// `policy.required_approvals`: the requester's own is left out unless
    /// `allow_self_approval`.
    pub fn counted_approvals(&self, allow_self_approval: bool) -> usize {
        let mut people: Vec<&str> = self
            .approvals
            .iter()
            .filter(|a| allow_self_approval || !self.is_self_approval(&a.by))
            .map(|a| a.by.as_str())
            .collect();
        people.sort_unstable();
        people.dedup();
        people.len()
    }
}

/// The caller name of the open API (no `[[api.tokens]]`).
pub const ANONYMOUS: &str = "anonymous";

#[cfg(test)]
mod tests {
    use super::*;
    use RollbackState::*;

    #[test]
    fn happy_path_is_allowed() {
        let path = [Held, Proposed, PrOpen, Approved, Merged, Synced, Verified];
        for pair in path.windows(2) {
            assert!(pair[0].can_become(pair[1]), "{} → {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn terminal_states_are_final_and_merges_cannot_be_cancelled() {
        for from in [Verified, Failed, Cancelled, Superseded] {
            for to in RollbackState::ALL {
                assert_eq!(from.can_become(to), from == to, "{from} → {to}");
            }
        }
        assert!(!Merged.can_become(Cancelled));
        assert!(!Synced.can_become(Approved));
        assert!(Merged.transition(Proposed).is_err());
    }

    #[test]
    fn states_round_trip() {
        for state in RollbackState::ALL {
            assert_eq!(state.as_str().parse::<RollbackState>().unwrap(), state);
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{}\"", state.as_str())
            );
        }
    }
}
