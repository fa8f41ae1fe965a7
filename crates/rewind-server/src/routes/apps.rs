//! `GET /api/v1/apps` and `GET /api/v1/apps/{app}/history` (`{app}` is
//! `NAME@CLUSTER`, or a `NAME` only one cluster runs).

use axum::Json;
use axum::extract::{Path, Query, State};
use rewind_config::Role;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::app_ref::{no_such_app, resolve, with_ref};
use crate::state::AppState;

/// Apps with their current and known-good deployments.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let apps = state.ledger().list_apps().await?;
    let body = apps
        .into_iter()
        .map(|summary| {
            let mut app = serde_json::to_value(&summary.app).unwrap_or_default();
            if let Some(obj) = app.as_object_mut() {
                obj.insert("ref".into(), summary.app.app_ref().to_string().into());
                obj.insert(
                    "current".into(),
                    summary
                        .current
                        .as_ref()
                        .map(|d| with_ref(d, &d.app_ref()))
                        .unwrap_or_default(),
                );
                obj.insert(
                    "known_good".into(),
                    summary
                        .known_good
                        .as_ref()
                        .map(|d| with_ref(d, &d.app_ref()))
                        .unwrap_or_default(),
                );
            }
            app
        })
        .collect();
    Ok(Json(serde_json::Value::Array(body)))
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    limit: Option<u32>,
}

/// Largest page of history one request may ask for.
const MAX_HISTORY: u32 = 1000;

/// Deployments of an app, newest first.
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    caller.require(Role::Viewer)?;
    let app = resolve(&state, &app).await?;
    if state.ledger().get_app(&app).await?.is_none() {
        return Err(no_such_app(&app));
    }
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_HISTORY);
    let history = state.ledger().history(&app, limit).await?;
    Ok(Json(
        history.iter().map(|d| with_ref(d, &d.app_ref())).collect(),
    ))
}
