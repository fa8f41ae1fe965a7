//! Recording a webhook delivery: the idempotency row, every observation it
//! carries, and the follow-up jobs, inside the caller's transaction.

use std::collections::BTreeSet;

use rewind_domain::{
    AlertStatus, AppRef, ClusterName, ClusterRolledBack, CommitId, Deployment, HealthObserved,
    Observation, RollbackSender, SyncStatus,
};

use crate::db::{Conn, sql};
use crate::store::{alerts, apps, cluster_rollbacks, deployments, forge, jobs, proof};
use crate::{Delivery, DeliveryOutcome, JobPayload, LedgerError, job_kind};

/// Longest accepted delivery key; senders' ids are far shorter, and a
/// digest of the body is 64 hex digits.
const MAX_KEY_LEN: usize = 512;

pub(crate) fn validate(d: &Delivery) -> Result<(), LedgerError> {
    if d.source.is_empty() || d.key.is_empty() {
        return Err(LedgerError::Invalid(
            "a delivery needs a source and a key".into(),
        ));
    }
    if d.key.len() > MAX_KEY_LEN || d.source.len() > MAX_KEY_LEN {
        return Err(LedgerError::Invalid(format!(
            "delivery key longer than {MAX_KEY_LEN} bytes"
        )));
    }
    Ok(())
}

/// Applies one delivery. Returns `Duplicate` without changing anything else
/// when `(source, key)` was recorded before; the caller then rolls back.
pub(crate) async fn apply(c: &mut Conn<'_>, d: &Delivery) -> Result<DeliveryOutcome, LedgerError> {
    validate(d)?;
    let now = d.received_at;
    // In PostgreSQL a concurrent transaction inserting the same key makes
    // this statement wait for it; once it commits, DO NOTHING applies and
    // this delivery is a duplicate. That is the whole concurrency story.
    let claim = sql(
        "INSERT INTO webhook_deliveries (source, key, received_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (source, key) DO NOTHING RETURNING id",
    )
    .bind(d.source.as_str())
    .bind(d.key.as_str())
    .bind(now);
    if c.fetch_optional(claim).await?.is_none() {
        return Ok(DeliveryOutcome::Duplicate);
    }
    apply_claimed(c, d).await
}

/// Applies the observations of a delivery whose idempotency row this
/// transaction has just inserted.
pub(crate) async fn apply_claimed(
    c: &mut Conn<'_>,
    d: &Delivery,
) -> Result<DeliveryOutcome, LedgerError> {
    let now = d.received_at;
    let mut new_deployments = Vec::new();
    let mut new_alerts = Vec::new();
    let mut new_cluster_rollbacks = Vec::new();
    let mut job_count = 0usize;

    // Apps described by this delivery: the upsert creates the row and, in
    // PostgreSQL, holds its lock until commit, so no separate lock is needed.
    let mut locked: BTreeSet<AppRef> = BTreeSet::new();
    for o in &d.observations {
        if let Observation::App(app) = o {
            apps::upsert(c, app).await?;
            locked.insert(app.app_ref());
        }
    }

    // Deployments: by app name (a stable lock order across deliveries),
    // then by cluster revision so back-filled history gets ids in order;
    // Flux ones (no revision) keep their order, after the numbered ones.
    let mut observed: Vec<_> = d
        .observations
        .iter()
        .filter_map(|o| match o {
            Observation::Deployment(dep) => Some(dep),
            _ => None,
        })
        .collect();
    observed.sort_by_key(|dep| (dep.app_ref(), dep.cluster_revision.unwrap_or(i64::MAX)));
    for same_app in observed.chunk_by(|a, b| a.app == b.app && a.cluster == b.cluster) {
        let app = &same_app[0].app_ref();
        if !locked.contains(app) {
            apps::ensure_and_lock(c, app, same_app[0].source, now).await?;
        }
        // Argo CD re-sends its whole history every time: learn in one query
        // which of the numbered entries the ledger already has.
        let numbered = same_app.iter().filter_map(|dep| dep.cluster_revision);
        let known = match (numbered.clone().min(), numbered.max()) {
            (Some(low), Some(high)) => deployments::revisions_between(c, app, low, high).await?,
            _ => BTreeSet::new(),
        };
        for dep in same_app {
            if dep.cluster_revision.is_some_and(|n| known.contains(&n)) {
                continue;
            }
            if let Some(id) = deployments::insert_observed(c, dep, now).await? {
                tracing::debug!(
                    app.name = %app,
                    deployment.id = id,
                    deployment.revision = %dep.revision,
                    "recorded deployment"
                );
                new_deployments.push(id);
                if let Some(commit) = &dep.commit {
                    job_count += enqueue_resolve(c, id, app, commit, now).await?;
                }
            }
        }
    }

    for o in &d.observations {
        if let Observation::Health(h) = o {
            job_count += record_health(c, h, now).await?;
        }
    }

    for o in &d.observations {
        if let Observation::Alert(alert) = o {
            // Match the alert to apps: the cluster it names, else every
            // cluster that runs an app of that name (one: the alert is
            // about that app; several: about each of them).
            let mut alert = alert.clone();
            let targets: Vec<AppRef> = match alert.app_ref() {
                Some(app) => vec![app],
                None => apps::clusters_of(c, &alert.app)
                    .await?
                    .into_iter()
                    .map(|cluster| AppRef::new(alert.app.clone(), cluster))
                    .collect(),
            };
            if let [only] = targets.as_slice() {
                alert.cluster = Some(only.cluster.clone());
            }
            let current = match targets.as_slice() {
                [only] => deployments::current(c, only).await?.map(|d| d.id),
                _ => None,
            };
            if let alerts::Recorded::New(id) = alerts::record(c, &alert, current, now).await? {
                new_alerts.push(id);
                if alert.status == AlertStatus::Firing {
                    let mut spoiled = None;
                    for app in &targets {
                        spoiled = deployments::mark_alerted(c, app).await?.or(spoiled);
                    }
                    let job = JobPayload::AlertFired {
                        alert_id: id,
                        app: alert.app.clone(),
                        deployment_id: spoiled,
                    };
                    job_count += enqueue(c, &job, now).await?;
                }
            }
        }
    }

    for o in &d.observations {
        if let Some((id, kind, pr_number)) = forge::insert(c, o, now).await? {
            let job = JobPayload::ForgeEvent {
                forge_event_id: id,
                kind: kind.to_string(),
                pr_number,
            };
            job_count += enqueue(c, &job, now).await?;
        }
    }

    // In-cluster rollbacks: recorded as reported, with the job that
    // decides whether Git catches up, in the same transaction.
    for o in &d.observations {
        if let Observation::ClusterRolledBack(r) = o {
            let id = cluster_rollbacks::insert(c, r, now).await?;
            tracing::info!(
                app.name = %r.app,
                app.cluster = %r.cluster,
                cluster_rollback.id = id,
                cluster_rollback.sender = %r.sender,
                "cluster rolled back on its own"
            );
            new_cluster_rollbacks.push(id);
            job_count += record_cluster_rollback_drift(c, r, now).await?;
            let job = JobPayload::ClusterRolledBack {
                cluster_rollback_id: id,
                app: r.app.clone(),
            };
            job_count += enqueue(c, &job, now).await?;
        }
    }

    Ok(DeliveryOutcome::Recorded {
        new_deployments,
        new_alerts,
        jobs: job_count,
        new_cluster_rollbacks,
    })
}

