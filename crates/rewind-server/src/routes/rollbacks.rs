//! The rollback API: propose (`POST /api/v1/apps/{app}/rollbacks`), list,
//! show, approve, merge, cancel; and releasing an app's hold.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rewind_config::Role;
use rewind_domain::{Rollback, RollbackId, RollbackState, Trigger};
use rewind_engine::{EngineError, ProposeOutcome, ProposeRequest};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::routes::app_ref::{resolve, rollback_json};
use crate::routes::page::{ListKind, Page, PageRequest};
use crate::state::AppState;

/// Parses a JSON body, naming the offending field on error.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Before any field reaches a database that cannot store it.
    if let Some(field) = rewind_ingest::nul_field(body) {
        return Err(ApiError::bad_request(format!(
            "{field}: contains a NUL character (\\u0000), which rewind cannot record"
        )));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::bad_request(format!("{field}: {}", e.into_inner()))
    })
}

fn rollback_id(raw: &str) -> Result<RollbackId, ApiError> {
    raw.parse()
        .map_err(|e: rewind_domain::DomainError| ApiError::bad_request(e.to_string()))
}

/// Refusals carry the existing rollback when there is one (see
/// `error.rs`, which chooses every status).
fn engine_error(e: EngineError) -> Response {
    ApiError::from(e).into_response()
}

