//! Webhooks in: `verify(headers, bytes)`, then parse Argo CD, Flux,
//! Alertmanager and GitHub payloads into domain [`Observation`]s.
//!
//! # Layout
//!
//! - [`verify`]: content-type check, bearer tokens and HMAC signatures; the
//!   only constructor of [`Verified`].
//! - [`argocd`], [`flux`], [`alertmanager`], [`github`]: one parser per
//!   sender, each taking a [`Verified`] body.
//! - [`flagger`], [`argo_rollouts`]: in-cluster rollbacks (a canary rolled
//!   back, a rollout aborted) as [`rewind_domain::ClusterRolledBack`].
//! - [`settings`]: what the parsers read from the configuration.
//! - [`samples`]: payloads shaped like the real senders', for `rewind demo`,
//!   end-to-end tests and benchmarks.
//! - [`git_url`]: repository URL comparison (`git@host:org/repo` equals
//!   `https://host/org/repo.git`).
//! - `json`: JSON decoding whose errors name the field path.
//!
//! # Architecture invariants
//!
//! Nothing is parsed before its token or signature is checked: parsers take
//! a [`Verified`], which only the `verify_*` functions make. Parsing is pure
//! (no I/O, no Git) and never panics on any input: bad bodies become
//! [`IngestError::Malformed`] naming the JSON path. Each [`Parsed`] carries a
//! delivery key so the ledger can record a delivery exactly once.
//!
//! ```
//! use rewind_ingest::{IngestSettings, WebhookSource, ingest};
//!
//! let settings = IngestSettings {
//!     alertmanager_token: Some("s3cret".into()),
//!     ..IngestSettings::default()
//! };
//! let mut headers = http::HeaderMap::new();
//! headers.insert("authorization", "Bearer s3cret".parse().unwrap());
//! let body = br#"{"version":"4","groupKey":"{}","status":"firing","alerts":[]}"#;
//! let parsed = ingest(WebhookSource::Alertmanager, &headers, body, &settings).unwrap();
//! assert_eq!((parsed.accepted(), parsed.ignored), (0, 0));
//! ```

#![forbid(unsafe_code)]

pub mod alertmanager;
pub mod argo_rollouts;
pub mod argocd;
mod error;
pub mod flagger;
pub mod flux;
pub mod git_url;
pub mod github;
mod json;
pub mod samples;
pub mod settings;
pub mod verify;

use http::HeaderMap;
use rewind_domain::{ClusterName, Observation};

pub use alertmanager::{parse_alertmanager, triggers_rollback};
pub use argo_rollouts::parse_argo_rollouts;
pub use argocd::{parse_argocd, parse_argocd_from};
pub use error::IngestError;
pub use flagger::{FlaggerUrl, parse_flagger};
pub use flux::{commit_of_revision, parse_flux, parse_flux_from};
pub use github::{chat_command, parse_github};
pub use json::nul_field;
pub use settings::{AlertSettings, AppMapping, ClusterMapping, IngestSettings};
pub use verify::{
    Verified, WebhookSource, body_delivery_key, check_content_type, verify_alertmanager,
    verify_argo_rollouts, verify_argocd, verify_flagger, verify_flux, verify_github,
};

/// What one delivery said.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The facts to record, in the order the sender stated them.
    pub observations: Vec<Observation>,
    /// Parts of the delivery that were valid but name nothing rewind tracks
    /// (alerts without an app, Flux objects not in `[[apps]]`, GitHub events
    /// rewind does not use).
    pub ignored: usize,
    /// Idempotency key: `X-GitHub-Delivery` for GitHub, `sha256:<hex of the
    /// raw body>` for the others, which carry no delivery id.
    pub delivery_key: String,
    /// `argocd`, `flux`, `alertmanager`, `github`, `flagger` or
    /// `argo-rollouts`.
    pub source: &'static str,
}

impl Parsed {
    /// The `accepted` count of the `202 {"accepted": N, "ignored": M}` answer.
    pub fn accepted(&self) -> usize {
        self.observations.len()
    }
}

/// The whole path for one delivery: content-type check, then verification
/// with the source's configured secret, then parsing. A source whose secret
/// is not configured refuses every delivery with `Unauthorized`.
pub fn ingest(
    source: WebhookSource,
    headers: &HeaderMap,
    body: &[u8],
    settings: &IngestSettings,
) -> Result<Parsed, IngestError> {
    ingest_from(source, None, headers, body, settings)
}

/// [`ingest`] for a delivery from the Argo CD or Flux instance running on
/// `sender` (the `{cluster}` of `/webhooks/argocd/{cluster}`); `None` is
/// `in-cluster`. Other sources ignore it.
pub fn ingest_from(
    source: WebhookSource,
    sender: Option<&ClusterName>,
    headers: &HeaderMap,
    body: &[u8],
    settings: &IngestSettings,
) -> Result<Parsed, IngestError> {
    check_content_type(source, headers)?;
    match source {
        WebhookSource::Argocd => {
            let token = secret(&settings.argocd_token, "webhooks.argocd_token")?;
            parse_argocd_from(verify_argocd(headers, body, token)?, settings, sender)
        }
        WebhookSource::Flux => {
            let key = secret(&settings.flux_hmac_key, "webhooks.flux_hmac_key")?;
            parse_flux_from(verify_flux(headers, body, key)?, settings, sender)
        }
        WebhookSource::Alertmanager => {
            let token = secret(&settings.alertmanager_token, "webhooks.alertmanager_token")?;
            parse_alertmanager(verify_alertmanager(headers, body, token)?, settings)
        }
        WebhookSource::Github => {
            let secret = secret(&settings.github_webhook_secret, "forge.webhook_secret")?;
            parse_github(verify_github(headers, body, secret)?, settings)
        }
        WebhookSource::Flagger => ingest_flagger(headers, FlaggerUrl::default(), body, settings),
        WebhookSource::ArgoRollouts => {
            let token = secret(&settings.rollouts_token, "webhooks.rollouts_token")?;
            parse_argo_rollouts(verify_argo_rollouts(headers, body, token)?, settings)
        }
    }
}

/// [`ingest`] for Flagger, whose credentials and cluster may be in the
/// webhook URL's query (`?token=...&cluster=...`).
pub fn ingest_flagger(
    headers: &HeaderMap,
    url: FlaggerUrl<'_>,
    body: &[u8],
    settings: &IngestSettings,
) -> Result<Parsed, IngestError> {
    check_content_type(WebhookSource::Flagger, headers)?;
    let token = secret(&settings.flagger_token, "webhooks.flagger_token")?;
    parse_flagger(
        verify_flagger(headers, url.token, body, token)?,
        url.cluster,
        settings,
    )
}

fn secret<'s>(value: &'s Option<String>, key: &str) -> Result<&'s str, IngestError> {
    settings::configured(value)
        .ok_or_else(|| IngestError::Unauthorized(format!("{key} is not configured")))
}
