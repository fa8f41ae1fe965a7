//! git2: repository cache, rollback commits (restore, revert) built in
//! memory, push and merge.
//!
//! rewind's promise is that a rollback commit brings back exactly the
//! known-good configuration and nothing else. This crate keeps it: trees
//! are built in memory from the target's objects, never through a work
//! tree, and every push is a fast-forward.
//!
//! # Layout
//!
//! - [`settings`]: [`GitSettings`] (the `[git]` section) and URL redaction.
//! - [`repo`]: [`GitRepo`], the blocking core: bare cache, fetch, heads,
//!   trees, ancestry, [`GitRepo::commits_touching`].
//! - [`cache`]: [`RepoCache`], the async facade (`spawn_blocking`, one
//!   writer per repository).
//! - [`rollback`]: [`RollbackRequest`], [`BuildOutcome`], the commit message.
//! - `build`, `restore`, `revert`: making the rollback commit.
//! - [`push`]: the `rewind/<app-slug>/<id>` branch; [`merge`]: into
//!   `git.branch`; [`prune`]: retention deletes finished rollbacks' branches.
//! - [`tree_source`]: [`GitTree`], the manifest crate's view of a commit.
//! - [`remote_status`]: the last fetch's outcome, for readiness and metrics.
//! - [`limits`]: libgit2's process-wide object cache bound.
//! - `auth`, `lock`, `inputs`: credentials, the cache's lock file, the
//!   app's inputs as the manifest crate computes them.
//!
//! Architecture invariants: no refspec is ever forced; the only remote
//! refs written are `rewind/*` and, on merge, `git.branch`; secrets never
//! reach a log line or an error message.

// `deny`, not `forbid`: `limits` alone sets libgit2's global options,
// which git2 only offers as `unsafe` calls.
#![deny(unsafe_code)]

mod auth;
mod build;
pub mod cache;
pub mod error;
mod inputs;
pub mod limits;
mod lock;
pub mod merge;
pub mod prune;
pub mod push;
pub mod remote_status;
mod repack;
pub mod repo;
mod restore;
mod revert;
pub mod rollback;
pub mod settings;
#[cfg(test)]
mod test_remote;
pub mod tree_source;

pub use cache::RepoCache;
pub use error::GitError;
pub use merge::{MergeKind, MergeOutcome};
pub use push::PushedBranch;
pub use remote_status::{FetchOutcome, RemoteStatus};
pub use repo::GitRepo;
pub use rollback::{BuildOutcome, BuiltCommit, RollbackRequest, rebuild_branch, rollback_branch};
pub use settings::{GitSettings, redact_url};
pub use tree_source::GitTree;
