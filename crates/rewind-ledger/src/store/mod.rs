//! [`SqlLedger`]: the [`Ledger`] over SQLite or PostgreSQL. Each submodule
//! holds the statements of one table group as functions over a [`Conn`],
//! so the same function runs alone or inside a larger transaction.

pub(crate) mod alerts;
mod apps;
mod audit;
mod batch;
mod batch_health;
mod checks;
mod cluster_rollbacks;
mod deliveries;
pub(crate) mod deployments;
mod forge;
mod jobs;
mod proof;
mod retention;
mod rollbacks;
mod tokens;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use rewind_domain::{
    App, AppName, AppRef, Approval, ClusterName, CommitId, ConfigHash, Deployment, Health,
    PullRequestRef, Rollback, RollbackId, RollbackState, SyncStatus, TimelineEntry,
};

use crate::db::{Conn, Dialect, Pools, sql};
use crate::error::is_retryable;
use crate::{
    AppSummary, AuditEntry, AuditFilter, AuditRecord, Delivery, DeliveryOutcome, ForgeEventRecord,
    Job, JobCount, JobPayload, JobState, Ledger, LedgerError, StoredAlert, StoredApiToken,
    StoredClusterRollback, UiSession,
};

/// Times a delivery is tried again inside its batch after a deadlock.
const DEADLOCK_RETRIES: usize = 2;

/// The ledger over a SQLite or PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct SqlLedger {
    pub(crate) db: Pools,
}

impl SqlLedger {
    pub(crate) fn new(db: Pools) -> Self {
        SqlLedger { db }
    }

    /// Closes the pools (tests that drop their database first).
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Changes a rollback's approvals by compare-and-set on its version:
    /// read, let `change` edit (it answers whether it changed anything),
    /// write only if nobody wrote in between, else read again.
    async fn change_approvals(
        &self,
        id: RollbackId,
        change: impl Fn(&mut Vec<Approval>, RollbackState) -> Result<bool, LedgerError> + Send,
    ) -> Result<bool, LedgerError> {
        const TRIES: usize = 20;
        for _ in 0..TRIES {
            let mut tx = self.db.begin().await?;
            let mut c = tx.conn();
            let (mut approvals, state, version) = rollbacks::approvals_of(&mut c, id)
                .await?
                .ok_or_else(|| LedgerError::not_found("rollback", id))?;
            if !change(&mut approvals, state)? {
                return Ok(false);
            }
            if rollbacks::set_approvals_if(&mut c, id, &approvals, version, Utc::now()).await? {
                tx.commit().await?;
                return Ok(true);
            }
            let _ = tx.rollback().await;
        }
        Err(LedgerError::conflict(format!(
            "rollback {id} changed {TRIES} times while its approvals were written; try again"
        )))
    }

    /// Runs a batch in the open transaction, one savepoint per delivery.
    async fn apply_batch(
        c: &mut Conn<'_>,
        batch: &[Delivery],
    ) -> Result<Vec<Result<DeliveryOutcome, LedgerError>>, LedgerError> {
        let mut results = Vec::with_capacity(batch.len());
        for delivery in batch {
            let mut tries = 0;
            let result = loop {
                c.execute(sql("SAVEPOINT rewind_delivery")).await?;
                let result = deliveries::apply(c, delivery).await;
                let keep = matches!(result, Ok(DeliveryOutcome::Recorded { .. }));
                if !keep {
                    // Duplicates leave nothing behind either: their
                    // idempotency row was not inserted, but nothing else
                    // should be half-applied.
                    c.execute(sql("ROLLBACK TO SAVEPOINT rewind_delivery"))
                        .await?;
                }
                c.execute(sql("RELEASE SAVEPOINT rewind_delivery")).await?;
                match result {
                    Err(e) if is_retryable(&e) && tries < DEADLOCK_RETRIES => tries += 1,
                    other => break other,
                }
            };
            if let Err(e) = &result {
                tracing::warn!(
                    delivery.source = %delivery.source,
                    delivery.key = %delivery.key,
                    error = %e,
                    "delivery not recorded"
                );
            }
            results.push(result);
        }
        Ok(results)
    }