/// Proposes a rollback of the app (or previews one with `dry_run`).
#[utoipa::path(
    post, path = "/api/v1/apps/{app}/rollbacks", tag = "rollbacks",
    params(("app" = String, Path, description = "NAME@CLUSTER, or a NAME one cluster runs (with all_clusters: the NAME)")),
    request_body = ProposeRequest,
    responses(
        (status = 201, description = "the rollback, proposed", body = Rollback),
        (status = 200, description = "a dry run: what would be proposed; nothing pushed or recorded", body = Rollback),
        (status = 400, description = "a body field that does not parse, named", body = ErrorBody),
        (status = 404, description = "no such app or target", body = ErrorBody),
        (status = 409, description = "already on the target, or an open rollback exists (returned as `rollback`)", body = ErrorBody),
        (status = 429, description = "the breaker is open", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn propose(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    body: Bytes,
) -> Response {
    let result = async {
        caller.require(Role::Operator)?;
        let request: ProposeRequest = parse_json(&body)?;
        Ok::<_, ApiError>(request)
    }
    .await;
    let request = match result {
        Ok(ok) => ok,
        Err(e) => return e.into_response(),
    };
    let trigger = Trigger::Manual {
        caller: caller.name.clone(),
    };
    if request.all_clusters {
        return propose_wave(&state, &caller, &app, request, trigger).await;
    }
    let app = match resolve(&state, &app).await {
        Ok(app) => app,
        Err(e) => return e.into_response(),
    };
    match state
        .engine()
        .propose(&app, request, trigger, &caller.name)
        .await
    {
        Ok(ProposeOutcome::Proposed(rollback)) => {
            state.0.wake.notify_waiters();
            (StatusCode::CREATED, Json(rollback_json(&rollback))).into_response()
        }
        Ok(ProposeOutcome::Preview(rollback)) => {
            (StatusCode::OK, Json(rollback_json(&rollback))).into_response()
        }
        Err(e) => engine_error(e),
    }
}

/// `"all_clusters": true`: the app's name on every cluster, as a wave. The
/// answer is the first rollback of the wave (its `wave.group` names the
/// others).
async fn propose_wave(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    request: ProposeRequest,
    trigger: Trigger,
) -> Response {
    let name = match rewind_domain::AppRef::parse_reference(raw) {
        Ok((name, None)) => name,
        Ok((_, Some(_))) => {
            return ApiError::bad_request("all_clusters takes the app's NAME, not NAME@CLUSTER")
                .into_response();
        }
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    let dry_run = request.dry_run;
    match state
        .engine()
        .propose_wave(&name, request, trigger, &caller.name)
        .await
    {
        Ok(wave) => {
            state.0.wake.notify_waiters();
            let status = if dry_run {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            match wave.into_iter().next() {
                Some(first) => (status, Json(rollback_json(&first))).into_response(),
                None => ApiError::not_found(format!("no app named {name}")).into_response(),
            }
        }
        Err(e) => engine_error(e),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this app's rollbacks (`NAME@CLUSTER` or `NAME`).
    app: Option<String>,
    /// Only rollbacks in this state (`proposed`, `pr_open`, ...).
    state: Option<String>,
    /// Items per page, 1 to 1000 (100 without it).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// The `X-Next-Cursor` of the previous page.
    cursor: Option<String>,
}

/// Rollbacks, newest first.
#[utoipa::path(
    get, path = "/api/v1/rollbacks", tag = "rollbacks", params(ListQuery),
    responses(
        (status = 200, description = "rollbacks, newest first", body = Vec<Rollback>,
         headers(("X-Next-Cursor" = String, description = "cursor of the next page"),
                 ("Link" = String, description = "the next page, rel=\"next\""))),
        (status = 400, description = "bad app, state, limit or cursor", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let page = PageRequest::parse(
        ListKind::Rollbacks,
        query.limit.as_deref(),
        query.cursor.as_deref(),
        100,
    )?;
    let before = page.after_key::<RollbackId>()?;
    let app = match query.app.filter(|a| !a.is_empty()) {
        Some(raw) => Some(resolve(&state, &raw).await?),
        None => None,
    };
    let rollback_state = query
        .state
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<RollbackState>())
        .transpose()?;
    let fetched = state
        .ledger()
        .list_rollbacks_page(app.as_ref(), rollback_state, before, page.fetch())
        .await?;
    Ok(
        Page::cut(ListKind::Rollbacks, &page, fetched, uri, |r: &Rollback| {
            r.id.to_string()
        })
        .map(|r| rollback_json(&r))
        .into_response(),
    )
}

/// One rollback.
#[utoipa::path(
    get, path = "/api/v1/rollbacks/{id}", tag = "rollbacks",
    params(("id" = String, Path, description = "the rollback's id")),
    responses(
        (status = 200, description = "the rollback", body = Rollback),
        (status = 400, description = "not a rollback id", body = ErrorBody),
        (status = 404, description = "no such rollback", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let id = rollback_id(&id)?;
    state
        .ledger()
        .rollback(id)
        .await?
        .map(|r| Json(rollback_json(&r)))
        .ok_or_else(|| ApiError::not_found(format!("no rollback {id}")))
}

/// Approves a rollback (counts towards `policy.required_approvals`).
#[utoipa::path(
    post, path = "/api/v1/rollbacks/{id}/approve", tag = "rollbacks",
    params(("id" = String, Path, description = "the rollback's id")),
    responses(
        (status = 200, description = "the rollback", body = Rollback),
        (status = 403, description = "too small a role, or `self_approval`", body = ErrorBody),
        (status = 404, description = "no such rollback", body = ErrorBody),
        (status = 409, description = "not reviewable in its state", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    review(state, caller, id, Role::Approver, "approve").await
}

/// Body of `POST /api/v1/rollbacks/{id}/merge` (may be empty).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// Merge without the required approvals (admin only).
    #[serde(default, rename = "override")]
    override_approvals: bool,
    /// Why, for the audit log, the timeline and the PR (required with
    /// `override`).
    #[serde(default)]
    reason: Option<String>,
}

/// Merges a rollback once its approvals are there (or by an admin's
/// override with a reason).
#[utoipa::path(
    post, path = "/api/v1/rollbacks/{id}/merge", tag = "rollbacks",
    params(("id" = String, Path, description = "the rollback's id")),
    request_body(content = Option<MergeRequest>, description = "optional; `{\"override\": true, \"reason\": \"...\"}` for an admin's override"),
    responses(
        (status = 200, description = "the rollback", body = Rollback),
        (status = 400, description = "an override without a reason", body = ErrorBody),
        (status = 403, description = "too small a role", body = ErrorBody),
        (status = 409, description = "`approvals_missing` (the rollback is returned), or not mergeable in its state", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let request: MergeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        MergeRequest::default()
    } else {
        match parse_json(&body) {
            Ok(request) => request,
            Err(e) => return e.into_response(),
        }
    };
    if !request.override_approvals {
        return review(state, caller, id, Role::Approver, "merge").await;
    }
    // Role first: a non-admin learns nothing else about the rollback.
    if let Err(e) = caller.require(Role::Admin) {
        return e.into_response();
    }
    let reason = request.reason.unwrap_or_default();
    if reason.trim().is_empty() {
        return ApiError::bad_request(
            "reason: an override needs a reason (it is recorded in the audit log, the timeline and the pull request)",
        )
        .into_response();
    }
    let id = match rollback_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match state
        .engine()
        .merge_override(id, &caller.name, "api", &reason)
        .await
    {
        Ok(rollback) => {
            state.0.wake.notify_waiters();
            (StatusCode::OK, Json(rollback_json(&rollback))).into_response()
        }
        Err(e) => engine_error(e),
    }
}

/// Cancels an open rollback.
#[utoipa::path(
    post, path = "/api/v1/rollbacks/{id}/cancel", tag = "rollbacks",
    params(("id" = String, Path, description = "the rollback's id")),
    responses(
        (status = 200, description = "the rollback", body = Rollback),
        (status = 403, description = "too small a role", body = ErrorBody),
        (status = 409, description = "not open", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    review(state, caller, id, Role::Operator, "cancel").await
}

async fn review(state: AppState, caller: Caller, id: String, role: Role, action: &str) -> Response {
    if let Err(e) = caller.require(role) {
        return e.into_response();
    }
    let id = match rollback_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let engine = state.engine();
    let result = match action {
        "approve" => engine.approve(id, &caller.name, "api").await,
        "merge" => engine.merge(id, &caller.name, "api").await,
        _ => engine.cancel(id, &caller.name, "api").await,
    };
    match result {
        Ok(rollback) => {
            state.0.wake.notify_waiters();
            (StatusCode::OK, Json(rollback_json(&rollback))).into_response()
        }
        Err(e) => engine_error(e),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/apps/{app}/release`: ends an app's hold.
#[utoipa::path(
    post, path = "/api/v1/apps/{app}/release", tag = "apps",
    params(("app" = String, Path, description = "NAME@CLUSTER, or a NAME one cluster runs")),
    request_body(content = Option<ReleaseRequest>, description = "optional: why"),
    responses(
        (status = 204, description = "the hold is released"),
        (status = 403, description = "too small a role", body = ErrorBody),
        (status = 404, description = "no such app", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Operator)?;
    let app = resolve(&state, &app).await?;
    let request: ReleaseRequest = if body.is_empty() {
        ReleaseRequest::default()
    } else {
        parse_json(&body)?
    };
    let why = request
        .reason
        .unwrap_or_else(|| "released by an operator".into());
    state
        .engine()
        .release_hold(&app, &caller.name, &why)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
