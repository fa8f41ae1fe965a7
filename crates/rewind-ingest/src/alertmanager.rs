//! Alertmanager webhook receiver, payload version 4.
//!
//! One delivery carries a group of alerts, possibly of several apps:
//! `commonLabels` lacks the app label as soon as two apps share a group, so
//! each alert's own `labels` decide its app. Every alert of a known app is
//! recorded, firing or resolved; whether a firing one opens a rollback is
//! [`triggers_rollback`]'s call, made downstream.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use rewind_domain::{Alert, AlertStatus, AppName, ClusterName, Observation};
use serde::Deserialize;

use crate::verify::{Verified, WebhookSource, body_delivery_key};
use crate::{AlertSettings, IngestError, IngestSettings, Parsed, json};

/// The only payload version Alertmanager has sent since 0.x; a new one would
/// change the shape, so it is refused rather than misread.
const PAYLOAD_VERSION: &str = "4";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    version: String,
    #[serde(default)]
    group_key: Option<String>,
    alerts: Vec<AmAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmAlert {
    status: AlertStatus,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    starts_at: DateTime<Utc>,
    #[serde(default)]
    ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
}

/// Parses a verified Alertmanager notification into one alert observation
/// per alert whose app rewind can name; the others are counted as ignored.
pub fn parse_alertmanager(
    verified: Verified<'_>,
    settings: &IngestSettings,
) -> Result<Parsed, IngestError> {
    verified.expect_source(WebhookSource::Alertmanager)?;
    let payload: Payload = json::decode(verified.body())?;
    if payload.version != PAYLOAD_VERSION {
        return Err(IngestError::malformed(
            "version",
            format!(
                "payload version {:?} is not supported; rewind reads version 4",
                payload.version.chars().take(20).collect::<String>()
            ),
        ));
    }
    let group_key = payload.group_key.unwrap_or_default();
    let mut parsed = Parsed {
        observations: Vec::with_capacity(payload.alerts.len()),
        ignored: 0,
        delivery_key: body_delivery_key(verified.body()),
        source: WebhookSource::Alertmanager.as_str(),
    };
    for (index, alert) in payload.alerts.into_iter().enumerate() {
        let labels = alert.labels.unwrap_or_default();
        let Some((app, cluster)) = app_of(&labels, settings) else {
            tracing::debug!(
                alert.index = index,
                alert.fingerprint = alert.fingerprint.as_deref().unwrap_or(""),
                "alert names no known app; ignored"
            );
            parsed.ignored += 1;
            continue;
        };
        let fingerprint = alert.fingerprint.filter(|f| !f.is_empty()).ok_or_else(|| {
            IngestError::malformed(format!("alerts[{index}].fingerprint"), "missing or empty")
        })?;
        parsed.observations.push(Observation::Alert(Alert {
            app,
            cluster,
            name: labels.get("alertname").cloned().unwrap_or_default(),
            status: alert.status,
            severity: labels.get("severity").cloned(),
            fingerprint,
            group_key: group_key.clone(),
            starts_at: alert.starts_at,
            // Alertmanager writes Go's zero time for "not ended".
            ends_at: alert.ends_at.filter(|t| t.year() > 1),
            generator_url: alert.generator_url.filter(|u| !u.is_empty()),
            labels,
            annotations: alert.annotations.unwrap_or_default(),
        }));
    }
    Ok(parsed)
}

/// Whether an alert should open a rollback proposal: it is firing and its
/// severity is one of `[alerts] severities` (case-insensitive). An empty list
/// means every firing alert does; an alert without a severity label only
/// triggers then.
pub fn triggers_rollback(alert: &Alert, settings: &AlertSettings) -> bool {
    if alert.status != AlertStatus::Firing {
        return false;
    }
    if settings.severities.is_empty() {
        return true;
    }
    alert.severity.as_deref().is_some_and(|severity| {
        settings
            .severities
            .iter()
            .any(|s| s.eq_ignore_ascii_case(severity))
    })
}

/// The app (and cluster) an alert is about: the value of `[alerts]
/// app_label`, resolved through `[[apps]]` when it equals an app's name or
/// the last segment of it (`checkout` for `shop/checkout`), else taken as
/// the app name itself (apps learnt from Argo CD).
fn app_of(
    labels: &BTreeMap<String, String>,
    settings: &IngestSettings,
) -> Option<(AppName, Option<ClusterName>)> {
    let value = labels
        .get(&settings.alerts.app_label)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())?;
    let cluster = settings
        .alerts
        .cluster_label
        .as_ref()
        .and_then(|label| labels.get(label))
        .and_then(|c| ClusterName::new(c.trim()).ok());
    let names_it =
        |m: &&crate::AppMapping| m.name == value || m.name.rsplit('/').next() == Some(value);
    // Prefer the mapping on the alert's cluster when several apps share a
    // last segment (`shop/checkout` on two clusters).
    let mapping = settings
        .apps
        .iter()
        .filter(names_it)
        .find(|m| cluster.as_ref().is_some_and(|c| c.as_str() == m.cluster))
        .or_else(|| settings.apps.iter().find(names_it));
    let name = mapping.map(|m| m.name.as_str()).unwrap_or(value);
    // Without a cluster label, `[[apps]]` names the cluster only when one
    // entry has that name: otherwise the alert is about every cluster
    // running it, and the ledger matches it to each.
    let configured: Vec<&crate::AppMapping> =
        settings.apps.iter().filter(|m| m.name == name).collect();
    let cluster = cluster.or_else(|| match configured.as_slice() {
        [only] => ClusterName::new(only.cluster.as_str()).ok(),
        _ => None,
    });
    AppName::new(name).ok().map(|app| (app, cluster))
}
