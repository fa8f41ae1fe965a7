//! Observations: what the outside world told rewind, as `rewind-ingest`
//! parses it from webhooks. The ledger records a delivery's observations in
//! one transaction together with the delivery's idempotency key, so a
//! delivery is recorded entirely or not at all, and only once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    Alert, App, AppName, AppRef, ClusterName, ClusterRolledBack, CommitId, Health, Source,
    SyncStatus,
};

/// One fact from a webhook delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Observation {
    /// Create or update the app (Argo CD tells us everything about it; Flux
    /// apps come from `[[apps]]`).
    App(App),
    /// The cluster ran a revision.
    Deployment(DeploymentObserved),
    /// The app's current health and sync state.
    Health(HealthObserved),
    /// An alert fired or resolved.
    Alert(Alert),
    PullRequest(PullRequestEvent),
    Review(ReviewEvent),
    Comment(CommentEvent),
    Push(PushEvent),
    /// The cluster rolled a workload back on its own (Flagger, Argo
    /// Rollouts): Git no longer says what runs.
    ClusterRolledBack(ClusterRolledBack),
}

/// A revision the cluster ran (Argo CD `status.history[]` entry, or a Flux
/// event's `metadata.revision`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentObserved {
    pub app: AppName,
    pub cluster: ClusterName,
    /// Argo CD's `status.history[].id`. `None` for Flux: the ledger assigns
    /// the next number of the app's sequence when the revision differs from
    /// the app's current one.
    pub cluster_revision: Option<i64>,
    /// The revision as the controller reported it.
    pub revision: String,
    /// The commit, when the revision names one (not for Helm chart versions).
    pub commit: Option<CommitId>,
    pub deployed_at: DateTime<Utc>,
    pub source: Source,
    pub initiated_by: Option<String>,
}

impl DeploymentObserved {
    pub fn app_ref(&self) -> AppRef {
        AppRef::new(self.app.clone(), self.cluster.clone())
    }
}

/// The app's health now, and which revision it reports it for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthObserved {
    pub app: AppName,
    #[serde(default)]
    pub cluster: ClusterName,
    /// The revision the health applies to (Argo CD
    /// `operationState.syncResult.revision`, Flux `metadata.revision`);
    /// `None` means "the current deployment".
    pub revision: Option<String>,
    pub commit: Option<CommitId>,
    pub health: Health,
    pub sync: Option<SyncStatus>,
    /// The revision the controller compares with Git (Argo CD
    /// `status.sync.revision`; Flux: the event's revision): differing from
    /// the current deployment's is drift.
    #[serde(default)]
    pub sync_revision: Option<String>,
    /// The images the controller reports running (Argo CD
    /// `status.summary.images`); `None` when it reports none (Flux has no
    /// such report).
    #[serde(default)]
    pub running_images: Option<Vec<String>>,
    pub at: DateTime<Utc>,
}

impl HealthObserved {
    pub fn app_ref(&self) -> AppRef {
        AppRef::new(self.app.clone(), self.cluster.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullRequestAction {
    Opened,
    Reopened,
    Synchronize,
    /// Closed without merging.
    Closed,
    /// Closed by merging.
    Merged,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestEvent {
    pub repository: String,
    pub number: u64,
    pub action: PullRequestAction,
    pub head_ref: String,
    pub head_sha: Option<CommitId>,
    pub base_ref: String,
    pub merge_commit: Option<CommitId>,
    /// Who acted (the sender; the merger for merges).
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    Approved,
    ChangesRequested,
    Commented,
    Dismissed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewEvent {
    pub repository: String,
    pub pr_number: u64,
    pub review_id: u64,
    pub reviewer: String,
    /// GitHub's `author_association` (OWNER, MEMBER, COLLABORATOR, ...).
    pub author_association: String,
    pub state: ReviewState,
    pub commit: Option<CommitId>,
    pub at: DateTime<Utc>,
}

/// A `/rewind ...` command in a pull-request comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatCommand {
    Merge,
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentEvent {
    pub repository: String,
    pub pr_number: u64,
    pub comment_id: u64,
    pub author: String,
    pub author_association: String,
    /// The command the comment carries, if any; comments without one are not
    /// recorded.
    pub command: ChatCommand,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushEvent {
    pub repository: String,
    /// Branch name without `refs/heads/`.
    pub branch: String,
    pub before: Option<CommitId>,
    pub after: Option<CommitId>,
    pub forced: bool,
    /// Commits in the push, oldest first.
    pub commits: Vec<CommitId>,
    pub pusher: String,
    pub at: DateTime<Utc>,
}
