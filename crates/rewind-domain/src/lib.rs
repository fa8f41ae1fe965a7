//! rewind's vocabulary: the words of the contract (`shared/spec/interface.md`,
//! section "Words") as types.
//!
//! # Layout
//!
//! - [`ids`]: validated identifiers (`AppName`, `CommitId`, `ConfigHash`,
//!   `RollbackId`) and the branch slug.
//! - [`status`]: health, sync status and the deployment source.
//! - [`app`]: an app as Argo CD or Flux describes it.
//! - [`app_ref`]: an app's identity, `NAME@CLUSTER` (`AppRef`, `ClusterName`).
//! - [`deployment`]: one revision a cluster ran.
//! - [`alert`]: an alert as rewind records it.
//! - [`cluster_rollback`]: a rollback the cluster did on its own (Flagger,
//!   Argo Rollouts).
//! - [`event`]: observations parsed from webhooks, recorded by the ledger.
//! - [`risk`]: rollback risk findings with their stable codes.
//! - [`rollback`]: the rollback proposal, its state machine and timeline.
//! - [`text`]: outside text neutralised for Markdown, commit messages and
//!   one-line fields.
//! - [`verification`]: check results recorded while a rollback is verified.
//! - [`timeline`]: the typed events of a rollback's timeline.
//!
//! Architecture invariant: this crate does no I/O, reads no clock except
//! where a caller passes `now`, and never panics on bad input; constructors of
//! validated types return [`DomainError`].

#![forbid(unsafe_code)]

pub mod alert;
pub mod app;
pub mod app_ref;
pub mod cluster_rollback;
pub mod deployment;
pub mod event;
pub mod ids;
pub mod risk;
pub mod rollback;
pub mod status;
pub mod text;
pub mod timeline;
pub mod verification;

pub use alert::{Alert, AlertStatus};
pub use app::{App, AppSource, Drift};
pub use app_ref::{AppRef, ClusterName};
pub use cluster_rollback::{ClusterRolledBack, RollbackSender};
pub use deployment::Deployment;
pub use event::{
    ChatCommand, CommentEvent, DeploymentObserved, HealthObserved, Observation, PullRequestAction,
    PullRequestEvent, PushEvent, ReviewEvent, ReviewState,
};
pub use ids::{AppName, CommitId, ConfigHash, RollbackId, branch_slug};
pub use risk::{Risk, RiskCode};
pub use rollback::{
    ANONYMOUS, Approval, PullRequestRef, Rollback, RollbackDiff, RollbackState, Strategy,
    TimelineEntry, Trigger, Wave,
};
pub use status::{Health, Source, SyncStatus};
pub use timeline::TimelineEvent;
pub use verification::{CheckPhase, CheckResult};

/// A value that failed validation; the message names the value and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("invalid {what} {value:?}: {rule}")]
    Invalid {
        what: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error("rollback cannot go from {from} to {to}")]
    Transition {
        from: RollbackState,
        to: RollbackState,
    },
}

impl DomainError {
    pub(crate) fn invalid(what: &'static str, value: &str, rule: &'static str) -> Self {
        // Bound the echoed value: it may come from a hostile webhook.
        let value: String = value.chars().take(120).collect();
        DomainError::Invalid { what, value, rule }
    }
}
