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
//! - `catch_up`: Git catches up with Flagger and Argo Rollouts rollbacks.
//! - `deployed`: has the rollback reached the cluster (commit and images)?
//! - `verify`: the clock: known-good promotion, verification, recovery.
//! - `proof`: verification checks: baselines, evaluations, the verdict.
//! - `verify_comment`: the one verification comment on the pull request.
//! - `notify`: notifications, queued as durable jobs per target.
//! - `preflight`: target images looked up in their registries.
//! - [`faults`]: failpoints for the crash tests (feature `failpoints` only).
//! - [`retention`]: `[retention]`: old rollback branches, deliveries, jobs.
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
mod catch_up;
pub mod decide;
mod deployed;
mod error;
pub mod faults;
mod inspect;
mod notify;
mod observe;
mod preflight;
mod proof;
mod propose;
pub mod retention;
mod review;
mod step_failure;
mod timeline;
mod verify;
mod verify_comment;
pub mod wiring;
pub mod worker;

use std::sync::{Arc, Mutex};

use rewind_config::Settings;
use rewind_forge::Forge;
use rewind_git::RepoCache;
use rewind_ledger::Ledger;
use rewind_manifest::{InputsCache, ReadMemo};

pub use decide::Refusal;
pub use error::EngineError;
pub use notify::NOTIFY;
pub use propose::{ProposeOutcome, ProposeRequest};
pub use retention::{RETENTION, RetentionReport};
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
    /// Apps' snapshots (tree, config hash, images) by the ids of the
    /// directories they read: history entries sharing them resolve once
    /// (`git.resolve_cache_entries`).
    snapshots: Arc<Mutex<ReadMemo<inspect::Snapshot>>>,
    /// Prometheus and smoke endpoints; `None` when it could not be built
    /// (every check then reads as unknown, never as a pass).
    probe: Option<Arc<dyn rewind_probe::Probe>>,
    /// `[[verify.checks]]`, mapped once.
    checks: Arc<Vec<rewind_probe::Check>>,
    /// Delivers `[[notify]]` messages; `None` when it could not be built.
    notifier: Option<rewind_notify::Notifier>,
    /// Image pre-flight; `None` unless `verify.registry_check`.
    registry: Option<rewind_probe::Registry>,
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
        let probe = match rewind_probe::LiveProbe::new(&wiring::probe_settings(&settings)) {
            Ok(probe) => Some(Arc::new(probe) as Arc<dyn rewind_probe::Probe>),
            Err(e) => {
                tracing::error!(error = %e, "verification probe unavailable; checks read as unknown");
                None
            }
        };
        let checks = Arc::new(wiring::verify_checks(&settings));
        let registry = settings
            .verify
            .registry_check
            .then(|| wiring::registry(&settings))
            .and_then(|r| {
                r.map_err(|e| tracing::error!(error = %e, "image pre-flight unavailable"))
                    .ok()
            });
        let notifier = rewind_notify::Notifier::new(settings.verify.timeout.get())
            .map_err(|e| tracing::error!(error = %e, "notifications unavailable"))
            .ok();
        let snapshots = Arc::new(Mutex::new(ReadMemo::new(
            usize::try_from(settings.git.resolve_cache_entries).unwrap_or(usize::MAX),
        )));
        Engine {
            settings,
            ledger,
            git,
            forge,
            worker_id,
            inputs: Arc::default(),
            snapshots,
            probe,
            checks,
            notifier,
            registry,
        }
    }

    /// Replaces the probe (tests that stand in for Prometheus).
    pub fn with_probe(mut self, probe: Arc<dyn rewind_probe::Probe>) -> Self {
        self.probe = Some(probe);
        self
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