    /// The whole batch in one transaction, set-based (`batch.rs`), without
    /// savepoints; `None` (and nothing written) when any delivery fails.
    async fn record_together(
        &self,
        batch: &[Delivery],
    ) -> Result<Option<Vec<Result<DeliveryOutcome, LedgerError>>>, LedgerError> {
        let mut tx = self.db.begin().await?;
        match batch::apply_set(&mut tx.conn(), batch).await {
            Ok(outcomes) => {
                tx.commit().await?;
                Ok(Some(outcomes))
            }
            Err(e) => {
                tracing::debug!(error = %e, "batch not recorded together; one by one instead");
                let _ = tx.rollback().await;
                Ok(None)
            }
        }
    }

    /// Records one delivery with the per-delivery code alone, in a
    /// savepoint, as the fallback path does: the reference the set-based
    /// path is tested against.
    #[cfg(feature = "testing")]
    pub async fn record_one_by_one(
        &self,
        delivery: Delivery,
    ) -> Result<DeliveryOutcome, LedgerError> {
        let mut tx = self.db.begin().await?;
        let result = Self::apply_batch(&mut tx.conn(), std::slice::from_ref(&delivery))
            .await?
            .pop()
            .unwrap_or_else(|| Err(LedgerError::Invalid("empty batch".into())));
        tx.commit().await?;
        result
    }

    async fn summary(c: &mut Conn<'_>, app: App) -> Result<AppSummary, LedgerError> {
        let app_ref = app.app_ref();
        let current = deployments::current(c, &app_ref).await?;
        let known_good = match &current {
            Some(d) if d.known_good => Some(d.clone()),
            _ => deployments::newest_known_good(c, &app_ref).await?,
        };
        Ok(AppSummary {
            app,
            current,
            known_good,
        })
    }
}

#[async_trait]
impl Ledger for SqlLedger {
    fn backend(&self) -> &'static str {
        match self.db.dialect() {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    async fn ping(&self) -> Result<(), LedgerError> {
        let mut c = self.db.read().await?;
        c.conn().fetch_one(sql("SELECT 1 AS one")).await?;
        Ok(())
    }

    async fn ping_write(&self) -> Result<(), LedgerError> {
        // A write that changes no row, rolled back: readiness means "a
        // webhook would be recorded now", which a read proves nothing
        // about (SQLite's one writer may be stuck or its file read-only; a
        // PostgreSQL standby or read-only database answers SELECT but
        // refuses UPDATE, even of no rows).
        let mut tx = self.db.begin().await?;
        tx.conn()
            .execute(sql("UPDATE jobs SET attempts = attempts WHERE 1 = 0"))
            .await?;
        tx.rollback().await
    }

    async fn record_delivery(&self, delivery: Delivery) -> Result<DeliveryOutcome, LedgerError> {
        self.record_deliveries(vec![delivery])
            .await
            .pop()
            .unwrap_or_else(|| Err(LedgerError::Invalid("empty batch".into())))
    }

    async fn record_deliveries(
        &self,
        batch: Vec<Delivery>,
    ) -> Vec<Result<DeliveryOutcome, LedgerError>> {
        let everyone = |e: LedgerError| vec![Err(e); batch.len()];
        // Nearly always every delivery applies (a duplicate writes nothing),
        // so the batch first runs set-based, without savepoints: a few
        // multi-row statements for the whole batch. If one fails, that transaction is rolled back and the
        // batch runs again with a savepoint per delivery, so the others land.
        match self.record_together(&batch).await {
            Ok(Some(results)) => {
                for (delivery, result) in batch.iter().zip(&results) {
                    if let Err(e) = result {
                        tracing::warn!(
                            delivery.source = %delivery.source,
                            delivery.key = %delivery.key,
                            error = %e,
                            "delivery not recorded"
                        );
                    }
                }
                return results;
            }
            Ok(None) => {}
            Err(e) => return everyone(e),
        }
        let mut tx = match self.db.begin().await {
            Ok(tx) => tx,
            Err(e) => return everyone(e),
        };
        let results = match Self::apply_batch(&mut tx.conn(), &batch).await {
            Ok(results) => results,
            Err(e) => {
                // The connection itself failed: best effort to end the
                // transaction; nothing of the batch is committed.
                let _ = tx.rollback().await;
                return everyone(e);
            }
        };
        match tx.commit().await {
            Ok(()) => results,
            Err(e) => everyone(e),
        }
    }

    async fn upsert_app(&self, app: &App) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        apps::upsert(&mut tx.conn(), app).await?;
        tx.commit().await
    }

