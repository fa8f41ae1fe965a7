//! The rollback API: propose (`POST /api/v1/apps/{app}/rollbacks`), list,
//! show, approve, merge, cancel; and releasing an app's hold.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rewind_config::Role;
use rewind_domain::{RollbackId, RollbackState, Trigger};
use rewind_engine::{EngineError, ProposeOutcome, ProposeRequest};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::app_ref::{resolve, rollback_json};
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

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    app: Option<String>,
    state: Option<String>,
    limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    caller.require(Role::Viewer)?;
    let app = match query.app.filter(|a| !a.is_empty()) {
        Some(raw) => Some(resolve(&state, &raw).await?),
        None => None,
    };
    let rollback_state = query
        .state
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<RollbackState>())
        .transpose()?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rollbacks = state
        .ledger()
        .list_rollbacks(app.as_ref(), rollback_state, limit)
        .await?;
    Ok(Json(rollbacks.iter().map(rollback_json).collect()))
}

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

pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    review(state, caller, id, Role::Approver, "approve").await
}

/// Body of `POST /api/v1/rollbacks/{id}/merge` (may be empty).
#[derive(Debug, Default, Deserialize)]
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/apps/{app}/release`: ends an app's hold.
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
