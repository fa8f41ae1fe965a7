//! One job, one step: push the branch, open the pull request, merge when
//! policy or approvals say so. Each step first checks whether it already
//! happened (the typed timeline, the remote branch, the PR for the branch,
//! the base branch), so a crash between any two lines resumes without a
//! duplicate branch, PR or merge. Each step writes only the fields it owns
//! (branch and commit, PR, merge commit), never the whole row, so it cannot
//! overwrite an approval recorded meanwhile.

use chrono::Utc;
use rewind_config::Settings;
use rewind_domain::{CommitId, Rollback, RollbackId, RollbackState, TimelineEvent, text};
use rewind_forge::{
    Forge, ForgeError, PullRequestSpec, ROLLBACK_LABELS, ReportStage, RollbackReport,
    render_pull_request_body, render_title,
};
use rewind_git::{BuildOutcome, MergeKind, MergeOutcome, RollbackRequest};

use crate::timeline::entry;
use crate::{Engine, EngineError};

/// Rebuilds per rollback when the forge will not merge: the base moving
/// more often than this during one review needs people.
const MAX_REBUILDS: usize = 3;

/// Whether policy merges this rollback without waiting for people.
pub(crate) fn auto_merges(settings: &Settings, rollback: &Rollback) -> bool {
    crate::decide::auto_merge_allowed(settings.policy.auto_merge, &rollback.risks)
}

impl Engine {
    /// Runs the next step of rollback `id`, if any is due.
    #[tracing::instrument(skip_all, fields(rollback.id = %id))]
    pub async fn advance(&self, id: RollbackId) -> Result<(), EngineError> {
        let Some(mut rollback) = self.ledger.rollback(id).await? else {
            return Ok(());
        };
        if !rollback.state.is_reviewable() {
            // Waiting for Argo CD / Flux and the clock, or done.
            return Ok(());
        }
        self.ensure_pushed(&mut rollback).await?;
        if let Some(forge) = self.forge.clone() {
            rollback = self.ensure_pull_request(forge.as_ref(), rollback).await?;
            if rollback.rebuild_in_progress() {
                // A crash interrupted a rebuild: finish that attempt (its
                // branch and PR are found, not made again).
                self.rebuild_on_forge(
                    forge.as_ref(),
                    &mut rollback,
                    "resuming an interrupted rebuild",
                )
                .await?;
            }
        }
        self.merge_if_due(rollback).await
    }

    async fn ensure_pushed(&self, rollback: &mut Rollback) -> Result<(), EngineError> {
        if rollback.has_event(&TimelineEvent::Pushed) {
            return Ok(());
        }
        let commit = rollback
            .commit
            .clone()
            .ok_or_else(|| EngineError::Invalid("rollback has no commit to push".into()))?;
        let pushed = self
            .git
            .push_rollback(&rollback.app, &rollback.id, &commit)
            .await?;
        if pushed.commit != commit || rollback.branch.as_deref() != Some(&pushed.branch) {
            self.ledger
                .set_rollback_commit(rollback.id, &pushed.commit, Some(&pushed.branch))
                .await?;
            rollback.commit = Some(pushed.commit.clone());
            rollback.branch = Some(pushed.branch.clone());
        }
        let how = if pushed.reused { "found" } else { "pushed" };
        self.note(
            rollback,
            "rewind",
            TimelineEvent::Pushed,
            format!(
                "{how} branch {} at {}",
                pushed.branch,
                pushed.commit.short()
            ),
        )
        .await?;
        rollback
            .timeline
            .push(entry(TimelineEvent::Pushed, "", Utc::now()));
        Ok(())
    }

