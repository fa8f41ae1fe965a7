//! The job loop and the ticker. Workers claim jobs from the ledger with a
//! lease, run them, and complete, retry (with backoff) or give up; on
//! shutdown they stop claiming and release what they hold.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rewind_ledger::{Job, JobPayload, backoff, job_kind};
use tokio_util::sync::CancellationToken;

use crate::{ADVANCE_ROLLBACK, Engine, EngineError};

/// Every job kind the engine runs.
pub const JOB_KINDS: &[&str] = &[
    ADVANCE_ROLLBACK,
    job_kind::RESOLVE_DEPLOYMENT,
    job_kind::ALERT_FIRED,
    job_kind::FORGE_EVENT,
    job_kind::CLUSTER_ROLLED_BACK,
    job_kind::DRIFT,
    crate::NOTIFY,
    crate::RETENTION,
];

impl Engine {
    /// Runs one job.
    pub async fn run_job(&self, job: &Job) -> Result<(), EngineError> {
        // Notifications carry the engine's own message shape, which the
        // ledger's typed payloads do not know.
        if job.kind == crate::NOTIFY {
            return self.deliver_notification(&job.payload).await;
        }
        if job.kind == crate::RETENTION {
            return self.retention_job(&job.payload).await;
        }
        if job.kind == job_kind::DRIFT {
            return self.drift_began(&job.payload).await;
        }
        let payload = JobPayload::of(job).map_err(|e| EngineError::Invalid(e.to_string()))?;
        match payload {
            JobPayload::AdvanceRollback { rollback_id } => self.advance(rollback_id).await,
            JobPayload::ResolveDeployment { deployment_id, .. } => {
                self.resolve_deployment(deployment_id).await
            }
            JobPayload::AlertFired { alert_id, .. } => self.alert_fired(alert_id).await,
            JobPayload::ForgeEvent { forge_event_id, .. } => self.forge_event(forge_event_id).await,
            JobPayload::ClusterRolledBack {
                cluster_rollback_id,
                ..
            } => self.cluster_rolled_back(cluster_rollback_id).await,
        }
    }

    /// Claims and runs jobs until there are none due; answers how many ran.
    pub async fn drain(&self) -> Result<usize, EngineError> {
        self.drain_until(&CancellationToken::new()).await
    }

    /// As [`Engine::drain`], but claims nothing more once `stop` fires: a
    /// shutdown waits for the job in hand, not for the whole queue (a
    /// fleet's first reports are thousands of jobs; Kubernetes would kill
    /// the pod at the end of its grace period instead).
    pub async fn drain_until(&self, stop: &CancellationToken) -> Result<usize, EngineError> {
        let lease = self.settings.database.job_lease.get();
        let mut ran = 0;
        while !stop.is_cancelled() {
            let mut claimed = self
                .ledger
                .claim_with_siblings(&self.worker_id, JOB_KINDS, lease, Utc::now(), MAX_SIBLINGS)
                .await?
                .into_iter();
            let Some(job) = claimed.next() else {
                break;
            };
            let siblings: Vec<Job> = claimed.collect();
            if siblings.is_empty() {
                let result = self
                    .run_leased(std::slice::from_ref(&job), self.run_job(&job), lease)
                    .await;
                self.finish(&job, result).await?;
                ran += 1;
            } else {
                ran += 1 + siblings.len();
                self.run_together(job, siblings, lease).await?;
            }
        }
        Ok(ran)
    }

    /// Runs a lead job and the siblings claimed with it (resolves of one
    /// app) as one piece of work, then finishes each: the siblings first,
    /// the lead last, as its end releases the app's hold.
    async fn run_together(
        &self,
        lead: Job,
        siblings: Vec<Job>,
        lease: Duration,
    ) -> Result<(), EngineError> {
        let mut jobs = vec![lead];
        jobs.extend(siblings);
        let ids: Option<Vec<i64>> = jobs
            .iter()
            .map(|job| match JobPayload::of(job) {
                Ok(JobPayload::ResolveDeployment { deployment_id, .. }) => Some(deployment_id),
                _ => None,
            })
            .collect();
        let Some(ids) = ids else {
            // Not what a claim takes together: each on its own, so each
            // gets its own answer (a payload that does not parse, too).
            for job in jobs[1..].iter().chain(&jobs[..1]) {
                let result = self
                    .run_leased(std::slice::from_ref(job), self.run_job(job), lease)
                    .await;
                self.finish(job, result).await?;
            }
            return Ok(());
        };
        let answers = self
            .run_leased(&jobs, self.resolve_deployments(&ids), lease)
            .await;
        let mut done = Vec::with_capacity(jobs.len());
        let mut lead_failure = None;
        for (i, (job, answer)) in jobs.iter().zip(answers).enumerate() {
            match answer {
                Ok(()) => done.push(job.id),
                Err(e) if i == 0 => lead_failure = Some(e),
                Err(e) => self.finish(job, Err(e)).await?,
            }
        }
        let held = self.ledger.complete_many(&done, &self.worker_id).await?;
        if held < done.len() as u64 {
            tracing::warn!(
                jobs = done.len(),
                held,
                "some jobs' leases ran out while they ran; another worker runs them again"
            );
        }
        for job in &jobs {
            if done.contains(&job.id) {
                metrics::counter!("rewind_jobs_run_total", "kind" => job.kind.clone()).increment(1);
            }
        }
        if let Some(e) = lead_failure {
            self.finish(&jobs[0], Err(e)).await?;
        }
        Ok(())
    }

