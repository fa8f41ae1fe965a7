//! Forges: where rollback pull requests live.
//!
//! # Layout
//!
//! - [`forge`]: the [`Forge`] trait the engine calls, and its values.
//! - [`github`]: [`GitHubForge`], GitHub's REST API through octocrab, with
//!   rate limits waited out, retries with backoff, a time budget and writes
//!   serialized per installation.
//! - [`report`]: the rollback report that is a pull request's body.
//! - [`error`]: the crate's error, [`ForgeError`].
//! - `fake` (feature `fake`): a strict fake GitHub API server backed by a
//!   real bare Git repository, for tests.
//!
//! The `local` forge has no pull requests: the engine reviews through the
//! ledger and merges with `rewind-git`, so it needs no code here.

#![forbid(unsafe_code)]

pub mod error;
pub mod forge;
pub mod github;
pub mod report;

#[cfg(feature = "fake")]
pub mod fake;

pub use error::ForgeError;
pub use forge::{
    Forge, HOLD_STATUS_CONTEXT, PullRequestInfo, PullRequestSpec, PullRequestState,
    ROLLBACK_LABELS, StatusState,
};
pub use github::{DEFAULT_API_URL, GitHubAuth, GitHubForge, GitHubSettings, MergeMethod};
pub use report::{
    ReportStage, RollbackReport, render_pull_request_body, render_title,
    render_verification_comment, rollback_id_from_body,
};
