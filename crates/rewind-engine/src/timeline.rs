//! Timeline entries and audit-log lines: every step says what happened,
//! who did it and why.

use chrono::{DateTime, Utc};
use rewind_domain::{Rollback, TimelineEntry, TimelineEvent};
use rewind_ledger::AuditEntry;
use serde_json::json;

use crate::{Engine, EngineError};

pub(crate) fn entry(
    event: impl Into<TimelineEvent>,
    detail: impl Into<String>,
    at: DateTime<Utc>,
) -> TimelineEntry {
    TimelineEntry {
        at,
        event: event.into(),
        detail: detail.into(),
    }
}

impl Engine {
    /// Appends to the audit log. A failure to audit fails the step: an
    /// action that cannot be audited must not look done.
    pub(crate) async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: String,
        detail: serde_json::Value,
    ) -> Result<(), EngineError> {
        let trace_id = tracing::Span::current()
            .id()
            .map(|id| format!("{:x}", id.into_u64()));
        self.ledger
            .audit(&AuditEntry {
                at: Utc::now(),
                actor: actor.to_string(),
                action: action.to_string(),
                subject,
                detail,
                trace_id,
            })
            .await?;
        Ok(())
    }

    /// Appends a timeline entry and the matching audit line.
    pub(crate) async fn note(
        &self,
        rollback: &Rollback,
        actor: &str,
        event: impl Into<TimelineEvent>,
        detail: impl Into<String>,
    ) -> Result<(), EngineError> {
        let (event, detail) = (event.into(), detail.into());
        self.ledger
            .append_timeline(
                rollback.id,
                entry(event.clone(), detail.clone(), Utc::now()),
            )
            .await?;
        self.audit(
            actor,
            &format!("rollback.{event}"),
            format!("rollback/{}", rollback.id),
            json!({"app": rollback.app_ref(), "detail": detail}),
        )
        .await
    }
}
