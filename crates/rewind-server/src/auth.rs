//! API authentication and authorization: a bearer token names a caller and
//! a role; handlers ask for the least role they need.
//!
//! With no `[[api.tokens]]` configured the API is open (every caller is an
//! admin named `anonymous`), which is how `rewind demo` and a loopback-only
//! `rewind serve` run. rewind warns at start-up when that is combined with a
//! non-loopback listen address.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use rewind_config::Role;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Who is calling, as proven by their token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// Refuses callers below `role`, naming what was needed.
    pub fn require(&self, role: Role) -> Result<&Self, ApiError> {
        if self.role >= role {
            Ok(self)
        } else {
            Err(ApiError::forbidden(format!(
                "token {:?} has role {}, this needs {}",
                self.name,
                self.role.as_str(),
                role.as_str()
            )))
        }
    }
}

/// Cookie that carries a web UI user's token.
pub const TOKEN_COOKIE: &str = "rewind_token";

/// The token of a request: `Authorization: Bearer`, or the web UI's cookie.
pub fn request_token(headers: &HeaderMap) -> Option<&str> {
    bearer_token(headers).or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == TOKEN_COOKIE)
            .map(|(_, v)| v)
    })
}

/// The bearer token of a request, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let tokens = &state.settings().api.tokens;
        if tokens.is_empty() {
            return Ok(Caller {
                name: "anonymous".into(),
                role: Role::Admin,
            });
        }
        let presented = request_token(&parts.headers)
            .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>`"))?;
        // Compare against every token in constant time, so timing tells
        // nothing about which prefix matched.
        let mut found = None;
        for token in tokens {
            if bool::from(token.token.expose().as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(token);
            }
        }
        let token = found.ok_or_else(|| ApiError::unauthorized("unknown API token"))?;
        Ok(Caller {
            name: token.name.clone(),
            role: token.role,
        })
    }
}
