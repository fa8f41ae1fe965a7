//! Signing in and out of the web UI: a form that takes an API token, a
//! session on success (see `session.rs`), and the end of the session.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::actions::CsrfForm;
use super::layout::{csrf_field, page, respond};
use crate::auth;
use crate::error::ApiError;
use crate::session::{self, ClientAddr, SESSION_COOKIE, UiUser};
use crate::state::AppState;

pub(super) fn login_page(user: &UiUser, status: StatusCode, error: Option<&str>) -> Response {
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
