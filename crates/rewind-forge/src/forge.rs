//! The [`Forge`] trait the engine drives a rollback's pull request through,
//! and the plain values it exchanges.

use std::fmt;

use async_trait::async_trait;
use rewind_domain::{CommitId, PullRequestRef};

use crate::ForgeError;

/// The context of the commit status that flags commits bringing back the
/// config of a held app.
pub const HOLD_STATUS_CONTEXT: &str = "rewind/hold";

/// The labels every rollback pull request carries.
pub const ROLLBACK_LABELS: [&str; 2] = ["rewind", "rollback"];

/// What to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestSpec {
    /// Branch with the rollback commit (`rewind/<slug>/<id>`), already pushed.
    pub head_branch: String,
    /// `git.branch`; empty means the forge's configured base branch.
    pub base_branch: String,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullRequestState {
    Open,
    Closed,
}

/// A pull request as the forge sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestInfo {
    pub number: u64,
    pub url: String,
    pub state: PullRequestState,
    pub merged: bool,
    /// The merge (or squash / last rebased) commit once merged.
    pub merge_commit: Option<CommitId>,
    pub head_ref: String,
    pub head_sha: CommitId,
    pub base_ref: String,
    pub body: Option<String>,
}

impl PullRequestInfo {
    pub fn reference(&self) -> PullRequestRef {
        PullRequestRef {
            number: self.number,
            url: self.url.clone(),
        }
    }
}

/// State of a commit status (`POST /repos/{o}/{r}/statuses/{sha}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

impl fmt::Display for StatusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Git forge with pull requests. Every method is safe to call twice: a
/// retry after a crash must not open a second pull request or merge twice.
#[async_trait]
pub trait Forge: Send + Sync + fmt::Debug {
    /// Opens the pull request, or returns the open one whose head is
    /// `spec.head_branch`, and makes sure it carries `spec.labels`.
    async fn open_pull_request(&self, spec: &PullRequestSpec)
    -> Result<PullRequestRef, ForgeError>;

    /// Replaces the pull request's body (the rollback report).
    async fn update_pull_request_body(&self, number: u64, body: &str) -> Result<(), ForgeError>;

    /// Adds a comment to the pull request's conversation.
    async fn comment(&self, number: u64, body: &str) -> Result<(), ForgeError>;

    /// Keeps one comment up to date: replaces the body of comment
    /// `existing` when given, else (or when a person deleted it) posts a
    /// new one on the pull request. Answers the comment's id, to pass as
    /// `existing` next time.
    async fn upsert_comment(
        &self,
        number: u64,
        existing: Option<u64>,
        body: &str,
    ) -> Result<u64, ForgeError>;

    /// Merges the pull request if its head is still `expected_head_sha`, and
    /// returns the merge commit. Already merged: returns the existing merge
    /// commit. Head moved: [`ForgeError::HeadChanged`]. Refused:
    /// [`ForgeError::NotMergeable`].
    async fn merge(
        &self,
        number: u64,
        expected_head_sha: &CommitId,
    ) -> Result<CommitId, ForgeError>;

    /// Closes the pull request without merging (a cancelled rollback).
    async fn close_pull_request(&self, number: u64) -> Result<(), ForgeError>;

    async fn pull_request(&self, number: u64) -> Result<PullRequestInfo, ForgeError>;

    /// Whether `user` may write to the repository (admin, maintain, write).
    async fn has_write_access(&self, user: &str) -> Result<bool, ForgeError>;

    /// Users with write access whose latest review of the pull request
    /// approves it. A dismissed review, or changes requested later, no
    /// longer counts. Sorted, without duplicates.
    async fn approvals(&self, number: u64) -> Result<Vec<String>, ForgeError>;

    /// Sets a commit status (for example [`HOLD_STATUS_CONTEXT`]).
    async fn set_commit_status(
        &self,
        sha: &CommitId,
        state: StatusState,
        context: &str,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<(), ForgeError>;
}