/// Records a health report: on the deployment it is about, and what the
/// cluster reports on its app with the drift derived from it. Returns the
/// jobs queued (a `drift` job when a drift begins).
pub(crate) async fn record_health(
    c: &mut Conn<'_>,
    h: &HealthObserved,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, LedgerError> {
    let mut job_count = 0;
    let applied_to = deployments::apply_health(c, h).await?;
    if let (Some(id), Some(images)) = (applied_to, &h.running_images) {
        proof::set_running_images(c, id, images).await?;
    }
    let app = h.app_ref();
    let current = deployments::current(c, &app).await?;
    let drifting_before = apps::get(c, &app).await?.is_some_and(|a| a.drift.is_some());
    // Argo CD and Flux see Git's version in sync while Flagger or
    // Argo Rollouts keep the previous one running: a drift reported
    // by those stays until Git moves past the refused deployment.
    let drift = match drift_of(h, current.as_ref()) {
        Some(drift) => Some(drift),
        None if drifting_before => cluster_rollback_drift(c, &app, current.as_ref()).await?,
        None => None,
    };
    let sync = h.sync.map(SyncStatus::as_str);
    apps::set_reported(
        c,
        &app,
        sync,
        h.sync_revision.as_deref(),
        drift.as_deref(),
        h.at,
    )
    .await?;
    if let (Some(detail), false) = (&drift, drifting_before) {
        job_count += enqueue_drift(c, &app, detail, h.at, now).await?;
    }
    Ok(job_count)
}

/// Drift: the cluster reports something other than what Git says for the
/// app. Argo CD `OutOfSync`, or a sync revision that is not the current
/// deployment's (someone ran `argocd app rollback`, or Git moved and the
/// cluster did not follow).
pub(crate) fn drift_of(h: &HealthObserved, current: Option<&Deployment>) -> Option<String> {
    if h.sync == Some(SyncStatus::OutOfSync) {
        return Some(match &h.sync_revision {
            Some(revision) => format!("the cluster reports OutOfSync with Git at {revision}"),
            None => "the cluster reports OutOfSync with Git".to_owned(),
        });
    }
    match (h.sync_revision.as_deref(), current) {
        (Some(reported), Some(current))
            if reported != current.revision
                && current
                    .commit
                    .as_ref()
                    .is_none_or(|c| c.as_str() != reported) =>
        {
            Some(format!(
                "the cluster reports revision {reported}; its current deployment (cluster revision {}) is {}",
                current.cluster_revision, current.revision
            ))
        }
        _ => None,
    }
}

/// The app a Flagger or Argo Rollouts report is about, when the ledger
/// can tell: the cluster it names, else the only cluster that runs an app
/// of that name.
async fn reported_app(
    c: &mut Conn<'_>,
    r: &ClusterRolledBack,
) -> Result<Option<AppRef>, LedgerError> {
    if !r.cluster.is_empty() {
        return Ok(ClusterName::new(r.cluster.as_str())
            .ok()
            .map(|cluster| AppRef::new(r.app.clone(), cluster)));
    }
    let clusters = apps::clusters_of(c, &r.app).await?;
    Ok(match clusters.as_slice() {
        [only] => Some(AppRef::new(r.app.clone(), only.clone())),
        _ => None,
    })
}

/// What the drift of a cluster that rolled back on its own reads like.
fn describe_cluster_rollback(r: &ClusterRolledBack, current: &Deployment) -> String {
    let sender = match r.sender {
        RollbackSender::Flagger => "Flagger rolled back",
        RollbackSender::ArgoRollouts => "Argo Rollouts aborted",
    };
    format!(
        "{sender} {}/{} at {}: the cluster runs the previous version while Git says cluster revision {} ({})",
        r.namespace,
        r.workload,
        r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        current.cluster_revision,
        current.revision
    )
}

/// A report of an in-cluster rollback makes its app drift (whatever
/// `policy.catch_up` says): the cluster no longer runs what Git says.
/// Nothing when rewind cannot tell the app, or the report is about a
/// deployment Git has since moved past. Returns the jobs queued.
async fn record_cluster_rollback_drift(
    c: &mut Conn<'_>,
    r: &ClusterRolledBack,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, LedgerError> {
    let Some(app) = reported_app(c, r).await? else {
        return Ok(0);
    };
    let Some(known) = apps::get(c, &app).await? else {
        return Ok(0);
    };
    let Some(current) = deployments::current(c, &app).await? else {
        return Ok(0);
    };
    if r.at < current.deployed_at {
        return Ok(0);
    }
    let detail = describe_cluster_rollback(r, &current);
    apps::set_reported(c, &app, None, None, Some(&detail), r.at).await?;
    if known.drift.is_some() {
        return Ok(0);
    }
    enqueue_drift(c, &app, &detail, r.at, now).await
}

/// The drift an earlier in-cluster rollback still causes: its newest
/// report on this app's cluster is about the current deployment.
async fn cluster_rollback_drift(
    c: &mut Conn<'_>,
    app: &AppRef,
    current: Option<&Deployment>,
) -> Result<Option<String>, LedgerError> {
    let Some(current) = current else {
        return Ok(None);
    };
    let mut reports =
        cluster_rollbacks::for_app(c, &app.name, Some(app.cluster.as_str()), 1).await?;
    if reports.is_empty() && apps::clusters_of(c, &app.name).await?.len() == 1 {
        reports = cluster_rollbacks::for_app(c, &app.name, Some(""), 1).await?;
    }
    Ok(reports
        .first()
        .filter(|stored| stored.rollback.at >= current.deployed_at)
        .map(|stored| describe_cluster_rollback(&stored.rollback, current)))
}

async fn enqueue_resolve(
    c: &mut Conn<'_>,
    id: i64,
    app: &AppRef,
    commit: &CommitId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, LedgerError> {
    let job = JobPayload::ResolveDeployment {
        deployment_id: id,
        app: app.name.clone(),
        commit: commit.clone(),
    };
    enqueue(c, &job, now).await
}

/// The dedup key and payload of the `drift` job of a drift that began at
/// `since`.
pub(crate) fn drift_job(
    app: &AppRef,
    detail: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> (String, serde_json::Value) {
    let key = format!("{}:{app}:{}", job_kind::DRIFT, since.timestamp_millis());
    let payload = serde_json::json!({"app": app.to_string(), "detail": detail});
    (key, payload)
}

/// A drift began: one `drift` job to tell people (the engine notifies).
/// Keyed by the drift's start, so a redelivery queues nothing new.
async fn enqueue_drift(
    c: &mut Conn<'_>,
    app: &AppRef,
    detail: &str,
    since: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, LedgerError> {
    let (key, payload) = drift_job(app, detail, since);
    let id = jobs::enqueue(c, job_kind::DRIFT, &payload, Some(&key), now, now).await?;
    Ok(usize::from(id.is_some()))
}

async fn enqueue(
    c: &mut Conn<'_>,
    job: &JobPayload,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, LedgerError> {
    let key = job.dedup_key();
    let id = jobs::enqueue(c, job.kind(), &job.fields(), Some(&key), now, now).await?;
    Ok(usize::from(id.is_some()))
}
