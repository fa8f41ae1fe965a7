//! The storage trait every other crate talks to. One implementation
//! ([`crate::store::SqlLedger`]) serves both databases.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use rewind_domain::{
    App, AppName, AppRef, Approval, ClusterName, CommitId, ConfigHash, Deployment, Health,
    PullRequestRef, Rollback, RollbackId, RollbackState, SyncStatus, TimelineEntry,
};

use crate::{
    AppSummary, AuditEntry, AuditFilter, AuditRecord, Delivery, DeliveryOutcome, ForgeEventRecord,
    Job, JobCount, JobPayload, LedgerError, StoredAlert, StoredApiToken, StoredClusterRollback,
    UiSession,
};

/// The ledger: what rewind knows about apps, deployments, alerts, rollbacks,
/// its own audit log and its background jobs.
///
/// Times are stored with microsecond precision.
#[async_trait]
pub trait Ledger: std::fmt::Debug + Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs.
    fn backend(&self) -> &'static str;

    /// A round-trip to the database (readiness).
    async fn ping(&self) -> Result<(), LedgerError>;

    /// `Ok` when the database takes writes now: a write transaction opens
    /// and is rolled back (readiness: "a webhook would be recorded").
    async fn ping_write(&self) -> Result<(), LedgerError> {
        self.ping().await
    }

    // --- deliveries -------------------------------------------------------

    /// Records a webhook delivery and applies its observations, in one
    /// transaction, exactly once per `(source, key)`.
    ///
    /// Observations are applied by kind: apps, then deployments (Argo CD
    /// history back-filled in `cluster_revision` order), then health, then
    /// alerts, then forge events. Follow-up jobs are enqueued in the same
    /// transaction.
    async fn record_delivery(&self, delivery: Delivery) -> Result<DeliveryOutcome, LedgerError>;

    /// Records several deliveries in one transaction (group commit), each
    /// in its own savepoint: one bad delivery fails alone. A whole-batch
    /// failure (database down) is reported for every delivery.
    async fn record_deliveries(
        &self,
        batch: Vec<Delivery>,
    ) -> Vec<Result<DeliveryOutcome, LedgerError>>;

    // --- apps -------------------------------------------------------------

    /// Creates or updates an app. An existing app keeps its `held_since`:
    /// only [`Ledger::set_app_hold`] changes that.
    async fn upsert_app(&self, app: &App) -> Result<(), LedgerError>;
    async fn get_app(&self, app: &AppRef) -> Result<Option<App>, LedgerError>;
    /// The clusters that run an app named `name`, by cluster name: how a
    /// plain `NAME` is resolved (one: that app; several: ambiguous).
    async fn app_clusters(&self, name: &AppName) -> Result<Vec<ClusterName>, LedgerError>;
    /// Every app by name and cluster, with its current and newest known-good
    /// deployment.
    async fn list_apps(&self) -> Result<Vec<AppSummary>, LedgerError>;
    /// One app with its current and newest known-good deployment.
    async fn app_summary(&self, app: &AppRef) -> Result<Option<AppSummary>, LedgerError>;
    /// At most `limit` apps in `list_apps`' order (name, then cluster),
    /// starting after `after`: one page of the fleet.
    async fn list_apps_page(
        &self,
        after: Option<&AppRef>,
        limit: u32,
    ) -> Result<Vec<AppSummary>, LedgerError>;
    /// Every app that has a path in the GitOps repository, by reference, with
    /// that path: one query, for questions across all apps
    /// (`shared-change`).
    async fn app_paths(&self) -> Result<Vec<(AppRef, String)>, LedgerError>;
    async fn set_app_hold(
        &self,
        app: &AppRef,
        held_since: Option<DateTime<Utc>>,
    ) -> Result<(), LedgerError>;

    // --- deployments ------------------------------------------------------

    /// The deployment with the app's highest cluster revision.
    async fn current_deployment(&self, app: &AppRef) -> Result<Option<Deployment>, LedgerError>;
    /// Newest first (by cluster revision).
    async fn history(&self, app: &AppRef, limit: u32) -> Result<Vec<Deployment>, LedgerError>;
    /// Like `history`, only deployments with a cluster revision below
    /// `before` (the last one of the previous page).
    async fn history_page(
        &self,
        app: &AppRef,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Deployment>, LedgerError>;
    async fn deployment(&self, id: i64) -> Result<Option<Deployment>, LedgerError>;
    /// The deployments of `ids` that exist, in id order.
    async fn deployments(&self, ids: &[i64]) -> Result<Vec<Deployment>, LedgerError>;
    async fn deployment_by_revision(
        &self,
        app: &AppRef,
        cluster_revision: i64,
    ) -> Result<Option<Deployment>, LedgerError>;
    /// Deployments of `commit`, newest first.
    async fn deployments_by_commit(
        &self,
        app: &AppRef,
        commit: &CommitId,
    ) -> Result<Vec<Deployment>, LedgerError>;
    /// What was running at `at`: the latest deployment with
    /// `deployed_at <= at`.
    async fn deployment_at(
        &self,
        app: &AppRef,
        at: DateTime<Utc>,
    ) -> Result<Option<Deployment>, LedgerError>;
    /// The known-good deployment with the highest cluster revision below
    /// `cluster_revision`.
    async fn last_known_good_before(
        &self,
        app: &AppRef,
        cluster_revision: i64,
    ) -> Result<Option<Deployment>, LedgerError>;
    /// Fills in what resolving the deployment's commit found.
    async fn set_deployment_resolution(
        &self,
        id: i64,
        tree: String,
        config_hash: ConfigHash,
        images: Vec<String>,
    ) -> Result<(), LedgerError>;
    /// [`Ledger::set_deployment_resolution`] for several deployments, in one
    /// transaction.
    async fn set_deployment_resolutions(
        &self,
        resolutions: &[crate::Resolution],
    ) -> Result<(), LedgerError>;
    /// Sets a deployment's health (and sync, when given), keeping
    /// `healthy_since` (set when it turns Healthy, cleared otherwise).
    async fn update_health(
        &self,
        id: i64,
        health: Health,
        sync: Option<SyncStatus>,
        at: DateTime<Utc>,
    ) -> Result<Deployment, LedgerError>;
    /// Marks as known good every app's *current* deployment that is Healthy
    /// since at least `healthy_for` before `now`, was never alerted, and
    /// whose app has no firing alert. Returns the promoted ids.
    async fn promote_known_good(
        &self,
        now: DateTime<Utc>,
        healthy_for: Duration,
    ) -> Result<Vec<i64>, LedgerError>;

    /// `policy.trust_history`: marks known good, *by history*, the earlier
    /// deployments of `app` rewind never saw (health `Unknown`) that ran at
    /// least `healthy_for` before the next one with no alert recorded
    /// against them or starting while they ran. Returns the promoted ids.
    async fn promote_by_history(
        &self,
        app: &AppRef,
        healthy_for: Duration,
    ) -> Result<Vec<i64>, LedgerError>;

    // --- alerts -----------------------------------------------------------

    /// Newest first.
    async fn alerts_for_app(
        &self,
        app: &AppRef,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, LedgerError>;
    async fn alert(&self, id: i64) -> Result<Option<StoredAlert>, LedgerError>;
    async fn firing_alerts(&self, app: &AppRef) -> Result<Vec<StoredAlert>, LedgerError>;

    // --- rollbacks --------------------------------------------------------

    /// Inserts a rollback with its timeline and, unless it is held, its
    /// first `advance_rollback` job in the same transaction (a crash right
    /// after the insert cannot leave it without a next step). At most one
    /// open rollback per app: a second gives `Conflict` naming the open one.
    async fn insert_rollback(&self, rollback: &Rollback) -> Result<(), LedgerError>;
    async fn rollback(&self, id: RollbackId) -> Result<Option<Rollback>, LedgerError>;
    async fn open_rollback(&self, app: &AppRef) -> Result<Option<Rollback>, LedgerError>;
    /// Newest first.
    async fn list_rollbacks(
        &self,
        app: Option<&AppRef>,
        state: Option<RollbackState>,
        limit: u32,
    ) -> Result<Vec<Rollback>, LedgerError>;
    /// Like `list_rollbacks`, only rollbacks after `before` (the last one
    /// of the previous page) in that order. An unknown `before` gives an
    /// empty page.
    async fn list_rollbacks_page(
        &self,
        app: Option<&AppRef>,
        state: Option<RollbackState>,
        before: Option<RollbackId>,
        limit: u32,
    ) -> Result<Vec<Rollback>, LedgerError>;
    /// Compare-and-set `from → to`, appending `entry` in the same
    /// transaction. Already in `to`: a no-op that returns the rollback.
    /// In another state: `Conflict`. A move the state machine forbids:
    /// `Invalid`.
    async fn transition_rollback(
        &self,
        id: RollbackId,
        from: RollbackState,
        to: RollbackState,
        entry: TimelineEntry,
    ) -> Result<Rollback, LedgerError>;
    // Field-level writes: each touches only its own columns (and bumps the
    // row's version), so concurrent writers never overwrite each other.

    /// Adds `approval` unless that person approved already (`false`), by
    /// compare-and-set on the row's version. Only while the rollback is
    /// reviewable: afterwards `Conflict` naming the state.
    async fn add_approval(&self, id: RollbackId, approval: &Approval) -> Result<bool, LedgerError>;
    /// Removes `by`'s approval; `false` when there was none.
    async fn remove_approval(&self, id: RollbackId, by: &str) -> Result<bool, LedgerError>;
    /// Sets the rollback commit, and the branch when given.
    async fn set_rollback_commit(
        &self,
        id: RollbackId,
        commit: &CommitId,
        branch: Option<&str>,
    ) -> Result<(), LedgerError>;
    /// Sets the rollback's pull request.
    async fn set_rollback_pr(&self, id: RollbackId, pr: &PullRequestRef)
    -> Result<(), LedgerError>;
    /// Sets the commit of `git.branch` that carries the merged rollback.
    /// Replaces the rollback's risks.
    async fn set_rollback_risks(
        &self,
        id: RollbackId,
        risks: &[rewind_domain::Risk],
    ) -> Result<(), LedgerError>;
    async fn set_merge_commit(&self, id: RollbackId, commit: &CommitId) -> Result<(), LedgerError>;
    /// Appends one verification record (an evaluation, the baseline or
    /// the known-good value) without touching the rest of the rollback.
    async fn record_check_result(
        &self,
        id: RollbackId,
        phase: rewind_domain::CheckPhase,
        result: &rewind_domain::CheckResult,
    ) -> Result<(), LedgerError>;
    /// The images the controller last reported running for the deployment
    /// (Argo CD `status.summary.images`); `None` when it never reported any.
    async fn running_images(&self, deployment_id: i64) -> Result<Option<Vec<String>>, LedgerError>;
    /// The id of the verification comment on the rollback's pull request.
    async fn verify_comment(&self, id: RollbackId) -> Result<Option<u64>, LedgerError>;
    async fn set_verify_comment(&self, id: RollbackId, comment_id: u64) -> Result<(), LedgerError>;
    /// The rollback's records of `phase`, oldest first.
    async fn check_results(
        &self,
        id: RollbackId,
        phase: rewind_domain::CheckPhase,
    ) -> Result<Vec<rewind_domain::CheckResult>, LedgerError>;
    async fn append_timeline(
        &self,
        id: RollbackId,
        entry: TimelineEntry,
    ) -> Result<(), LedgerError>;
    /// Rollbacks created for `app` since `since` (the breaker).
    async fn count_rollbacks_since(
        &self,
        app: &AppRef,
        since: DateTime<Utc>,
    ) -> Result<u64, LedgerError>;
    async fn rollback_by_pr(&self, number: u64) -> Result<Option<Rollback>, LedgerError>;
    async fn rollback_by_branch(&self, branch: &str) -> Result<Option<Rollback>, LedgerError>;

    // --- audit ------------------------------------------------------------

    /// Appends to the audit log (it has no update or delete).
    async fn audit(&self, entry: &AuditEntry) -> Result<i64, LedgerError>;
    /// Newest first, optionally for one subject.
    async fn audit_log(
        &self,
        subject: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, LedgerError>;

    /// Newest first, filtered by app, actor and time (`GET /api/v1/audit`).
    async fn audit_search(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, LedgerError>;

    // --- API tokens and web UI sessions ------------------------------------

    /// Stores a token made at run time. A name in use: `Conflict`.
    async fn create_api_token(&self, token: &StoredApiToken) -> Result<(), LedgerError>;
    /// The stored token whose SHA-256 digest is `digest`.
    async fn api_token_by_digest(
        &self,
        digest: &str,
    ) -> Result<Option<StoredApiToken>, LedgerError>;
    /// By name.
    async fn list_api_tokens(&self) -> Result<Vec<StoredApiToken>, LedgerError>;
    /// Deletes the token and ends its web UI sessions; `false` when no
    /// token has that name.
    async fn revoke_api_token(&self, name: &str) -> Result<bool, LedgerError>;
    /// How many tokens are stored (any at all closes an open API).
    async fn api_token_count(&self) -> Result<u64, LedgerError>;
    async fn create_ui_session(&self, session: &UiSession) -> Result<(), LedgerError>;
    /// The unexpired session whose id has digest `digest`.
    async fn ui_session(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UiSession>, LedgerError>;
    async fn delete_ui_session(&self, digest: &str) -> Result<(), LedgerError>;

    // --- jobs -------------------------------------------------------------

    /// Enqueues a job. With a `dedup_key` that a queued job already has,
    /// no job is added and `None` is returned; the queued one becomes due
    /// no later than `run_at`. A running job does not count: it may have
    /// read the state before the change that needs another run.
    async fn enqueue(
        &self,
        kind: &str,
        payload: serde_json::Value,
        dedup_key: Option<String>,
        run_at: DateTime<Utc>,
    ) -> Result<Option<i64>, LedgerError>;
    /// Enqueues a typed job with its dedup key
    /// ([`JobPayload::dedup_key`]); `None` when an equal job is queued.
    async fn enqueue_job(
        &self,
        job: &JobPayload,
        run_at: DateTime<Utc>,
    ) -> Result<Option<i64>, LedgerError> {
        self.enqueue(job.kind(), job.fields(), Some(job.dedup_key()), run_at)
            .await
    }
    /// Claims the oldest due job of one of `kinds` (none given: nothing is
    /// claimed) that is queued or whose lease expired, for `lease`.
    async fn claim(
        &self,
        worker_id: &str,
        kinds: &[&str],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Job>, LedgerError>;
    /// [`Ledger::claim`], and in the same transaction up to `max_siblings`
    /// more due jobs that run with the claimed one under its app's hold:
    /// the other queued `resolve_deployment` jobs of the same app, oldest
    /// first (none for other kinds). The claimed job comes first; finish
    /// it last, as its end releases the app. Empty when nothing is due.
    async fn claim_with_siblings(
        &self,
        worker_id: &str,
        kinds: &[&str],
        lease: Duration,
        now: DateTime<Utc>,
        max_siblings: usize,
    ) -> Result<Vec<Job>, LedgerError>;
    /// Marks these jobs done in one transaction; answers how many this
    /// worker still held (another took the others when their lease ran out).
    async fn complete_many(&self, job_ids: &[i64], worker_id: &str) -> Result<u64, LedgerError>;
    /// Marks the job done. `NotFound` when this worker does not hold it.
    async fn complete(&self, job_id: i64, worker_id: &str) -> Result<(), LedgerError>;
    /// Records a failure: with `retry_at` and attempts left the job is
    /// queued again for then, else it is `dead`. Returns the new state.
    async fn fail(
        &self,
        job_id: i64,
        worker_id: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<crate::JobState, LedgerError>;
    /// Extends the lease of a job this worker is running, from now.
    /// `NotFound` when the job is no longer this worker's (its lease ran
    /// out and another worker took it).
    async fn renew(&self, job_id: i64, worker_id: &str, lease: Duration)
    -> Result<(), LedgerError>;
    /// Hands back every job this worker holds (graceful shutdown).
    async fn release(&self, worker_id: &str) -> Result<u64, LedgerError>;
    async fn job(&self, id: i64) -> Result<Option<Job>, LedgerError>;
    async fn job_counts(&self) -> Result<Vec<JobCount>, LedgerError>;

    // --- forge events -----------------------------------------------------

    /// Oldest first.
    async fn forge_events_for_pr(&self, number: u64) -> Result<Vec<ForgeEventRecord>, LedgerError>;

    /// One forge event by id (the `forge_event` job's payload names it).
    async fn forge_event(&self, id: i64) -> Result<Option<ForgeEventRecord>, LedgerError>;

    /// How many rollbacks are in each state (for `/metrics`).
    async fn rollback_counts(&self) -> Result<Vec<(RollbackState, u64)>, LedgerError>;

    // --- in-cluster rollbacks ---------------------------------------------

    /// Rollbacks the cluster did on its own (Flagger, Argo Rollouts) for
    /// `app`, newest first; on one cluster when `cluster` is given.
    async fn cluster_rollbacks(
        &self,
        app: &AppName,
        cluster: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredClusterRollback>, LedgerError>;

    /// One in-cluster rollback by id.
    async fn cluster_rollback(&self, id: i64)
    -> Result<Option<StoredClusterRollback>, LedgerError>;

    // --- retention --------------------------------------------------------

    /// Deletes webhook delivery records received before `before` and
    /// finished (`done`, `dead`) jobs last changed before it.
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<crate::Pruned, LedgerError>;

    /// Enqueues a job unless one with `dedup_key` was created after
    /// `now - every`, in any state: periodic work, once per period across
    /// replicas. `None` when it was not enqueued.
    async fn enqueue_periodic(
        &self,
        kind: &str,
        payload: serde_json::Value,
        dedup_key: &str,
        every: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, LedgerError>;
}
