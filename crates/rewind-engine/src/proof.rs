//! Verification checks on a rollback: the baseline before the merge, the
//! known-good value, one evaluation per check per `verify.interval` after
//! the rollback's commit is deployed, and the verdict over them.
//!
//! Every record goes to the ledger through `record_check_result` (one
//! append, never a rewrite of the rollback). The verdict is a pure
//! function of the records ([`verdict`]), so its rules are tested without
//! Prometheus.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rewind_domain::{CheckPhase, CheckResult, Rollback};
use rewind_probe::{Check, CheckKind, Reading, Target, judge};

use crate::{Engine, EngineError};

/// Commit status context on the rollback's commit: pending while the
/// checks run, then success or failure.
pub(crate) const VERIFY_STATUS_CONTEXT: &str = "rewind/verify";

/// Where the checks of a rollback stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every check passed `verify.passes` times in a row (or there are no
    /// checks).
    Passed,
    /// Not yet: the reason names each check that is short, and why.
    Short(String),
}

/// The verdict over `results` (oldest first) for `checks`: each needs its
/// last `passes` evaluations to be passes. An unknown or failed evaluation
/// resets its count. The reason names the latest failure with its value and
/// threshold, or says "not enough evidence" when nothing failed but too
/// little passed.
pub(crate) fn verdict(checks: &[&Check], results: &[CheckResult], passes: u32) -> Verdict {
    let mut short = Vec::new();
    for check in checks {
        let mine: Vec<&CheckResult> = results.iter().filter(|r| r.check == check.name).collect();
        let streak = mine
            .iter()
            .rev()
            .take_while(|r| r.pass == Some(true))
            .count();
        if streak >= passes as usize {
            continue;
        }
        let last_failure = mine.iter().rev().find(|r| r.pass == Some(false));
        let unknown = mine.iter().filter(|r| r.pass.is_none()).count();
        let why = match (last_failure, mine.last()) {
            (Some(failed), _) => format!(
                "check {} failed: {} (passed {streak} of {passes} in a row)",
                check.name, failed.detail
            ),
            (None, None) => format!(
                "not enough evidence: check {} was never evaluated",
                check.name
            ),
            (None, Some(last)) if unknown > 0 => format!(
                "not enough evidence: check {} was unknown {unknown} of {} times (last: {}); passed {streak} of {passes} in a row",
                check.name,
                mine.len(),
                last.detail
            ),
            (None, Some(_)) => format!(
                "not enough evidence: check {} passed {streak} of {passes} times needed",
                check.name
            ),
        };
        short.push(why);
    }
    if short.is_empty() {
        Verdict::Passed
    } else {
        Verdict::Short(short.join("; "))
    }
}

impl Engine {
    /// The configured checks that apply to the rollback's app.
    pub(crate) async fn checks_for(
        &self,
        rollback: &Rollback,
    ) -> Result<(Target, Vec<&Check>), EngineError> {
        let target = Target::new(rollback.app.as_str(), rollback.cluster.as_str());
        if self.checks.is_empty() {
            return Ok((target, Vec::new()));
        }
        let checks = self
            .checks
            .iter()
            .filter(|c| c.applies_to(&target))
            .collect();
        Ok((target, checks))
    }

    async fn read(&self, check: &Check, target: &Target, at: Option<DateTime<Utc>>) -> Reading {
        match &self.probe {
            Some(probe) => probe.read(check, target, at).await,
            None => Reading::Unknown("the probe could not be built (see the startup log)".into()),
        }
    }

    /// Records, once per PromQL check, the value while the alert fired
    /// (at the rollback's creation) and, for `no_worse_than`, the value
    /// at the end of the target's known-good window. Safe to call on every
    /// tick: what is recorded is not read again.
    pub(crate) async fn record_baselines(&self, rollback: &Rollback) -> Result<(), EngineError> {
        if self.checks.is_empty() {
            return Ok(());
        }
        let (target, checks) = self.checks_for(rollback).await?;
        if !checks.iter().any(|c| matches!(c.kind, CheckKind::Query(_))) {
            return Ok(());
        }
        let baselines = self
            .ledger
            .check_results(rollback.id, CheckPhase::Baseline)
            .await?;
        let known_good = self
            .ledger
            .check_results(rollback.id, CheckPhase::KnownGood)
            .await?;
        let mut good_window_end = None;
        for check in checks {
            let CheckKind::Query(query) = &check.kind else {
                continue;
            };
            if !baselines.iter().any(|b| b.check == check.name) {
                let at = rollback.created_at;
                let record = reading_record(check, at, self.read(check, &target, Some(at)).await);
                self.ledger
                    .record_check_result(rollback.id, CheckPhase::Baseline, &record)
                    .await?;
            }
            if query.max_delta_from_known_good.is_some()
                && !known_good.iter().any(|b| b.check == check.name)
            {
                let at = match good_window_end {
                    Some(at) => at,
                    None => *good_window_end.insert(self.known_good_window_end(rollback).await?),
                };
                let reading = self.read(check, &target, Some(at)).await;
                let record = reading_record(check, at, reading);
                self.ledger
                    .record_check_result(rollback.id, CheckPhase::KnownGood, &record)
                    .await?;
            }
        }
        Ok(())
    }

