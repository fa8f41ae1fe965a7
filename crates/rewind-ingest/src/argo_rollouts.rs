//! Argo Rollouts notifications: `{"event": "<trigger>", "rollout": <Rollout>}`
//! as the webhook template `{"event": "on-rollout-aborted", "rollout":
//! {{toJson .rollout}}}` renders it. Optional extra keys of the template:
//! `"cluster"` (the cluster this controller runs on) and `"app"` (the rewind
//! app, when neither Argo CD's nor Flux's tracking metadata names it).
//!
//! `on-rollout-aborted` becomes a [`ClusterRolledBack`]: the Rollout scaled
//! back to its stable ReplicaSet (`status.stableRS`), while `spec.template`
//! (what Git says) still names the refused version (`status.currentPodHash`).
//! The event name is the signal: the body is the object as it was at the
//! start of the reconcile, so `status.abort` may still be absent. Every
//! other trigger is accepted and counted as ignored.
//!
//! The delivery key is a digest of the event, the cluster, the Rollout's
//! uid and revision and both pod-template hashes: one abort of one revision
//! is one fact, however often it is sent.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rewind_domain::{AppName, ClusterRolledBack, Observation, RollbackSender};
use serde::Deserialize;

use crate::flagger::bounded;
use crate::verify::{Verified, WebhookSource, body_delivery_key};
use crate::{IngestError, IngestSettings, Parsed, json};

/// The trigger whose deliveries mean "the cluster rolled back".
pub const ABORTED: &str = "on-rollout-aborted";

/// Argo Rollouts' revision annotation on the Rollout.
const REVISION_ANNOTATION: &str = "rollout.argoproj.io/revision";

#[derive(Debug, Deserialize)]
struct Payload {
    event: String,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    app: Option<String>,
    rollout: Rollout,
}

