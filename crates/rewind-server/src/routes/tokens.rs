//! `POST /api/v1/tokens`, `GET /api/v1/tokens`, `DELETE /api/v1/tokens/{name}`
//! (admin only): API tokens stored in the database, behind `rewind token
//! create/list/revoke`. A new token is shown once, in the answer to its
//! creation; only its SHA-256 digest is kept.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use rewind_config::Role;
use rewind_ledger::{AuditEntry, StoredApiToken};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::routes::rollbacks::parse_json;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    role: Role,
}

/// Names are short and plain: they appear in audit entries and logs.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "name: {name:?} must be 1 to 64 characters of letters, digits, `-`, `_`, `.`, `@`"
        )))
    }
}

async fn audit(state: &AppState, caller: &Caller, action: &str, name: &str, detail: Value) {
    let entry = AuditEntry {
        at: Utc::now(),
        actor: caller.name.clone(),
        action: action.to_string(),
        subject: format!("token/{name}"),
        detail,
        trace_id: None,
    };
    if let Err(e) = state.ledger().audit(&entry).await {
        tracing::warn!(error = %e, "cannot audit a token change");
    }
}

/// Creates a token and answers it, once.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Role::Admin)?;
    let request: CreateToken = parse_json(&body)?;
    check_name(&request.name)?;
    if state
        .settings()
        .api
        .tokens
        .iter()
        .any(|t| t.name == request.name)
    {
        return Err(ApiError::conflict(format!(
            "a token named {:?} is in the configuration already",
            request.name
        )));
    }
    // On an open API the first stored token closes it: it must be able to
    // manage tokens, or nobody could afterwards.
    if auth::is_open(&state).await? && request.role != Role::Admin {
        return Err(ApiError::conflict(
            "the first token must have role admin: creating it closes the open API",
        ));
    }
    let token = auth::random_secret("rwd_");
    let stored = StoredApiToken {
        name: request.name.clone(),
        role: request.role.as_str().to_string(),
        digest: auth::digest(&token),
        created_at: Utc::now(),
        created_by: caller.name.clone(),
    };
    state.ledger().create_api_token(&stored).await?;
    audit(
        &state,
        &caller,
        "token.create",
        &stored.name,
        json!({"role": stored.role, "via": "api"}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": stored.name,
            "role": stored.role,
            "token": token,
            "created_at": stored.created_at,
            "created_by": stored.created_by,
        })),
    ))
}

/// Every token rewind accepts, without secrets: configured ones
/// (`source: "config"`) and stored ones (`source: "database"`).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require(Role::Admin)?;
    let mut tokens: Vec<Value> = state
        .settings()
        .api
        .tokens
        .iter()
        .map(|t| json!({"name": t.name, "role": t.role.as_str(), "source": "config"}))
        .collect();
    for t in state.ledger().list_api_tokens().await? {
        tokens.push(json!({
            "name": t.name,
            "role": t.role,
            "source": "database",
            "created_at": t.created_at,
            "created_by": t.created_by,
        }));
    }
    Ok(Json(tokens))
}

/// Deletes a stored token; its web UI sessions end with it.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    if state.settings().api.tokens.iter().any(|t| t.name == name) {
        return Err(ApiError::conflict(format!(
            "token {name:?} comes from the configuration (api.tokens, api.tokens_file or REWIND_API_TOKEN_*); remove it there"
        )));
    }
    if !state.ledger().revoke_api_token(&name).await? {
        return Err(ApiError::not_found(format!(
            "no stored token named {name:?}"
        )));
    }
    audit(
        &state,
        &caller,
        "token.revoke",
        &name,
        json!({"via": "api"}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
