//! Reacting to what the outside world reported: a new deployment (resolve
//! its commit; is it the merged rollback?), a firing alert (propose; or a
//! rollback under verification fails), a pull-request event, a review, a
//! `/rewind` comment, a push to `git.branch` (held apps).

use std::collections::HashMap;

use rewind_domain::{
    AlertStatus, AppRef, ChatCommand, CommitId, Deployment, Observation, PullRequestAction,
    PushEvent, ReviewState, RollbackState, TimelineEvent, Trigger,
};
use rewind_forge::{HOLD_STATUS_CONTEXT, StatusState};
use rewind_ledger::Resolution;

use crate::propose::ProposeRequest;
use crate::timeline::entry;
use crate::{Engine, EngineError};

impl Engine {
    /// A deployment was recorded: compute its tree, config hash and images,
    /// and move a merged rollback of the app to `synced` when the cluster
    /// now runs the merge (or a descendant of it).
    #[tracing::instrument(skip_all, fields(deployment.id = deployment_id))]
    pub async fn resolve_deployment(&self, deployment_id: i64) -> Result<(), EngineError> {
        let Some(deployment) = self.ledger.deployment(deployment_id).await? else {
            return Ok(());
        };
        let mut answers = self.resolve_app(vec![deployment]).await?;
        answers.pop().unwrap_or(Ok(()))
    }

    /// [`Engine::resolve_deployment`] for several deployments of one app (a
    /// claim takes an app's queued resolves together): the app is read, its
    /// history trusted, its catch-up and open rollback checked once, the
    /// commits resolved in one call into the repository cache and written
    /// in one transaction. Answers per deployment, in the order of `ids`.
    /// When a step they share fails, each is resolved on its own, so each
    /// gets its own answer (every step is safe to run twice).
    #[tracing::instrument(skip_all, fields(deployments = ids.len()))]
    pub async fn resolve_deployments(&self, ids: &[i64]) -> Vec<Result<(), EngineError>> {
        if let [id] = ids {
            return vec![self.resolve_deployment(*id).await];
        }
        match self.resolve_together(ids).await {
            Ok(answers) => answers,
            Err(e) => {
                tracing::debug!(error = %e, "resolving together failed: one at a time");
                let mut answers = Vec::with_capacity(ids.len());
                for id in ids {
                    answers.push(self.resolve_deployment(*id).await);
                }
                answers
            }
        }
    }

    async fn resolve_together(
        &self,
        ids: &[i64],
    ) -> Result<Vec<Result<(), EngineError>>, EngineError> {
        let deployments = self.ledger.deployments(ids).await?;
        if let Some(first) = deployments.first()
            && deployments
                .iter()
                .any(|d| d.app != first.app || d.cluster != first.cluster)
        {
            return Err(EngineError::Invalid(
                "deployments of several apps cannot be resolved together".into(),
            ));
        }
        let found: Vec<i64> = deployments.iter().map(|d| d.id).collect();
        let mut answers: HashMap<i64, Result<(), EngineError>> = found
            .into_iter()
            .zip(self.resolve_app(deployments).await?)
            .collect();
        // A deployment that is gone (retention) has nothing left to do.
        Ok(ids
            .iter()
            .map(|id| answers.remove(id).unwrap_or(Ok(())))
            .collect())
    }

