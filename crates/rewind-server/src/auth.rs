//! API authentication and authorization: a bearer token names a caller and
//! a role; handlers ask for the least role they need.
//!
//! Tokens come from `[[api.tokens]]`, `api.tokens_file` and
//! `REWIND_API_TOKEN_<NAME>` (merged by rewind-config into one list), and
//! from the database (`rewind token create`, stored as SHA-256 digests).
//! A presented token is hashed once; the digest is compared with every
//! configured token's digest in constant time and looked up in the
//! database by digest (an index lookup on a hash reveals nothing about the
//! token).
//!
//! With no token anywhere the API is open (every caller is an admin named
//! `anonymous`), which is how `rewind demo` and a loopback-only `rewind
//! serve` run; rewind warns at start-up when that is combined with a
//! non-loopback listen address. The first stored token closes it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use rewind_config::Role;
use sha2::{Digest, Sha256};
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
    /// The caller of an open API (no tokens configured or stored).
    pub fn anonymous() -> Caller {
        Caller {
            name: "anonymous".into(),
            role: Role::Admin,
        }
    }

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

/// Hex SHA-256 of a token or session id: what is stored and compared.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh random secret (`prefix` + 64 hex digits, 244 random bits from
/// the operating system's generator through UUID v4).
pub fn random_secret(prefix: &str) -> String {
    format!(
        "{prefix}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether `a` and `b` are equal, in time that depends only on length.
pub fn same_secret(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The bearer token of a request, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Whether the API is open: no token configured and none stored.
pub async fn is_open(state: &AppState) -> Result<bool, ApiError> {
    if !state.settings().api.tokens.is_empty() {
        return Ok(false);
    }
    Ok(state.ledger().api_token_count().await? == 0)
}

/// The holder of the token whose digest is `token_digest`, if any.
pub async fn resolve(state: &AppState, token_digest: &str) -> Result<Option<Caller>, ApiError> {
    // Every configured token is compared, matched or not, so timing says
    // nothing about which one (or which prefix) matched.
    let mut found = None;
    for token in &state.settings().api.tokens {
        if same_secret(&digest(token.token.expose()), token_digest) {
            found = Some(Caller {
                name: token.name.clone(),
                role: token.role,
            });
        }
    }
    if found.is_some() {
        return Ok(found);
    }
    let stored = state.ledger().api_token_by_digest(token_digest).await?;
    Ok(stored.and_then(|t| Role::parse(&t.role).map(|role| Caller { name: t.name, role })))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if is_open(state).await? {
            return Ok(Caller::anonymous());
        }
        // Only the bearer header: the web UI's session cookie is not an
        // API credential, so a cross-site request cannot ride on it here.
        let presented = bearer_token(&parts.headers)
            .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>`"))?;
        resolve(state, &digest(presented))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown API token"))
    }
}
