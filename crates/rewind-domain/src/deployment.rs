//! A deployment: one revision an app's cluster ran.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AppName, AppRef, ClusterName, CommitId, ConfigHash, Health, Source, SyncStatus};

/// A deployment as recorded in the ledger, with the contract's JSON fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deployment {
    /// The ledger's row id: stable, never reused.
    pub id: i64,
    pub app: AppName,
    #[serde(default)]
    pub cluster: ClusterName,
    /// Argo CD `status.history[].id`; for Flux a per-app sequence from 1.
    pub cluster_revision: i64,
    /// The revision exactly as the controller reported it
    /// (`main@sha1:<sha>`, a Helm chart version, ...).
    pub revision: String,
    /// The Git commit, when the revision names one (not for chart versions).
    pub commit: Option<CommitId>,
    /// Git tree id of the app's path at `commit`; filled in once resolved.
    pub tree: Option<String>,
    /// Config hash at `commit`; filled in once resolved.
    pub config_hash: Option<ConfigHash>,
    pub images: Vec<String>,
    pub health: Health,
    pub sync: SyncStatus,
    pub deployed_at: DateTime<Utc>,
    pub source: Source,
    /// Healthy for `policy.healthy_for` with no firing alert while current.
    pub known_good: bool,
    /// Known good *by history* (`policy.trust_history`): rewind never saw it
    /// healthy; the cluster's history shows it ran `healthy_for` before the
    /// next deployment with no alert recorded.
    #[serde(default)]
    pub known_good_by_history: bool,
    /// Since when the deployment has been continuously Healthy, if it is.
    pub healthy_since: Option<DateTime<Utc>>,
    /// A firing alert was recorded against this deployment; it can no longer
    /// become known good.
    pub alerted: bool,
    /// Who or what started the deployment (Argo CD `initiatedBy`).
    pub initiated_by: Option<String>,
}

impl Deployment {
    /// The app this deployment belongs to: `app@cluster`.
    pub fn app_ref(&self) -> AppRef {
        AppRef::new(self.app.clone(), self.cluster.clone())
    }
}
