//! `GET /api/v1/apps`, `GET /api/v1/apps/{app}` and
//! `GET /api/v1/apps/{app}/history` (`{app}` is `NAME@CLUSTER`, or a `NAME`
//! only one cluster runs).

use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use rewind_config::Role;
use rewind_domain::{App, Deployment};
use rewind_ledger::AppSummary;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::app_ref::{no_such_app, resolve, with_ref};
use crate::routes::page::{ListKind, Page, PageRequest};
use crate::state::AppState;

/// An app as `GET /api/v1/apps` answers it: the app's fields, its
/// reference and its current and known-good deployments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppView {
    #[serde(flatten)]
    pub app: App,
    /// `NAME@CLUSTER`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// With its app's `ref`, as every API object.
    #[schema(value_type = Option<Deployment>)]
    pub current: Option<serde_json::Value>,
    #[schema(value_type = Option<Deployment>)]
    pub known_good: Option<serde_json::Value>,
}

impl From<AppSummary> for AppView {
    fn from(summary: AppSummary) -> AppView {
        AppView {
            reference: summary.app.app_ref().to_string(),
            app: summary.app,
            current: summary.current.as_ref().map(|d| with_ref(d, &d.app_ref())),
            known_good: summary
                .known_good
                .as_ref()
                .map(|d| with_ref(d, &d.app_ref())),
        }
    }
}

/// `limit` and `cursor`, as every list takes them.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 1000.
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// The `X-Next-Cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Apps with their current and known-good deployments, by name then
/// cluster. Without `limit` or `cursor`, every app.
#[utoipa::path(
    get, path = "/api/v1/apps", tag = "apps", params(PageQuery),
    responses(
        (status = 200, description = "apps, by name then cluster", body = Vec<AppView>,
         headers(("X-Next-Cursor" = String, description = "cursor of the next page, when there is one"),
                 ("Link" = String, description = "the next page, rel=\"next\""))),
        (status = 400, description = "bad limit or cursor", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let page = PageRequest::parse(
        ListKind::Apps,
        query.limit.as_deref(),
        query.cursor.as_deref(),
        100,
    )?;
    if !page.paged {
        let apps: Vec<AppView> = state
            .ledger()
            .list_apps()
            .await?
            .into_iter()
            .map(AppView::from)
            .collect();
        return Ok(axum::Json(apps).into_response());
    }
    let after = page.after_key::<rewind_domain::AppRef>()?;
    let fetched = state
        .ledger()
        .list_apps_page(after.as_ref(), page.fetch())
        .await?
        .into_iter()
        .map(AppView::from)
        .collect();
    Ok(
        Page::cut(ListKind::Apps, &page, fetched, uri, |a: &AppView| {
            a.reference.clone()
        })
        .into_response(),
    )
}

/// One app, as the list shows it: its drift, hold, current and known-good
/// deployments.
#[utoipa::path(
    get, path = "/api/v1/apps/{app}", tag = "apps",
    params(("app" = String, Path, description = "NAME@CLUSTER, or a NAME one cluster runs")),
    responses(
        (status = 200, description = "the app", body = AppView),
        (status = 404, description = "no such app", body = crate::error::ErrorBody),
        (status = 409, description = "a plain name several clusters run", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> Result<axum::Json<AppView>, ApiError> {
    caller.require(Role::Viewer)?;
    let app = resolve(&state, &app).await?;
    match state.ledger().app_summary(&app).await? {
        Some(summary) => Ok(axum::Json(AppView::from(summary))),
        None => Err(no_such_app(&app)),
    }
}

/// Deployments of an app, newest first.
#[utoipa::path(
    get, path = "/api/v1/apps/{app}/history", tag = "apps",
    params(("app" = String, Path, description = "NAME@CLUSTER, or a NAME one cluster runs"), PageQuery),
    responses(
        (status = 200, description = "deployments, newest first (50 without limit)", body = Vec<Deployment>,
         headers(("X-Next-Cursor" = String, description = "cursor of the next page"),
                 ("Link" = String, description = "the next page, rel=\"next\""))),
        (status = 400, description = "bad limit or cursor", body = crate::error::ErrorBody),
        (status = 404, description = "no such app", body = crate::error::ErrorBody),
        (status = 409, description = "a plain name several clusters run", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Path(app): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let page = PageRequest::parse(
        ListKind::History,
        query.limit.as_deref(),
        query.cursor.as_deref(),
        50,
    )?;
    let before = page.after_key::<i64>()?;
    let app = resolve(&state, &app).await?;
    if state.ledger().get_app(&app).await?.is_none() {
        return Err(no_such_app(&app));
    }
    let fetched = state
        .ledger()
        .history_page(&app, before, page.fetch())
        .await?;
    Ok(
        Page::cut(ListKind::History, &page, fetched, uri, |d: &Deployment| {
            d.cluster_revision.to_string()
        })
        .map(|d| with_ref(&d, &d.app_ref()))
        .into_response(),
    )
}