    /// The last moment the target ran as known good: just before the next
    /// deployment after it started.
    async fn known_good_window_end(
        &self,
        rollback: &Rollback,
    ) -> Result<DateTime<Utc>, EngineError> {
        let history = self.ledger.history(&rollback.app_ref(), 200).await?;
        let next = history
            .iter()
            .filter(|d| d.cluster_revision > rollback.to.cluster_revision)
            .min_by_key(|d| d.cluster_revision)
            .map_or(rollback.from.deployed_at, |d| d.deployed_at);
        Ok(next - ChronoDuration::seconds(1))
    }

    /// Evaluates every applicable check whose last evaluation is at least
    /// `verify.interval` before `now`, and records the results.
    pub(crate) async fn evaluate_due_checks(
        &self,
        rollback: &Rollback,
        now: DateTime<Utc>,
    ) -> Result<Vec<CheckResult>, EngineError> {
        let mut results = rollback.verification.clone();
        if self.checks.is_empty() {
            return Ok(results);
        }
        let (target, checks) = self.checks_for(rollback).await?;
        if checks.is_empty() {
            return Ok(results);
        }
        self.record_baselines(rollback).await?;
        let baselines = self
            .ledger
            .check_results(rollback.id, CheckPhase::Baseline)
            .await?;
        let known_good = self
            .ledger
            .check_results(rollback.id, CheckPhase::KnownGood)
            .await?;
        if results.is_empty() {
            self.verify_status(
                rollback,
                rewind_forge::StatusState::Pending,
                &format!("{} check(s) running", checks.len()),
            )
            .await;
        }
        let interval = ChronoDuration::from_std(self.settings.verify.interval.get())
            .unwrap_or(ChronoDuration::MAX);
        let mut evaluated = false;
        for check in checks {
            let last = results.iter().rev().find(|r| r.check == check.name);
            if last.is_some_and(|last| now - last.at < interval) {
                continue;
            }
            let value_of = |records: &[CheckResult]| {
                records
                    .iter()
                    .find(|r| r.check == check.name)
                    .and_then(|r| r.value)
            };
            let reading = self.read(check, &target, None).await;
            let evaluation = judge(&check.kind, reading, value_of(&known_good));
            let record = CheckResult {
                check: check.name.clone(),
                at: now,
                value: evaluation.value,
                baseline: value_of(&baselines),
                pass: evaluation.pass,
                detail: evaluation.detail,
            };
            let outcome = match record.pass {
                Some(true) => "pass",
                Some(false) => "fail",
                None => "unknown",
            };
            metrics::counter!("rewind_verify_evaluations_total", "outcome" => outcome).increment(1);
            tracing::info!(
                rollback.id = %rollback.id,
                check.name = %record.check,
                check.outcome = outcome,
                check.detail = %record.detail,
                "verification check evaluated"
            );
            self.ledger
                .record_check_result(rollback.id, CheckPhase::Evaluation, &record)
                .await?;
            results.push(record);
            evaluated = true;
        }
        if evaluated {
            // The PR body's verification table and the verification
            // comment follow the checks (they read the rollback again,
            // with the new records).
            self.refresh_pull_request(rollback).await;
            self.update_verification_comment(rollback).await;
        }
        Ok(results)
    }

    /// Sets `rewind/verify` on the rollback's commit (best effort: the
    /// verdict is in the ledger whatever the forge says).
    pub(crate) async fn verify_status(
        &self,
        rollback: &Rollback,
        state: rewind_forge::StatusState,
        description: &str,
    ) {
        let (Some(forge), Some(commit)) = (self.forge.as_ref(), rollback.commit.as_ref()) else {
            return;
        };
        // GitHub keeps 140 characters of a status description.
        let description: String = description.chars().take(140).collect();
        let url = format!(
            "{}/ui/rollbacks/{}",
            self.settings.server.public_url.trim_end_matches('/'),
            rollback.id
        );
        if let Err(e) = forge
            .set_commit_status(
                commit,
                state,
                VERIFY_STATUS_CONTEXT,
                &description,
                Some(&url),
            )
            .await
        {
            tracing::warn!(rollback.id = %rollback.id, error = %e, "cannot set the rewind/verify status");
        }
    }

