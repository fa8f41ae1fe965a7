//! What every request passes through before its handler, as on GitHub:
//! the request log, injected faults, authentication (tokens, and GitHub App
//! JWTs for the token exchange; a `User-Agent` is required), per-write latency with a count of
//! concurrent writes, and the `x-ratelimit-*` headers on every answer.

// Handlers answer refusals with ready responses; their size is no concern
// in a test server.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, request::Parts};
use serde_json::json;

use super::state::{Fault, RecordedRequest, State as FakeState};

pub(crate) type Shared = Arc<Mutex<FakeState>>;

const RATE_LIMIT: u64 = 5000;
const MAX_BODY: usize = 8 * 1024 * 1024;

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, FakeState> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// GitHub's error body.
pub(crate) fn github_error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        axum::Json(json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": status.as_u16().to_string(),
        })),
    )
        .into_response()
}

/// Decrements the in-flight write count even when the client hangs up and
/// the handler is dropped.
struct WriteSlot(Shared);

impl Drop for WriteSlot {
    fn drop(&mut self) {
        let mut state = lock(&self.0);
        state.writes_in_flight = state.writes_in_flight.saturating_sub(1);
    }
}

pub(crate) async fn gate(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return github_error(400, "Problems parsing JSON");
    };
    let is_write = !matches!(parts.method, Method::GET | Method::HEAD);
    // Logged on arrival, so requests the client gave up on are logged too
    // (with status 0).
    let (index, fault) = {
        let mut state = lock(&shared);
        state.requests.push(RecordedRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            body: String::from_utf8_lossy(&bytes).into_owned(),
            status: 0,
            at,
        });
        let fault = state
            .faults
            .iter()
            .position(|f| is_write || !f.writes_only)
            .and_then(|i| state.faults.remove(i))
            .map(|f| f.fault);
        (state.requests.len() - 1, fault)
    };

    let mut response = match fault {
        Some(Fault::Status(status)) => Some(github_error(status, "Injected failure")),
        Some(Fault::SecondaryRateLimit {
            retry_after_secs,
            status,
        }) => {
            let mut response = github_error(
                status,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(retry_after_secs));
            Some(response)
        }
        Some(Fault::PrimaryRateLimit {
            reset_in_secs,
            status,
        }) => {
            let mut response = github_error(status, "API rate limit exceeded for installation.");
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", HeaderValue::from(RATE_LIMIT));
            headers.insert("x-ratelimit-remaining", HeaderValue::from(0u64));
            headers.insert("x-ratelimit-used", HeaderValue::from(RATE_LIMIT));
            headers.insert(
                "x-ratelimit-reset",
                HeaderValue::from(epoch_secs() + reset_in_secs),
            );
            Some(response)
        }
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            None
        }
        Some(Fault::LoseAnswer(_)) | None => None,
    };

    if response.is_none()
        && let Err(denied) = authorize(&shared, &parts)
    {
        response = Some(denied);
    }
    let mut response = match response {
        Some(response) => response,
        None => {
            let (_slot, latency) = if is_write {
                let mut state = lock(&shared);
                state.writes_in_flight += 1;
                state.max_writes_in_flight = state.max_writes_in_flight.max(state.writes_in_flight);
                (Some(WriteSlot(shared.clone())), state.write_latency)
            } else {
                (None, Duration::ZERO)
            };
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    };

    {
        let mut state = lock(&shared);
        state.rate_limit_used += 1;
        let used = state.rate_limit_used;
        let headers = response.headers_mut();
        if !headers.contains_key("x-ratelimit-remaining") {
            headers.insert("x-ratelimit-limit", HeaderValue::from(RATE_LIMIT));
            headers.insert(
                "x-ratelimit-remaining",
                HeaderValue::from(RATE_LIMIT.saturating_sub(used)),
            );
            headers.insert("x-ratelimit-used", HeaderValue::from(used));
            headers.insert("x-ratelimit-reset", HeaderValue::from(epoch_secs() + 3600));
        }
        headers.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
        if let Some(logged) = state.requests.get_mut(index) {
            logged.status = response.status().as_u16();
        }
    }
    if let Some(Fault::LoseAnswer(hold)) = fault {
        tokio::time::sleep(hold).await;
    }
    response
}

fn authorize(shared: &Shared, parts: &Parts) -> Result<(), Response> {
    if !parts.headers.contains_key(http::header::USER_AGENT) {
        return Err(github_error(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        ));
    }
    let credential = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, value) = v.split_once(' ')?;
            (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
                .then(|| value.trim().to_owned())
        });
    let Some(credential) = credential else {
        return Err(github_error(401, "Requires authentication"));
    };
    let state = lock(shared);
    let path = parts.uri.path();
    let is_token_exchange = parts.method == Method::POST
        && path.starts_with("/app/installations/")
        && path.ends_with("/access_tokens");
    if is_token_exchange {
        let Some(app) = &state.options.app else {
            return Err(github_error(401, "A JSON web token could not be decoded"));
        };
        return verify_app_jwt(&credential, app.app_id, &app.public_key_pem).map_err(|reason| {
            github_error(
                401,
                &format!("A JSON web token could not be decoded: {reason}"),
            )
        });
    }
    if state.tokens.contains(&credential) {
        Ok(())
    } else {
        Err(github_error(401, "Bad credentials"))
    }
}

fn verify_app_jwt(token: &str, app_id: u64, public_key_pem: &str) -> Result<(), String> {
    use octocrab::jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    #[derive(serde::Deserialize)]
    struct Claims {
        iss: serde_json::Value,
    }
    let key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    // GitHub's `iss` is the app id as a number, which jsonwebtoken's own
    // issuer check (strings only) cannot read: it is checked below.
    validation.set_required_spec_claims(&["exp", "iat"]);
    let data = decode::<Claims>(token, &key, &validation).map_err(|e| e.to_string())?;
    let issuer_matches = match &data.claims.iss {
        serde_json::Value::Number(n) => n.as_u64() == Some(app_id),
        serde_json::Value::String(s) => s == &app_id.to_string(),
        _ => false,
    };
    if issuer_matches {
        Ok(())
    } else {
        Err(format!("issuer is not app {app_id}"))
    }
}

pub(crate) fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
