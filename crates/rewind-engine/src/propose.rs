//! A rollback request (API, CLI) or a firing alert becomes a recorded
//! proposal: target chosen, refusals checked, commit built, diff and risks
//! computed, the rollback inserted (at most one open per app) and its first
//! job enqueued.

use chrono::{Duration as ChronoDuration, Utc};
use rewind_config::StrategySetting;
use rewind_domain::{
    App, AppName, CommitId, Deployment, Risk, RiskCode, Rollback, RollbackId, RollbackState,
    Strategy, TimelineEvent, Trigger,
};
use rewind_git::{BuildOutcome, RollbackRequest, rollback_branch};
use rewind_ledger::{JobPayload, LedgerError};
use serde::Deserialize;
use serde_json::json;

use crate::decide::{Facts, Refusal, decide};
use crate::timeline::entry;
use crate::{Engine, EngineError};

/// `POST /api/v1/apps/{app}/rollbacks`, `rewind undo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposeRequest {
    /// Target cluster revision.
    #[serde(default)]
    pub to_revision: Option<i64>,
    /// Target commit (one the app ran).
    #[serde(default)]
    pub to_commit: Option<String>,
    pub reason: String,
    /// Build and describe the rollback, but push and record nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone)]
pub enum ProposeOutcome {
    /// Recorded and on its way (the branch is pushed by the next job).
    Proposed(Box<Rollback>),
    /// A dry run: what would be proposed. Nothing pushed or recorded.
    Preview(Box<Rollback>),
}

/// Names the symbolic links the build left out in the `unrenderable` risk
/// (one risk per code: joined to an existing one).
fn add_dropped_links(risks: &mut Vec<Risk>, dropped: &[String]) {
    if dropped.is_empty() {
        return;
    }
    let detail = format!(
        "symbolic links pointing outside the repository, not restored: {}",
        rewind_manifest::risk::name_some(dropped)
    );
    match risks.iter_mut().find(|r| r.code == RiskCode::Unrenderable) {
        Some(risk) => {
            risk.detail.push_str("; ");
            risk.detail.push_str(&detail);
        }
        None => risks.push(Risk::new(RiskCode::Unrenderable, detail)),
    }
}

impl Engine {
    /// Proposes a rollback of `app`. Refusals come back as
    /// `EngineError::Refused` and are recorded: on the open rollback's
    /// timeline when there is one, in the audit log always.
    #[tracing::instrument(skip_all, fields(app.name = %app, actor = %actor))]
    pub async fn propose(
        &self,
        app: &AppName,
        request: ProposeRequest,
        trigger: Trigger,
        actor: &str,
    ) -> Result<ProposeOutcome, EngineError> {
        match self.try_propose(app, &request, &trigger, actor).await {
            Err(EngineError::Refused(refusal)) => {
                self.record_refusal(app, &refusal, &trigger, actor).await?;
                Err(EngineError::Refused(refusal))
            }
            other => other,
        }
    }