    /// Whether the app is held because its last rollback failed
    /// verification: no automatic proposals until a person releases it.
    pub(crate) async fn held_after_failed_rollback(
        &self,
        app: &rewind_domain::AppRef,
    ) -> Result<bool, EngineError> {
        let held = self
            .ledger
            .get_app(app)
            .await?
            .is_some_and(|a| a.held_since.is_some());
        if !held {
            return Ok(false);
        }
        let latest = self.ledger.list_rollbacks(Some(app), None, 1).await?;
        Ok(latest
            .first()
            .is_some_and(|r| r.state == rewind_domain::RollbackState::Failed))
    }
}

/// A baseline or known-good record: the raw value, not judged.
fn reading_record(check: &Check, at: DateTime<Utc>, reading: Reading) -> CheckResult {
    let (value, detail) = match reading {
        Reading::Value(v) if v.is_finite() => (Some(v), rewind_probe::verdict::show(v)),
        Reading::Value(v) => (None, format!("the query answered {v}")),
        Reading::Unknown(why) | Reading::Passed(why) | Reading::Failed(why) => (None, why),
    };
    CheckResult {
        check: check.name.clone(),
        at,
        value,
        baseline: None,
        pass: None,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rewind_probe::QueryCheck;

    fn check(name: &str) -> Check {
        Check {
            name: name.into(),
            kind: CheckKind::Query(QueryCheck {
                query: "q".into(),
                min: None,
                max: Some(0.05),
                max_delta_from_known_good: None,
                min_evidence: None,
            }),
            apps: vec![],
        }
    }

    fn results(name: &str, passes: &[Option<bool>]) -> Vec<CheckResult> {
        passes
            .iter()
            .enumerate()
            .map(|(i, pass)| CheckResult {
                check: name.into(),
                at: DateTime::<Utc>::from_timestamp(i as i64 * 30, 0).unwrap(),
                value: pass.map(|p| if p { 0.01 } else { 0.2 }),
                baseline: Some(0.2),
                pass: *pass,
                detail: match pass {
                    Some(true) => "0.01 within max 0.05".into(),
                    Some(false) => "0.2 above max 0.05".into(),
                    None => "the query answered no series (no data)".into(),
                },
            })
            .collect()
    }

    #[test]
    fn verified_only_after_n_passes_in_a_row() {
        let c = check("error-rate");
        let t = Some(true);
        assert!(matches!(
            verdict(&[&c], &results("error-rate", &[t, t]), 3),
            Verdict::Short(_)
        ));
        assert_eq!(
            verdict(&[&c], &results("error-rate", &[t, t, t]), 3),
            Verdict::Passed
        );
        assert_eq!(verdict(&[], &[], 3), Verdict::Passed);
    }

    #[test]
    fn a_flap_resets_the_count_and_the_reason_names_value_and_threshold() {
        let c = check("error-rate");
        let (t, f) = (Some(true), Some(false));
        let Verdict::Short(why) = verdict(&[&c], &results("error-rate", &[t, t, f, t, t]), 3)
        else {
            panic!("a flap must reset the count");
        };
        assert!(
            why.contains("check error-rate failed: 0.2 above max 0.05"),
            "{why}"
        );
        assert!(why.contains("passed 2 of 3"), "{why}");
        assert_eq!(
            verdict(&[&c], &results("error-rate", &[t, f, t, t, t]), 3),
            Verdict::Passed
        );
    }

    #[test]
    fn unknown_is_never_a_pass_and_reads_as_not_enough_evidence() {
        let c = check("error-rate");
        let (t, u) = (Some(true), None);
        let Verdict::Short(why) = verdict(&[&c], &results("error-rate", &[t, t, u]), 3) else {
            panic!("unknown must not count");
        };
        assert!(
            why.starts_with("not enough evidence: check error-rate"),
            "{why}"
        );
        let Verdict::Short(never) = verdict(&[&c], &[], 1) else {
            panic!("never evaluated");
        };
        assert!(never.contains("never evaluated"), "{never}");
    }

    #[test]
    fn every_check_must_pass() {
        let (a, b) = (check("a"), check("b"));
        let mut all = results("a", &[Some(true)]);
        all.extend(results("b", &[Some(false)]));
        let Verdict::Short(why) = verdict(&[&a, &b], &all, 1) else {
            panic!("b failed");
        };
        assert!(why.starts_with("check b failed"), "{why}");
    }
}