    async fn get_app(&self, app: &AppRef) -> Result<Option<App>, LedgerError> {
        apps::get(&mut self.db.read().await?.conn(), app).await
    }

    async fn app_clusters(&self, name: &AppName) -> Result<Vec<ClusterName>, LedgerError> {
        apps::clusters_of(&mut self.db.read().await?.conn(), name).await
    }

    async fn list_apps(&self) -> Result<Vec<AppSummary>, LedgerError> {
        let mut pooled = self.db.read().await?;
        let mut c = pooled.conn();
        let apps = apps::list(&mut c).await?;
        let (mut current, mut known_good) =
            deployments::current_and_known_good_of_all(&mut c).await?;
        Ok(apps
            .into_iter()
            .map(|app| {
                let key = app.app_ref().to_string();
                AppSummary {
                    current: current.remove(&key),
                    known_good: known_good.remove(&key),
                    app,
                }
            })
            .collect())
    }

    async fn app_summary(&self, app: &AppRef) -> Result<Option<AppSummary>, LedgerError> {
        let mut pooled = self.db.read().await?;
        let mut c = pooled.conn();
        match apps::get(&mut c, app).await? {
            Some(found) => Ok(Some(Self::summary(&mut c, found).await?)),
            None => Ok(None),
        }
    }

    async fn list_apps_page(
        &self,
        after: Option<&AppRef>,
        limit: u32,
    ) -> Result<Vec<AppSummary>, LedgerError> {
        let mut pooled = self.db.read().await?;
        let mut c = pooled.conn();
        let mut out = Vec::new();
        for app in apps::page(&mut c, after, limit).await? {
            out.push(Self::summary(&mut c, app).await?);
        }
        Ok(out)
    }

    async fn app_paths(&self) -> Result<Vec<(AppRef, String)>, LedgerError> {
        apps::paths(&mut self.db.read().await?.conn()).await
    }

