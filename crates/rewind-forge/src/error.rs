//! The crate's one error type. Messages are written for the rollback's
//! timeline: the engine records `to_string()` as the reason a step failed, so
//! each one says what was attempted and what GitHub answered.

use std::time::Duration;

/// Everything a forge call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// GitHub refused to merge (HTTP 405): conflicts, failing required
    /// checks, missing reviews. The engine rebuilds the commit on the new
    /// head once, then reports.
    #[error("pull request is not mergeable: {0}")]
    NotMergeable(String),
    /// The pull request's head is no longer the commit rewind reviewed
    /// (HTTP 409): someone pushed to the branch.
    #[error("pull request head changed: {0}")]
    HeadChanged(String),
    /// The pull request, user or repository does not exist (HTTP 404).
    #[error("not found on GitHub: {0}")]
    NotFound(String),
    /// Missing or wrong credentials (HTTP 401).
    #[error("GitHub rejected the credentials: {0}")]
    Unauthorized(String),
    /// Authenticated but not allowed (HTTP 403 that is not a rate limit).
    #[error("GitHub forbids this: {0}")]
    Forbidden(String),
    /// Any other answer GitHub gives to a request it will not carry out
    /// (422 validation errors, ...).
    #[error("GitHub refused {operation} (HTTP {status}): {message}")]
    Rejected {
        operation: &'static str,
        status: u16,
        message: String,
    },
    /// Rate limits, server errors or timeouts lasted longer than the budget
    /// (`max_wait`); `reason` is the last thing that went wrong.
    #[error(
        "{operation}: gave up after {elapsed:?} (budget {budget:?}, {attempts} attempts): {reason}"
    )]
    GaveUp {
        operation: &'static str,
        elapsed: Duration,
        budget: Duration,
        attempts: u32,
        reason: String,
    },
    /// GitHub answered with something that is not what its API documents.
    #[error("unexpected answer from GitHub to {operation}: {detail}")]
    InvalidResponse {
        operation: &'static str,
        detail: String,
    },
    /// The forge settings cannot work (bad URL, unreadable key).
    #[error("invalid GitHub settings: {0}")]
    Config(String),
}

impl ForgeError {
    /// Whether retrying the same call later may succeed without anyone
    /// changing anything (the budget ran out).
    pub fn is_transient(&self) -> bool {
        matches!(self, ForgeError::GaveUp { .. })
    }
}
