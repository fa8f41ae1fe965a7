//! Flagger event webhooks: one `CanaryWebhookPayload` per delivery
//! (`{"name", "namespace", "phase", "checksum", "metadata"}`), as Flagger's
//! `type: event` hooks and its global `EVENT_WEBHOOK_URL` send it.
//!
//! Only a canary that failed (`phase: "Failed"`, Flagger's `Canary failed!
//! Scaling down …` event, sent once traffic is back on the primary) becomes
//! an observation, [`ClusterRolledBack`]: the cluster runs the primary's
//! version while Git names the canary's. Every other event (`Halt …`
//! warnings on each analysis interval, `Rolling back …` just before the
//! failure, promotions) is accepted and counted as ignored.
//!
//! The payload names no cluster, image or Git revision. The cluster comes
//! from the hook's `metadata.cluster`, else `?cluster=` in the URL; the app
//! from `metadata.app`, else the canary's `namespace/name`.
//!
//! There is no event id, and `Halt` repeats with a new timestamp every
//! interval, so the delivery key is a digest of what the event says without
//! its timestamp (namespace, name, checksum, phase, cluster, metadata).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rewind_domain::{AppName, ClusterRolledBack, Observation, RollbackSender};
use serde::Deserialize;

use crate::verify::{Verified, WebhookSource, body_delivery_key};
use crate::{IngestError, IngestSettings, Parsed, json};

/// Longest sender message kept: it is outside text, shown in PRs.
pub(crate) const MAX_MESSAGE: usize = 500;

/// What the webhook URL's query adds to a Flagger delivery. `Debug` never
/// shows the token.
#[derive(Clone, Copy, Default)]
pub struct FlaggerUrl<'a> {
    /// `?token=`: Flagger cannot send headers.
    pub token: Option<&'a str>,
    /// `?cluster=`: the global `EVENT_WEBHOOK_URL` carries no metadata.
    pub cluster: Option<&'a str>,
}

impl std::fmt::Debug for FlaggerUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlaggerUrl")
            .field("token", &self.token.map(|_| "[redacted]"))
            .field("cluster", &self.cluster)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
struct Payload {
    name: String,
    namespace: String,
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    checksum: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

/// Parses a verified Flagger event. `url_cluster` is the `?cluster=` of the
/// webhook URL, used when the hook's metadata names none.
pub fn parse_flagger(
    verified: Verified<'_>,
    url_cluster: Option<&str>,
    _settings: &IngestSettings,
) -> Result<Parsed, IngestError> {
    verified.expect_source(WebhookSource::Flagger)?;
    let payload: Payload = json::decode(verified.body())?;
    if payload.name.is_empty() {
        return Err(IngestError::malformed("name", "empty canary name"));
    }
    if payload.namespace.is_empty() {
        return Err(IngestError::malformed("namespace", "empty namespace"));
    }
    let metadata = payload.metadata.unwrap_or_default();
    let cluster = metadata
        .get("cluster")
        .map(String::as_str)
        .or(url_cluster)
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let phase = payload.phase.as_deref().unwrap_or_default();

    // Everything the event says except when, so a `Halt` repeated every
    // interval and a retry are one delivery.
    let mut identity: BTreeMap<&str, &str> = metadata
        .iter()
        .filter(|(k, _)| k.as_str() != "timestamp")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    identity.insert("@name", &payload.name);
    identity.insert("@namespace", &payload.namespace);
    identity.insert("@phase", phase);
    identity.insert("@checksum", payload.checksum.as_deref().unwrap_or_default());
    identity.insert("@cluster", &cluster);
    let canonical = serde_json::to_vec(&identity).unwrap_or_default();
    let mut parsed = Parsed {
        observations: Vec::new(),
        ignored: 0,
        delivery_key: format!("flagger:{}", body_delivery_key(&canonical)),
        source: WebhookSource::Flagger.as_str(),
    };

    if phase != "Failed" {
        tracing::debug!(
            flagger.canary = %payload.name,
            flagger.phase = phase,
            "flagger event is not a rollback; ignored"
        );
        parsed.ignored = 1;
        return Ok(parsed);
    }

    let app = match metadata
        .get("app")
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
    {
        Some(app) => {
            AppName::new(app).map_err(|e| IngestError::malformed("metadata.app", e.to_string()))?
        }
        None => AppName::namespaced(&payload.namespace, &payload.name)
            .map_err(|e| IngestError::malformed("name", e.to_string()))?,
    };
    let at = match metadata.get("timestamp") {
        Some(ms) => millis(ms)
            .ok_or_else(|| IngestError::malformed("metadata.timestamp", "not Unix milliseconds"))?,
        None => Utc::now(),
    };
    let message = metadata
        .get("eventMessage")
        .map(|m| bounded(m))
        .unwrap_or_else(|| format!("Canary {}.{} failed", payload.name, payload.namespace));
    parsed
        .observations
        .push(Observation::ClusterRolledBack(ClusterRolledBack {
            app,
            cluster,
            namespace: payload.namespace.clone(),
            workload: format!("Canary/{}", payload.name),
            sender: RollbackSender::Flagger,
            running_revision: None,
            running_images: Vec::new(),
            rejected_revision: payload.checksum.filter(|c| !c.is_empty()),
            rejected_images: Vec::new(),
            at,
            message,
        }));
    Ok(parsed)
}

/// Flagger's `metadata.timestamp`: Unix milliseconds as a decimal string.
fn millis(text: &str) -> Option<DateTime<Utc>> {
    let ms: i64 = text.trim().parse().ok()?;
    DateTime::from_timestamp_millis(ms)
}

/// At most [`MAX_MESSAGE`] characters of a sender's message.
pub(crate) fn bounded(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_MESSAGE).collect();
    if text.chars().count() > MAX_MESSAGE {
        out.push('…');
    }
    out
}
