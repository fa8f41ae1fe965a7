//! The web UI: apps, each app's deployments and rollbacks, and each
//! rollback with its diff, risks and timeline, with approve / merge /
//! cancel buttons. Server-rendered HTML (maud escapes everything), no
//! JavaScript. With API tokens configured, people sign in with a token,
//! kept in a `SameSite=Strict` cookie.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use rewind_config::Role;
use rewind_domain::{AppName, Deployment, Rollback, RollbackId};
use serde::Deserialize;

use crate::auth::{Caller, TOKEN_COOKIE};
use crate::error::ApiError;
use crate::state::AppState;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24}\
header{background:#1b1f24;color:#fff;padding:10px 24px}header a{color:#fff;text-decoration:none;font-weight:600}\
main{padding:16px 24px;max-width:1200px}table{border-collapse:collapse;width:100%;margin:8px 0 20px}\
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}\
th{background:#f4f6f8}code,pre{font:12px/1.4 ui-monospace,monospace}pre{background:#f6f8fa;padding:8px;overflow:auto}\
.Healthy,.verified{color:#1a7f37}.Degraded,.failed{color:#cf222e}.Progressing,.proposed,.pr_open,.approved,.merged,.synced{color:#9a6700}\
.risk{background:#fff8c5;padding:2px 6px;border-radius:4px}form{display:inline}button{margin-right:6px}";

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                title { (title) " · rewind" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { a href="/" { "rewind" } " — GitOps rollbacks as reviewed commits" }
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn short(sha: Option<&rewind_domain::CommitId>) -> String {
    sha.map_or("-".into(), |c| c.short().to_string())
}

fn app_link(app: &AppName) -> String {
    format!(
        "/ui/apps/{}",
        percent_encoding::utf8_percent_encode(app.as_str(), percent_encoding::NON_ALPHANUMERIC)
    )
}

fn deployment_cells(d: Option<&Deployment>) -> Markup {
    match d {
        Some(d) => html! {
            td { (d.cluster_revision) " " code { (short(d.commit.as_ref())) } }
            td class=(d.health.as_str()) { (d.health.as_str()) }
        },
        None => html! { td { "-" } td { "-" } },
    }
}

fn rollback_rows(rollbacks: &[Rollback]) -> Markup {
    html! {
        table {
            tr { th { "rollback" } th { "app" } th { "state" } th { "from → to" } th { "risks" } th { "created" } }
            @for r in rollbacks {
                tr {
                    td { a href={ "/ui/rollbacks/" (r.id) } { code { (r.id.to_string()[..8]) } } }
                    td { a href=(app_link(&r.app)) { (r.app) } }
                    td class=(r.state.as_str()) { (r.state.as_str()) }
                    td { (r.from.cluster_revision) " → " (r.to.cluster_revision) }
                    td { @for risk in &r.risks { span class="risk" { (risk.code.as_str()) } " " } }
                    td { (r.created_at.format("%Y-%m-%d %H:%M:%S")) }
                }
            }
        }
    }
}

/// The rollback with its outside text (reason, risk and timeline details,
/// approvers, the diff) shown as what it is: bidi overrides and invisible
/// characters made visible as `<U+202E>`, so the page cannot read
/// differently from what it says. maud escapes the HTML.
fn shown(mut r: Rollback) -> Rollback {
    use rewind_domain::text::reveal_hidden;
    r.reason = reveal_hidden(&r.reason);
    r.diff.text = reveal_hidden(&r.diff.text);
    for risk in &mut r.risks {
        risk.detail = reveal_hidden(&risk.detail);
    }
    for entry in &mut r.timeline {
        // Events are typed (rewind's own words); only details carry outside text.
        if let rewind_domain::TimelineEvent::Other(name) = &entry.event {
            entry.event = rewind_domain::TimelineEvent::Other(reveal_hidden(name));
        }
        entry.detail = reveal_hidden(&entry.detail);
    }
    for approval in &mut r.approvals {
        approval.by = reveal_hidden(&approval.by);
    }
    r
}

/// `GET /`: every app and the latest rollbacks.
pub async fn index(State(state): State<AppState>, caller: Result<Caller, ApiError>) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(_) => return login_page(None).into_response(),
    };
    if caller.require(Role::Viewer).is_err() {
        return login_page(None).into_response();
    }
    let apps = match state.ledger().list_apps().await {
        Ok(apps) => apps,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let rollbacks = state
        .ledger()
        .list_rollbacks(None, None, 20)
        .await
        .unwrap_or_default();
    page(
        "Apps",
        html! {
            table {
                tr { th { "app" } th { "cluster" } th { "current" } th { "health" } th { "known good" } th { "" } th { "status" } }
                @for s in &apps {
                    tr {
                        td { a href=(app_link(&s.app.name)) { (s.app.name) } }
                        td { (s.app.cluster) }
                        (deployment_cells(s.current.as_ref()))
                        td { (s.known_good.as_ref().map_or("-".into(), |d| d.cluster_revision.to_string())) }
                        td { @if s.app.held_since.is_some() { span class="risk" { "held" } } }
                        td { (s.app.status.clone().unwrap_or_default()) }
                    }
                }
            }
            h2 { "Rollbacks" }
            (rollback_rows(&rollbacks))
        },
    )
    .into_response()
}

/// `GET /ui/apps/{app}`: deployments and rollbacks of one app.
pub async fn app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> Result<Markup, ApiError> {
    caller.require(Role::Viewer)?;
    let app = AppName::new(app)?;
    let record = state
        .ledger()
        .get_app(&app)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no app named {app:?}")))?;
    let history = state.ledger().history(&app, 50).await?;
    let rollbacks = state.ledger().list_rollbacks(Some(&app), None, 50).await?;
    Ok(page(
        app.as_str(),
        html! {
            p { "cluster " b { (record.cluster) } ", path " code { (record.path.clone().unwrap_or_default()) } ", source " (record.source.as_str()) }
            @if let Some(status) = &record.status { p class="risk" { (status) } }
            h2 { "Rollbacks" }
            (rollback_rows(&rollbacks))
            h2 { "Deployments" }
            table {
                tr { th { "revision" } th { "commit" } th { "health" } th { "known good" } th { "deployed" } th { "config hash" } th { "images" } }
                @for d in &history {
                    tr {
                        td { (d.cluster_revision) }
                        td { code { (short(d.commit.as_ref())) } }
                        td class=(d.health.as_str()) { (d.health.as_str()) @if d.alerted { " (alerted)" } }
                        td { @if d.known_good { "yes" } }
                        td { (d.deployed_at.format("%Y-%m-%d %H:%M:%S")) }
                        td { code { (d.config_hash.as_ref().map_or("-".to_string(), |h| h.as_str()[7..19].to_string())) } }
                        td { @for image in &d.images { code { (image) } br; } }
                    }
                }
            }
        },
    ))
}

/// `GET /ui/rollbacks/{id}`.
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Markup, ApiError> {
    caller.require(Role::Viewer)?;
    let id: RollbackId = id.parse()?;
    let r = state
        .ledger()
        .rollback(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no rollback {id}")))?;
    let r = shown(r);
    let semantic = serde_json::to_string_pretty(&r.diff.semantic).unwrap_or_default();
    Ok(page(
        &format!("Rollback of {}", r.app),
        html! {
            p { "state " b class=(r.state.as_str()) { (r.state.as_str()) } " · strategy " (r.strategy.as_str())
                " · branch " code { (r.branch.clone().unwrap_or_default()) }
                @if let Some(pr) = &r.pr { " · " a href=(pr.url) { "pull request #" (pr.number) } } }
            p { "from cluster revision " (r.from.cluster_revision) " (" code { (short(r.from.commit.as_ref())) } ") to "
                (r.to.cluster_revision) " (" code { (short(r.to.commit.as_ref())) } ")" }
            p { "why: " (r.reason) }
            @if r.state.is_reviewable() {
                p {
                    form method="post" action={ "/ui/rollbacks/" (r.id) "/approve" } { button { "Approve" } }
                    form method="post" action={ "/ui/rollbacks/" (r.id) "/merge" } { button { "Merge" } }
                    form method="post" action={ "/ui/rollbacks/" (r.id) "/cancel" } { button { "Cancel" } }
                }
            }
            h2 { "Risks" }
            @if r.risks.is_empty() { p { "none found" } }
            ul { @for risk in &r.risks { li { span class="risk" { (risk.code.as_str()) } " " (risk.detail) } } }
            h2 { "Approvals" }
            ul { @for a in &r.approvals { li { (a.by) " via " (a.via) " at " (a.at.format("%Y-%m-%d %H:%M:%S")) } } }
            h2 { "Diff" }
            pre { (r.diff.text) }
            details { summary { "semantic diff (JSON)" } pre { (semantic) } }
            (verification(&r.verification))
            h2 { "Timeline" }
            table {
                @for e in &r.timeline {
                    tr { td { (e.at.format("%Y-%m-%d %H:%M:%S")) } td { (e.event) } td { (e.detail) } }
                }
            }
        },
    ))
}

/// The checks' evaluations: verdict, before → after, and why.
fn verification(results: &[rewind_domain::CheckResult]) -> Markup {
    let number = |v: Option<f64>| v.map_or("–".to_string(), |v| v.to_string());
    html! {
        @if !results.is_empty() {
            h2 { "Verification" }
            table {
                tr { th { "at" } th { "check" } th { "verdict" } th { "before → after" } th { "detail" } }
                @for e in results {
                    @let verdict = match e.pass { Some(true) => "pass", Some(false) => "fail", None => "unknown" };
                    tr {
                        td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                        td { (e.check) }
                        td class=(verdict) { (verdict) }
                        td { (number(e.baseline)) " → " (number(e.value)) }
                        td { (e.detail) }
                    }
                }
            }
        }
    }
}

/// `POST /ui/rollbacks/{id}/{action}` from the buttons.
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
) -> Result<Redirect, ApiError> {
    let id: RollbackId = id.parse()?;
    let engine = state.engine();
    match action.as_str() {
        "approve" => {
            engine
                .approve(id, &caller.require(Role::Approver)?.name, "ui")
                .await?
        }
        "merge" => {
            engine
                .merge(id, &caller.require(Role::Approver)?.name, "ui")
                .await?
        }
        "cancel" => {
            engine
                .cancel(id, &caller.require(Role::Operator)?.name, "ui")
                .await?
        }
        other => return Err(ApiError::not_found(format!("no action {other:?}"))),
    };
    state.0.wake.notify_waiters();
    Ok(Redirect::to(&format!("/ui/rollbacks/{id}")))
}

fn login_page(error: Option<&str>) -> (StatusCode, Markup) {
    (
        StatusCode::UNAUTHORIZED,
        page(
            "Sign in",
            html! {
                @if let Some(error) = error { p class="failed" { (error) } }
                form method="post" action="/ui/login" {
                    label { "API token " input type="password" name="token" autofocus; }
                    " " button { "Sign in" }
                }
            },
        ),
    )
}

#[derive(Debug, Deserialize)]
pub struct Login {
    token: String,
}

/// `POST /ui/login`: checks the token, keeps it in a cookie.
pub async fn login(State(state): State<AppState>, Form(login): Form<Login>) -> Response {
    let valid = state
        .settings()
        .api
        .tokens
        .iter()
        .any(|t| t.token.expose() == login.token);
    if !valid {
        return login_page(Some("unknown token")).into_response();
    }
    let cookie = format!(
        "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        login.token
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