    /// Runs `work` for `jobs`, renewing their leases every third of `lease`
    /// while it runs: only a worker that died stops renewing, so only its
    /// jobs are taken over by another replica once the lease expires.
    async fn run_leased<T>(
        &self,
        jobs: &[Job],
        work: impl Future<Output = T>,
        lease: Duration,
    ) -> T {
        tokio::pin!(work);
        let mut renew = tokio::time::interval((lease / 3).max(Duration::from_millis(100)));
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renew.tick().await; // the first tick is immediate; the claim just set the lease
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = renew.tick() => {
                    for job in jobs {
                        if let Err(e) = self.ledger.renew(job.id, &self.worker_id, lease).await {
                            // The step itself is safe to run twice; say so and go on.
                            tracing::warn!(job.id = job.id, error = %e, "cannot renew the job's lease");
                        }
                    }
                }
            }
        }
    }

    async fn finish(&self, job: &Job, result: Result<(), EngineError>) -> Result<(), EngineError> {
        match result {
            Ok(()) => self.ledger.complete(job.id, &self.worker_id).await?,
            Err(e) => {
                let permanent = matches!(
                    e,
                    EngineError::Invalid(_) | EngineError::NotFound(_) | EngineError::Refused(_)
                );
                tracing::warn!(job.id = job.id, job.kind = %job.kind, error = %e, permanent, "job failed");
                let wait = if job.kind == crate::NOTIFY {
                    crate::notify::backoff(job.attempts)
                } else {
                    backoff(job.attempts)
                };
                let retry_at = (!permanent).then(|| {
                    Utc::now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(60))
                });
                self.note_step_failure(job, &e, retry_at).await;
                self.ledger
                    .fail(job.id, &self.worker_id, &e.to_string(), retry_at)
                    .await?;
            }
        }
        metrics::counter!("rewind_jobs_run_total", "kind" => job.kind.clone()).increment(1);
        Ok(())
    }
}

/// Most jobs a claim takes beside its lead (resolves of the same app).
/// Argo CD reports ten history entries at a time; a few reports' worth
/// keeps one piece of work well inside a lease.
const MAX_SIBLINGS: usize = 31;

/// Jobs in one drain after which the worker gives freed memory back.
const IDLE_TRIM_AFTER: usize = 100;

/// Runs jobs until `cancel` fires, then releases this worker's claims.
/// `wake` is notified when new work was recorded, so jobs start at once.
pub async fn run_worker(
    engine: Arc<Engine>,
    wake: Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
    poll: Duration,
) {
    while !cancel.is_cancelled() {
        match engine.drain_until(&cancel).await {
            // The queue just emptied after a burst (a fleet's first
            // reports: thousands of resolves); glibc keeps what those
            // freed unless asked, so an idle rewind would stay at its peak.
            Ok(ran) if ran >= IDLE_TRIM_AFTER => {
                tokio::task::spawn_blocking(rewind_git::limits::release_free_memory);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "job loop error"),
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
    match engine.ledger.release(&engine.worker_id).await {
        Ok(n) => tracing::info!(jobs.released = n, "worker stopped"),
        Err(e) => tracing::warn!(error = %e, "cannot release jobs on shutdown"),
    }
}

/// Runs the clock every `every` until `cancel` fires.
pub async fn run_ticker(engine: Arc<Engine>, cancel: CancellationToken, every: Duration) {
    loop {
        if let Err(e) = engine.tick(Utc::now()).await {
            tracing::warn!(error = %e, "tick failed");
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
}
