//! `GET /api/v1/audit?app=&actor=&since=&limit=`: the audit log, newest
//! first: who (`actor`, a token name, `system` or a webhook source), what
//! (`action`, `subject`, `detail`), when (`at`), via (`api`, `ui`,
//! `github`, ...) and the trace id.

use axum::extract::{OriginalUri, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rewind_config::Role;
use rewind_ledger::{AuditFilter, AuditRecord};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::routes::page::{ListKind, Page, PageRequest};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries about this app (a plain name matches it on every cluster).
    app: Option<String>,
    /// Entries by this actor (a token name, `system`, a webhook source).
    actor: Option<String>,
    /// RFC 3339 (`2026-12-01T08:00:00Z`) or a duration back from now
    /// (`90m`, `2d`).
    since: Option<String>,
    /// Items per page, 1 to 1000 (100 without it).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// The `X-Next-Cursor` of the previous page.
    cursor: Option<String>,
}

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

/// The audit log, newest first.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, description = "audit entries, newest first", body = Vec<AuditRecord>,
         headers(("X-Next-Cursor" = String, description = "cursor of the next page"),
                 ("Link" = String, description = "the next page, rel=\"next\""))),
        (status = 400, description = "bad since, limit or cursor", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let page = PageRequest::parse(
        ListKind::Audit,
        query.limit.as_deref(),
        query.cursor.as_deref(),
        100,
    )?;
    let before = page.after_key::<i64>()?;
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let since = nonempty(query.since)
        .map(|s| parse_since(&s, Utc::now()))
        .transpose()?;
    let filter = AuditFilter {
        app: nonempty(query.app),
        actor: nonempty(query.actor),
        since,
        before,
        limit: page.fetch(),
    };
    let fetched = state.ledger().audit_search(&filter).await?;
    Ok(
        Page::cut(ListKind::Audit, &page, fetched, uri, |a: &AuditRecord| {
            a.id.to_string()
        })
        .into_response(),
    )
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
