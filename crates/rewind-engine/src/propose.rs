//! A rollback request (API, CLI) or a firing alert becomes a recorded
//! proposal: target chosen, refusals checked, commit built, diff and risks
//! computed, the rollback inserted (at most one open per app) and its first
//! job enqueued.

use chrono::{Duration as ChronoDuration, Utc};
use rewind_config::StrategySetting;
use rewind_domain::{
    App, AppName, AppRef, CommitId, Deployment, Risk, RiskCode, Rollback, RollbackId,
    RollbackState, Strategy, TimelineEvent, Trigger, Wave,
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
    /// One rollback per cluster that runs the app's name, as a wave in
    /// `policy.cluster_order` (see [`Engine::propose_wave`]).
    #[serde(default)]
    pub all_clusters: bool,
}

/// Where a proposal sits in a wave: later members start `held`.
#[derive(Debug, Clone)]
struct Plan {
    wave: Wave,
    held: bool,
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
        app: &AppRef,
        request: ProposeRequest,
        trigger: Trigger,
        actor: &str,
    ) -> Result<ProposeOutcome, EngineError> {
        self.propose_planned(app, request, trigger, actor, None)
            .await
    }

    async fn propose_planned(
        &self,
        app: &AppRef,
        request: ProposeRequest,
        trigger: Trigger,
        actor: &str,
        plan: Option<Plan>,
    ) -> Result<ProposeOutcome, EngineError> {
        match self.try_propose(app, &request, &trigger, actor, plan).await {
            Err(EngineError::Refused(refusal)) => {
                self.record_refusal(app, &refusal, &trigger, actor).await?;
                Err(EngineError::Refused(refusal))
            }
            other => other,
        }
    }

    async fn try_propose(
        &self,
        app_name: &AppRef,
        request: &ProposeRequest,
        trigger: &Trigger,
        actor: &str,
        plan: Option<Plan>,
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
        self.trust_history(app_name).await?;
        let app = self
            .ledger
            .get_app(app_name)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no app {app_name}")))?;
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
            app: app_name.name.clone(),
            cluster: app_name.cluster.clone(),
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
        let held = plan.as_ref().is_some_and(|p| p.held);
        if let Some(Plan {
            wave:
                Wave {
                    after: Some(after),
                    group,
                    ..
                },
            held: true,
        }) = &plan
        {
            timeline.push(entry(
                "held",
                format!("wave {group}: held until rollback {after} is verified"),
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
        if let Some(drift) = &app.drift {
            // The cluster does not run what Git says: the diff above is
            // against Git, not against what is running.
            risks.push(Risk::new(
                RiskCode::Drift,
                format!("{} (since {})", drift.detail, drift.since.to_rfc3339()),
            ));
        }
        self.preflight_images(&target.images, &mut risks, &mut timeline, now)
            .await;
        let rollback = Rollback {
            id,
            app: app_name.name.clone(),
            cluster: app_name.cluster.clone(),
            from,
            to: target,
            state: if held {
                RollbackState::Held
            } else {
                RollbackState::Proposed
            },
            reason: request.reason.clone(),
            trigger: trigger.clone(),
            strategy: built.strategy_used,
            branch: Some(rollback_branch(&app_name.name, &id)),
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
            wave: plan.map(|p| p.wave),
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
        if held {
            let why = rollback
                .timeline
                .iter()
                .rev()
                .find(|e| e.event.as_str() == "held")
                .map_or_else(|| "held in its wave".to_string(), |e| e.detail.clone());
            self.notify(rewind_config::NotifyEvent::Held, &rollback, &why)
                .await;
        } else {
            self.enqueue_advance(id).await?;
        }
        tracing::info!(rollback.id = %id, "rollback proposed");
        Ok(ProposeOutcome::Proposed(Box::new(rollback)))
    }

    /// One incident across clusters: a rollback of `name` on every cluster
    /// that runs it, in `policy.cluster_order` (unlisted clusters last, by
    /// name), sharing a `wave.group`. The first is proposed; each later one
    /// is `held` until the one before it is verified ([`Engine::release_wave`]).
    /// A cluster whose proposal is refused (nothing known good, already on
    /// target, ...) is left out and the chain closes over it. Returns the
    /// proposals in order (previews on a dry run).
    pub async fn propose_wave(
        &self,
        name: &AppName,
        request: ProposeRequest,
        trigger: Trigger,
        actor: &str,
    ) -> Result<Vec<Rollback>, EngineError> {
        let mut clusters = self.ledger.app_clusters(name).await?;
        if clusters.is_empty() {
            return Err(EngineError::NotFound(format!("no app named {name}")));
        }
        let order = &self.settings.policy.cluster_order;
        clusters.sort_by_key(|c| {
            (
                order
                    .iter()
                    .position(|o| o == c.as_str())
                    .unwrap_or(usize::MAX),
                c.clone(),
            )
        });
        let group = RollbackId::generate().to_string();
        let mut out: Vec<Rollback> = Vec::new();
        let mut last_refusal = None;
        let mut shared: Vec<String> = Vec::new();
        for cluster in clusters {
            let app = AppRef::new(name.clone(), cluster);
            if let Some(first) = out.first()
                && self.reads_the_same_change(first, &app).await?
            {
                // One commit already rolls this cluster back too (a shared
                // base, or the same path): no held rollback pretending to
                // stage it separately.
                shared.push(app.to_string());
                continue;
            }
            let plan = Plan {
                wave: Wave {
                    group: group.clone(),
                    index: u32::try_from(out.len()).unwrap_or(u32::MAX),
                    after: out.last().map(|r| r.id),
                },
                held: !out.is_empty(),
            };
            match self
                .propose_planned(&app, request.clone(), trigger.clone(), actor, Some(plan))
                .await
            {
                Ok(ProposeOutcome::Proposed(r) | ProposeOutcome::Preview(r)) => out.push(*r),
                Err(EngineError::Refused(refusal)) => last_refusal = Some(refusal),
                Err(e) => return Err(e),
            }
        }
        if let (false, Some(first)) = (shared.is_empty(), out.first_mut()) {
            let detail = format!(
                "the change is in files {} also read{}: one commit rolls them back together, so they cannot be staged as a wave",
                shared.join(", "),
                if shared.len() == 1 { "s" } else { "" }
            );
            let note = entry("wave_shared", detail.clone(), Utc::now());
            if !request.dry_run {
                self.ledger.append_timeline(first.id, note.clone()).await?;
            }
            first.timeline.push(note);
            if !first.risks.iter().any(|r| r.code == RiskCode::SharedChange) {
                let risk = Risk::new(RiskCode::SharedChange, detail);
                first.risks.push(risk);
                if !request.dry_run {
                    self.ledger
                        .set_rollback_risks(first.id, &first.risks)
                        .await?;
                }
            }
        }
        match (out.is_empty(), last_refusal) {
            (true, Some(refusal)) => Err(EngineError::Refused(refusal)),
            _ => Ok(out),
        }
    }

    /// Whether `app` reads what `first`'s commit changes: the same path, or
    /// named by `first`'s `shared-change` risk.
    async fn reads_the_same_change(
        &self,
        first: &Rollback,
        app: &AppRef,
    ) -> Result<bool, EngineError> {
        let paths = (
            self.ledger
                .get_app(&first.app_ref())
                .await?
                .and_then(|a| a.path),
            self.ledger.get_app(app).await?.and_then(|a| a.path),
        );
        if let (Some(a), Some(b)) = &paths
            && a.trim_end_matches('/') == b.trim_end_matches('/')
        {
            return Ok(true);
        }
        let reference = app.to_string();
        Ok(first.risks.iter().any(|r| {
            r.code == RiskCode::SharedChange
                && r.detail.match_indices(&reference).any(|(i, _)| {
                    r.detail[i + reference.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !(c.is_alphanumeric() || "-._:/".contains(c)))
                })
        }))
    }

    /// A wave member was verified: the one held after it is proposed.
    pub(crate) async fn release_wave(&self, verified: &Rollback) -> Result<(), EngineError> {
        for next in self.held_after(verified).await? {
            self.ledger
                .transition_rollback(
                    next.id,
                    RollbackState::Held,
                    RollbackState::Proposed,
                    entry(
                        "released",
                        format!(
                            "rollback {} of {} was verified; this one goes ahead",
                            verified.id,
                            verified.app_ref()
                        ),
                        Utc::now(),
                    ),
                )
                .await?;
            self.enqueue_advance(next.id).await?;
        }
        Ok(())
    }

    /// A wave member failed: the ones after it stay held, and say why.
    pub(crate) async fn stop_wave(&self, failed: &Rollback) -> Result<(), EngineError> {
        for next in self.held_after(failed).await? {
            let why = format!(
                "wave stopped: rollback {} of {} failed; this one stays held until a person acts",
                failed.id,
                failed.app_ref()
            );
            self.ledger
                .append_timeline(next.id, entry("wave_stopped", why.clone(), Utc::now()))
                .await?;
            self.notify(rewind_config::NotifyEvent::Held, &next, &why)
                .await;
            tracing::warn!(rollback.id = %next.id, "wave stopped: the rollback before failed");
        }
        Ok(())
    }

    async fn held_after(&self, before: &Rollback) -> Result<Vec<Rollback>, EngineError> {
        Ok(self
            .ledger
            .list_rollbacks(None, Some(RollbackState::Held), 1000)
            .await?
            .into_iter()
            .filter(|r| r.wave.as_ref().and_then(|w| w.after) == Some(before.id))
            .collect())
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
                .deployment_by_revision(&app.app_ref(), revision)
                .await?
            {
                Some(d) => Ok(Some(d)),
                None => Err(EngineError::NotFound(format!(
                    "{} has no deployment with cluster revision {revision}",
                    app.app_ref()
                ))),
            };
        }
        if let Some(sha) = &request.to_commit {
            let commit = CommitId::new(sha).map_err(|e| EngineError::Invalid(e.to_string()))?;
            let mut ran = self
                .ledger
                .deployments_by_commit(&app.app_ref(), &commit)
                .await?;
            ran.sort_by_key(|d| std::cmp::Reverse(d.cluster_revision));
            return match ran.into_iter().next() {
                Some(d) => Ok(Some(d)),
                None => Err(EngineError::NotFound(format!(
                    "{} never ran commit {commit}: rewind rolls back only to configurations a cluster ran",
                    app.app_ref()
                ))),
            };
        }
        match current {
            Some(current) => Ok(self
                .ledger
                .last_known_good_before(&app.app_ref(), current.cluster_revision)
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

    /// Apps other than `app` (the same name on another cluster is another
    /// app), by reference, with their paths: for `shared-change` risks.
    pub(crate) async fn other_apps(
        &self,
        app: &AppRef,
    ) -> Result<Vec<(String, String)>, EngineError> {
        let mut others: Vec<(String, String)> = self
            .ledger
            .app_paths()
            .await?
            .into_iter()
            .filter(|(other, _)| other != app)
            .map(|(other, path)| (other.to_string(), path))
            .collect();
        for mapping in &self.settings.apps {
            let cluster = if mapping.cluster.is_empty() {
                rewind_domain::ClusterName::IN_CLUSTER
            } else {
                mapping.cluster.as_str()
            };
            let reference = format!("{}@{cluster}", mapping.name);
            if reference != app.to_string() && !others.iter().any(|(n, _)| n == &reference) {
                others.push((reference, mapping.path.clone()));
            }
        }
        others.sort();
        Ok(others)
    }

    async fn record_refusal(
        &self,
        app: &AppRef,
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
                Trigger::Drift { detail } => {
                    format!("{detail}; not proposed: {}", refusal.reason())
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
