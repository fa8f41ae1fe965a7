//! Argo CD notifications: `{"event": "<trigger>", "app": <Application>}` as
//! rendered by `{"event": "on-deployed", "app": {{toJson .app}}}`.
//!
//! One delivery yields the app itself, every `status.history[]` entry as a
//! deployment (in order; the ledger back-fills the ones it lacks and skips
//! the ones it has), and the current health. Field meanings follow the
//! Application types (see `tests/fixtures/argocd/FIELDS.md`). Every field is
//! optional where Go's encoder may omit it or write `null`.

use chrono::{DateTime, Utc};
use rewind_domain::{
    App, AppName, AppSource, ClusterName, CommitId, DeploymentObserved, Health, HealthObserved,
    Observation, Source, SyncStatus,
};
use serde::Deserialize;

use crate::git_url::same_repository;
use crate::verify::{Verified, WebhookSource, body_delivery_key};
use crate::{IngestError, IngestSettings, Parsed, json};

/// Argo CD's control-plane namespace when the Application does not say.
const DEFAULT_CONTROLLER_NAMESPACE: &str = "argocd";

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(default)]
    event: Option<String>,
    app: Application,
}

#[derive(Debug, Deserialize)]
struct Application {
    metadata: Metadata,
    #[serde(default)]
    spec: Option<Spec>,
    #[serde(default)]
    status: Option<Status>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Spec {
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    destination: Option<Destination>,
    #[serde(default)]
    source: Option<ApplicationSource>,
    #[serde(default)]
    sources: Option<Vec<ApplicationSource>>,
}

#[derive(Debug, Deserialize)]
struct Destination {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    server: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationSource {
    #[serde(default, rename = "repoURL")]
    repo_url: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    target_revision: Option<String>,
    #[serde(default)]
    chart: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    #[serde(default)]
    controller_namespace: Option<String>,
    #[serde(default)]
    health: Option<HealthStatus>,
    #[serde(default)]
    sync: Option<SyncState>,
    #[serde(default)]
    operation_state: Option<OperationState>,
    #[serde(default)]
    history: Option<Vec<HistoryEntry>>,
    #[serde(default)]
    reconciled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    summary: Option<Summary>,
}

/// `status.summary`: what Argo CD sees running.
#[derive(Debug, Deserialize)]
struct Summary {
    #[serde(default)]
    images: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthStatus {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    last_transition_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct SyncState {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    revisions: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OperationState {
    #[serde(default)]
    finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    sync_result: Option<SyncResult>,
}

#[derive(Debug, Deserialize)]
struct SyncResult {
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    revisions: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryEntry {
    id: i64,
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    revisions: Option<Vec<String>>,
    #[serde(default)]
    deployed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    deploy_started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    sources: Option<Vec<ApplicationSource>>,
    #[serde(default)]
    initiated_by: Option<InitiatedBy>,
}

#[derive(Debug, Deserialize)]
struct InitiatedBy {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    automated: Option<bool>,
}

/// The API server URL Argo CD uses for its own cluster.
const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";

/// Parses a verified Argo CD notification into observations, from an
/// instance on `in-cluster`.
pub fn parse_argocd(
    verified: Verified<'_>,
    settings: &IngestSettings,
) -> Result<Parsed, IngestError> {
    parse_argocd_from(verified, settings, None)
}

/// Parses a verified Argo CD notification sent by the instance running on
/// `sender` (`None`: `in-cluster`).
pub fn parse_argocd_from(
    verified: Verified<'_>,
    settings: &IngestSettings,
    sender: Option<&ClusterName>,
) -> Result<Parsed, IngestError> {
    verified.expect_source(WebhookSource::Argocd)?;
    let notification: Notification = json::decode(verified.body())?;
    let delivery_key = body_delivery_key(verified.body());
    let app = notification.app;
    let spec = app.spec.unwrap_or_default();
    let status = app.status.unwrap_or_default();

    let name = app_name(&app.metadata, &status)?;
    let cluster = cluster_of(spec.destination.as_ref(), settings, sender)?;
    let sources: Vec<ApplicationSource> = match (&spec.sources, &spec.source) {
        (Some(many), _) if !many.is_empty() => many.clone(),
        (_, Some(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    let ours = our_source_index(&sources, &settings.git_url);
    let observed_at = status
        .reconciled_at
        .or_else(|| status.operation_state.as_ref().and_then(|o| o.finished_at))
        .or_else(|| {
            status
                .history
                .as_ref()
                .and_then(|h| h.last())
                .and_then(|h| h.deployed_at)
        })
        .unwrap_or_else(Utc::now);

    tracing::debug!(
        app.name = %name,
        app.cluster = %cluster,
        argocd.event = notification.event.as_deref().unwrap_or(""),
        "argocd notification"
    );

    let mut observations = Vec::new();
    observations.push(Observation::App(App {
        name: name.clone(),
        source: Source::Argocd,
        cluster: cluster.clone(),
        project: non_empty(&spec.project).map(str::to_owned),
        sources: sources.iter().map(to_app_source).collect(),
        path: ours.map(|i| sources[i].path.clone().unwrap_or_default()),
        rollbackable: ours.is_some(),
        status: match ours {
            Some(_) => None,
            None => Some(not_rollbackable_note(&sources, &settings.git_url)),
        },
        held_since: None,
        updated_at: observed_at,
        drift: None,
    }));

    for entry in status.history.iter().flatten() {
        let index = entry
            .sources
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|s| our_source_index(s, &settings.git_url))
            .or(ours);
        let Some(revision) = pick_revision(&entry.revision, &entry.revisions, index) else {
            // Go omits `revision` only for odd entries (no source at all);
            // nothing to roll back to there.
            continue;
        };
        let initiated_by = entry.initiated_by.as_ref().and_then(|by| {
            non_empty(&by.username)
                .map(str::to_owned)
                .or_else(|| (by.automated == Some(true)).then(|| "automated".to_owned()))
        });
        observations.push(Observation::Deployment(DeploymentObserved {
            app: name.clone(),
            cluster: cluster.clone(),
            cluster_revision: Some(entry.id),
            commit: CommitId::new(&revision).ok(),
            revision,
            deployed_at: entry
                .deployed_at
                .or(entry.deploy_started_at)
                .unwrap_or(observed_at),
            source: Source::Argocd,
            initiated_by,
        }));
    }

    if let Some(health) = status.health.as_ref().and_then(|h| non_empty(&h.status)) {
        let from_result = status
            .operation_state
            .as_ref()
            .and_then(|o| o.sync_result.as_ref())
            .and_then(|r| pick_revision(&r.revision, &r.revisions, ours));
        let revision = from_result.or_else(|| {
            status
                .sync
                .as_ref()
                .and_then(|s| pick_revision(&s.revision, &s.revisions, ours))
        });
        let at = status
            .health
            .as_ref()
            .and_then(|h| h.last_transition_time)
            .unwrap_or(observed_at);
        observations.push(Observation::Health(HealthObserved {
            app: name.clone(),
            cluster: cluster.clone(),
            commit: revision.as_deref().and_then(|r| CommitId::new(r).ok()),
            revision,
            health: Health::parse_lenient(health),
            sync: status
                .sync
                .as_ref()
                .and_then(|s| non_empty(&s.status))
                .map(SyncStatus::parse_lenient),
            sync_revision: status
                .sync
                .as_ref()
                .and_then(|s| pick_revision(&s.revision, &s.revisions, ours)),
            running_images: status
                .summary
                .as_ref()
                .and_then(|s| s.images.clone())
                .filter(|images| !images.is_empty()),
            at,
        }));
    }

    Ok(Parsed {
        observations,
        ignored: 0,
        delivery_key,
        source: WebhookSource::Argocd.as_str(),
    })
}

/// The cluster an Application deploys to: `spec.destination.name`, else the
/// `[[clusters]]` entry whose `server` is `spec.destination.server`, else
/// that URL itself. Argo CD's own cluster (`in-cluster`,
/// `https://kubernetes.default.svc`, or no destination) is the sender's.
fn cluster_of(
    destination: Option<&Destination>,
    settings: &IngestSettings,
    sender: Option<&ClusterName>,
) -> Result<ClusterName, IngestError> {
    let senders = || sender.cloned().unwrap_or_default();
    let by_name = destination.and_then(|d| non_empty(&d.name));
    let by_server = destination.and_then(|d| non_empty(&d.server));
    let chosen = match (by_name, by_server) {
        (Some(name), _) if name == ClusterName::IN_CLUSTER => return Ok(senders()),
        (Some(name), _) => name.to_owned(),
        (None, Some(server)) if same_server(server, IN_CLUSTER_SERVER) => return Ok(senders()),
        (None, Some(server)) => settings
            .clusters
            .iter()
            .find(|c| same_server(&c.server, server))
            .map_or_else(|| server.to_owned(), |c| c.name.clone()),
        (None, None) => return Ok(senders()),
    };
    ClusterName::new(chosen)
        .map_err(|e| IngestError::malformed("app.spec.destination", e.to_string()))
}

/// Server URLs compare without a trailing `/` and without case in the host.
fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// `name`, or `namespace/name` when the Application lives outside the
/// control-plane namespace (Argo CD's "apps in any namespace").
fn app_name(metadata: &Metadata, status: &Status) -> Result<AppName, IngestError> {
    let control_plane =
        non_empty(&status.controller_namespace).unwrap_or(DEFAULT_CONTROLLER_NAMESPACE);
    let result = match non_empty(&metadata.namespace) {
        Some(namespace) if namespace != control_plane => {
            AppName::namespaced(namespace, &metadata.name)
        }
        _ => AppName::new(metadata.name.clone()),
    };
    result.map_err(|e| IngestError::malformed("app.metadata.name", e.to_string()))
}

fn our_source_index(sources: &[ApplicationSource], git_url: &str) -> Option<usize> {
    sources.iter().position(|s| {
        s.repo_url
            .as_deref()
            .is_some_and(|url| same_repository(url, git_url))
    })
}

/// The revision of source `index` (multi-source apps use the plural field),
/// else the singular one, else the first of the plural ones.
fn pick_revision(
    single: &Option<String>,
    many: &Option<Vec<String>>,
    index: Option<usize>,
) -> Option<String> {
    let many = many.as_deref().unwrap_or_default();
    index
        .and_then(|i| many.get(i))
        .filter(|r| !r.is_empty())
        .or_else(|| single.as_ref().filter(|r| !r.is_empty()))
        .or_else(|| many.iter().find(|r| !r.is_empty()))
        .cloned()
}

fn to_app_source(source: &ApplicationSource) -> AppSource {
    AppSource {
        repo_url: source.repo_url.clone().unwrap_or_default(),
        path: source.path.clone().unwrap_or_default(),
        target_revision: non_empty(&source.target_revision).map(str::to_owned),
        chart: non_empty(&source.chart).map(str::to_owned),
    }
}

fn not_rollbackable_note(sources: &[ApplicationSource], git_url: &str) -> String {
    let repos: Vec<&str> = sources
        .iter()
        .filter_map(|s| non_empty(&s.repo_url))
        .collect();
    if repos.is_empty() {
        format!("has no source repository; rewind only rolls back apps synced from {git_url}")
    } else {
        format!(
            "syncs from {}, not from git.url {git_url}: recorded, never rolled back",
            repos.join(", ")
        )
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}
