//! Alerts as rewind records them (from Alertmanager).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AppName, AppRef, ClusterName};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One alert of an Alertmanager group. An alert episode is identified by
/// `fingerprint` + `starts_at`: repeats of the same episode change nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub app: AppName,
    /// The cluster the alert is about: the `alerts.cluster_label` label, or,
    /// once recorded, the one cluster that runs an app of that name. `None`
    /// when the alert names no cluster and several clusters run the app.
    pub cluster: Option<ClusterName>,
    pub name: String,
    pub status: AlertStatus,
    pub severity: Option<String>,
    pub fingerprint: String,
    pub group_key: String,
    pub starts_at: DateTime<Utc>,
    /// `None` while firing (Alertmanager sends `0001-01-01T00:00:00Z`).
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Alert {
    /// The app the alert is about, when it names (or resolved to) one
    /// cluster.
    pub fn app_ref(&self) -> Option<AppRef> {
        self.cluster
            .clone()
            .map(|cluster| AppRef::new(self.app.clone(), cluster))
    }

    /// `summary` or `description` annotation, for reports.
    pub fn summary(&self) -> Option<&str> {
        self.annotations
            .get("summary")
            .or_else(|| self.annotations.get("description"))
            .map(String::as_str)
    }
}
