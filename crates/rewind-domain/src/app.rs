//! An app: what Argo CD or Flux deploys from one path of the GitOps repo.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AppName, AppRef, ClusterName, Source};

/// One source of an app (Argo CD multi-source apps have several).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppSource {
    pub repo_url: String,
    /// Path inside the repository; empty for the repository root.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_revision: Option<String>,
    /// Helm chart name when the source is a chart repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
}

/// An app as rewind knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct App {
    pub name: AppName,
    pub source: Source,
    /// The cluster the app runs on: with `name`, its identity (see
    /// [`AppRef`]). Argo CD: `spec.destination.name`, the `[[clusters]]`
    /// entry of `spec.destination.server`, or the sending instance's cluster;
    /// Flux: event metadata `cluster`, the webhook path, or `[[apps]]`.
    #[serde(default)]
    pub cluster: ClusterName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Every source the app renders from; the first one whose `repo_url` is
    /// `git.url` is the one rewind rolls back.
    pub sources: Vec<AppSource>,
    /// The app's path in the GitOps repository (`git.url`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// False when the app syncs from a repository other than `git.url`:
    /// it is recorded, but never rolled back. `status` says why.
    pub rollbackable: bool,
    /// A human-readable note on the app's state (for example why it cannot be
    /// rolled back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Set while the app is held after a verified rollback (see the
    /// workflow): commits that bring back the reverted config are flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_since: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Set while the cluster reports something Git does not say (Argo CD
    /// `OutOfSync`, or a sync revision other than the current
    /// deployment's); cleared by the next report that agrees. Changed only
    /// by health reports; upserts keep it.
    #[serde(default)]
    pub drift: Option<Drift>,
}

/// What the cluster reported that differs from Git, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Drift {
    pub detail: String,
    pub since: DateTime<Utc>,
}

impl App {
    /// `name@cluster`.
    pub fn app_ref(&self) -> AppRef {
        AppRef::new(self.name.clone(), self.cluster.clone())
    }
}