#[derive(Debug, Default, Deserialize)]
struct Rollout {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    spec: Spec,
    #[serde(default)]
    status: Status,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
struct Spec {
    #[serde(default)]
    template: Option<PodTemplate>,
}

#[derive(Debug, Default, Deserialize)]
struct PodTemplate {
    #[serde(default)]
    spec: Option<PodSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    #[serde(default)]
    containers: Option<Vec<Container>>,
    #[serde(default)]
    init_containers: Option<Vec<Container>>,
}

#[derive(Debug, Default, Deserialize)]
struct Container {
    #[serde(default)]
    image: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    #[serde(default, rename = "stableRS")]
    stable_rs: Option<String>,
    #[serde(default)]
    current_pod_hash: Option<String>,
    #[serde(default)]
    aborted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    conditions: Option<Vec<Condition>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Condition {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    last_update_time: Option<DateTime<Utc>>,
}

/// Parses a verified Argo Rollouts notification.
pub fn parse_argo_rollouts(
    verified: Verified<'_>,
    _settings: &IngestSettings,
) -> Result<Parsed, IngestError> {
    verified.expect_source(WebhookSource::ArgoRollouts)?;
    let payload: Payload = json::decode(verified.body())?;
    let rollout = &payload.rollout;
    let meta = &rollout.metadata;
    let name = meta.name.as_deref().unwrap_or_default();
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    let cluster = payload
        .cluster
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let annotations = meta.annotations.clone().unwrap_or_default();
    let revision = annotations.get(REVISION_ANNOTATION).cloned();
    let status = &rollout.status;

    let identity = serde_json::json!([
        payload.event,
        cluster,
        meta.uid,
        namespace,
        name,
        revision,
        status.current_pod_hash,
        status.stable_rs,
    ]);
    let mut parsed = Parsed {
        observations: Vec::new(),
        ignored: 0,
        delivery_key: format!(
            "argo-rollouts:{}",
            body_delivery_key(identity.to_string().as_bytes())
        ),
        source: WebhookSource::ArgoRollouts.as_str(),
    };
    if payload.event != ABORTED {
        tracing::debug!(
            rollouts.event = %bounded(&payload.event),
            "argo rollouts event is not an abort; ignored"
        );
        parsed.ignored = 1;
        return Ok(parsed);
    }
    if name.is_empty() {
        return Err(IngestError::malformed(
            "rollout.metadata.name",
            "missing: send the whole Rollout ({{toJson .rollout}})",
        ));
    }
    if namespace.is_empty() {
        return Err(IngestError::malformed(
            "rollout.metadata.namespace",
            "missing: send the whole Rollout ({{toJson .rollout}})",
        ));
    }

    let labels = meta.labels.clone().unwrap_or_default();
    let app = app_of(
        payload.app.as_deref(),
        &annotations,
        &labels,
        namespace,
        name,
    )?;
    let aborted = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.kind.as_deref() == Some("Progressing"))
        .filter(|c| c.reason.as_deref() == Some("RolloutAborted"));
    let at = status
        .aborted_at
        .or_else(|| aborted.and_then(|c| c.last_update_time))
        .unwrap_or_else(Utc::now);
    let message = aborted
        .and_then(|c| c.message.as_deref())
        .or(status.message.as_deref())
        .filter(|m| !m.trim().is_empty())
        .map(bounded)
        .unwrap_or_else(|| match &revision {
            Some(r) => format!("Rollout aborted update to revision {}", bounded(r)),
            None => "Rollout aborted".to_owned(),
        });
    let images = rollout
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.init_containers
                .iter()
                .chain(s.containers.iter())
                .flatten()
                .filter_map(|c| c.image.clone())
                .filter(|i| !i.is_empty())
                .collect()
        })
        .unwrap_or_default();
    parsed
        .observations
        .push(Observation::ClusterRolledBack(ClusterRolledBack {
            app,
            cluster,
            namespace: namespace.to_owned(),
            workload: format!("Rollout/{name}"),
            sender: RollbackSender::ArgoRollouts,
            running_revision: status.stable_rs.clone().filter(|s| !s.is_empty()),
            running_images: Vec::new(),
            rejected_revision: status.current_pod_hash.clone().filter(|s| !s.is_empty()),
            rejected_images: images,
            at,
            message,
        }));
    Ok(parsed)
}

/// The rewind app a Rollout belongs to: the template's `"app"`, else Argo
/// CD's tracking annotation (`<app>:<group>/<kind>:<ns>/<name>`, apps in
/// other namespaces as `<ns>_<app>`) or label (`app.kubernetes.io/instance`),
/// else Flux's `kustomize.toolkit.fluxcd.io` or `helm.toolkit.fluxcd.io`
/// name and namespace labels, else the Rollout's `namespace/name`.
fn app_of(
    explicit: Option<&str>,
    annotations: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
    namespace: &str,
    name: &str,
) -> Result<AppName, IngestError> {
    if let Some(app) = explicit.map(str::trim).filter(|a| !a.is_empty()) {
        return AppName::new(app).map_err(|e| IngestError::malformed("app", e.to_string()));
    }
    let argocd = annotations
        .get("argocd.argoproj.io/tracking-id")
        .and_then(|id| id.split_once(':').map(|(app, _)| app.replacen('_', "/", 1)))
        .or_else(|| labels.get("app.kubernetes.io/instance").cloned());
    let flux = ["kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io"]
        .into_iter()
        .find_map(|group| {
            let name = labels.get(&format!("{group}/name"))?;
            let namespace = labels.get(&format!("{group}/namespace"))?;
            Some(format!("{namespace}/{name}"))
        });
    let tracked = argocd
        .or(flux)
        .filter(|a| !a.is_empty())
        .and_then(|a| AppName::new(a).ok());
    match tracked {
        Some(app) => Ok(app),
        None => AppName::namespaced(namespace, name)
            .map_err(|e| IngestError::malformed("rollout.metadata.name", e.to_string())),
    }
}