    async fn set_app_hold(
        &self,
        app: &AppRef,
        held_since: Option<DateTime<Utc>>,
    ) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        apps::set_hold(&mut tx.conn(), app, held_since).await?;
        tx.commit().await
    }

    async fn current_deployment(&self, app: &AppRef) -> Result<Option<Deployment>, LedgerError> {
        deployments::current(&mut self.db.read().await?.conn(), app).await
    }

    async fn history(&self, app: &AppRef, limit: u32) -> Result<Vec<Deployment>, LedgerError> {
        deployments::history(&mut self.db.read().await?.conn(), app, limit).await
    }

    async fn history_page(
        &self,
        app: &AppRef,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Deployment>, LedgerError> {
        deployments::history_before(&mut self.db.read().await?.conn(), app, before, limit).await
    }

    async fn deployment(&self, id: i64) -> Result<Option<Deployment>, LedgerError> {
        deployments::by_id(&mut self.db.read().await?.conn(), id).await
    }

    async fn deployments(&self, ids: &[i64]) -> Result<Vec<Deployment>, LedgerError> {
        deployments::by_ids(&mut self.db.read().await?.conn(), ids).await
    }

    async fn deployment_by_revision(
        &self,
        app: &AppRef,
        cluster_revision: i64,
    ) -> Result<Option<Deployment>, LedgerError> {
        deployments::by_revision(&mut self.db.read().await?.conn(), app, cluster_revision).await
    }

    async fn deployments_by_commit(
        &self,
        app: &AppRef,
        commit: &CommitId,
    ) -> Result<Vec<Deployment>, LedgerError> {
        deployments::by_commit(&mut self.db.read().await?.conn(), app, commit).await
    }

    async fn deployment_at(
        &self,
        app: &AppRef,
        at: DateTime<Utc>,
    ) -> Result<Option<Deployment>, LedgerError> {
        deployments::at(&mut self.db.read().await?.conn(), app, at).await
    }

    async fn last_known_good_before(
        &self,
        app: &AppRef,
        cluster_revision: i64,
    ) -> Result<Option<Deployment>, LedgerError> {
        deployments::last_known_good_before(
            &mut self.db.read().await?.conn(),
            app,
            cluster_revision,
        )
        .await
    }

    async fn set_deployment_resolution(
        &self,
        id: i64,
        tree: String,
        config_hash: ConfigHash,
        images: Vec<String>,
    ) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        deployments::set_resolution(&mut tx.conn(), id, tree, &config_hash, &images).await?;
        tx.commit().await
    }

    async fn set_deployment_resolutions(
        &self,
        resolutions: &[crate::Resolution],
    ) -> Result<(), LedgerError> {
        if resolutions.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        for r in resolutions {
            deployments::set_resolution(
                &mut tx.conn(),
                r.deployment_id,
                r.tree.clone(),
                &r.config_hash,
                &r.images,
            )
            .await?;
        }
        tx.commit().await
    }

    async fn update_health(
        &self,
        id: i64,
        health: Health,
        sync: Option<SyncStatus>,
        at: DateTime<Utc>,
    ) -> Result<Deployment, LedgerError> {
        let mut tx = self.db.begin().await?;
        let mut c = tx.conn();
        if !deployments::set_health(&mut c, id, health, sync, at).await? {
            return Err(LedgerError::not_found("deployment", id));
        }
        let deployment = deployments::by_id(&mut c, id)
            .await?
            .ok_or_else(|| LedgerError::not_found("deployment", id))?;
        tx.commit().await?;
        Ok(deployment)
    }

    async fn promote_known_good(
        &self,
        now: DateTime<Utc>,
        healthy_for: Duration,
    ) -> Result<Vec<i64>, LedgerError> {
        let mut tx = self.db.begin().await?;
        let ids = deployments::promote_known_good(&mut tx.conn(), now, healthy_for).await?;
        tx.commit().await?;
        for id in &ids {
            tracing::info!(deployment.id = id, "deployment is known good");
        }
        Ok(ids)
    }

    async fn promote_by_history(
        &self,
        app: &AppRef,
        healthy_for: Duration,
    ) -> Result<Vec<i64>, LedgerError> {
        let mut tx = self.db.begin().await?;
        let ids = deployments::promote_by_history(&mut tx.conn(), app, healthy_for).await?;
        tx.commit().await?;
        for id in &ids {
            tracing::info!(app.name = %app, deployment.id = id, "deployment is known good by history");
        }
        Ok(ids)
    }

    async fn alerts_for_app(
        &self,
        app: &AppRef,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, LedgerError> {
        alerts::for_app(&mut self.db.read().await?.conn(), app, limit).await
    }

    async fn alert(&self, id: i64) -> Result<Option<StoredAlert>, LedgerError> {
        alerts::by_id(&mut self.db.read().await?.conn(), id).await
    }

    async fn firing_alerts(&self, app: &AppRef) -> Result<Vec<StoredAlert>, LedgerError> {
        alerts::firing(&mut self.db.read().await?.conn(), app).await
    }

    async fn insert_rollback(&self, rollback: &Rollback) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        let mut inserted = rollbacks::insert(&mut tx.conn(), rollback).await;
        if inserted.is_ok() && rollback.state == RollbackState::Proposed {
            let first_step = JobPayload::AdvanceRollback {
                rollback_id: rollback.id,
            };
            inserted = jobs::enqueue(
                &mut tx.conn(),
                first_step.kind(),
                &first_step.fields(),
                Some(&first_step.dedup_key()),
                // Due at once by the real clock, whatever time the
                // proposal was made at.
                Utc::now(),
                Utc::now(),
            )
            .await
            .map(|_| ());
        }
        match inserted {
            Ok(()) => tx.commit().await,
            Err(LedgerError::Conflict { reason, .. }) => {
                let _ = tx.rollback().await;
                // Which unique index refused it: the app's open rollback,
                // or the same id recorded before.
                let open =
                    rollbacks::open_for(&mut self.db.read().await?.conn(), &rollback.app_ref())
                        .await?
                        .map(|r| r.id);
                Err(LedgerError::Conflict {
                    reason: match open {
                        Some(id) => {
                            format!("app {} has an open rollback {id}", rollback.app_ref())
                        }
                        None => reason,
                    },
                    open_rollback: open,
                })
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn rollback(&self, id: RollbackId) -> Result<Option<Rollback>, LedgerError> {
        rollbacks::by_id(&mut self.db.read().await?.conn(), id).await
    }

    async fn open_rollback(&self, app: &AppRef) -> Result<Option<Rollback>, LedgerError> {
        rollbacks::open_for(&mut self.db.read().await?.conn(), app).await
    }

    async fn list_rollbacks(
        &self,
        app: Option<&AppRef>,
        state: Option<RollbackState>,
        limit: u32,
    ) -> Result<Vec<Rollback>, LedgerError> {
        rollbacks::list(&mut self.db.read().await?.conn(), app, state, None, limit).await
    }

    async fn list_rollbacks_page(
        &self,
        app: Option<&AppRef>,
        state: Option<RollbackState>,
        before: Option<RollbackId>,
        limit: u32,
    ) -> Result<Vec<Rollback>, LedgerError> {
        rollbacks::list(&mut self.db.read().await?.conn(), app, state, before, limit).await
    }

    async fn transition_rollback(
        &self,
        id: RollbackId,
        from: RollbackState,
        to: RollbackState,
        entry: TimelineEntry,
    ) -> Result<Rollback, LedgerError> {
        if !from.can_become(to) {
            return Err(LedgerError::Invalid(format!(
                "rollback cannot go from {from} to {to}"
            )));
        }
        let mut tx = self.db.begin().await?;
        let mut c = tx.conn();
        let state = rollbacks::state_of(&mut c, id)
            .await?
            .ok_or_else(|| LedgerError::not_found("rollback", id))?;
        if state != to {
            // Compare-and-set: the UPDATE only matches while the row is still
            // in `from`, also against a concurrent transition.
            if state != from || !rollbacks::set_state(&mut c, id, from, to, entry.at).await? {
                let now = rollbacks::state_of(&mut c, id).await?.unwrap_or(state);
                if now != to {
                    return Err(LedgerError::conflict(format!(
                        "rollback {id} is {now}, not {from}"
                    )));
                }
            } else {
                rollbacks::append(&mut c, id, &entry).await?;
                tracing::info!(
                    rollback.id = %id,
                    rollback.from = %from,
                    rollback.to = %to,
                    "rollback state changed"
                );
            }
        }
        let rollback = rollbacks::by_id(&mut c, id)
            .await?
            .ok_or_else(|| LedgerError::not_found("rollback", id))?;
        tx.commit().await?;
        Ok(rollback)
    }

    async fn add_approval(&self, id: RollbackId, approval: &Approval) -> Result<bool, LedgerError> {
        self.change_approvals(id, |approvals, state| {
            if !state.is_reviewable() {
                return Err(LedgerError::conflict(format!(
                    "rollback {id} is {state}; it can no longer be approved"
                )));
            }
            if approvals.iter().any(|a| a.by == approval.by) {
                return Ok(false);
            }
            approvals.push(approval.clone());
            Ok(true)
        })
        .await
    }

    async fn remove_approval(&self, id: RollbackId, by: &str) -> Result<bool, LedgerError> {
        self.change_approvals(id, |approvals, _| {
            let before = approvals.len();
            approvals.retain(|a| a.by != by);
            Ok(approvals.len() != before)
        })
        .await
    }

    async fn set_rollback_commit(
        &self,
        id: RollbackId,
        commit: &CommitId,
        branch: Option<&str>,
    ) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        rollbacks::set_commit(&mut tx.conn(), id, commit, branch, Utc::now()).await?;
        tx.commit().await
    }

    async fn set_rollback_pr(
        &self,
        id: RollbackId,
        pr: &PullRequestRef,
    ) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        rollbacks::set_pr(&mut tx.conn(), id, pr, Utc::now()).await?;
        tx.commit().await
    }

    async fn set_rollback_risks(
        &self,
        id: RollbackId,
        risks: &[rewind_domain::Risk],
    ) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        rollbacks::set_risks(&mut tx.conn(), id, risks, Utc::now()).await?;
        tx.commit().await
    }

    async fn set_merge_commit(&self, id: RollbackId, commit: &CommitId) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        rollbacks::set_merge_commit(&mut tx.conn(), id, commit, Utc::now()).await?;
        tx.commit().await
    }

    async fn record_check_result(
        &self,
        id: RollbackId,
        phase: rewind_domain::CheckPhase,
        result: &rewind_domain::CheckResult,
    ) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        let mut c = tx.conn();
        if rollbacks::state_of(&mut c, id).await?.is_none() {
            return Err(LedgerError::not_found("rollback", id));
        }
        checks::record(&mut c, id, phase, result).await?;
        tx.commit().await
    }

    async fn running_images(&self, deployment_id: i64) -> Result<Option<Vec<String>>, LedgerError> {
        proof::running_images(&mut self.db.read().await?.conn(), deployment_id).await
    }

    async fn verify_comment(&self, id: RollbackId) -> Result<Option<u64>, LedgerError> {
        proof::verify_comment(&mut self.db.read().await?.conn(), id).await
    }

    async fn set_verify_comment(&self, id: RollbackId, comment_id: u64) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        proof::set_verify_comment(&mut tx.conn(), id, comment_id).await?;
        tx.commit().await
    }

    async fn check_results(
        &self,
        id: RollbackId,
        phase: rewind_domain::CheckPhase,
    ) -> Result<Vec<rewind_domain::CheckResult>, LedgerError> {
        checks::for_rollback(&mut self.db.read().await?.conn(), &id.to_string(), phase).await
    }

    async fn append_timeline(
        &self,
        id: RollbackId,
        entry: TimelineEntry,
    ) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        let mut c = tx.conn();
        if rollbacks::state_of(&mut c, id).await?.is_none() {
            return Err(LedgerError::not_found("rollback", id));
        }
        rollbacks::append(&mut c, id, &entry).await?;
        tx.commit().await
    }

    async fn count_rollbacks_since(
        &self,
        app: &AppRef,
        since: DateTime<Utc>,
    ) -> Result<u64, LedgerError> {
        rollbacks::count_since(&mut self.db.read().await?.conn(), app, since).await
    }

    async fn rollback_by_pr(&self, number: u64) -> Result<Option<Rollback>, LedgerError> {
        rollbacks::by_pr(&mut self.db.read().await?.conn(), number).await
    }

    async fn rollback_by_branch(&self, branch: &str) -> Result<Option<Rollback>, LedgerError> {
        rollbacks::by_branch(&mut self.db.read().await?.conn(), branch).await
    }

    async fn audit(&self, entry: &AuditEntry) -> Result<i64, LedgerError> {
        let mut tx = self.db.begin().await?;
        let id = audit::append(&mut tx.conn(), entry).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn audit_log(
        &self,
        subject: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, LedgerError> {
        audit::log(&mut self.db.read().await?.conn(), subject, limit).await
    }

    async fn audit_search(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, LedgerError> {
        audit::search(&mut self.db.read().await?.conn(), filter).await
    }

    async fn create_api_token(&self, token: &StoredApiToken) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        tokens::create(&mut tx.conn(), token).await?;
        tx.commit().await
    }

    async fn api_token_by_digest(
        &self,
        digest: &str,
    ) -> Result<Option<StoredApiToken>, LedgerError> {
        tokens::by_digest(&mut self.db.read().await?.conn(), digest).await
    }

    async fn list_api_tokens(&self) -> Result<Vec<StoredApiToken>, LedgerError> {
        tokens::list(&mut self.db.read().await?.conn()).await
    }

    async fn revoke_api_token(&self, name: &str) -> Result<bool, LedgerError> {
        let mut tx = self.db.begin().await?;
        let revoked = tokens::revoke(&mut tx.conn(), name).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn api_token_count(&self) -> Result<u64, LedgerError> {
        tokens::count(&mut self.db.read().await?.conn()).await
    }

    async fn create_ui_session(&self, session: &UiSession) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        tokens::create_session(&mut tx.conn(), session).await?;
        tx.commit().await
    }

    async fn ui_session(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UiSession>, LedgerError> {
        tokens::session(&mut self.db.read().await?.conn(), digest, now).await
    }

    async fn delete_ui_session(&self, digest: &str) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        tokens::delete_session(&mut tx.conn(), digest).await?;
        tx.commit().await
    }

    async fn enqueue(
        &self,
        kind: &str,
        payload: serde_json::Value,
        dedup_key: Option<String>,
        run_at: DateTime<Utc>,
    ) -> Result<Option<i64>, LedgerError> {
        let mut tx = self.db.begin().await?;
        let id = jobs::enqueue(
            &mut tx.conn(),
            kind,
            &payload,
            dedup_key.as_deref(),
            run_at,
            Utc::now(),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn claim(
        &self,
        worker_id: &str,
        kinds: &[&str],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Job>, LedgerError> {
        let mut tx = self.db.begin().await?;
        let job = jobs::claim(&mut tx.conn(), worker_id, kinds, lease, now).await?;
        tx.commit().await?;
        Ok(job)
    }

    async fn claim_with_siblings(
        &self,
        worker_id: &str,
        kinds: &[&str],
        lease: Duration,
        now: DateTime<Utc>,
        max_siblings: usize,
    ) -> Result<Vec<Job>, LedgerError> {
        let mut tx = self.db.begin().await?;
        let Some(lead) = jobs::claim(&mut tx.conn(), worker_id, kinds, lease, now).await? else {
            tx.commit().await?;
            return Ok(Vec::new());
        };
        let siblings =
            jobs::claim_siblings(&mut tx.conn(), &lead, worker_id, max_siblings, now).await?;
        tx.commit().await?;
        let mut jobs = vec![lead];
        jobs.extend(siblings);
        Ok(jobs)
    }

    async fn complete_many(&self, job_ids: &[i64], worker_id: &str) -> Result<u64, LedgerError> {
        let mut tx = self.db.begin().await?;
        let n = jobs::complete_many(&mut tx.conn(), job_ids, worker_id, Utc::now()).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn complete(&self, job_id: i64, worker_id: &str) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        jobs::complete(&mut tx.conn(), job_id, worker_id, Utc::now()).await?;
        tx.commit().await
    }

    async fn fail(
        &self,
        job_id: i64,
        worker_id: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<JobState, LedgerError> {
        let mut tx = self.db.begin().await?;
        let state = jobs::fail(
            &mut tx.conn(),
            job_id,
            worker_id,
            error,
            retry_at,
            Utc::now(),
        )
        .await?;
        tx.commit().await?;
        Ok(state)
    }

    async fn renew(
        &self,
        job_id: i64,
        worker_id: &str,
        lease: Duration,
    ) -> Result<(), LedgerError> {
        let mut tx = self.db.begin().await?;
        jobs::renew(&mut tx.conn(), job_id, worker_id, lease, Utc::now()).await?;
        tx.commit().await
    }

    async fn release(&self, worker_id: &str) -> Result<u64, LedgerError> {
        let mut tx = self.db.begin().await?;
        let n = jobs::release(&mut tx.conn(), worker_id, Utc::now()).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn job(&self, id: i64) -> Result<Option<Job>, LedgerError> {
        jobs::by_id(&mut self.db.read().await?.conn(), id).await
    }

    async fn job_counts(&self) -> Result<Vec<JobCount>, LedgerError> {
        jobs::counts(&mut self.db.read().await?.conn()).await
    }

    async fn forge_events_for_pr(&self, number: u64) -> Result<Vec<ForgeEventRecord>, LedgerError> {
        forge::for_pr(&mut self.db.read().await?.conn(), number).await
    }

    async fn forge_event(&self, id: i64) -> Result<Option<ForgeEventRecord>, LedgerError> {
        forge::by_id(&mut self.db.read().await?.conn(), id).await
    }

    async fn rollback_counts(&self) -> Result<Vec<(RollbackState, u64)>, LedgerError> {
        rollbacks::counts(&mut self.db.read().await?.conn()).await
    }

    async fn cluster_rollbacks(
        &self,
        app: &AppName,
        cluster: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredClusterRollback>, LedgerError> {
        cluster_rollbacks::for_app(&mut self.db.read().await?.conn(), app, cluster, limit).await
    }

    async fn cluster_rollback(
        &self,
        id: i64,
    ) -> Result<Option<StoredClusterRollback>, LedgerError> {
        cluster_rollbacks::by_id(&mut self.db.read().await?.conn(), id).await
    }

    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<crate::Pruned, LedgerError> {
        let mut tx = self.db.begin().await?;
        let pruned = retention::prune(&mut tx.conn(), before).await?;
        tx.commit().await?;
        Ok(pruned)
    }

    async fn enqueue_periodic(
        &self,
        kind: &str,
        payload: serde_json::Value,
        dedup_key: &str,
        every: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, LedgerError> {
        let every = chrono::Duration::from_std(every)
            .map_err(|_| LedgerError::Invalid("period is too long".into()))?;
        let mut tx = self.db.begin().await?;
        // Due at once by the real clock, whatever `now` the caller simulates.
        let id = retention::enqueue_unless_since(
            &mut tx.conn(),
            kind,
            &payload,
            dedup_key,
            now - every,
            Utc::now(),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }
}

/// Gives `app` a row if it has none (benchmark seeding).
#[cfg(feature = "testing")]
pub(crate) async fn ensure_app(
    c: &mut Conn<'_>,
    app: &AppRef,
    now: DateTime<Utc>,
) -> Result<(), LedgerError> {
    apps::ensure_and_lock(c, app, rewind_domain::Source::Argocd, now).await
}
