//! Web UI sign-in: sessions, CSRF tokens, the `Origin` check, the login
//! rate limit and the security headers every answer carries.
//!
//! - The session cookie holds a random id, never the token; the database
//!   keeps only the id's digest and the digest of the token that signed in,
//!   so revoking (or removing) the token ends its sessions at once. The
//!   cookie is `HttpOnly; SameSite=Strict`, and `Secure` when
//!   `server.public_url` is https.
//! - Every form carries a CSRF token: the session's, or before sign-in (and
//!   on an open UI) a random one also set as a cookie (double submit).
//! - Every form post must come from rewind's own origin: `Origin` (or, when
//!   a browser sends none, `Referer`) must be `server.public_url`'s origin,
//!   or the `Host` the request was sent to when that is an IP address or
//!   `localhost` (a loopback install reached on another port). Host names
//!   are not trusted from `Host`, which DNS rebinding controls.
//! - Failed sign-ins are limited per client address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use rewind_ledger::UiSession;

use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// Cookie holding the random session id.
pub const SESSION_COOKIE: &str = "rewind_session";
/// Cookie holding the CSRF token before sign-in and on an open UI.
pub const CSRF_COOKIE: &str = "rewind_csrf";
/// How long a session lasts.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(8);
/// Failed sign-ins allowed per client address per [`LOGIN_WINDOW`].
pub const LOGIN_ATTEMPTS: usize = 5;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Who is using the web UI, and the CSRF token their forms must carry.
#[derive(Debug, Clone)]
pub struct UiUser {
    /// `None`: not signed in (and the UI is not open).
    pub caller: Option<Caller>,
    pub csrf: String,
    /// The session id's digest, when signed in.
    pub session: Option<String>,
    /// A `Set-Cookie` value to send (a fresh CSRF cookie).
    pub set_cookie: Option<String>,
}

impl UiUser {
    /// The caller, or 401 when nobody is signed in.
    pub fn caller(&self) -> Result<&Caller, ApiError> {
        self.caller
            .as_ref()
            .ok_or_else(|| ApiError::unauthorized("sign in first (POST /ui/login)"))
    }
}

/// Cookie attributes: `Secure` only when rewind is served over https
/// (a browser drops a `Secure` cookie set over plain http).
pub fn cookie_attributes(state: &AppState, max_age: i64) -> String {
    let secure = if state.settings().server.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

impl FromRequestParts<AppState> for UiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(id) = cookie(&parts.headers, SESSION_COOKIE) {
            let session_digest = auth::digest(id);
            if let Some(session) = state
                .ledger()
                .ui_session(&session_digest, Utc::now())
                .await?
                && let Some(caller) = auth::resolve(state, &session.token_digest).await?
            {
                return Ok(UiUser {
                    caller: Some(caller),
                    csrf: session.csrf,
                    session: Some(session_digest),
                    set_cookie: None,
                });
            }
        }
        let (csrf, set_cookie) = match cookie(&parts.headers, CSRF_COOKIE) {
            Some(csrf) if csrf.len() >= 32 => (csrf.to_string(), None),
            _ => {
                let csrf = auth::random_secret("");
                let set = format!(
                    "{CSRF_COOKIE}={csrf}; {}",
                    cookie_attributes(state, SESSION_TTL.num_seconds())
                );
                (csrf, Some(set))
            }
        };
        let caller = auth::is_open(state).await?.then(Caller::anonymous);
        Ok(UiUser {
            caller,
            csrf,
            session: None,
            set_cookie,
        })
    }
}

/// Starts a session for the holder of `token_digest`; returns the cookie.
pub async fn start_session(state: &AppState, token_digest: String) -> Result<String, ApiError> {
    let id = auth::random_secret("");
    let now = Utc::now();
    state
        .ledger()
        .create_ui_session(&UiSession {
            digest: auth::digest(&id),
            token_digest,
            csrf: auth::random_secret(""),
            created_at: now,
            expires_at: now + SESSION_TTL,
        })
        .await?;
    Ok(format!(
        "{SESSION_COOKIE}={id}; {}",
        cookie_attributes(state, SESSION_TTL.num_seconds())
    ))
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let origin = parsed.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// Refuses a form post that does not come from rewind's own pages.
pub fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let header_text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let presented = match header_text(header::ORIGIN) {
        Some(origin) => Some(origin),
        None => header_text(header::REFERER).and_then(|r| origin_of(&r)),
    };
    let Some(presented) = presented else {
        return Err(ApiError::forbidden(
            "a form post needs an Origin header from rewind's own pages",
        ));
    };
    let mut allowed: Vec<String> = origin_of(&state.settings().server.public_url)
        .into_iter()
        .collect();
    if let Some(host) = header_text(header::HOST) {
        let name = host
            .rsplit_once(':')
            .map_or(host.as_str(), |(name, _)| name)
            .trim_matches(['[', ']']);
        if name == "localhost" || name.parse::<IpAddr>().is_ok() {
            allowed.push(format!("http://{host}"));
            allowed.push(format!("https://{host}"));
        }
    }
    if allowed.iter().any(|a| a == &presented) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "cross-origin form post refused: Origin {presented:?} is not rewind's ({})",
            allowed.first().map_or("server.public_url", String::as_str)
        )))
    }
}

/// Refuses a form whose CSRF token is not the one of this user's pages.
pub fn check_csrf(user: &UiUser, presented: Option<&str>) -> Result<(), ApiError> {
    match presented {
        // A fresh cookie was only minted for this request: nothing the
        // form could have carried matches it.
        Some(token) if user.set_cookie.is_none() && auth::same_secret(token, &user.csrf) => Ok(()),
        _ => Err(ApiError::forbidden(
            "CSRF token missing or wrong: reload the page and try again",
        )),
    }
}

/// The client address of a request, when the server knows it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Failed sign-ins per client address in a sliding window (per replica:
/// enough to make guessing a 64-digit token hopeless, not a global quota).
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<Option<IpAddr>, Vec<Instant>>>,
}

impl LoginLimiter {
    /// `Err` with the seconds to wait when `addr` is over the limit.
    pub fn check(&self, addr: Option<IpAddr>) -> Result<(), u64> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let list = failures.entry(addr).or_default();
        list.retain(|t| now.duration_since(*t) < LOGIN_WINDOW);
        if list.len() >= LOGIN_ATTEMPTS {
            let oldest = list.first().copied().unwrap_or(now);
            let wait = LOGIN_WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        Ok(())
    }

    pub fn failed(&self, addr: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Bound the map: addresses whose failures all expired are dropped.
        if failures.len() > 10_000 {
            let now = Instant::now();
            failures.retain(|_, l| l.iter().any(|t| now.duration_since(*t) < LOGIN_WINDOW));
        }
        failures.entry(addr).or_default().push(Instant::now());
    }
}

/// The Content-Security-Policy of every answer: no scripts, no frames, no
/// foreign forms; the page's one inline style block is allowed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Middleware: security headers on every answer (cheap, and an API answer
/// opened in a browser is then as inert as a page).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}
