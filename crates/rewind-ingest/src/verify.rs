//! Authentication of deliveries, before a single byte is parsed.
//!
//! The only way to obtain a [`Verified`] is through the `verify_*` functions
//! of this module, and every parser takes one, so the type system keeps the
//! crate's invariant: nothing is parsed before its token or signature is
//! checked. Secrets are compared in constant time (`subtle`): tokens through
//! their SHA-256 digests, so not even their length leaks; HMACs directly.

use std::fmt;

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

use crate::IngestError;

/// HMAC of `body` under `key` with the given hash. HMAC accepts keys of any
/// length, so key setup cannot fail; the empty result is never equal to a
/// real MAC, so it could only ever refuse.
macro_rules! hmac_of {
    ($digest:ty, $key:expr, $body:expr) => {
        match <Hmac<$digest> as Mac>::new_from_slice($key) {
            Ok(mut mac) => {
                mac.update($body);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    };
}

/// Which sender a delivery claims to come from; chooses the verify function
/// and the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookSource {
    Argocd,
    Flux,
    Alertmanager,
    Github,
    /// Flagger's event webhook (`type: event` hooks, `EVENT_WEBHOOK_URL`).
    Flagger,
    /// Argo Rollouts notifications (webhook service).
    ArgoRollouts,
}

impl WebhookSource {
    /// The name used in routes (`/webhooks/<name>`), logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookSource::Argocd => "argocd",
            WebhookSource::Flux => "flux",
            WebhookSource::Alertmanager => "alertmanager",
            WebhookSource::Github => "github",
            WebhookSource::Flagger => "flagger",
            WebhookSource::ArgoRollouts => "argo-rollouts",
        }
    }
}

impl fmt::Display for WebhookSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// GitHub's delivery headers, kept with the verified body because the
/// payload alone does not say which event it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GithubMeta {
    /// `X-GitHub-Event`.
    pub(crate) event: String,
    /// `X-GitHub-Delivery`, when sent.
    pub(crate) delivery: Option<String>,
    /// The hook is configured as "form": the body is `payload=<urlencoded JSON>`.
    pub(crate) form: bool,
}

/// Raw body bytes whose token or signature has been checked. Only this
/// crate's `verify_*` functions construct it.
pub struct Verified<'a> {
    pub(crate) source: WebhookSource,
    pub(crate) body: &'a [u8],
    pub(crate) github: Option<GithubMeta>,
}

impl<'a> Verified<'a> {
    /// The source whose credentials the body was checked against.
    pub fn source(&self) -> WebhookSource {
        self.source
    }

    /// The verified raw bytes, exactly as received.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Guards against a caller handing one source's verified body to another
    /// source's parser: it was not verified with that source's secret.
    pub(crate) fn expect_source(&self, source: WebhookSource) -> Result<(), IngestError> {
        if self.source == source {
            Ok(())
        } else {
            Err(IngestError::unauthorized(format!(
                "body was verified for {}, not for {source}",
                self.source
            )))
        }
    }
}

impl fmt::Debug for Verified<'_> {
    // The body can be megabytes; its length is what a log needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("source", &self.source)
            .field("body_len", &self.body.len())
            .field("github", &self.github)
            .finish()
    }
}

/// What a `Content-Type` header says about the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
}

/// Checks the `Content-Type`: absent or JSON is fine (`application/json`,
/// with or without parameters, or any `+json` type); GitHub may also send a
/// form (`application/x-www-form-urlencoded`). Anything else is refused.
pub fn check_content_type(source: WebhookSource, headers: &HeaderMap) -> Result<(), IngestError> {
    match body_kind(headers)? {
        BodyKind::Form if source != WebhookSource::Github => Err(
            IngestError::UnsupportedMediaType("application/x-www-form-urlencoded".to_owned()),
        ),
        _ => Ok(()),
    }
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, IngestError> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(BodyKind::Json);
    };
    let text = value
        .to_str()
        .map_err(|_| IngestError::UnsupportedMediaType("(not valid text)".to_owned()))?;
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        e if e.starts_with("application/") && e.ends_with("+json") => Ok(BodyKind::Json),
        _ => Err(IngestError::UnsupportedMediaType(
            text.chars().take(100).collect(),
        )),
    }
}

/// Argo CD notifications: `Authorization: Bearer <token>`.
pub fn verify_argocd<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    token: &str,
) -> Result<Verified<'a>, IngestError> {
    check_bearer(headers, token)?;
    Ok(plain(WebhookSource::Argocd, body))
}

/// Alertmanager's `http_config.authorization`: `Authorization: Bearer <token>`.
pub fn verify_alertmanager<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    token: &str,
) -> Result<Verified<'a>, IngestError> {
    check_bearer(headers, token)?;
    Ok(plain(WebhookSource::Alertmanager, body))
}

/// Flagger event webhooks: the token in the URL (`?token=<token>`), since
/// Flagger cannot send headers (fluxcd/flagger#1192), or `Authorization:
/// Bearer <token>` from a proxy or a hand-made sender. A wrong token in
/// either place is refused, even when the other is right.
pub fn verify_flagger<'a>(
    headers: &HeaderMap,
    url_token: Option<&str>,
    body: &'a [u8],
    token: &str,
) -> Result<Verified<'a>, IngestError> {
    require_secret(token, "webhooks.flagger_token")?;
    let bearer = headers.contains_key(http::header::AUTHORIZATION);
    match url_token {
        Some(given) => {
            if !same_token(given, token) {
                return Err(IngestError::unauthorized("wrong token in the URL"));
            }
            if bearer {
                check_bearer(headers, token)?;
            }
        }
        None if bearer => check_bearer(headers, token)?,
        None => {
            return Err(IngestError::unauthorized(
                "no token: add ?token=<webhooks.flagger_token> to the webhook URL",
            ));
        }
    }
    Ok(plain(WebhookSource::Flagger, body))
}

