//! The configuration's shape: one struct per section of the contract's TOML.
//!
//! Every struct denies nothing by itself: unknown keys are caught while
//! loading (see `load`), so the error can name the key and where it came
//! from. Defaults live in `config/default.toml`, compiled in.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{HumanDuration, Secret, SecretUrl};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub git: GitSettings,
    pub forge: ForgeSettings,
    pub webhooks: WebhookSettings,
    pub api: ApiSettings,
    pub policy: PolicySettings,
    pub alerts: AlertSettings,
    pub retention: RetentionSettings,
    pub verify: crate::VerifySettings,
    #[serde(default)]
    pub notify: Vec<crate::NotifySettings>,
    #[serde(default)]
    pub apps: Vec<AppMapping>,
    #[serde(default)]
    pub clusters: Vec<ClusterEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub public_url: String,
    pub max_body_bytes: usize,
    pub request_timeout: HumanDuration,
    pub shutdown_grace: HumanDuration,
    /// A client must send a request's whole header within this (slowloris).
    pub header_read_timeout: HumanDuration,
    /// A request's whole body must arrive within this, else `408`.
    pub body_read_timeout: HumanDuration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: HumanDuration,
    /// Open connections at most; further clients wait in the listen backlog
    /// instead of exhausting file descriptors.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretUrl,
    pub max_connections: u32,
    /// How long a job claimed by a replica is its own; renewed while the
    /// job runs, so only a dead replica's jobs are taken over.
    pub job_lease: HumanDuration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GitSettings {
    pub url: SecretUrl,
    pub branch: String,
    pub cache_dir: PathBuf,
    pub author_name: String,
    pub author_email: String,
    /// Bound of libgit2's object cache (process-wide), in MiB.
    pub object_cache_mib: u32,
    /// How many resolved app snapshots (tree, config hash, images) are kept
    /// by the ids of the directories they read.
    pub resolve_cache_entries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    Local,
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMethod {
    Merge,
    Squash,
    Rebase,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForgeSettings {
    pub kind: ForgeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<Secret>,
    pub merge_method: MergeMethod,
    /// How long one forge call may keep retrying (rate limits, 5xx,
    /// timeouts) before the step fails with the reason recorded.
    pub max_wait: HumanDuration,
    /// How long one forge request may take before it counts as failed (and
    /// is retried within `max_wait`): a slow forge must not hold a step.
    pub request_timeout: HumanDuration,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WebhookSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flux_hmac_key: Option<Secret>,
    /// Flagger event webhooks: `?token=` in the URL (or a bearer token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagger_token: Option<Secret>,
    /// Argo Rollouts notifications: `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollouts_token: Option<Secret>,
}

/// API roles; each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Approver,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiToken {
    pub name: String,
    pub token: Secret,
    pub role: Role,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApiSettings {
    /// Every token from `[[api.tokens]]`, `api.tokens_file` and
    /// `REWIND_API_TOKEN_<NAME>` (merged while loading).
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
    /// A TOML file of `[[tokens]]` entries (name, token, role), for example
    /// a mounted Kubernetes Secret; read at start-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_file: Option<PathBuf>,
}

/// The shape of `api.tokens_file`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensFile {
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
}

impl Role {
    /// Parses `viewer`, `operator`, `approver` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Viewer, Role::Operator, Role::Approver, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategySetting {
    Restore,
    Revert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoMerge {
    Never,
    Safe,
    Always,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicySettings {
    pub strategy: StrategySetting,
    pub revert_fallback_to_restore: bool,
    pub healthy_for: HumanDuration,
    pub verify_for: HumanDuration,
    pub max_rollbacks_per_hour: u32,
    pub required_approvals: u32,
    /// Whether the person or token that requested a rollback may approve
    /// it (and count towards `required_approvals`).
    #[serde(default)]
    pub allow_self_approval: bool,
    pub auto_merge: AutoMerge,
    /// Earlier Argo CD history entries that ran `healthy_for` before the
    /// next one with no alert recorded count as known good ("by history").
    #[serde(default)]
    pub trust_history: bool,
    /// Git catches up with in-cluster rollbacks.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Multi-cluster waves, first to last; unlisted clusters go last.
    #[serde(default)]
    pub cluster_order: Vec<String>,
}

/// `policy.catch_up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Drift is recorded, nothing proposed.
    #[default]
    Off,
    /// When the cluster is rolled back outside Git, propose the rollback in
    /// Git (trigger `drift`).
    Propose,
}

/// `[retention]`: how long finished work is kept. A zero duration keeps it
/// forever.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetentionSettings {
    /// `rewind/*` branches of finished rollbacks, from when they finished.
    pub branches: HumanDuration,
    /// Webhook delivery records and finished jobs.
    pub deliveries: HumanDuration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertSettings {
    pub app_label: String,
    pub cluster_label: String,
    pub severities: Vec<String>,
}

/// `[[clusters]]`: the name of the Argo CD destination whose
/// `spec.destination.server` is `server`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEntry {
    pub name: String,
    pub server: String,
}

/// An app rewind should know without (or before) Argo CD telling it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppMapping {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub cluster: String,
}
