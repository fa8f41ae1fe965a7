//! `GET /api/v1/audit?app=&actor=&since=&limit=`: the audit log, newest
//! first: who (`actor`, a token name, `system` or a webhook source), what
//! (`action`, `subject`, `detail`), when (`at`), via (`api`, `ui`,
//! `github`, ...) and the trace id.

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use rewind_config::Role;
use rewind_ledger::{AuditFilter, AuditRecord};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    app: Option<String>,
    actor: Option<String>,
    /// RFC 3339 (`2026-12-01T08:00:00Z`) or a duration back from now
    /// (`90m`, `2d`).
    since: Option<String>,
    limit: Option<u32>,
}

/// Largest page one request may ask for.
const MAX_AUDIT: u32 = 1000;

fn parse_since(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    humantime::parse_duration(raw)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "since: {raw:?} is neither an RFC 3339 time nor a duration such as \"90m\""
            ))
        })
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    caller.require(Role::Viewer)?;
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let since = nonempty(query.since)
        .map(|s| parse_since(&s, Utc::now()))
        .transpose()?;
    let filter = AuditFilter {
        app: nonempty(query.app),
        actor: nonempty(query.actor),
        since,
        limit: query.limit.unwrap_or(100).clamp(1, MAX_AUDIT),
    };
    Ok(Json(state.ledger().audit_search(&filter).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_durations() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("2026-12-01T08:00:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-12-01T07:00:00+00:00"
        );
        assert_eq!(
            parse_since("90m", now).unwrap().to_rfc3339(),
            "2026-12-01T08:30:00+00:00"
        );
        let e = parse_since("yesterday", now).unwrap_err();
        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
        assert!(e.detail.contains("since"), "{e:?}");
    }
}