    /// Resolves `deployments`, all of one app: an answer for each, in
    /// order; the error of a step they share is the outer one.
    async fn resolve_app(
        &self,
        deployments: Vec<Deployment>,
    ) -> Result<Vec<Result<(), EngineError>>, EngineError> {
        let mut answers: Vec<Result<(), EngineError>> =
            deployments.iter().map(|_| Ok(())).collect();
        let Some(app_ref) = deployments.first().map(Deployment::app_ref) else {
            return Ok(answers);
        };
        let Some(app) = self.ledger.get_app(&app_ref).await? else {
            return Ok(answers);
        };
        self.trust_history(&app_ref).await?;
        let ids: Vec<i64> = deployments.iter().map(|d| d.id).collect();
        self.catch_up(&app, &ids).await?;
        let (Some(path), true) = (app.path.as_deref(), app.rollbackable) else {
            return Ok(answers);
        };
        // A commit rewind cannot read (an escaping reference) stays
        // unresolved: retrying would not change it, and it must not keep
        // the rollback away from it waiting.
        let unresolved: Vec<(usize, CommitId)> = deployments
            .iter()
            .enumerate()
            .filter(|(_, d)| d.config_hash.is_none())
            .filter_map(|(i, d)| d.commit.clone().map(|c| (i, c)))
            .collect();
        let snapshots = self
            .snapshots_if_readable(unresolved.iter().map(|(_, c)| c.clone()).collect(), path)
            .await?;
        let mut resolutions = Vec::with_capacity(snapshots.len());
        for ((i, _), snapshot) in unresolved.iter().zip(snapshots) {
            match snapshot {
                Ok(Some(snapshot)) => resolutions.push(Resolution {
                    deployment_id: deployments[*i].id,
                    tree: snapshot.tree,
                    config_hash: snapshot.config_hash,
                    images: snapshot.images,
                }),
                Ok(None) => {}
                Err(e) => answers[*i] = Err(e),
            }
        }
        self.ledger.set_deployment_resolutions(&resolutions).await?;
        if self.ledger.open_rollback(&app_ref).await?.is_none() {
            return Ok(answers);
        }
        for (deployment, answer) in deployments.iter().zip(&answers) {
            if answer.is_err() || deployment.commit.is_none() {
                continue;
            }
            // Read again for each: syncing on one deployment moves it on.
            if let Some(rollback) = self.ledger.open_rollback(&app_ref).await? {
                self.sync_if_deployed(&rollback, deployment).await?;
            }
        }
        Ok(answers)
    }

