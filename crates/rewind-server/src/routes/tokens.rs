//! `POST /api/v1/tokens`, `GET /api/v1/tokens`, `DELETE /api/v1/tokens/{name}`
//! (admin only): API tokens stored in the database, behind `rewind token
//! create/list/revoke`. A new token is shown once, in the answer to its
//! creation; only its SHA-256 digest is kept.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use rewind_config::Role;
use rewind_ledger::{AuditEntry, StoredApiToken};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{self, Caller};
use crate::error::{ApiError, ErrorBody};
use crate::routes::apps::PageQuery;
use crate::routes::page::{ListKind, Page, PageRequest};
use crate::routes::rollbacks::parse_json;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// 1 to 64 letters, digits, `-`, `_`, `.`, `@`.
    name: String,
    /// `viewer`, `operator`, `approver` or `admin`.
    #[schema(value_type = String)]
    role: Role,
}

/// A token as `GET /api/v1/tokens` lists it (never its secret); the
/// answer to its creation adds `token`, shown only then.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub name: String,
    pub role: String,
    /// `config` or `database`.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<chrono::DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// The token itself: only in the answer to `POST /api/v1/tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
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
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses(
        (status = 201, description = "the token, with its secret `token` shown only here", body = TokenView),
        (status = 400, description = "bad name or role", body = ErrorBody),
        (status = 409, description = "the name is taken", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
/// (`source: "config"`) and stored ones (`source: "database"`, by name).
#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "tokens", params(PageQuery),
    responses(
        (status = 200, description = "configured tokens, then stored ones by name", body = Vec<TokenView>,
         headers(("X-Next-Cursor" = String, description = "cursor of the next page"),
                 ("Link" = String, description = "the next page, rel=\"next\""))),
        (status = 400, description = "bad limit or cursor", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let page = PageRequest::parse(
        ListKind::Tokens,
        query.limit.as_deref(),
        query.cursor.as_deref(),
        MAX_TOKENS_PAGE,
    )?;
    let mut tokens: Vec<TokenView> = state
        .settings()
        .api
        .tokens
        .iter()
        .map(|t| TokenView {
            name: t.name.clone(),
            role: t.role.as_str().to_string(),
            source: "config".into(),
            created_at: None,
            created_by: None,
            token: None,
        })
        .collect();
    for t in state.ledger().list_api_tokens().await? {
        tokens.push(TokenView {
            name: t.name,
            role: t.role,
            source: "database".into(),
            created_at: Some(t.created_at),
            created_by: Some(t.created_by),
            token: None,
        });
    }
    if !page.paged {
        return Ok(Json(tokens).into_response());
    }
    // A handful of tokens: the page is cut from the whole list. Names are
    // unique across both sources, so the cursor's name is a position.
    if let Some(after) = &page.after {
        let at = tokens
            .iter()
            .position(|t| &t.name == after)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "cursor: its token no longer exists; start from the first page",
                )
            })?;
        tokens.drain(..=at);
    }
    tokens.truncate(page.fetch() as usize);
    Ok(
        Page::cut(ListKind::Tokens, &page, tokens, uri, |t: &TokenView| {
            t.name.clone()
        })
        .into_response(),
    )
}

/// The page size of `GET /api/v1/tokens?cursor=` without `limit`.
const MAX_TOKENS_PAGE: u32 = 100;

/// Deletes a stored token; its web UI sessions end with it.
#[utoipa::path(
    delete, path = "/api/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "the token's name")),
    responses(
        (status = 204, description = "revoked; its web UI sessions ended"),
        (status = 404, description = "no stored token of that name", body = ErrorBody),
        (status = 409, description = "a configured token (remove it from the configuration)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
