//! Workflows: record what clusters ran, decide on alerts, and drive each
//! rollback through its states as durable, idempotent jobs.
//!
//! # Layout
//!
//! - [`decide`]: the pure rules: target selection and refusals.
//! - `inspect`: what a commit means for an app (Git + manifest).
//! - `propose`: a rollback request or alert becomes a recorded proposal.
//! - `advance`: push, open the PR, auto-merge, merge: one job per step.
//! - `review`: approvals, merge and cancel from the API and from GitHub.
//! - `observe`: new deployments (resolve, sync), alerts, pushes (holds).
//! - `verify`: the clock: known-good promotion, verification, recovery.
//! - `worker`: the job loop and the ticker, stopped by a cancellation token.
//! - `timeline`: timeline entries and audit-log lines.
//! - [`wiring`]: configuration → the lower crates' settings.
//!
//! Architecture invariant: every step may run twice (after a crash, on two
//! replicas) and leaves one branch, one PR and one merge. Steps check what
//! is already done (the ledger, the remote branch, the PR for the branch,
//! whether the commit is on the base) before doing it.

#![forbid(unsafe_code)]

mod advance;
pub mod decide;
mod error;
mod inspect;
mod observe;
mod propose;
mod review;
mod timeline;
mod verify;
pub mod wiring;
pub mod worker;

use std::sync::{Arc, Mutex};

use rewind_config::Settings;
use rewind_forge::Forge;
use rewind_git::RepoCache;
use rewind_ledger::Ledger;
use rewind_manifest::InputsCache;

pub use decide::Refusal;
pub use error::EngineError;
pub use propose::{ProposeOutcome, ProposeRequest};
pub use worker::JOB_KINDS;

/// Kind of the job that advances one rollback by one step.
pub const ADVANCE_ROLLBACK: &str = rewind_ledger::job_kind::ADVANCE_ROLLBACK;

/// The workflows, with everything they act on.
pub struct Engine {
    settings: Arc<Settings>,
    ledger: Arc<dyn Ledger>,
    git: RepoCache,
    /// `None` for the local forge: review through rewind, merge with Git.
    forge: Option<Arc<dyn Forge>>,
    worker_id: String,
    /// Other apps' inputs, kept across proposals for `shared-change`.
    inputs: Arc<Mutex<InputsCache>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("worker_id", &self.worker_id)
            .field("forge", &self.forge.is_some())
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(
        settings: Arc<Settings>,
        ledger: Arc<dyn Ledger>,
        git: RepoCache,
        forge: Option<Arc<dyn Forge>>,
    ) -> Self {
        let worker_id = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Engine {
            settings,
            ledger,
            git,
            forge,
            worker_id,
            inputs: Arc::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.ledger
    }

    pub fn git(&self) -> &RepoCache {
        &self.git
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }
}
