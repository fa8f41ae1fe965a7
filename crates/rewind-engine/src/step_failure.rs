//! A rollback step that failed because of something outside rewind (the Git
//! remote unreachable or refusing the push, the forge down or rate
//! limiting) is written on the rollback's timeline, so the people watching
//! the rollback see why it is stuck and when it is tried again. The retry
//! itself is the job's: durable, with the ledger's exponential backoff
//! (`rewind_ledger::backoff`), so it survives restarts and moves between
//! replicas.

use chrono::{DateTime, Utc};
use rewind_domain::TimelineEvent;
use rewind_ledger::{Job, JobPayload};

use crate::{ADVANCE_ROLLBACK, Engine, EngineError};

/// What the timeline says about one failed attempt.
pub(crate) fn describe(
    error: &EngineError,
    attempt: u32,
    max_attempts: u32,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> String {
    let what = match error {
        EngineError::Git(_) => "Git",
        _ => "the forge",
    };
    let next = match retry_at {
        Some(at) if attempt < max_attempts => {
            let wait = (at - now).num_seconds().max(0);
            format!("retrying in {wait}s (at {})", at.format("%H:%M:%S UTC"))
        }
        _ => "giving up this job; the clock queues the step again while the rollback is open"
            .to_owned(),
    };
    format!("attempt {attempt} of {max_attempts} failed at {what}: {error}; {next}")
}

/// Whether `error` is the outside world failing a step (as opposed to a
/// refusal, a conflict or the database, which say nothing new to people
/// watching the rollback, or cannot be written down anyway).
fn is_outside_failure(error: &EngineError) -> bool {
    matches!(error, EngineError::Git(_) | EngineError::Forge(_))
}

impl Engine {
    /// Notes on the rollback's timeline that its `advance_rollback` job
    /// failed at Git or the forge. Best effort: the job's own record keeps
    /// the error whatever happens here.
    pub(crate) async fn note_step_failure(
        &self,
        job: &Job,
        error: &EngineError,
        retry_at: Option<DateTime<Utc>>,
    ) {
        if job.kind != ADVANCE_ROLLBACK || !is_outside_failure(error) {
            return;
        }
        let Ok(JobPayload::AdvanceRollback { rollback_id }) = JobPayload::of(job) else {
            return;
        };
        let rollback = match self.ledger.rollback(rollback_id).await {
            Ok(Some(rollback)) => rollback,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "cannot note the failed step");
                return;
            }
        };
        let detail = describe(error, job.attempts, job.max_attempts, retry_at, Utc::now());
        if let Err(e) = self
            .note(&rollback, "rewind", TimelineEvent::StepFailed, detail)
            .await
        {
            tracing::debug!(error = %e, "cannot note the failed step");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_error() -> EngineError {
        EngineError::Git(rewind_git::GitError::PushRejected {
            url: "file:///gitops.git".into(),
            refname: "refs/heads/rewind/x".into(),
            message: "pre-receive hook declined".into(),
        })
    }

    #[test]
    fn a_retry_names_the_cause_and_the_wait() {
        let now = Utc::now();
        let text = describe(
            &git_error(),
            2,
            8,
            Some(now + chrono::Duration::seconds(10)),
            now,
        );
        assert!(text.starts_with("attempt 2 of 8 failed at Git: "), "{text}");
        assert!(text.contains("pre-receive hook declined"), "{text}");
        assert!(text.contains("retrying in 10s"), "{text}");
    }

    #[test]
    fn the_last_attempt_says_it_gave_up() {
        let now = Utc::now();
        let text = describe(&git_error(), 8, 8, Some(now), now);
        assert!(text.contains("giving up"), "{text}");
        assert!(describe(&git_error(), 1, 8, None, now).contains("giving up"));
    }

    #[test]
    fn only_git_and_forge_failures_are_noted() {
        assert!(is_outside_failure(&git_error()));
        assert!(!is_outside_failure(&EngineError::Conflict("x".into())));
        assert!(!is_outside_failure(&EngineError::Invalid("x".into())));
    }
}