    async fn try_propose(
        &self,
        app_name: &AppName,
        request: &ProposeRequest,
        trigger: &Trigger,
        actor: &str,
    ) -> Result<ProposeOutcome, EngineError> {
        if request.reason.trim().is_empty() {
            return Err(EngineError::Invalid("`reason` must not be empty".into()));
        }
        // Refused before it reaches a database that cannot store it.
        if request.reason.contains('\0') {
            return Err(EngineError::Invalid(
                "`reason` must not contain NUL characters".into(),
            ));
        }
        let now = Utc::now();
        let app = self
            .ledger
            .get_app(app_name)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no app named {app_name:?}")))?;
        let open = self.ledger.open_rollback(app_name).await?;
        let current = self.ledger.current_deployment(app_name).await?;
        let target = self.target(&app, request, current.as_ref()).await?;
        let last_hour = self
            .ledger
            .count_rollbacks_since(app_name, now - ChronoDuration::hours(1))
            .await?;
        let max = self.settings.policy.max_rollbacks_per_hour;
        let facts = Facts {
            app: &app,
            current: current.as_ref(),
            target: target.as_ref(),
            open_rollback: open.as_ref(),
            rollbacks_last_hour: last_hour,
            max_rollbacks_per_hour: max,
            head_config_hash: None,
        };
        // Cheap refusals first, before touching Git.
        decide(&facts)?;

        let app_path = app.path.clone().ok_or_else(|| {
            EngineError::Invalid(format!(
                "app {app_name} has no path in the GitOps repository"
            ))
        })?;
        let (head, head_snapshot) = self.head_snapshot(&app_path).await?;
        let target = self
            .resolved(target.ok_or(Refusal::NoKnownGood)?, &app_path)
            .await?;
        let checked = Facts {
            app: &app,
            current: current.as_ref(),
            target: Some(&target),
            open_rollback: open.as_ref(),
            rollbacks_last_hour: last_hour,
            max_rollbacks_per_hour: max,
            head_config_hash: head_snapshot.as_ref().map(|s| &s.config_hash),
        };
        let decision = decide(&checked)?;
        let from = decision.from.clone();
        let to_commit = target.commit.clone().ok_or(Refusal::TargetHasNoCommit {
            target_revision: target.cluster_revision,
        })?;

        let id = RollbackId::generate();
        let strategy = match self.settings.policy.strategy {
            StrategySetting::Restore => Strategy::Restore,
            StrategySetting::Revert => Strategy::Revert,
        };
        let git_request = RollbackRequest {
            rollback_id: id,
            app: app_name.clone(),
            app_path: app_path.clone(),
            from: from.commit.clone().unwrap_or_else(|| head.clone()),
            to: to_commit,
            to_cluster_revision: Some(target.cluster_revision),
            reason: request.reason.clone(),
            strategy,
            allow_restore_fallback: self.settings.policy.revert_fallback_to_restore,
            target_config_hash: target.config_hash.clone(),
        };
        // On the head just fetched for the config hash: one fetch per
        // proposal. The merge checks again against the head of its time.
        let built = match self.git.build_rollback_on(&head, git_request).await? {
            BuildOutcome::AlreadyOnTarget => {
                return Err(Refusal::AlreadyOnTarget {
                    target_revision: target.cluster_revision,
                }
                .into());
            }
            BuildOutcome::Commit(built) => built,
        };
        let other_apps = self.other_apps(app_name).await?;
        let mut changes = self
            .changes(&built.parent, &built.commit, &app_path, other_apps)
            .await?;
        // The links left out are not in the commit the risks were computed
        // on, but they are in the target: what a reviewer must look at.
        add_dropped_links(&mut changes.risks, &built.dropped_links);

        let mut timeline = vec![entry(
            TimelineEvent::Proposed,
            format!(
                "{actor} proposed rolling back from cluster revision {} to {} ({}): {}",
                from.cluster_revision,
                target.cluster_revision,
                target.commit.as_ref().map_or("-", CommitId::short),
                request.reason
            ),
            now,
        )];
        if !built.revert_conflicts.is_empty() {
            timeline.push(entry(
                TimelineEvent::RevertConflict,
                format!(
                    "git revert conflicted in {}; the inputs were restored instead",
                    built.revert_conflicts.join(", ")
                ),
                now,
            ));
        }
        if !built.dropped_links.is_empty() {
            timeline.push(entry(
                TimelineEvent::LinksNotRestored,
                format!(
                    "symbolic links pointing outside the repository were not restored: {}",
                    built.dropped_links.join(", ")
                ),
                now,
            ));
        }
        if !changes.current_problems.is_empty() {
            timeline.push(entry(
                TimelineEvent::CurrentUnrenderable,
                format!(
                    "the commit rolled away from cannot be rendered or trusted: {}",
                    rewind_manifest::risk::name_some(&changes.current_problems)
                ),
                now,
            ));
        }
        let mut risks = changes.risks;
        self.preflight_images(&target.images, &mut risks, &mut timeline, now)
            .await;
        let rollback = Rollback {
            id,
            app: app_name.clone(),
            from,
            to: target,
            state: RollbackState::Proposed,
            reason: request.reason.clone(),
            trigger: trigger.clone(),
            strategy: built.strategy_used,
            branch: Some(rollback_branch(app_name, &id)),
            commit: Some(built.commit.clone()),
            merge_commit: None,
            pr: None,
            diff: changes.diff,
            risks,
            approvals: Vec::new(),
            timeline,
            verification: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        if request.dry_run {
            return Ok(ProposeOutcome::Preview(Box::new(rollback)));
        }
        match self.ledger.insert_rollback(&rollback).await {
            Ok(()) => {}
            Err(LedgerError::Conflict { .. }) => {
                // Another request or replica opened one in the meantime.
                let existing = self.ledger.open_rollback(app_name).await?;
                return Err(match existing {
                    Some(existing) => Refusal::OpenRollbackExists(Box::new(existing)).into(),
                    None => EngineError::Conflict(
                        "a concurrent rollback of this app was recorded; try again".into(),
                    ),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(
            actor,
            "rollback.propose",
            format!("rollback/{id}"),
            json!({"app": app_name, "from": rollback.from.cluster_revision, "to": rollback.to.cluster_revision,
                   "commit": rollback.commit, "reason": rollback.reason, "trigger": rollback.trigger,
                   "risks": rollback.risks}),
        )
        .await?;
        metrics::counter!("rewind_rollbacks_proposed_total").increment(1);
        self.notify(
            rewind_config::NotifyEvent::Proposed,
            &rollback,
            &rollback.reason,
        )
        .await;
        self.enqueue_advance(id).await?;
        tracing::info!(rollback.id = %id, "rollback proposed");
        Ok(ProposeOutcome::Proposed(Box::new(rollback)))
    }

    /// The target the caller named, else the last known-good deployment
    /// before the current one.
    async fn target(
        &self,
        app: &App,
        request: &ProposeRequest,
        current: Option<&Deployment>,
    ) -> Result<Option<Deployment>, EngineError> {
        if let Some(revision) = request.to_revision {
            return match self
                .ledger
                .deployment_by_revision(&app.name, revision)
                .await?
            {
                Some(d) => Ok(Some(d)),
                None => Err(EngineError::NotFound(format!(
                    "{} has no deployment with cluster revision {revision}",
                    app.name
                ))),
            };
        }
        if let Some(sha) = &request.to_commit {
            let commit = CommitId::new(sha).map_err(|e| EngineError::Invalid(e.to_string()))?;
            let mut ran = self
                .ledger
                .deployments_by_commit(&app.name, &commit)
                .await?;
            ran.sort_by_key(|d| std::cmp::Reverse(d.cluster_revision));
            return match ran.into_iter().next() {
                Some(d) => Ok(Some(d)),
                None => Err(EngineError::NotFound(format!(
                    "{} never ran commit {commit}: rewind rolls back only to configurations a cluster ran",
                    app.name
                ))),
            };
        }
        match current {
            Some(current) => Ok(self
                .ledger
                .last_known_good_before(&app.name, current.cluster_revision)
                .await?),
            None => Ok(None),
        }
    }

    /// The target with its config hash, tree and images, computing (and
    /// recording) them when the deployment was not resolved yet.
    async fn resolved(
        &self,
        mut target: Deployment,
        app_path: &str,
    ) -> Result<Deployment, EngineError> {
        if target.config_hash.is_some() {
            return Ok(target);
        }
        let Some(commit) = target.commit.clone() else {
            return Ok(target);
        };
        // Unreadable (an escaping reference): the proposal carries the
        // `unrenderable` risk instead of failing.
        let Some(snapshot) = self.snapshot_if_readable(&commit, app_path).await? else {
            return Ok(target);
        };
        self.ledger
            .set_deployment_resolution(
                target.id,
                snapshot.tree.clone(),
                snapshot.config_hash.clone(),
                snapshot.images.clone(),
            )
            .await?;
        target.tree = Some(snapshot.tree);
        target.config_hash = Some(snapshot.config_hash);
        target.images = snapshot.images;
        Ok(target)
    }

    /// Apps other than `app`, with their paths: for `shared-change` risks.
    pub(crate) async fn other_apps(
        &self,
        app: &AppName,
    ) -> Result<Vec<(String, String)>, EngineError> {
        let mut others: Vec<(String, String)> = self
            .ledger
            .app_paths()
            .await?
            .into_iter()
            .filter(|(name, _)| name != app)
            .map(|(name, path)| (name.to_string(), path))
            .collect();
        for mapping in &self.settings.apps {
            if mapping.name != app.as_str() && !others.iter().any(|(n, _)| n == &mapping.name) {
                others.push((mapping.name.clone(), mapping.path.clone()));
            }
        }
        others.sort();
        Ok(others)
    }

    async fn record_refusal(
        &self,
        app: &AppName,
        refusal: &Refusal,
        trigger: &Trigger,
        actor: &str,
    ) -> Result<(), EngineError> {
        if let Some(existing) = refusal.existing() {
            let event = if matches!(trigger, Trigger::Alert { .. }) {
                TimelineEvent::AlertJoined
            } else {
                TimelineEvent::Refused
            };
            let detail = match trigger {
                Trigger::Alert {
                    alert_name,
                    fingerprint,
                    ..
                } => {
                    format!(
                        "alert {alert_name} ({fingerprint}) fired again; it joins this rollback"
                    )
                }
                Trigger::Manual { caller } => {
                    format!("{caller} asked for another rollback: {}", refusal.reason())
                }
            };
            self.note(existing, actor, event, detail).await?;
        }
        self.audit(
            actor,
            "rollback.refused",
            format!("app/{app}"),
            json!({"code": refusal.code(), "reason": refusal.reason(), "trigger": trigger}),
        )
        .await?;
        metrics::counter!("rewind_rollbacks_refused_total", "code" => refusal.code()).increment(1);
        self.notify_app(rewind_config::NotifyEvent::Refused, app, &refusal.reason())
            .await;
        tracing::info!(refusal = refusal.code(), "rollback refused");
        Ok(())
    }

    /// Queues the next step of a rollback, deduplicated among queued jobs:
    /// one queued step sees every change made before it runs, and a
    /// running step (which may have read the state before this change)
    /// does not swallow it.
    pub(crate) async fn enqueue_advance(&self, id: RollbackId) -> Result<(), EngineError> {
        self.ledger
            .enqueue_job(&JobPayload::AdvanceRollback { rollback_id: id }, Utc::now())
            .await?;
        Ok(())
    }
}
