//! Health, sync status and source of a deployment, spelled as Argo CD spells
//! them on the wire.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Health of an app's deployment (Argo CD's `status.health.status`; Flux
/// events are mapped onto it).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
pub enum Health {
    Healthy,
    Progressing,
    Degraded,
    Suspended,
    Missing,
    #[default]
    Unknown,
}

impl Health {
    pub const ALL: [Health; 6] = [
        Health::Healthy,
        Health::Progressing,
        Health::Degraded,
        Health::Suspended,
        Health::Missing,
        Health::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::Progressing => "Progressing",
            Health::Degraded => "Degraded",
            Health::Suspended => "Suspended",
            Health::Missing => "Missing",
            Health::Unknown => "Unknown",
        }
    }

    /// Reads a health status; anything unrecognised is `Unknown` rather than
    /// an error, because senders add states over time.
    pub fn parse_lenient(s: &str) -> Health {
        Health::ALL
            .into_iter()
            .find(|h| h.as_str().eq_ignore_ascii_case(s))
            .unwrap_or(Health::Unknown)
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Argo CD's `status.sync.status`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
pub enum SyncStatus {
    Synced,
    OutOfSync,
    #[default]
    Unknown,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Synced => "Synced",
            SyncStatus::OutOfSync => "OutOfSync",
            SyncStatus::Unknown => "Unknown",
        }
    }

    pub fn parse_lenient(s: &str) -> SyncStatus {
        match s {
            "Synced" => SyncStatus::Synced,
            "OutOfSync" => SyncStatus::OutOfSync,
            _ => SyncStatus::Unknown,
        }
    }
}

impl fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which GitOps controller reported a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Argocd,
    Flux,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Argocd => "argocd",
            Source::Flux => "flux",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "argocd" => Some(Source::Argocd),
            "flux" => Some(Source::Flux),
            _ => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_round_trips_and_is_lenient() {
        for h in Health::ALL {
            assert_eq!(Health::parse_lenient(h.as_str()), h);
            let json = serde_json::to_string(&h).unwrap();
            assert_eq!(json, format!("\"{}\"", h.as_str()));
        }
        assert_eq!(Health::parse_lenient("Exploded"), Health::Unknown);
    }
}
