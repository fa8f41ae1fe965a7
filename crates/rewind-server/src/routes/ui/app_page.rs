//! `GET /ui/apps/{app}`: one app: its timeline (SVG and as text), its
//! rollbacks and deployments; each earlier deployment has a "Roll back to
//! this revision" button. That button opens a dry run
//! (`GET /ui/apps/{app}/preview?to_revision=N`: the diff and risks, nothing
//! pushed or recorded), whose confirm form (`POST /ui/apps/{app}/rollbacks`,
//! CSRF, same origin, operator) proposes the rollback for real.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{Markup, html};
use rewind_config::Role;
use rewind_domain::{AppRef, Deployment, Rollback, Trigger};
use rewind_engine::{ProposeOutcome, ProposeRequest};
use serde::Deserialize;

use super::layout::{
    app_link, csrf_field, error_page, page, respond, rollback_rows, short, short_hash, shown, time,
};
use super::timeline;
use crate::error::ApiError;
use crate::routes::app_ref::{no_such_app, resolve};
use crate::session::{self, UiUser};
use crate::state::AppState;

/// Deployments (and rollbacks, alerts) the app page shows.
const APP_PAGE_ITEMS: u32 = 50;

/// `GET /ui/apps/{app}`.
pub async fn app(
    State(state): State<AppState>,
    user: UiUser,
    Path(app): Path<String>,
) -> Result<Markup, ApiError> {
    let caller = user.caller()?.require(Role::Viewer)?;
    let can_propose = caller.role >= Role::Operator;
    let app = resolve(&state, &app).await?;
    let record = state
        .ledger()
        .get_app(&app)
        .await?
        .ok_or_else(|| no_such_app(&app))?;
    let ledger = state.ledger();
    let history = ledger.history(&app, APP_PAGE_ITEMS).await?;
    let rollbacks = ledger
        .list_rollbacks(Some(&app), None, APP_PAGE_ITEMS)
        .await?;
    let alerts = ledger.alerts_for_app(&app, APP_PAGE_ITEMS).await?;
    let moments = timeline::moments(&history, &alerts, &rollbacks);
    let current = history.first().map(|d| d.cluster_revision);
    Ok(page(
        &app.to_string(),
        &user,
        html! {
            p { "cluster " b { (record.cluster) } ", path " code { (record.path.clone().unwrap_or_default()) } ", source " (record.source.as_str()) }
            @if let Some(status) = &record.status { p class="risk" { (status) } }
            @if let Some(drift) = &record.drift { p class="risk" { "drift since " (time(&drift.since)) ": " (drift.detail) } }
            @if record.held_since.is_some() { p class="risk" { "held: rewind proposes nothing for this app until an operator releases it" } }
            h2 id="timeline" { "Timeline" }
            (timeline::svg(&app.to_string(), &history, &moments, Utc::now()))
            details open { summary { "timeline as text" } (timeline::text_list(&moments)) }
            h2 { "Rollbacks" }
            (rollback_rows(&rollbacks))
            h2 { "Deployments" }
            (deployments(&app, &history, current, can_propose))
        },
    ))
}

