//! The crate's one error type.
//!
//! Policy: every message is safe to log and to show to an API caller.
//! Remote URLs appear only redacted ([`crate::settings::redact_url`]) and
//! messages that come from libgit2 pass through [`crate::auth::Redactor`]
//! first, because libgit2 echoes URLs (with their userinfo) in its errors.

use rewind_domain::CommitId;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git.url` is not something rewind can fetch from.
    #[error("git.url {url:?} is not a supported remote: {reason}")]
    InvalidUrl { url: String, reason: &'static str },

    /// A branch name that Git would not accept.
    #[error("invalid branch name {name:?}: {reason}")]
    InvalidBranch { name: String, reason: &'static str },

    /// A repository path given by the caller (an app path) is malformed.
    #[error("invalid repository path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// The cache directory or its lock file could not be used.
    #[error("repository cache at {path}: {message}")]
    Cache { path: String, message: String },

    /// Fetching from the remote failed (network, authentication, missing
    /// repository).
    #[error("cannot fetch from {url}: {message}")]
    Fetch { url: String, message: String },

    /// Pushing failed before the remote answered (network, authentication).
    #[error("cannot push {refname} to {url}: {message}")]
    Push {
        url: String,
        refname: String,
        message: String,
    },

    /// The remote refused a reference update (for example because it is not
    /// a fast-forward: rewind never forces).
    #[error("{url} rejected the update of {refname}: {message}")]
    PushRejected {
        url: String,
        refname: String,
        message: String,
    },

    /// `git.branch` does not exist on the remote.
    #[error("branch {branch:?} does not exist on {url}")]
    BranchNotFound { url: String, branch: String },

    /// A commit the caller named is not in the repository (after a fetch).
    #[error("commit {0} is not in the repository")]
    CommitNotFound(CommitId),

    /// The rollback branch already exists on the remote with other content;
    /// rewind never overwrites it.
    #[error(
        "branch {branch:?} already exists on the remote at {existing} with a different tree; \
         rewind never force-pushes"
    )]
    BranchConflict { branch: String, existing: CommitId },

    /// A three-way revert met conflicts and the policy does not allow the
    /// restore fallback.
    #[error("reverting {commit} conflicts in {}", paths.join(", "))]
    RevertConflict {
        commit: CommitId,
        paths: Vec<String>,
    },

    /// Revert needs the target in head's history.
    #[error(
        "target {target} is not an ancestor of {head}: revert needs the target in the branch's history; use restore"
    )]
    NotAncestor { target: CommitId, head: CommitId },

    /// The manifest layer could not read the app's inputs or hash.
    #[error("cannot read the inputs of {app_path:?} at {commit}: {message}")]
    Manifest {
        app_path: String,
        commit: CommitId,
        message: String,
    },

    /// The built tree does not give the target's config hash. This is a bug
    /// guard: restore makes every input equal to the target's by
    /// construction, so nothing is committed when it fails.
    #[error("rollback of {app_path:?} would give config hash {got}, not the target's {want}")]
    ConfigHashMismatch {
        app_path: String,
        want: String,
        got: String,
    },

    /// The remote kept moving while rewind tried to merge.
    #[error("{branch:?} kept moving during the merge ({attempts} attempts); try again")]
    MergeRace { branch: String, attempts: u32 },

    /// Any other libgit2 failure (message redacted).
    #[error("git: {0}")]
    Git(String),

    /// The blocking task running git work panicked or was cancelled.
    #[error("git task failed: {0}")]
    Task(String),
}
