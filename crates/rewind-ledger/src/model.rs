//! The values the ledger takes and returns beyond the domain's own types:
//! deliveries, stored alerts, audit entries, jobs, forge events.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use rewind_domain::{
    Alert, App, AppName, CommitId, ConfigHash, Deployment, Observation, RollbackId,
};

/// One webhook delivery: its idempotency key and what it said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Which webhook (`argocd`, `flux`, `alertmanager`, `github`).
    pub source: String,
    /// The sender's delivery id, or a digest of the body when it has none.
    pub key: String,
    pub received_at: DateTime<Utc>,
    pub observations: Vec<Observation>,
}

/// What recording a delivery did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// First time: every observation was applied.
    Recorded {
        /// Ids of deployments this delivery inserted.
        new_deployments: Vec<i64>,
        /// Ids of alert episodes this delivery inserted (firing or resolved).
        new_alerts: Vec<i64>,
        /// Jobs enqueued for follow-up work.
        jobs: usize,
        /// Ids of in-cluster rollbacks (Flagger, Argo Rollouts) this
        /// delivery recorded.
        #[serde(default)]
        new_cluster_rollbacks: Vec<i64>,
    },
    /// The same `(source, key)` was recorded before; nothing changed.
    Duplicate,
}

/// An app with the deployments an overview shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSummary {
    pub app: App,
    /// The deployment with the highest cluster revision.
    pub current: Option<Deployment>,
    /// The newest known-good deployment (may be `current` itself).
    pub known_good: Option<Deployment>,
}

/// An alert episode as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAlert {
    pub id: i64,
    #[serde(flatten)]
    pub alert: Alert,
    /// The app's current deployment when the alert was first recorded.
    pub deployment_id: Option<i64>,
    pub received_at: DateTime<Utc>,
}

/// An in-cluster rollback as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredClusterRollback {
    pub id: i64,
    #[serde(flatten)]
    pub rollback: rewind_domain::ClusterRolledBack,
    pub received_at: DateTime<Utc>,
}

/// One line of the audit log: who did what to what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// API token name, `system`, or a webhook source.
    pub actor: String,
    /// Dotted verb, for example `rollback.approve`.
    pub action: String,
    /// What was acted on, for example `rollback/<id>` or `app/<name>`.
    pub subject: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub trace_id: Option<String>,
}

/// An audit entry with its position in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The app the entry is about (from `detail.app` or an `app/<name>`
    /// subject), when there is one.
    #[serde(default)]
    pub app: Option<String>,
    /// How the action reached rewind: `api`, `ui`, `github`, ... (from
    /// `detail.via`, else the [`AUDIT_VIA`] of the request that wrote it).
    #[serde(default)]
    pub via: Option<String>,
}

tokio::task_local! {
    /// The path the current request came through (`api`, `ui`), set by the
    /// HTTP server around each handler. Audit entries written while it is
    /// set and whose detail names no `via` are stored with it, so every
    /// entry says how it arrived without every caller passing it down.
    pub static AUDIT_VIA: &'static str;
}

/// What `GET /api/v1/audit` asks for; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// An app name: matches entries about `app` and, for a plain name,
    /// about `app@<any cluster>`.
    pub app: Option<String>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Only entries older than this id (the last of the previous page).
    pub before: Option<i64>,
    pub limit: u32,
}

/// An API token made with `rewind token create`: only its SHA-256 digest
/// is stored, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredApiToken {
    pub name: String,
    /// `viewer`, `operator`, `approver` or `admin` (the server parses it).
    pub role: String,
    /// Hex SHA-256 of the token.
    #[serde(skip_serializing)]
    pub digest: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// A web UI session. The browser holds a random id whose digest is
/// `digest`; the session lasts while the token it signed in with is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSession {
    pub digest: String,
    /// Digest of the API token that signed in.
    pub token_digest: String,
    /// The session's CSRF token, embedded in every form.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for `run_at`, or claimed by a worker whose lease expired.
    Queued,
    /// Claimed by a worker until `locked_until`.
    Running,
    Done,
    /// Failed for good (out of attempts, or failed without retry).
    Dead,
}

