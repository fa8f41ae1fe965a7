//! What verification found: one record per evaluation of a check, and the
//! values it is compared with.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One evaluation of one check on a rollback (the contract's
/// `verification` entries). `pass` is `None` for unknown: no data, too
/// little evidence, a Prometheus error; unknown never counts as a pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckResult {
    pub check: String,
    pub at: DateTime<Utc>,
    pub value: Option<f64>,
    /// The same query while the alert fired (recorded before the merge),
    /// for "before → after".
    pub baseline: Option<f64>,
    pub pass: Option<bool>,
    pub detail: String,
}

/// What a stored check result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckPhase {
    /// The value while the alert fired, before the merge.
    Baseline,
    /// The value over the target's own known-good window
    /// (`no_worse_than = "known-good"`).
    KnownGood,
    /// An evaluation after the rollback's commit was deployed.
    Evaluation,
}

impl CheckPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckPhase::Baseline => "baseline",
            CheckPhase::KnownGood => "known_good",
            CheckPhase::Evaluation => "evaluation",
        }
    }
}
