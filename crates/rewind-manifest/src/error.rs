//! The crate's one error type. Problems inside files (bad YAML, missing
//! references) are [`Finding`](crate::Finding)s, not errors: an error means
//! the question cannot be answered at all.

use crate::source::SourceError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The app path is missing from the tree, or is not a directory.
    #[error("app path {path:?} is not a directory in this tree")]
    AppNotFound { path: String },
    /// A local reference leaves the repository (`../../../etc`).
    #[error("{kustomization}: reference {reference:?} escapes the repository")]
    Escape {
        kustomization: String,
        reference: String,
    },
    /// An app path that is not a plain repository-relative path.
    #[error("invalid app path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
}
