//! Rollback risks with the contract's stable codes. Any risk blocks
//! `auto_merge = "safe"`.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RiskCode {
    /// Schema migration files, or Jobs/hooks whose image or command is a
    /// known migration tool, changed.
    Migration,
    /// StatefulSet, PersistentVolumeClaim or volumeClaimTemplates changed.
    Stateful,
    /// Replicas, resources or an HPA changed.
    Scale,
    /// The target uses a mutable image tag (`latest`, or none).
    MutableImage,
    /// Files outside the app's path that other apps also read changed.
    SharedChange,
    /// CustomResourceDefinitions changed.
    Crd,
    /// `revisionHistoryLimit` below 3.
    HistoryLimit,
    /// The cluster reported a config or revision that differs from Git.
    Drift,
    /// An Argo CD or Helm sync hook that is not a known migration tool
    /// changed: it runs around the sync and rewind cannot tell what it does.
    Hook,
    /// A content-hashed generated ConfigMap/Secret is renamed, so the
    /// workloads referring to it restart.
    Rollout,
    /// Something in the target that rewind cannot render or trust: invalid
    /// YAML, a kustomization cycle, an oversized or binary file, a symlink,
    /// a reference that escapes the repository. The detail names the file.
    Unrenderable,
    /// A target image its registry no longer serves (`verify.registry_check`).
    ImageMissing,
}

impl RiskCode {
    pub const ALL: [RiskCode; 12] = [
        RiskCode::Migration,
        RiskCode::Stateful,
        RiskCode::Scale,
        RiskCode::MutableImage,
        RiskCode::SharedChange,
        RiskCode::Crd,
        RiskCode::HistoryLimit,
        RiskCode::Drift,
        RiskCode::Hook,
        RiskCode::Rollout,
        RiskCode::Unrenderable,
        RiskCode::ImageMissing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskCode::Migration => "migration",
            RiskCode::Stateful => "stateful",
            RiskCode::Scale => "scale",
            RiskCode::MutableImage => "mutable-image",
            RiskCode::SharedChange => "shared-change",
            RiskCode::Crd => "crd",
            RiskCode::HistoryLimit => "history-limit",
            RiskCode::Drift => "drift",
            RiskCode::Hook => "hook",
            RiskCode::Rollout => "rollout",
            RiskCode::Unrenderable => "unrenderable",
            RiskCode::ImageMissing => "image-missing",
        }
    }
}

impl fmt::Display for RiskCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One risk: a stable code and a one-line detail a reviewer understands.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct Risk {
    pub code: RiskCode,
    pub detail: String,
}

impl Risk {
    pub fn new(code: RiskCode, detail: impl Into<String>) -> Self {
        Risk {
            code,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_strings() {
        for code in RiskCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