    /// `policy.catch_up = "propose"`: the cluster's newest deployment runs
    /// the commit of an earlier one while the deployment before it ran
    /// another (`argocd app rollback`, `kubectl rollout undo` through Argo
    /// CD): propose a rollback of Git to that earlier deployment, so the
    /// next sync does not bring the bad version back.
    /// Runs when the newest deployment is among `resolving`.
    async fn catch_up(
        &self,
        app: &rewind_domain::App,
        resolving: &[i64],
    ) -> Result<(), EngineError> {
        if self.settings.policy.catch_up != rewind_config::CatchUp::Propose || !app.rollbackable {
            return Ok(());
        }
        let app_ref = app.app_ref();
        let history = self.ledger.history(&app_ref, 50).await?;
        let (Some(current), Some(previous)) = (history.first(), history.get(1)) else {
            return Ok(());
        };
        let Some(commit) = current.commit.as_ref() else {
            return Ok(());
        };
        if !resolving.contains(&current.id) || previous.commit.as_ref() == Some(commit) {
            return Ok(());
        }
        let Some(earlier) = history[2..]
            .iter()
            .find(|d| d.commit.as_ref() == Some(commit))
        else {
            return Ok(());
        };
        if self.ledger.open_rollback(&app_ref).await?.is_some() {
            return Ok(());
        }
        let detail = format!(
            "{app_ref} runs commit {} again (cluster revision {}, deployed {}{}), the commit of cluster revision {}, while Git says cluster revision {}'s {}",
            commit.short(),
            current.cluster_revision,
            current.deployed_at.to_rfc3339(),
            current
                .initiated_by
                .as_deref()
                .map(|by| format!(" by {by}"))
                .unwrap_or_default(),
            earlier.cluster_revision,
            previous.cluster_revision,
            previous.commit.as_ref().map_or("-", |c| c.short()),
        );
        let request = ProposeRequest {
            to_revision: Some(earlier.cluster_revision),
            reason: format!("rolled back in the cluster: {detail}"),
            ..ProposeRequest::default()
        };
        match self
            .propose(&app_ref, request, Trigger::Drift { detail }, "rewind")
            .await
        {
            Ok(_) | Err(EngineError::Refused(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A new firing alert: fail a rollback being verified when it is the
    /// same alert again; else propose a rollback when its severity is one
    /// that opens proposals.
    #[tracing::instrument(skip_all, fields(alert.id = alert_id))]
    pub async fn alert_fired(&self, alert_id: i64) -> Result<(), EngineError> {
        let Some(stored) = self.ledger.alert(alert_id).await? else {
            return Ok(());
        };
        let alert = stored.alert;
        if alert.status != AlertStatus::Firing {
            return Ok(());
        }
        // The apps the alert is about: the one on its cluster, else every
        // cluster running an app of that name.
        let targets: Vec<AppRef> = match alert.app_ref() {
            Some(app) => vec![app],
            None => self
                .ledger
                .app_clusters(&alert.app)
                .await?
                .into_iter()
                .map(|cluster| AppRef::new(alert.app.clone(), cluster))
                .collect(),
        };
        let mut failed_any = false;
        for app in &targets {
            let Some(open) = self.ledger.open_rollback(app).await? else {
                continue;
            };
            if !matches!(open.state, RollbackState::Merged | RollbackState::Synced) {
                continue;
            }
            let same = match &open.trigger {
                Trigger::Alert {
                    alert_name,
                    fingerprint,
                    ..
                } => alert_name == &alert.name || fingerprint == &alert.fingerprint,
                Trigger::Manual { .. } | Trigger::Drift { .. } => {
                    crate::wiring::triggers_rollback(&self.settings, &alert)
                }
            };
            if same {
                self.fail(
                    &open,
                    format!(
                        "alert {} fired again at {} after the rollback was merged",
                        alert.name, alert.starts_at
                    ),
                )
                .await?;
                failed_any = true;
            }
        }
        if failed_any || !crate::wiring::triggers_rollback(&self.settings, &alert) {
            return Ok(());
        }
        let app = match targets.as_slice() {
            [] => return Ok(()),
            [only] => only.clone(),
            several => {
                // No cluster label, several clusters. When they all run the
                // same commit, that commit is the bad one everywhere: one
                // incident, rolled back as a wave (`policy.cluster_order`).
                let mut commits = Vec::new();
                for app in several {
                    let current = self.ledger.current_deployment(app).await?;
                    commits.push(current.and_then(|d| d.commit));
                }
                let same = commits.windows(2).all(|w| w[0] == w[1]) && commits[0].is_some();
                if same {
                    let (request, trigger) = alert_request(&alert);
                    return match self
                        .propose_wave(&alert.app, request, trigger, "alertmanager")
                        .await
                    {
                        Ok(_) | Err(EngineError::Refused(_)) | Err(EngineError::NotFound(_)) => {
                            Ok(())
                        }
                        Err(e) => Err(e),
                    };
                }
                // Different commits: which cluster's app is bad cannot be
                // told from the alert. Say so rather than roll back the
                // wrong one.
                let clusters: Vec<&str> = several.iter().map(|a| a.cluster.as_str()).collect();
                self.audit(
                    "alertmanager",
                    "rollback.refused",
                    format!("app/{}", alert.app),
                    serde_json::json!({
                        "code": "ambiguous-cluster",
                        "reason": format!(
                            "alert {} names app {} but no cluster, and {} runs different commits on {}: \
                             add the `{}` label (alerts.cluster_label) to the alert",
                            alert.name,
                            alert.app,
                            alert.app,
                            clusters.join(", "),
                            self.settings.alerts.cluster_label
                        ),
                    }),
                )
                .await?;
                return Ok(());
            }
        };
        if self.held_after_failed_rollback(&app).await? {
            let why = format!(
                "alert {} fired, but the app is held after a failed rollback: no automatic proposal until a person releases it",
                alert.name
            );
            self.notify_app(rewind_config::NotifyEvent::Held, &app, &why)
                .await;
            return self
                .audit(
                    "rewind",
                    "alert.held",
                    format!("app/{app}"),
                    serde_json::json!({"alert": alert.name, "why": why}),
                )
                .await;
        }
        let (request, trigger) = alert_request(&alert);
        match self.propose(&app, request, trigger, "alertmanager").await {
            Ok(_) | Err(EngineError::Refused(_)) => Ok(()),
            // An app rewind has not seen deploy: nothing to roll back.
            Err(EngineError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A pull-request, review, comment or push event from GitHub.
    #[tracing::instrument(skip_all, fields(forge_event.id = event_id))]
    pub async fn forge_event(&self, event_id: i64) -> Result<(), EngineError> {
        let Some(record) = self.ledger.forge_event(event_id).await? else {
            return Ok(());
        };
        match record.observation {
            Observation::PullRequest(pr) => {
                let Some(rollback) = self.ledger.rollback_by_pr(pr.number).await? else {
                    return Ok(());
                };
                match pr.action {
                    PullRequestAction::Merged if rollback.state.is_reviewable() => {
                        if let Some(commit) = &pr.merge_commit {
                            self.ledger.set_merge_commit(rollback.id, commit).await?;
                        }
                        self.ledger
                            .transition_rollback(
                                rollback.id,
                                rollback.state,
                                RollbackState::Merged,
                                entry(
                                    TimelineEvent::Merged,
                                    format!("{} merged the pull request on GitHub", pr.actor),
                                    pr.at,
                                ),
                            )
                            .await?;
                        self.audit(
                            &pr.actor,
                            "rollback.merge",
                            format!("rollback/{}", rollback.id),
                            serde_json::json!({"via": "github", "merge_commit": pr.merge_commit}),
                        )
                        .await?;
                    }
                    // rewind closes the old PR itself when it rebuilds.
                    PullRequestAction::Closed if rollback.rebuild_in_progress() => {}
                    PullRequestAction::Closed if rollback.state.is_reviewable() => {
                        self.cancel(rollback.id, &pr.actor, "github-pr-closed")
                            .await?;
                    }
                    _ => {}
                }
            }
            Observation::Review(review) => {
                let Some(rollback) = self.ledger.rollback_by_pr(review.pr_number).await? else {
                    return Ok(());
                };
                match review.state {
                    ReviewState::Approved => {
                        if self.has_write_access(&review.reviewer).await? {
                            match self
                                .approve(rollback.id, &review.reviewer, "github-review")
                                .await
                            {
                                Ok(_) | Err(EngineError::Conflict(_) | EngineError::Refused(_)) => {
                                }
                                Err(e) => return Err(e),
                            }
                        } else {
                            self.note(
                                &rollback,
                                &review.reviewer,
                                TimelineEvent::ApprovalIgnored,
                                format!(
                                    "{} approved but has no write access; it does not count",
                                    review.reviewer
                                ),
                            )
                            .await?;
                        }
                    }
                    ReviewState::Dismissed => {
                        self.withdraw_approval(rollback.id, &review.reviewer)
                            .await?
                    }
                    _ => {}
                }
            }
            Observation::Comment(comment) => {
                let Some(rollback) = self.ledger.rollback_by_pr(comment.pr_number).await? else {
                    return Ok(());
                };
                if !self.has_write_access(&comment.author).await? {
                    self.note(
                        &rollback,
                        &comment.author,
                        TimelineEvent::CommandIgnored,
                        format!(
                            "{} has no write access; `/rewind` commands from them are ignored",
                            comment.author
                        ),
                    )
                    .await?;
                    return Ok(());
                }
                let result = match comment.command {
                    ChatCommand::Merge => {
                        self.merge(rollback.id, &comment.author, "github-comment")
                            .await
                    }
                    ChatCommand::Cancel => {
                        self.cancel(rollback.id, &comment.author, "github-comment")
                            .await
                    }
                };
                // A refusal (approvals missing) or a conflict is an answer
                // for the commenter, not a failure of the job.
                let answer = match &result {
                    Err(EngineError::Conflict(why)) => Some(why.clone()),
                    Err(EngineError::Refused(refusal)) => Some(refusal.reason()),
                    _ => None,
                };
                if let Some(why) = answer {
                    if let (Some(forge), Some(pr)) = (self.forge.as_ref(), rollback.pr.as_ref()) {
                        let why = rewind_domain::text::markdown_text(&why, 1000);
                        let _ = forge.comment(pr.number, &format!("rewind: {why}")).await;
                    }
                    return Ok(());
                }
                result?;
            }
            Observation::Push(push) if push.branch == self.settings.git.branch => {
                self.check_holds(&push).await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn has_write_access(&self, user: &str) -> Result<bool, EngineError> {
        match self.forge.as_ref() {
            Some(forge) => Ok(forge.has_write_access(user).await?),
            None => Ok(false),
        }
    }

    /// A push to `git.branch`: for every held app, does the new head bring
    /// back the configuration or images the rollback removed?
    async fn check_holds(&self, push: &PushEvent) -> Result<(), EngineError> {
        let Some(after) = push.after.as_ref() else {
            return Ok(());
        };
        let mut held_any = false;
        let mut blocked = Vec::new();
        for summary in self.ledger.list_apps().await? {
            let app = summary.app;
            let (Some(_), Some(path)) = (app.held_since, app.path.as_deref()) else {
                continue;
            };
            let Some(rollback) = self
                .ledger
                .list_rollbacks(Some(&app.app_ref()), Some(RollbackState::Verified), 1)
                .await?
                .into_iter()
                .next()
            else {
                continue;
            };
            held_any = true;
            // Unreadable at the push (an escaping reference): it cannot be
            // the configuration rolled back, and retrying changes nothing.
            let Some(snapshot) = self.snapshot_if_readable(after, path).await? else {
                continue;
            };
            let bad = &rollback.from;
            let reintroduced: Vec<&String> = snapshot
                .images
                .iter()
                .filter(|image| bad.images.contains(image) && !rollback.to.images.contains(image))
                .collect();
            let same_config = bad.config_hash.as_ref() == Some(&snapshot.config_hash);
            if same_config || !reintroduced.is_empty() {
                let what = if same_config {
                    "the exact configuration that was rolled back".to_string()
                } else {
                    format!(
                        "image(s) {} that were rolled back",
                        reintroduced
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                self.note(
                    &rollback,
                    &push.pusher,
                    TimelineEvent::HoldViolation,
                    format!(
                        "{} is held: commit {} pushed by {} brings back {what}",
                        app.name,
                        after.short(),
                        push.pusher
                    ),
                )
                .await?;
                blocked.push(app.app_ref().to_string());
            }
        }
        if let (Some(forge), true) = (self.forge.as_ref(), held_any) {
            let (state, description) = if blocked.is_empty() {
                (StatusState::Success, "no held app is affected".to_string())
            } else {
                (
                    StatusState::Failure,
                    format!("brings back a rolled-back config of {}", blocked.join(", ")),
                )
            };
            let url = format!("{}/", self.settings.server.public_url.trim_end_matches('/'));
            forge
                .set_commit_status(after, state, HOLD_STATUS_CONTEXT, &description, Some(&url))
                .await?;
        }
        Ok(())
    }
}

/// The proposal a firing alert asks for.
fn alert_request(alert: &rewind_domain::Alert) -> (ProposeRequest, Trigger) {
    let summary = alert
        .summary()
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    let request = ProposeRequest {
        reason: format!(
            "alert {} ({}) firing{summary}",
            alert.name,
            alert.severity.as_deref().unwrap_or("no severity")
        ),
        ..ProposeRequest::default()
    };
    let trigger = Trigger::Alert {
        group_key: alert.group_key.clone(),
        alert_name: alert.name.clone(),
        fingerprint: alert.fingerprint.clone(),
        severity: alert.severity.clone(),
    };
    (request, trigger)
}