    async fn ensure_pull_request(
        &self,
        forge: &dyn Forge,
        mut rollback: Rollback,
    ) -> Result<Rollback, EngineError> {
        if rollback.pr.is_none() {
            let spec = PullRequestSpec {
                head_branch: rollback.branch.clone().unwrap_or_default(),
                base_branch: self.settings.git.branch.clone(),
                title: render_title(&rollback),
                body: self.report(&rollback, ReportStage::Opened).await?,
                labels: ROLLBACK_LABELS.iter().map(|l| l.to_string()).collect(),
            };
            // Idempotent: the forge returns the branch's open PR if one
            // exists (a crash after opening, before recording).
            let pr = forge.open_pull_request(&spec).await?;
            self.ledger.set_rollback_pr(rollback.id, &pr).await?;
            rollback.pr = Some(pr);
        }
        if rollback.state != RollbackState::Proposed {
            // pr_open already, or approved before the PR step ran.
            return Ok(rollback);
        }
        let pr = rollback
            .pr
            .clone()
            .ok_or_else(|| EngineError::Invalid("no PR".into()))?;
        match self
            .ledger
            .transition_rollback(
                rollback.id,
                RollbackState::Proposed,
                RollbackState::PrOpen,
                entry(
                    TimelineEvent::PrOpened,
                    format!("opened pull request #{} {}", pr.number, pr.url),
                    Utc::now(),
                ),
            )
            .await
        {
            Ok(rollback) => Ok(rollback),
            // Approved (or cancelled) meanwhile: the PR is recorded; the
            // next step reads the new state.
            Err(rewind_ledger::LedgerError::Conflict { .. }) => self.load(rollback.id).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Merges when policy allows it at once, or approvals are complete.
    async fn merge_if_due(&self, rollback: Rollback) -> Result<(), EngineError> {
        let required = self.settings.policy.required_approvals;
        if auto_merges(&self.settings, &rollback) {
            if !rollback.has_event(&TimelineEvent::AutoMerge) {
                self.note(
                    &rollback,
                    "policy",
                    TimelineEvent::AutoMerge,
                    format!(
                        "policy.auto_merge = {:?} and {} risk(s): merging without waiting for reviews",
                        self.settings.policy.auto_merge,
                        rollback.risks.len()
                    ),
                )
                .await?;
            }
            self.merge_now(rollback, "policy").await?;
        } else if self.approvals_complete(&rollback)
            && (required > 0 || rollback.state == RollbackState::Approved)
        {
            self.merge_now(rollback, "rewind").await?;
        }
        Ok(())
    }

    /// Merges the rollback into `git.branch` (local forge: with Git; GitHub:
    /// through the merge API), and records the merge.
    pub(crate) async fn merge_now(
        &self,
        mut rollback: Rollback,
        actor: &str,
    ) -> Result<Rollback, EngineError> {
        if !rollback.state.is_reviewable() {
            return Err(EngineError::Conflict(format!(
                "rollback {} is {}; it cannot be merged",
                rollback.id, rollback.state
            )));
        }
        let from_state = rollback.state;
        let (merge_commit, how) = match self.forge.clone() {
            None => match self.merge_locally(&mut rollback).await? {
                Some(done) => done,
                None => return self.supersede(rollback, actor).await,
            },
            Some(forge) => match self.merge_on_forge(forge.as_ref(), &mut rollback).await? {
                Some(done) => done,
                None => return Ok(rollback),
            },
        };
        self.ledger
            .set_merge_commit(rollback.id, &merge_commit)
            .await?;
        rollback.merge_commit = Some(merge_commit.clone());
        let rollback = self
            .ledger
            .transition_rollback(
                rollback.id,
                from_state,
                RollbackState::Merged,
                entry(
                    TimelineEvent::Merged,
                    format!(
                        "{actor} merged into {} at {} ({how}); waiting for Argo CD / Flux to deploy it",
                        self.settings.git.branch,
                        merge_commit.short()
                    ),
                    Utc::now(),
                ),
            )
            .await?;
        self.audit(
            actor,
            "rollback.merge",
            format!("rollback/{}", rollback.id),
            serde_json::json!({"app": rollback.app_ref(), "merge_commit": merge_commit, "how": how}),
        )
        .await?;
        metrics::counter!("rewind_rollbacks_merged_total").increment(1);
        self.notify(
            rewind_config::NotifyEvent::Merged,
            &rollback,
            &rollback.reason,
        )
        .await;
        self.refresh_pull_request(&rollback).await;
        Ok(rollback)
    }

    /// `None` when `git.branch` already holds the target's configuration.
    async fn merge_locally(
        &self,
        rollback: &mut Rollback,
    ) -> Result<Option<(CommitId, &'static str)>, EngineError> {
        let reviewed = rollback
            .commit
            .clone()
            .ok_or_else(|| EngineError::Invalid("rollback has no commit to merge".into()))?;
        let request = self.git_request(rollback).await?;
        match self.git.merge_rollback(request, &reviewed).await? {
            MergeOutcome::AlreadyOnTarget { .. } => Ok(None),
            MergeOutcome::Merged { head, kind } => {
                let how = match kind {
                    MergeKind::FastForward => "fast-forward",
                    MergeKind::MergeCommit => "merge commit",
                    MergeKind::AlreadyMerged => "already merged",
                    MergeKind::Rebuilt(built) => {
                        self.note(
                            rollback,
                            "rewind",
                            TimelineEvent::Rebuilt,
                            format!(
                                "{} moved since the review; the rollback was rebuilt on it as {}",
                                self.settings.git.branch,
                                built.commit.short()
                            ),
                        )
                        .await?;
                        self.ledger
                            .set_rollback_commit(rollback.id, &built.commit, None)
                            .await?;
                        rollback.commit = Some(built.commit);
                        "rebuilt on the new head"
                    }
                };
                Ok(Some((head, how)))
            }
        }
    }

    /// `None` when the forge would not merge and people must look.
    async fn merge_on_forge(
        &self,
        forge: &dyn Forge,
        rollback: &mut Rollback,
    ) -> Result<Option<(CommitId, &'static str)>, EngineError> {
        let pr = rollback
            .pr
            .clone()
            .ok_or_else(|| EngineError::Invalid("rollback has no pull request".into()))?;
        let head = rollback
            .commit
            .clone()
            .ok_or_else(|| EngineError::Invalid("rollback has no commit".into()))?;
        match forge.merge(pr.number, &head).await {
            Ok(sha) => Ok(Some((sha, "merged by the forge"))),
            Err(ForgeError::NotMergeable(message))
                if rollback.count_events(&TimelineEvent::Rebuilt) < MAX_REBUILDS =>
            {
                self.rebuild_on_forge(forge, rollback, &message).await?;
                let pr = rollback
                    .pr
                    .clone()
                    .ok_or_else(|| EngineError::Invalid("no PR".into()))?;
                let head = rollback
                    .commit
                    .clone()
                    .ok_or_else(|| EngineError::Invalid("no commit".into()))?;
                match forge.merge(pr.number, &head).await {
                    Ok(sha) => Ok(Some((sha, "merged by the forge after a rebuild"))),
                    Err(e @ (ForgeError::NotMergeable(_) | ForgeError::HeadChanged(_))) => {
                        self.merge_blocked(forge, rollback, &e.to_string()).await?;
                        Ok(None)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(e @ (ForgeError::NotMergeable(_) | ForgeError::HeadChanged(_))) => {
                self.merge_blocked(forge, rollback, &e.to_string()).await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// GitHub would not merge: rebuild the rollback on the new head of
    /// `git.branch`, push it on the branch of this attempt (derived from
    /// the rollback id and the attempt number; never force the old one),
    /// open its PR and close the old one.
    ///
    /// The intent (`rebuild_started`, whose count is the attempt number) is
    /// saved before any side effect, so a crash anywhere resumes the same
    /// attempt: the push finds its branch, the forge returns the branch's
    /// PR, closing a closed PR changes nothing.
    async fn rebuild_on_forge(
        &self,
        forge: &dyn Forge,
        rollback: &mut Rollback,
        why: &str,
    ) -> Result<(), EngineError> {
        let started = rollback.count_events(&TimelineEvent::RebuildStarted);
        let attempt = if rollback.rebuild_in_progress() {
            started
        } else {
            let attempt = started + 1;
            let detail = format!(
                "attempt {attempt}: {why}; rebuilding on the new head of {}",
                self.settings.git.branch
            );
            self.note(rollback, "rewind", TimelineEvent::RebuildStarted, detail)
                .await?;
            rollback
                .timeline
                .push(entry(TimelineEvent::RebuildStarted, "", Utc::now()));
            attempt
        };
        let attempt_number = u32::try_from(attempt).unwrap_or(u32::MAX);
        let request = self.git_request(rollback).await?;
        let built = match self.git.build_rollback(request).await? {
            BuildOutcome::Commit(built) => built,
            BuildOutcome::AlreadyOnTarget => {
                return Err(EngineError::Conflict(format!(
                    "{} already holds the target's configuration",
                    self.settings.git.branch
                )));
            }
        };
        let pushed = self
            .git
            .push_rebuild(&rollback.app, &rollback.id, attempt_number, &built.commit)
            .await?;
        self.ledger
            .set_rollback_commit(rollback.id, &pushed.commit, Some(&pushed.branch))
            .await?;
        rollback.commit = Some(pushed.commit.clone());
        rollback.branch = Some(pushed.branch.clone());
        let spec = PullRequestSpec {
            head_branch: pushed.branch.clone(),
            base_branch: self.settings.git.branch.clone(),
            title: render_title(rollback),
            body: self.report(rollback, ReportStage::Opened).await?,
            labels: ROLLBACK_LABELS.iter().map(|l| l.to_string()).collect(),
        };
        let pr = forge.open_pull_request(&spec).await?;
        // The old PR is closed while the rollback still names it (a retry
        // after a crash here knows which to close); its `closed` webhook
        // does not cancel the rollback while the rebuild is in progress.
        if let Some(old) = rollback.pr.clone().filter(|old| old.number != pr.number) {
            let _ = forge
                .comment(
                    old.number,
                    &format!("GitHub could not merge this ({}). rewind rebuilt the rollback on the new head of {}: #{}.", text::markdown_text(why, 500), text::code_span(&self.settings.git.branch, 200), pr.number),
                )
                .await;
            let _ = forge.close_pull_request(old.number).await;
        }
        self.ledger.set_rollback_pr(rollback.id, &pr).await?;
        rollback.pr = Some(pr.clone());
        self.note(
            rollback,
            "rewind",
            TimelineEvent::Rebuilt,
            format!(
                "attempt {attempt}: rebuilt on {} as {} on branch {}, pull request #{}",
                built.parent.short(),
                pushed.commit.short(),
                pushed.branch,
                pr.number
            ),
        )
        .await?;
        rollback
            .timeline
            .push(entry(TimelineEvent::Rebuilt, "", Utc::now()));
        Ok(())
    }

    async fn merge_blocked(
        &self,
        forge: &dyn Forge,
        rollback: &Rollback,
        why: &str,
    ) -> Result<(), EngineError> {
        self.note(
            rollback,
            "rewind",
            TimelineEvent::MergeBlocked,
            format!("the forge would not merge: {why}; left open for people to decide"),
        )
        .await?;
        if let Some(pr) = &rollback.pr {
            let _ = forge
                .comment(
                    pr.number,
                    &format!("rewind could not merge this pull request: {}. It stays open; merge it by hand or comment `/rewind cancel`.", text::markdown_text(why, 500)),
                )
                .await;
        }
        Ok(())
    }

    async fn supersede(&self, rollback: Rollback, actor: &str) -> Result<Rollback, EngineError> {
        let rollback = self
            .ledger
            .transition_rollback(
                rollback.id,
                rollback.state,
                RollbackState::Superseded,
                entry(
                    TimelineEvent::Superseded,
                    format!(
                        "{} already holds the target's configuration; nothing to merge",
                        self.settings.git.branch
                    ),
                    Utc::now(),
                ),
            )
            .await?;
        self.audit(
            actor,
            "rollback.superseded",
            format!("rollback/{}", rollback.id),
            serde_json::json!({"app": rollback.app}),
        )
        .await?;
        Ok(rollback)
    }

    /// The Git request that rebuilds or merges `rollback`.
    pub(crate) async fn git_request(
        &self,
        rollback: &Rollback,
    ) -> Result<RollbackRequest, EngineError> {
        let app = self
            .ledger
            .get_app(&rollback.app_ref())
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no app {}", rollback.app_ref())))?;
        let app_path = app.path.ok_or_else(|| {
            EngineError::Invalid(format!("app {} has no path", rollback.app_ref()))
        })?;
        let to = rollback
            .to
            .commit
            .clone()
            .ok_or_else(|| EngineError::Invalid("the target has no commit".into()))?;
        Ok(RollbackRequest {
            rollback_id: rollback.id,
            app: rollback.app.clone(),
            cluster: rollback.cluster.clone(),
            app_path,
            from: rollback.from.commit.clone().unwrap_or_else(|| to.clone()),
            to,
            to_cluster_revision: Some(rollback.to.cluster_revision),
            reason: rollback.reason.clone(),
            strategy: rollback.strategy,
            allow_restore_fallback: self.settings.policy.revert_fallback_to_restore,
            target_config_hash: rollback.to.config_hash.clone(),
        })
    }

    /// The pull request body for `rollback` now.
    pub(crate) async fn report(
        &self,
        rollback: &Rollback,
        stage: ReportStage,
    ) -> Result<String, EngineError> {
        let recent = self.ledger.history(&rollback.app_ref(), 5).await?;
        let alert = match &rollback.trigger {
            rewind_domain::Trigger::Alert { fingerprint, .. } => self
                .ledger
                .alerts_for_app(&rollback.app_ref(), 50)
                .await?
                .into_iter()
                .find(|a| &a.alert.fingerprint == fingerprint)
                .map(|a| a.alert),
            rewind_domain::Trigger::Manual { .. } | rewind_domain::Trigger::Drift { .. } => None,
        };
        Ok(render_pull_request_body(&RollbackReport {
            rollback,
            alert: alert.as_ref(),
            recent_deployments: &recent,
            public_url: &self.settings.server.public_url,
            verify_for: self.settings.policy.verify_for.get(),
            stage,
        }))
    }

    /// Keeps the PR body current. Best effort: a forge hiccup must not
    /// undo a merge that happened.
    pub(crate) async fn refresh_pull_request(&self, rollback: &Rollback) {
        let (Some(forge), Some(pr)) = (self.forge.as_ref(), rollback.pr.as_ref()) else {
            return;
        };
        let Ok(rollback) = self
            .ledger
            .rollback(rollback.id)
            .await
            .map(|r| r.unwrap_or_else(|| rollback.clone()))
        else {
            return;
        };
        match self.report(&rollback, ReportStage::Update).await {
            Ok(body) => {
                if let Err(e) = forge.update_pull_request_body(pr.number, &body).await {
                    tracing::warn!(error = %e, pr.number = pr.number, "cannot update the pull request body");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot render the pull request body"),
        }
    }
}