fn deployments(
    app: &AppRef,
    history: &[Deployment],
    current: Option<i64>,
    can_propose: bool,
) -> Markup {
    html! {
        table {
            tr { th { "revision" } th { "commit" } th { "health" } th { "known good" } th { "deployed" } th { "config hash" } th { "images" } @if can_propose { th { "" } } }
            @for d in history {
                tr {
                    td { (d.cluster_revision) @if Some(d.cluster_revision) == current { " (current)" } }
                    td { code { (short(d.commit.as_ref())) } }
                    td class=(d.health.as_str()) { (d.health.as_str()) @if d.alerted { " (alerted)" } }
                    td { @if d.known_good { "yes" } }
                    td { (time(&d.deployed_at)) }
                    td { code { (short_hash(d.config_hash.as_ref())) } }
                    td { @for image in &d.images { code { (image) } br; } }
                    @if can_propose {
                        td {
                            @if Some(d.cluster_revision) != current && d.commit.is_some() {
                                form method="get" action={ (app_link(app)) "/preview" } {
                                    input type="hidden" name="to_revision" value=(d.cluster_revision);
                                    button { "Roll back to this revision" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PreviewQuery {
    #[serde(default)]
    to_revision: Option<String>,
}

fn revision(raw: Option<&str>) -> Result<i64, ApiError> {
    let raw = raw.map(str::trim).unwrap_or_default();
    raw.parse::<i64>().map_err(|_| {
        ApiError::bad_request(format!(
            "to_revision: {:?} is not a cluster revision number",
            raw.chars().take(40).collect::<String>()
        ))
    })
}

/// `GET /ui/apps/{app}/preview?to_revision=N`: the dry run.
pub async fn preview(
    State(state): State<AppState>,
    user: UiUser,
    Path(app): Path<String>,
    Query(query): Query<PreviewQuery>,
) -> Response {
    let result = async {
        let caller = user.caller()?.require(Role::Operator)?;
        let app = resolve(&state, &app).await?;
        let to_revision = revision(query.to_revision.as_deref())?;
        let request = ProposeRequest {
            to_revision: Some(to_revision),
            reason: "preview from the web UI".into(),
            dry_run: true,
            ..ProposeRequest::default()
        };
        let trigger = Trigger::Manual {
            caller: caller.name.clone(),
        };
        match state
            .engine()
            .propose(&app, request, trigger, &caller.name)
            .await?
        {
            ProposeOutcome::Preview(r) | ProposeOutcome::Proposed(r) => {
                Ok::<_, ApiError>((app, *r))
            }
        }
    }
    .await;
    match result {
        Ok((app, preview)) => {
            let markup = preview_page(&user, &app, shown(preview));
            respond(&user, StatusCode::OK, markup)
        }
        Err(e) => error_page(&user, "Cannot roll back", e),
    }
}

fn preview_page(user: &UiUser, app: &AppRef, r: Rollback) -> Markup {
    let semantic = serde_json::to_string_pretty(&r.diff.semantic).unwrap_or_default();
    page(
        &format!("Roll back {app} to revision {}?", r.to.cluster_revision),
        user,
        html! {
            p class="notice" { "A dry run: nothing is pushed or recorded until you confirm." }
            p { "from cluster revision " (r.from.cluster_revision) " (" code { (short(r.from.commit.as_ref())) } ") to "
                (r.to.cluster_revision) " (" code { (short(r.to.commit.as_ref())) } "), strategy " (r.strategy.as_str()) }
            h2 { "Risks" }
            @if r.risks.is_empty() { p { "none found" } }
            ul class="risks" { @for risk in &r.risks { li { span class="risk" { (risk.code.as_str()) } " " (risk.detail) } } }
            h2 { "Diff" }
            pre class="diff" { (r.diff.text) }
            details { summary { "semantic diff (JSON)" } pre { (semantic) } }
            h2 { "Confirm" }
            form method="post" action={ (app_link(app)) "/rollbacks" } {
                (csrf_field(user))
                input type="hidden" name="to_revision" value=(r.to.cluster_revision);
                label { "Why " input type="text" name="reason" required size="60" placeholder="what went wrong"; }
                " " button { "Propose this rollback" }
            }
            " " a href=(app_link(app)) { "cancel" }
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct ProposeForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    to_revision: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /ui/apps/{app}/rollbacks`: the confirmed rollback.
pub async fn propose(
    State(state): State<AppState>,
    user: UiUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    Form(form): Form<ProposeForm>,
) -> Response {
    let result = async {
        session::check_origin(&state, &headers)?;
        session::check_csrf(&user, form.csrf.as_deref())?;
        let caller = user.caller()?.require(Role::Operator)?;
        let app = resolve(&state, &app).await?;
        let to_revision = revision(form.to_revision.as_deref())?;
        let reason = form.reason.unwrap_or_default();
        if reason.trim().is_empty() {
            return Err(ApiError::bad_request(
                "reason: say why (it goes into the commit, the pull request and the audit log)",
            ));
        }
        let request = ProposeRequest {
            to_revision: Some(to_revision),
            reason,
            ..ProposeRequest::default()
        };
        let trigger = Trigger::Manual {
            caller: caller.name.clone(),
        };
        match state
            .engine()
            .propose(&app, request, trigger, &caller.name)
            .await?
        {
            ProposeOutcome::Proposed(r) | ProposeOutcome::Preview(r) => Ok::<_, ApiError>(r.id),
        }
    }
    .await;
    match result {
        Ok(id) => {
            state.0.wake.notify_waiters();
            Redirect::to(&format!("/ui/rollbacks/{id}")).into_response()
        }
        Err(e) => error_page(&user, "Cannot roll back", e),
    }
}