impl JobState {
    pub const ALL: [JobState; 4] = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown job state {s:?}"))
    }
}

/// Job kinds the ledger itself enqueues while recording deliveries.
pub mod job_kind {
    /// Payload `{"deployment_id", "app", "commit"}`: resolve the commit's
    /// tree, config hash and images.
    pub const RESOLVE_DEPLOYMENT: &str = "resolve_deployment";
    /// Payload `{"app", "detail"}`: the cluster began to drift from Git
    /// (queued once per drift episode); the engine notifies `drift`.
    pub const DRIFT: &str = "drift";
    /// Payload `{"alert_id", "app", "deployment_id"}`: decide whether to
    /// propose a rollback.
    pub const ALERT_FIRED: &str = "alert_fired";
    /// Payload `{"forge_event_id", "kind", "pr_number"}`: act on a pull
    /// request, review, comment or push.
    pub const FORGE_EVENT: &str = "forge_event";
    /// Payload `{"rollback_id"}`: run the rollback's next step.
    pub const ADVANCE_ROLLBACK: &str = "advance_rollback";
    /// Payload `{"cluster_rollback_id", "app"}`: Git catches up with a
    /// rollback Flagger or Argo Rollouts did in the cluster.
    pub const CLUSTER_ROLLED_BACK: &str = "cluster_rolled_back";
}

/// What a job asks for, typed: the ledger builds these while recording
/// deliveries, the engine builds `AdvanceRollback` and runs them all. Stored
/// as the job's `kind` column ([`JobPayload::kind`]) and its fields as the
/// `payload` JSON, so the rows read as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum JobPayload {
    /// Resolve the commit's tree, config hash and images.
    ResolveDeployment {
        deployment_id: i64,
        app: AppName,
        commit: CommitId,
    },
    /// Decide whether to propose a rollback.
    AlertFired {
        alert_id: i64,
        app: AppName,
        /// The deployment the alert spoiled, if any.
        deployment_id: Option<i64>,
    },
    /// Act on a pull request, review, comment or push.
    ForgeEvent {
        forge_event_id: i64,
        /// `pull_request`, `review`, `comment` or `push`.
        kind: String,
        pr_number: Option<u64>,
    },
    /// Run the next step of a rollback.
    AdvanceRollback { rollback_id: RollbackId },
    /// Catch Git up with an in-cluster rollback (`policy.catch_up`).
    ClusterRolledBack {
        cluster_rollback_id: i64,
        app: AppName,
    },
}

impl JobPayload {
    /// The job's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            JobPayload::ResolveDeployment { .. } => job_kind::RESOLVE_DEPLOYMENT,
            JobPayload::AlertFired { .. } => job_kind::ALERT_FIRED,
            JobPayload::ForgeEvent { .. } => job_kind::FORGE_EVENT,
            JobPayload::AdvanceRollback { .. } => job_kind::ADVANCE_ROLLBACK,
            JobPayload::ClusterRolledBack { .. } => job_kind::CLUSTER_ROLLED_BACK,
        }
    }

    /// The job's `payload` column: the variant's fields.
    pub fn fields(&self) -> serde_json::Value {
        let mut tagged = serde_json::to_value(self).unwrap_or_default();
        tagged
            .get_mut("payload")
            .map(serde_json::Value::take)
            .unwrap_or_default()
    }

    /// The dedup key: one live job per deployment, alert, forge event;
    /// one *queued* advance per rollback (a running one may have read the
    /// rollback before the change that queued the next).
    pub fn dedup_key(&self) -> String {
        match self {
            JobPayload::ResolveDeployment { deployment_id, .. } => {
                format!("{}:{deployment_id}", self.kind())
            }
            JobPayload::AlertFired { alert_id, .. } => format!("{}:{alert_id}", self.kind()),
            JobPayload::ForgeEvent { forge_event_id, .. } => {
                format!("{}:{forge_event_id}", self.kind())
            }
            JobPayload::AdvanceRollback { rollback_id } => format!("advance:{rollback_id}"),
            JobPayload::ClusterRolledBack {
                cluster_rollback_id,
                ..
            } => format!("{}:{cluster_rollback_id}", self.kind()),
        }
    }

    /// Reads a stored job back; `Invalid` names the job when its kind is
    /// unknown or its payload does not fit the kind.
    pub fn of(job: &Job) -> Result<JobPayload, crate::LedgerError> {
        let tagged = serde_json::json!({"kind": job.kind, "payload": job.payload});
        serde_json::from_value(tagged)
            .map_err(|e| crate::LedgerError::Invalid(format!("job {} ({}): {e}", job.id, job.kind)))
    }
}

