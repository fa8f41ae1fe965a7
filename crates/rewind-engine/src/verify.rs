//! The clock: known-good promotion, verification of synced rollbacks (the
//! checks themselves are in `proof`), the
//! end of holds, notes on alerts that resolved before a merge, and recovery
//! of rollbacks whose next step was lost (a crash between two steps).
//!
//! Every function takes `now` so tests can move time without sleeping.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rewind_domain::{
    AlertStatus, AppRef, Health, Rollback, RollbackState, TimelineEvent, Trigger, text,
};
use rewind_ledger::JobPayload;

use crate::proof::{Verdict, verdict};
use crate::timeline::entry;
use crate::{Engine, EngineError};

/// How long a reviewable rollback may sit without a step before the ticker
/// queues one again.
const RECOVER_AFTER: ChronoDuration = ChronoDuration::seconds(30);

impl Engine {
    /// One pass of the clock.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<(), EngineError> {
        let promoted = self
            .ledger
            .promote_known_good(now, self.settings.policy.healthy_for.get())
            .await?;
        for id in promoted {
            self.release_hold_if_superseded(id).await?;
        }
        for state in [RollbackState::Merged, RollbackState::Synced] {
            for rollback in self.ledger.list_rollbacks(None, Some(state), 500).await? {
                self.check_verification(rollback, now).await?;
            }
        }
        for state in [
            RollbackState::Proposed,
            RollbackState::PrOpen,
            RollbackState::Approved,
        ] {
            for rollback in self.ledger.list_rollbacks(None, Some(state), 500).await? {
                self.note_resolved_alert(&rollback).await?;
                // The value while the alert fires, before the merge.
                self.record_baselines(&rollback).await?;
                let stalled = matches!(state, RollbackState::Approved)
                    || !rollback.has_event(&TimelineEvent::Pushed)
                    || (self.forge.is_some() && rollback.pr.is_none());
                if stalled && now - rollback.updated_at > RECOVER_AFTER {
                    // The same dedup key as every advance: at most one
                    // queued step per rollback.
                    self.ledger
                        .enqueue_job(
                            &JobPayload::AdvanceRollback {
                                rollback_id: rollback.id,
                            },
                            // Due at once by the real clock, whatever `now`
                            // the caller simulates.
                            Utc::now(),
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// merged/synced → failed when the app degrades or the triggering alert
    /// still fires after `verify_for`; synced → verified after `verify_for`
    /// Healthy with the alert resolved.
    async fn check_verification(
        &self,
        rollback: Rollback,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let Some(current) = self.ledger.current_deployment(&rollback.app_ref()).await? else {
            return Ok(());
        };
        let synced = rollback.state == RollbackState::Synced;
        if synced && current.health == Health::Degraded {
            return self
                .fail(
                    &rollback,
                    format!(
                        "the app is Degraded at cluster revision {} after the rollback synced",
                        current.cluster_revision
                    ),
                )
                .await;
        }
        if !synced {
            // Argo CD may report the target's images after the commit:
            // the health reports that follow carry them.
            return self.sync_if_deployed(&rollback, &current).await;
        }
        let verify_for = ChronoDuration::from_std(self.settings.policy.verify_for.get())
            .unwrap_or(ChronoDuration::MAX);
        // The checks' clock starts when the rollback's commit is deployed.
        let results = self.evaluate_due_checks(&rollback, now).await?;
        let (_, checks) = self.checks_for(&rollback).await?;
        let checks_verdict = verdict(&checks, &results, self.settings.verify.passes);
        let synced_at = rollback
            .timeline
            .iter()
            .find(|e| e.event == TimelineEvent::Synced)
            .map_or(rollback.updated_at, |e| e.at);
        if let Verdict::Short(why) = &checks_verdict
            && now - synced_at >= verify_for
        {
            return self
                .fail(
                    &rollback,
                    format!(
                        "verification failed within policy.verify_for ({}): {why}",
                        self.settings.policy.verify_for
                    ),
                )
                .await;
        }
        let healthy_long_enough = current.health == Health::Healthy
            && current
                .healthy_since
                .is_some_and(|since| now - since >= verify_for);
        if !healthy_long_enough {
            return Ok(());
        }
        if self.trigger_still_firing(&rollback).await? {
            let merged_at = rollback
                .timeline
                .iter()
                .find(|e| e.event == TimelineEvent::Merged)
                .map_or(rollback.updated_at, |e| e.at);
            if now - merged_at >= verify_for {
                return self
                    .fail(
                        &rollback,
                        "the app is Healthy but the triggering alert still fires after policy.verify_for".into(),
                    )
                    .await;
            }
            return Ok(());
        }
        if checks_verdict != Verdict::Passed {
            return Ok(());
        }
        let checks_said = checks_summary(&checks, &results);
        let rollback = self
            .ledger
            .transition_rollback(
                rollback.id,
                RollbackState::Synced,
                RollbackState::Verified,
                entry(
                    TimelineEvent::Verified,
                    format!(
                        "Healthy for {} at cluster revision {} with the alert resolved{checks_said}; {} is now held",
                        self.settings.policy.verify_for, current.cluster_revision, rollback.app
                    ),
                    now,
                ),
            )
            .await?;
        self.ledger
            .set_app_hold(&rollback.app_ref(), Some(now))
            .await?;
        self.audit(
            "rewind",
            "rollback.verified",
            format!("rollback/{}", rollback.id),
            serde_json::json!({"app": rollback.app_ref(), "deployment": current.cluster_revision}),
        )
        .await?;
        metrics::counter!("rewind_rollbacks_verified_total").increment(1);
        self.verify_status(
            &rollback,
            rewind_forge::StatusState::Success,
            &format!("verified{checks_said}"),
        )
        .await;
        self.update_verification_comment(&rollback).await;
        if let Some(last) = rollback.timeline.last() {
            self.notify(
                rewind_config::NotifyEvent::Verified,
                &rollback,
                &last.detail,
            )
            .await;
        }
        self.release_wave(&rollback).await?;
        self.say_outcome(
            &rollback,
            "verified: the app is healthy again and the alert resolved",
        )
        .await;
        Ok(())
    }

    async fn trigger_still_firing(&self, rollback: &Rollback) -> Result<bool, EngineError> {
        let Trigger::Alert { fingerprint, .. } = &rollback.trigger else {
            return Ok(false);
        };
        Ok(self
            .ledger
            .firing_alerts(&rollback.app_ref())
            .await?
            .iter()
            .any(|a| &a.alert.fingerprint == fingerprint))
    }

    /// → failed, with the evidence.
    pub(crate) async fn fail(
        &self,
        rollback: &Rollback,
        evidence: String,
    ) -> Result<(), EngineError> {
        // A rollback that fails after its merge holds the app: no further
        // automatic proposals until a person releases it.
        let hold = matches!(
            rollback.state,
            RollbackState::Merged | RollbackState::Synced
        );
        let evidence = if hold {
            format!(
                "{evidence}; {} is held: no automatic proposals until a person releases it",
                rollback.app
            )
        } else {
            evidence
        };
        let rollback = self
            .ledger
            .transition_rollback(
                rollback.id,
                rollback.state,
                RollbackState::Failed,
                entry(TimelineEvent::Failed, evidence.clone(), Utc::now()),
            )
            .await?;
        if hold {
            self.ledger
                .set_app_hold(&rollback.app_ref(), Some(Utc::now()))
                .await?;
            self.verify_status(&rollback, rewind_forge::StatusState::Failure, &evidence)
                .await;
            self.update_verification_comment(&rollback).await;
        }
        self.audit(
            "rewind",
            "rollback.failed",
            format!("rollback/{}", rollback.id),
            serde_json::json!({"app": rollback.app_ref(), "evidence": evidence}),
        )
        .await?;
        metrics::counter!("rewind_rollbacks_failed_total").increment(1);
        self.stop_wave(&rollback).await?;
        self.notify(rewind_config::NotifyEvent::Failed, &rollback, &evidence)
            .await;
        self.say_outcome(&rollback, &format!("failed: {evidence}"))
            .await;
        Ok(())
    }

    /// Says the outcome on the PR (best effort).
    async fn say_outcome(&self, rollback: &Rollback, outcome: &str) {
        if let (Some(forge), Some(pr)) = (self.forge.as_ref(), rollback.pr.as_ref())
            && let Err(e) = forge
                .comment(
                    pr.number,
                    &format!("rewind: rollback {}.", text::markdown_text(outcome, 1000)),
                )
                .await
        {
            tracing::warn!(error = %e, "cannot comment the outcome on the pull request");
        }
        self.refresh_pull_request(rollback).await;
    }

    /// The triggering alert resolved before the merge: say so (once); the
    /// proposal stays open for people to decide.
    async fn note_resolved_alert(&self, rollback: &Rollback) -> Result<(), EngineError> {
        let Trigger::Alert {
            fingerprint,
            alert_name,
            ..
        } = &rollback.trigger
        else {
            return Ok(());
        };
        if rollback.has_event(&TimelineEvent::AlertResolved) {
            return Ok(());
        }
        let alerts = self.ledger.alerts_for_app(&rollback.app_ref(), 50).await?;
        let episodes: Vec<_> = alerts
            .iter()
            .filter(|a| &a.alert.fingerprint == fingerprint)
            .collect();
        let resolved = !episodes.is_empty()
            && episodes
                .iter()
                .all(|a| a.alert.status == AlertStatus::Resolved);
        if !resolved {
            return Ok(());
        }
        let detail = format!(
            "alert {alert_name} resolved before the merge; the proposal stays open for people to decide"
        );
        self.note(rollback, "alertmanager", "alert_resolved", detail.clone())
            .await?;
        if let (Some(forge), Some(pr)) = (self.forge.as_ref(), rollback.pr.as_ref()) {
            let _ = forge
                .comment(
                    pr.number,
                    &format!("rewind: {}.", text::markdown_text(&detail, 1000)),
                )
                .await;
        }
        Ok(())
    }

    /// `policy.trust_history`: earlier history entries that ran
    /// `healthy_for` with no alert become known good by history.
    pub(crate) async fn trust_history(&self, app: &AppRef) -> Result<(), EngineError> {
        if self.settings.policy.trust_history {
            self.ledger
                .promote_by_history(app, self.settings.policy.healthy_for.get())
                .await?;
        }
        Ok(())
    }

    /// With `policy.healthy_for` zero, a deployment that reports Healthy is
    /// known good at once, not at the next tick: the webhook handler calls
    /// this after recording a delivery.
    pub async fn promote_healthy_now(&self) -> Result<(), EngineError> {
        if !self.settings.policy.healthy_for.get().is_zero() {
            return Ok(());
        }
        let promoted = self
            .ledger
            .promote_known_good(Utc::now(), std::time::Duration::ZERO)
            .await?;
        for id in promoted {
            self.release_hold_if_superseded(id).await?;
        }
        Ok(())
    }

    /// A deployment newer than the hold became known good: the hold ends.
    async fn release_hold_if_superseded(&self, deployment_id: i64) -> Result<(), EngineError> {
        let Some(deployment) = self.ledger.deployment(deployment_id).await? else {
            return Ok(());
        };
        let Some(app) = self.ledger.get_app(&deployment.app_ref()).await? else {
            return Ok(());
        };
        if let Some(held_since) = app.held_since
            && deployment.deployed_at > held_since
        {
            let why = format!(
                "cluster revision {} was verified healthy",
                deployment.cluster_revision
            );
            self.release_hold(&app.app_ref(), "rewind", &why).await?;
        }
        Ok(())
    }

    /// Ends an app's hold (an operator, or a newer healthy deployment).
    pub async fn release_hold(
        &self,
        app: &AppRef,
        who: &str,
        why: &str,
    ) -> Result<(), EngineError> {
        if self.ledger.get_app(app).await?.is_none() {
            return Err(EngineError::NotFound(format!("no app {app}")));
        }
        self.ledger.set_app_hold(app, None).await?;
        self.audit(
            who,
            "app.release_hold",
            format!("app/{app}"),
            serde_json::json!({"why": why}),
        )
        .await
    }
}

/// "; checks passed: error-rate 0.2 → 0.01, create-order passed" for the
/// verified entry: before → after, where there is a before.
fn checks_summary(
    checks: &[&rewind_probe::Check],
    results: &[rewind_domain::CheckResult],
) -> String {
    let parts: Vec<String> = checks
        .iter()
        .filter_map(|c| results.iter().rev().find(|r| r.check == c.name))
        .map(|r| {
            let show = rewind_probe::verdict::show;
            match (r.baseline, r.value) {
                (Some(before), Some(after)) => {
                    format!("{} {} → {}", r.check, show(before), show(after))
                }
                (None, Some(after)) => format!("{} {}", r.check, show(after)),
                _ => format!("{} passed", r.check),
            }
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("; checks passed: {}", parts.join(", "))
    }
}
