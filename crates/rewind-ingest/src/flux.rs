//! Flux notification-controller events (`generic-hmac` provider): one
//! `eventv1.Event` per delivery.
//!
//! Only `Kustomization` and `HelmRelease` events name apps. Flux says
//! nothing about paths, so an app must be in `[[apps]]` under its
//! `namespace/name` key, or discovered in the repository (the server merges
//! those in, see `rewind-server/src/flux_apps.rs`); events for other objects
//! are accepted and counted as ignored (Flux retries on errors, and an
//! unmatched event is not one).
//!
//! The app's cluster is the event metadata key `cluster` (the Flux `Alert`'s
//! `spec.eventMetadata`), else the `{cluster}` of `/webhooks/flux/{cluster}`,
//! else the `[[apps]]` entry's, else `in-cluster`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rewind_domain::{
    App, AppName, AppSource, ClusterName, CommitId, DeploymentObserved, Health, HealthObserved,
    Observation, Source, SyncStatus,
};
use serde::Deserialize;

use crate::verify::{Verified, WebhookSource, body_delivery_key};
use crate::{AppMapping, IngestError, IngestSettings, Parsed, json};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    involved_object: ObjectReference,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct ObjectReference {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// The kinds whose events describe an app's deployment.
const APP_KINDS: [&str; 2] = ["Kustomization", "HelmRelease"];

/// Parses a verified Flux event into observations (no sender cluster).
pub fn parse_flux(
    verified: Verified<'_>,
    settings: &IngestSettings,
) -> Result<Parsed, IngestError> {
    parse_flux_from(verified, settings, None)
}

/// Parses a verified Flux event sent from the instance on `sender` (the
/// webhook path's cluster).
pub fn parse_flux_from(
    verified: Verified<'_>,
    settings: &IngestSettings,
    sender: Option<&ClusterName>,
) -> Result<Parsed, IngestError> {
    verified.expect_source(WebhookSource::Flux)?;
    let event: Event = json::decode(verified.body())?;
    let mut parsed = Parsed {
        observations: Vec::new(),
        ignored: 0,
        delivery_key: body_delivery_key(verified.body()),
        source: WebhookSource::Flux.as_str(),
    };

    let object = &event.involved_object;
    let kind = object.kind.as_deref().unwrap_or_default();
    if !APP_KINDS.contains(&kind) {
        tracing::debug!(
            flux.kind = kind,
            "flux event for a kind that is not an app; ignored"
        );
        parsed.ignored = 1;
        return Ok(parsed);
    }
    let namespace = object.namespace.as_deref().unwrap_or_default();
    let object_name = object.name.as_deref().unwrap_or_default();
    let key = format!("{namespace}/{object_name}");
    let metadata = event.metadata.unwrap_or_default();
    let hint = match metadata_value(&metadata, "cluster") {
        Some(named) => Some(
            ClusterName::new(named.trim())
                .map_err(|e| IngestError::malformed("metadata.cluster", e.to_string()))?,
        ),
        None => sender.cloned(),
    };
    let Some((mapping, cluster)) = mapping_for(&settings.apps, &key, hint) else {
        tracing::debug!(
            app.name = %key,
            "flux event for an app not in [[apps]] (on this cluster); ignored"
        );
        parsed.ignored = 1;
        return Ok(parsed);
    };
    let name = AppName::new(key)
        .map_err(|e| IngestError::malformed("involvedObject.name", e.to_string()))?;
    let at = event.timestamp.unwrap_or_else(Utc::now);

    parsed.observations.push(Observation::App(app_from_mapping(
        &name, &cluster, mapping, settings, at,
    )));

    let revision = metadata_value(&metadata, "revision")
        .or_else(|| metadata_value(&metadata, "originRevision"))
        .or_else(|| metadata_value(&metadata, "commit"))
        .map(str::to_owned);
    let commit = commit_of_event(&metadata);
    if let Some(revision) = &revision {
        parsed
            .observations
            .push(Observation::Deployment(DeploymentObserved {
                app: name.clone(),
                cluster: cluster.clone(),
                cluster_revision: None,
                revision: revision.clone(),
                commit: commit.clone(),
                deployed_at: at,
                source: Source::Flux,
                initiated_by: None,
            }));
    }

    let reason = event.reason.as_deref().unwrap_or_default();
    let severity = event.severity.as_deref().unwrap_or_default();
    if let Some(health) = health_of(reason, severity) {
        parsed
            .observations
            .push(Observation::Health(HealthObserved {
                app: name,
                cluster,
                revision,
                commit,
                health,
                sync: (reason == "ReconciliationSucceeded").then_some(SyncStatus::Synced),
                sync_revision: None,
                // Flux reports no running images.
                running_images: None,
                at,
            }));
    }
    Ok(parsed)
}

/// Maps an event's `reason` and `severity` to a health, or `None` when the
/// event says nothing about health (most `info` events).
pub fn health_of(reason: &str, severity: &str) -> Option<Health> {
    match reason {
        "ReconciliationSucceeded" | "InstallSucceeded" | "UpgradeSucceeded" | "TestSucceeded" => {
            Some(Health::Healthy)
        }
        "Progressing" | "ProgressingWithRetry" => Some(Health::Progressing),
        _ if severity.eq_ignore_ascii_case("error") => Some(Health::Degraded),
        // HealthCheckFailed, ReconciliationFailed, InstallFailed, ... are
        // failures even if a producer tags them `info`.
        r if r.ends_with("Failed") => Some(Health::Degraded),
        _ => None,
    }
}

/// The commit an event names: `commit` (a bare SHA, from an RFC-0008
/// annotation), else `originRevision` (an OCI artifact's source commit), else
/// `revision`, in the order of Flux's `Event.GetRevision`. Chart versions
/// (HelmRelease) and OCI digests name no commit.
fn commit_of_event(metadata: &BTreeMap<String, String>) -> Option<CommitId> {
    ["commit", "originRevision", "revision"]
        .into_iter()
        .filter_map(|key| metadata_value(metadata, key))
        .find_map(commit_of_revision)
}

/// The commit in a Flux revision string, in every format Flux has used:
/// `main@sha1:<sha>`, `refs/heads/main@sha1:<sha>`, `sha1:<sha>`, the legacy
/// `main/<sha>`, or a bare SHA. The digest is the text after the last `@`
/// (RFC-0005: the named pointer may itself contain `/` and `@`).
pub fn commit_of_revision(revision: &str) -> Option<CommitId> {
    let revision = revision.trim();
    if let Ok(bare) = CommitId::new(revision) {
        return Some(bare);
    }
    let digest = match revision.rsplit_once('@') {
        Some((_, digest)) => digest,
        None => revision,
    };
    let hash = match digest.split_once(':') {
        Some((algorithm, hash)) if algorithm.eq_ignore_ascii_case("sha1") => hash,
        // sha256 is an OCI or Bucket digest, not a commit.
        Some(_) => return None,
        None if revision.contains('@') => return None,
        None => revision.rsplit_once('/').map(|(_, hash)| hash)?,
    };
    CommitId::new(hash).ok()
}

/// Reads `key` from the forwarded metadata. The notification-controller
/// strips the `<group>/` prefix; older ones and the docs example keep it
/// (`kustomize.toolkit.fluxcd.io/revision`), so a prefixed key is the fallback.
fn metadata_value<'m>(metadata: &'m BTreeMap<String, String>, key: &str) -> Option<&'m str> {
    metadata
        .get(key)
        .or_else(|| {
            metadata
                .iter()
                .find(|(k, _)| {
                    k.rsplit_once('/')
                        .is_some_and(|(prefix, last)| last == key && prefix.contains('.'))
                })
                .map(|(_, v)| v)
        })
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// The `[[apps]]` entry for `key` and the app's cluster. With a cluster
/// named (metadata or webhook path): the entry on that cluster, else one
/// without a cluster. Without: the only entry of that name (its cluster, or
/// `in-cluster`); several entries on different clusters cannot be told apart.
fn mapping_for<'a>(
    apps: &'a [AppMapping],
    key: &str,
    hint: Option<ClusterName>,
) -> Option<(&'a AppMapping, ClusterName)> {
    let mut named = apps.iter().filter(|m| m.name == key);
    match hint {
        Some(cluster) => {
            let mapping = named
                .clone()
                .find(|m| m.cluster == cluster.as_str())
                .or_else(|| named.find(|m| m.cluster.is_empty()))?;
            Some((mapping, cluster))
        }
        None => {
            let mapping = named.next()?;
            if named.next().is_some() {
                tracing::warn!(
                    app.name = key,
                    "flux event names no cluster and [[apps]] has {key} on several;                      set eventMetadata.cluster or use /webhooks/flux/{{cluster}}"
                );
                return None;
            }
            let cluster = ClusterName::new(mapping.cluster.as_str()).unwrap_or_default();
            Some((mapping, cluster))
        }
    }
}

fn app_from_mapping(
    name: &AppName,
    cluster: &ClusterName,
    mapping: &AppMapping,
    settings: &IngestSettings,
    at: DateTime<Utc>,
) -> App {
    App {
        name: name.clone(),
        source: Source::Flux,
        cluster: cluster.clone(),
        project: None,
        sources: vec![AppSource {
            repo_url: settings.git_url.clone(),
            path: mapping.path.clone(),
            target_revision: Some(settings.git_branch.clone()).filter(|b| !b.is_empty()),
            chart: None,
        }],
        path: Some(mapping.path.clone()),
        rollbackable: true,
        status: None,
        held_since: None,
        updated_at: at,
        drift: None,
    }
}