/// Argo Rollouts notifications: `Authorization: Bearer <token>`, a header
/// of the webhook service.
pub fn verify_argo_rollouts<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    token: &str,
) -> Result<Verified<'a>, IngestError> {
    check_bearer(headers, token)?;
    Ok(plain(WebhookSource::ArgoRollouts, body))
}

/// Flux `generic-hmac`: `X-Signature: <hash>=<hex HMAC(key, body)>`, hash one
/// of sha224, sha256 (what Flux sends today), sha384, sha512, as Flux's own
/// verification sample accepts.
pub fn verify_flux<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    key: &str,
) -> Result<Verified<'a>, IngestError> {
    require_secret(key, "flux_hmac_key")?;
    let header = header_text(headers, "x-signature")?;
    let (algorithm, hex_mac) = header
        .split_once('=')
        .ok_or_else(|| IngestError::unauthorized("X-Signature is not `<hash>=<hex>`"))?;
    let given = decode_hex_mac(hex_mac, "X-Signature")?;
    let expected = match algorithm.to_ascii_lowercase().as_str() {
        "sha224" => hmac_of!(Sha224, key.as_bytes(), body),
        "sha256" => hmac_of!(Sha256, key.as_bytes(), body),
        "sha384" => hmac_of!(Sha384, key.as_bytes(), body),
        "sha512" => hmac_of!(Sha512, key.as_bytes(), body),
        _ => {
            return Err(IngestError::unauthorized(
                "X-Signature uses an unsupported hash (sha224, sha256, sha384, sha512 are accepted)",
            ));
        }
    };
    check_mac(&expected, &given, "X-Signature")?;
    Ok(plain(WebhookSource::Flux, body))
}

/// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
/// Also reads `X-GitHub-Event` (required) and `X-GitHub-Delivery`.
pub fn verify_github<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    secret: &str,
) -> Result<Verified<'a>, IngestError> {
    require_secret(secret, "forge.webhook_secret")?;
    let header = header_text(headers, "x-hub-signature-256")?;
    let hex_mac = header
        .strip_prefix("sha256=")
        .ok_or_else(|| IngestError::unauthorized("X-Hub-Signature-256 is not `sha256=<hex>`"))?;
    let given = decode_hex_mac(hex_mac, "X-Hub-Signature-256")?;
    let expected = hmac_of!(Sha256, secret.as_bytes(), body);
    check_mac(&expected, &given, "X-Hub-Signature-256")?;

    // Read only after the signature holds: unauthenticated header values
    // never reach the parser.
    let event = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| IngestError::malformed("X-GitHub-Event", "header missing"))?
        .to_owned();
    let delivery = headers
        .get("x-github-delivery")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(200).collect());
    let form = matches!(body_kind(headers), Ok(BodyKind::Form));
    Ok(Verified {
        source: WebhookSource::Github,
        body,
        github: Some(GithubMeta {
            event,
            delivery,
            form,
        }),
    })
}

/// The idempotency key of a delivery that carries no id of its own:
/// `sha256:<hex of the raw body>`. Argo CD, Flux and Alertmanager resend the
/// same bytes on retry, so equal bodies are the same delivery.
pub fn body_delivery_key(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

fn plain(source: WebhookSource, body: &[u8]) -> Verified<'_> {
    Verified {
        source,
        body,
        github: None,
    }
}

fn require_secret(secret: &str, key: &str) -> Result<(), IngestError> {
    if secret.is_empty() {
        // An empty secret would let anyone in; refuse rather than accept.
        Err(IngestError::unauthorized(format!(
            "{key} is not configured"
        )))
    } else {
        Ok(())
    }
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, IngestError> {
    let value = headers
        .get(name)
        .ok_or_else(|| IngestError::unauthorized(format!("{name} header missing")))?;
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| IngestError::unauthorized(format!("{name} header is not valid text")))
}

fn check_bearer(headers: &HeaderMap, token: &str) -> Result<(), IngestError> {
    require_secret(token, "webhook token")?;
    let header = header_text(headers, "authorization")?;
    let (scheme, given) = header
        .split_once(' ')
        .ok_or_else(|| IngestError::unauthorized("Authorization is not `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(IngestError::unauthorized(
            "Authorization is not `Bearer <token>`",
        ));
    }
    if same_token(given.trim(), token) {
        Ok(())
    } else {
        Err(IngestError::unauthorized("wrong bearer token"))
    }
}

/// Digests have a fixed length, so the comparison takes the same time
/// whatever the token's length and content.
fn same_token(given: &str, token: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(token.as_bytes());
    bool::from(given.as_slice().ct_eq(expected.as_slice()))
}

fn decode_hex_mac(hex_mac: &str, header: &str) -> Result<Vec<u8>, IngestError> {
    hex::decode(hex_mac.trim())
        .map_err(|_| IngestError::unauthorized(format!("{header} is not hexadecimal")))
}

fn check_mac(expected: &[u8], given: &[u8], header: &str) -> Result<(), IngestError> {
    // `ct_eq` on slices of different lengths is false without comparing
    // contents; the length of an HMAC is public anyway.
    if !expected.is_empty() && bool::from(expected.ct_eq(given)) {
        Ok(())
    } else {
        Err(IngestError::unauthorized(format!(
            "{header} does not match the body"
        )))
    }
}
