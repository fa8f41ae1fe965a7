//! An in-cluster rollback: the cluster went back to an older version on its
//! own (Flagger rolled a canary back, Argo Rollouts aborted an update), so
//! the cluster no longer runs what Git says. Recorded by the ledger so the
//! engine can propose that Git catch up (trigger `drift`).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::AppName;

/// Who rolled back in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackSender {
    /// Flagger's event webhook: a `Canary` failed and traffic went back to
    /// the primary.
    Flagger,
    /// Argo Rollouts notifications: a `Rollout` aborted its update and
    /// scaled back to the stable ReplicaSet.
    ArgoRollouts,
}

impl RollbackSender {
    /// The spelling in the database, JSON and webhook routes.
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackSender::Flagger => "flagger",
            RollbackSender::ArgoRollouts => "argo-rollouts",
        }
    }

    /// Parses [`RollbackSender::as_str`]'s spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "flagger" => Some(RollbackSender::Flagger),
            "argo-rollouts" => Some(RollbackSender::ArgoRollouts),
            _ => None,
        }
    }
}

impl fmt::Display for RollbackSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cluster rolled a workload back. What Git says is `rejected_*`; what
/// runs now is `running_*`, when the sender says so (Argo Rollouts names
/// the stable ReplicaSet's pod-template hash but not its images; Flagger
/// names neither, only the checksum of the revision it refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRolledBack {
    /// The rewind app: the sender's explicit app (Flagger hook metadata
    /// `app`, `"app"` in the Argo Rollouts template), else the app that
    /// deployed the object (Argo CD's tracking annotation or
    /// `app.kubernetes.io/instance` label, Flux's `kustomize.toolkit.fluxcd.io`
    /// labels), else the workload's `namespace/name`.
    pub app: AppName,
    /// The cluster, when the sender says it (Flagger hook metadata
    /// `cluster`, `?cluster=` in the webhook URL, `"cluster"` in the Argo
    /// Rollouts template); empty when unknown.
    pub cluster: String,
    /// Namespace of the Canary or Rollout.
    pub namespace: String,
    /// `Canary/<name>` or `Rollout/<name>`.
    pub workload: String,
    pub sender: RollbackSender,
    /// What runs now: Argo Rollouts `status.stableRS` (pod-template hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_revision: Option<String>,
    /// Images that run now, when the payload names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub running_images: Vec<String>,
    /// The version the cluster refused: Flagger's `checksum`, Argo Rollouts'
    /// `status.currentPodHash` (the canary ReplicaSet's pod-template hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_revision: Option<String>,
    /// Images of the refused version (the Rollout's `spec.template`, which
    /// is what Git says).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected_images: Vec<String>,
    /// When the sender says it happened.
    pub at: DateTime<Utc>,
    /// The sender's own words (Flagger's event message, the Rollout's
    /// abort condition), bounded; outside text, to be quoted, not rendered.
    pub message: String,
}
