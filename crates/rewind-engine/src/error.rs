//! The engine's one error type. `Refused` is not a failure: it is the
//! answer "no, and here is why" that the API turns into 409/429.

use crate::decide::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{}", .0.reason())]
    Refused(Box<Refusal>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// The caller may not do this (for example a review on a merged
    /// rollback).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Ledger(#[from] rewind_ledger::LedgerError),
    #[error(transparent)]
    Git(#[from] rewind_git::GitError),
    #[error(transparent)]
    Forge(#[from] rewind_forge::ForgeError),
    #[error("manifest: {0}")]
    Manifest(#[from] rewind_manifest::ManifestError),
    /// A notification was not delivered; its job retries.
    #[error("notification: {0}")]
    Notify(#[from] rewind_notify::NotifyError),
}

/// A tree read failing under the manifest layer's memo
/// (`rewind_manifest::ReadMemo`) is a manifest error like any other.
impl From<rewind_manifest::source::SourceError> for EngineError {
    fn from(e: rewind_manifest::source::SourceError) -> Self {
        EngineError::Manifest(e.into())
    }
}

impl From<Refusal> for EngineError {
    fn from(r: Refusal) -> Self {
        EngineError::Refused(Box::new(r))
    }
}