/// What resolving a deployment's commit found for its app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub deployment_id: i64,
    /// Tree id of the app's path at the commit.
    pub tree: String,
    pub config_hash: ConfigHash,
    pub images: Vec<String>,
}

/// Attempts a job gets before it is `dead`, unless enqueued otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// A durable unit of background work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub dedup_key: Option<String>,
    pub state: JobState,
    /// Claims so far, this one included: a worker that died mid-job used up
    /// an attempt too.
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// How many jobs of a kind are in a state (for metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCount {
    pub kind: String,
    pub state: JobState,
    pub count: u64,
}

/// What one retention prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    /// Webhook delivery records (idempotency keys).
    pub deliveries: u64,
    /// Finished (`done`, `dead`) jobs.
    pub jobs: u64,
}

/// The delay before retry number `attempts` (1 for the first retry):
/// exponential from 5 seconds, capped at 10 minutes.
pub fn backoff(attempts: u32) -> Duration {
    const BASE_SECS: u64 = 5;
    const CAP_SECS: u64 = 600;
    let exponent = attempts.saturating_sub(1).min(16);
    Duration::from_secs((BASE_SECS << exponent).min(CAP_SECS))
}

/// A pull-request, review, comment or push event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForgeEventRecord {
    pub id: i64,
    /// `pull_request`, `review`, `comment` or `push`.
    pub kind: String,
    pub pr_number: Option<u64>,
    pub observation: Observation,
    pub at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_secs(5));
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(30), Duration::from_secs(600));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(600));
    }

    #[test]
    fn job_payloads_round_trip_through_kind_and_fields() {
        let payloads = [
            JobPayload::ResolveDeployment {
                deployment_id: 7,
                app: AppName::new("shop/checkout").unwrap(),
                commit: CommitId::new("a".repeat(40)).unwrap(),
            },
            JobPayload::AlertFired {
                alert_id: 3,
                app: AppName::new("shop/checkout").unwrap(),
                deployment_id: None,
            },
            JobPayload::ForgeEvent {
                forge_event_id: 9,
                kind: "review".into(),
                pr_number: Some(12),
            },
            JobPayload::AdvanceRollback {
                rollback_id: RollbackId::generate(),
            },
        ];
        for payload in payloads {
            let job = Job {
                id: 1,
                kind: payload.kind().to_string(),
                payload: payload.fields(),
                dedup_key: Some(payload.dedup_key()),
                state: JobState::Queued,
                attempts: 0,
                max_attempts: 1,
                run_at: Utc::now(),
                locked_by: None,
                locked_until: None,
                last_error: None,
                created_at: Utc::now(),
            };
            assert!(job.payload.is_object(), "{:?}", job.payload);
            assert_eq!(JobPayload::of(&job).unwrap(), payload);
        }
        let mut bad = Job {
            id: 5,
            kind: "advance_rollback".into(),
            payload: serde_json::json!({"rollback_id": "nope"}),
            dedup_key: None,
            state: JobState::Queued,
            attempts: 0,
            max_attempts: 1,
            run_at: Utc::now(),
            locked_by: None,
            locked_until: None,
            last_error: None,
            created_at: Utc::now(),
        };
        assert!(
            JobPayload::of(&bad)
                .unwrap_err()
                .to_string()
                .contains("job 5")
        );
        bad.kind = "mystery".into();
        assert!(JobPayload::of(&bad).is_err());
    }

    #[test]
    fn job_states_round_trip() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
        }
        assert!("zombie".parse::<JobState>().is_err());
    }
}
