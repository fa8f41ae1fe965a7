//! The web UI: apps, each app's deployments and rollbacks, and each
//! rollback with its diff, risks and timeline, with approve / merge /
//! cancel buttons. Server-rendered HTML (maud escapes everything), no
//! JavaScript. With API tokens configured, people sign in with a token and
//! get a session (see `session.rs`: the cookie is a random id, every form
//! carries a CSRF token and must come from rewind's own origin). Unicode
//! bidi controls in shown text are made visible (`[U+202E]`), so a label
//! cannot reorder what a reviewer reads.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use rewind_config::Role;
use rewind_domain::{AppRef, Rollback, RollbackId};
use rewind_ledger::AppSummary;
use serde::Deserialize;

use crate::auth;
use crate::error::ApiError;
use crate::routes::app_ref::{no_such_app, resolve};
use crate::session::{self, ClientAddr, SESSION_COOKIE, UiUser};
use crate::state::AppState;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24}\
header{background:#1b1f24;color:#fff;padding:10px 24px}header a{color:#fff;text-decoration:none;font-weight:600}\
main{padding:16px 24px;max-width:1200px}table{border-collapse:collapse;width:100%;margin:8px 0 20px}\
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}\
th{background:#f4f6f8}code,pre{font:12px/1.4 ui-monospace,monospace}pre{background:#f6f8fa;padding:8px;overflow:auto}\
.Healthy,.verified{color:#1a7f37}.Degraded,.failed{color:#cf222e}.Progressing,.proposed,.pr_open,.approved,.merged,.synced{color:#9a6700}\
.risk{background:#fff8c5;padding:2px 6px;border-radius:4px}form{display:inline}button{margin-right:6px}";

/// Bidi controls (embeddings, overrides, isolates, marks) that can make
/// text read differently from what it is.
const BIDI_CONTROLS: &[char] = &[
    '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

/// Replaces every bidi control with its visible name (`[U+202E]`).
pub fn neutralise_bidi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if BIDI_CONTROLS.contains(&c) {
            out.push_str(&format!("[U+{:04X}]", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// A whole page. Everything shown passes through here, so bidi controls
/// are neutralised once, for every piece of outside text.
fn page(title: &str, user: &UiUser, body: Markup) -> Markup {
    let markup = html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                title { (title) " · rewind" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a href="/" { "rewind" } " — GitOps rollbacks as reviewed commits"
                    @if let Some(caller) = &user.caller {
                        @if user.session.is_some() {
                            span style="float:right" {
                                (caller.name) " (" (caller.role.as_str()) ") "
                                form method="post" action="/ui/logout" {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    button { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    PreEscaped(neutralise_bidi(&markup.into_string()))
}

/// `markup` as a response, with the CSRF cookie when one was minted.
fn respond(user: &UiUser, status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    if let Some(cookie) = &user.set_cookie
        && let Ok(value) = HeaderValue::from_str(cookie)
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A hidden CSRF field, for every form.
fn csrf_field(user: &UiUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf); }
}

fn short(sha: Option<&rewind_domain::CommitId>) -> String {
    sha.map_or("-".into(), |c| c.short().to_string())
}

fn app_link(app: &AppRef) -> String {
    // `@` stays readable; `/` in `namespace/name` must be encoded.
    const PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');
    format!(
        "/ui/apps/{}@{}",
        percent_encoding::utf8_percent_encode(app.name.as_str(), PART),
        percent_encoding::utf8_percent_encode(app.cluster.as_str(), PART)
    )
}

/// The overview: one row per app name, one column per cluster, each cell
/// that cluster's app (current revision, health, known good, hold).
fn apps_by_cluster(apps: &[AppSummary]) -> Markup {
    let mut clusters: Vec<&str> = apps.iter().map(|s| s.app.cluster.as_str()).collect();
    clusters.sort_unstable();
    clusters.dedup();
    let mut names: Vec<&str> = apps.iter().map(|s| s.app.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let find = |name: &str, cluster: &str| {
        apps.iter()
            .find(|s| s.app.name.as_str() == name && s.app.cluster.as_str() == cluster)
    };
    html! {
        table {
            tr { th { "app" } @for c in &clusters { th { (c) } } }
            @for name in &names {
                tr {
                    td { b { (name) } }
                    @for c in &clusters {
                        @match find(name, c) {
                            Some(s) => td {
                                a href=(app_link(&s.app.app_ref())) {
                                    @match &s.current {
                                        Some(d) => { (d.cluster_revision) " " code { (short(d.commit.as_ref())) } }
                                        None => { "no deployment" }
                                    }
                                }
                                @if let Some(d) = &s.current { " " span class=(d.health.as_str()) { (d.health.as_str()) } }
                                br;
                                "known good " (s.known_good.as_ref().map_or("-".into(), |d| d.cluster_revision.to_string()))
                                @if s.app.held_since.is_some() { " " span class="risk" { "held" } }
                                @if let Some(drift) = &s.app.drift { br; span class="risk" title=(drift.detail) { "drift" } " " small { (drift.detail) } }
                                @if let Some(status) = &s.app.status { br; small { (status) } }
                            },
                            None => td { "" },
                        }
                    }
                }
            }
        }
    }
}

fn rollback_rows(rollbacks: &[Rollback]) -> Markup {
    html! {
        table {
            tr { th { "rollback" } th { "app" } th { "state" } th { "from → to" } th { "risks" } th { "created" } }
            @for r in rollbacks {
                tr {
                    td { a href={ "/ui/rollbacks/" (r.id) } { code { (r.id.to_string()[..8]) } } }
                    td { a href=(app_link(&r.app_ref())) { (r.app_ref()) } }
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
pub async fn index(State(state): State<AppState>, user: UiUser) -> Response {
    let Some(caller) = &user.caller else {
        return login_page(&user, StatusCode::UNAUTHORIZED, None);
    };
    if let Err(e) = caller.require(Role::Viewer) {
        return e.into_response();
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
    let markup = page(
        "Apps",
        &user,
        html! {
            (apps_by_cluster(&apps))
            h2 { "Rollbacks" }
            (rollback_rows(&rollbacks))
        },
    );
    respond(&user, StatusCode::OK, markup)
}

/// `GET /ui/apps/{app}`: deployments and rollbacks of one app.
pub async fn app(
    State(state): State<AppState>,
    user: UiUser,
    Path(app): Path<String>,
) -> Result<Markup, ApiError> {
    user.caller()?.require(Role::Viewer)?;
    let app = resolve(&state, &app).await?;
    let record = state
        .ledger()
        .get_app(&app)
        .await?
        .ok_or_else(|| no_such_app(&app))?;
    let history = state.ledger().history(&app, 50).await?;
    let rollbacks = state.ledger().list_rollbacks(Some(&app), None, 50).await?;
    Ok(page(
        &app.to_string(),
        &user,
        html! {
            p { "cluster " b { (record.cluster) } ", path " code { (record.path.clone().unwrap_or_default()) } ", source " (record.source.as_str()) }
            @if let Some(status) = &record.status { p class="risk" { (status) } }
            @if let Some(drift) = &record.drift { p class="risk" { "drift since " (drift.since.format("%Y-%m-%d %H:%M:%S")) ": " (drift.detail) } }
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
    user: UiUser,
    Path(id): Path<String>,
) -> Result<Markup, ApiError> {
    user.caller()?.require(Role::Viewer)?;
    let id: RollbackId = id.parse()?;
    let r = state
        .ledger()
        .rollback(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no rollback {id}")))?;
    let r = shown(r);
    Ok(page(
        &format!("Rollback of {}", r.app_ref()),
        &user,
        html! {
            p { "state " b class=(r.state.as_str()) { (r.state.as_str()) } " · strategy " (r.strategy.as_str())
                " · branch " code { (r.branch.clone().unwrap_or_default()) }
                @if let Some(pr) = &r.pr { " · " a href=(pr.url) { "pull request #" (pr.number) } } }
            p { "from cluster revision " (r.from.cluster_revision) " (" code { (short(r.from.commit.as_ref())) } ") to "
                (r.to.cluster_revision) " (" code { (short(r.to.commit.as_ref())) } ")" }
            p { "why: " (r.reason) }
            @if r.state.is_reviewable() {
                p {
                    @for action in UiAction::ALL {
                        form method="post" action={ "/ui/rollbacks/" (r.id) "/" (action.as_str()) } {
                            (csrf_field(&user))
                            button { (action.label()) }
                        }
                    }
                }
            }
            (crate::routes::ui_report::rollback_report(&r, crate::routes::ui_report::ReportPolicy {
                required_approvals: state.settings().policy.required_approvals,
                allow_self_approval: state.settings().policy.allow_self_approval,
                verify_for: state.settings().policy.verify_for.get(),
            }))
        },
    ))
}

/// `POST /ui/rollbacks/{id}/{action}` from the buttons.
/// The buttons of a rollback page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiAction {
    Approve,
    Merge,
    Cancel,
}

impl UiAction {
    pub const ALL: [UiAction; 3] = [UiAction::Approve, UiAction::Merge, UiAction::Cancel];

    pub fn as_str(self) -> &'static str {
        match self {
            UiAction::Approve => "approve",
            UiAction::Merge => "merge",
            UiAction::Cancel => "cancel",
        }
    }

    fn label(self) -> &'static str {
        match self {
            UiAction::Approve => "Approve",
            UiAction::Merge => "Merge",
            UiAction::Cancel => "Cancel",
        }
    }

    /// The least role that may press the button (the API's too).
    pub fn role(self) -> Role {
        match self {
            UiAction::Approve | UiAction::Merge => Role::Approver,
            UiAction::Cancel => Role::Operator,
        }
    }

    fn parse(s: &str) -> Option<UiAction> {
        UiAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The body of every UI form post.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /ui/rollbacks/{id}/{action}` from the buttons: same origin, the
/// page's CSRF token, then the role, then the action.
pub async fn act(
    State(state): State<AppState>,
    user: UiUser,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, ApiError> {
    session::check_origin(&state, &headers)?;
    session::check_csrf(&user, form.csrf.as_deref())?;
    let action = UiAction::parse(&action)
        .ok_or_else(|| ApiError::not_found(format!("no action {action:?}")))?;
    let caller = user.caller()?;
    caller.require(action.role())?;
    let id: RollbackId = id.parse()?;
    let engine = state.engine();
    match action {
        UiAction::Approve => engine.approve(id, &caller.name, "ui").await?,
        UiAction::Merge => engine.merge(id, &caller.name, "ui").await?,
        UiAction::Cancel => engine.cancel(id, &caller.name, "ui").await?,
    };
    state.0.wake.notify_waiters();
    Ok(Redirect::to(&format!("/ui/rollbacks/{id}")))
}

fn login_page(user: &UiUser, status: StatusCode, error: Option<&str>) -> Response {
    let markup = page(
        "Sign in",
        user,
        html! {
            @if let Some(error) = error { p class="failed" { (error) } }
            form method="post" action="/ui/login" {
                (csrf_field(user))
                label { "API token " input type="password" name="token" autofocus; }
                " " button { "Sign in" }
            }
        },
    );
    respond(user, status, markup)
}

/// `GET /ui/login`: the sign-in form.
pub async fn login_form(user: UiUser) -> Response {
    login_page(&user, StatusCode::OK, None)
}

#[derive(Debug, Deserialize)]
pub struct Login {
    token: String,
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /ui/login`: same origin and CSRF first, then the rate limit, then
/// the token (hashed, compared in constant time); a session on success.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    user: UiUser,
    Form(login): Form<Login>,
) -> Response {
    if let Err(e) = session::check_origin(&state, &headers)
        .and_then(|()| session::check_csrf(&user, login.csrf.as_deref()))
    {
        return e.into_response();
    }
    if let Err(wait) = state.0.login_limiter.check(addr) {
        let mut response = login_page(
            &user,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "too many failed sign-ins from this address; try again in {wait}s"
            )),
        );
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let token_digest = auth::digest(login.token.trim());
    let caller = match auth::resolve(&state, &token_digest).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let Some(caller) = caller else {
        state.0.login_limiter.failed(addr);
        tracing::info!(client.addr = ?addr, "web UI sign-in refused: unknown token");
        return login_page(&user, StatusCode::UNAUTHORIZED, Some("unknown token"));
    };
    let cookie = match session::start_session(&state, token_digest).await {
        Ok(cookie) => cookie,
        Err(e) => return e.into_response(),
    };
    tracing::info!(token.name = %caller.name, "web UI sign-in");
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `POST /ui/logout`: ends the session.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: UiUser,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    session::check_origin(&state, &headers)?;
    session::check_csrf(&user, form.csrf.as_deref())?;
    if let Some(digest) = &user.session {
        state.ledger().delete_ui_session(digest).await?;
    }
    let mut response = Redirect::to("/").into_response();
    let clear = format!(
        "{SESSION_COOKIE}=; {}",
        session::cookie_attributes(&state, 0)
    );
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_are_shown_not_obeyed() {
        assert_eq!(
            neutralise_bidi("invoice\u{202E}fdp.exe\u{202C} ok \u{2067}x\u{2069}"),
            "invoice[U+202E]fdp.exe[U+202C] ok [U+2067]x[U+2069]"
        );
        assert_eq!(
            neutralise_bidi("plain: ünïcode, 日本"),
            "plain: ünïcode, 日本"
        );
    }

    #[test]
    fn actions_parse_from_their_names_only() {
        for action in UiAction::ALL {
            assert_eq!(UiAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(UiAction::parse("Approve"), None);
        assert_eq!(UiAction::parse("delete"), None);
        assert_eq!(UiAction::Cancel.role(), Role::Operator);
        assert_eq!(UiAction::Merge.role(), Role::Approver);
    }
}
