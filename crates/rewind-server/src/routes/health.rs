//! `/healthz` (the process is alive), `/readyz` (it can record webhooks:
//! the database takes writes; Git is reported but does not fail it, see
//! [`crate::ReadinessCheck`]) and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::state::AppState;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// 200 when every required check passes, else 503. The body lists every
/// check (`"ok"` or what is wrong), which of them are `required`, and the
/// forge rollbacks go through (its failures show as retried jobs in
/// `rewind_jobs`).
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let checks = run_checks(&state).await;
    let ready = checks
        .iter()
        .all(|check| !check.required || check.result.is_ok());
    let body: serde_json::Map<String, serde_json::Value> = checks
        .iter()
        .map(|check| {
            let value = match &check.result {
                Ok(()) => json!("ok"),
                Err(reason) => json!(reason),
            };
            (check.name.to_string(), value)
        })
        .collect();
    let required: Vec<&str> = checks
        .iter()
        .filter(|c| c.required)
        .map(|c| c.name)
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let forge = match state.settings().forge.kind {
        rewind_config::ForgeKind::Local => "local",
        rewind_config::ForgeKind::Github => "github",
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not ready" },
            "checks": body,
            "required": required,
            "forge": forge,
        })),
    )
}

struct CheckResult {
    name: &'static str,
    required: bool,
    result: Result<(), String>,
}

/// Runs every check concurrently and sets `rewind_readiness_check{check}`
/// (1 passing, 0 failing) and `rewind_ready` from the results.
async fn run_checks(state: &AppState) -> Vec<CheckResult> {
    let checks = futures::future::join_all(state.0.readiness.iter().map(|check| async move {
        CheckResult {
            name: check.name(),
            required: check.required(),
            result: check.check().await,
        }
    }))
    .await;
    let mut ready = true;
    for check in &checks {
        let ok = check.result.is_ok();
        ready &= ok || !check.required;
        metrics::gauge!("rewind_readiness_check", "check" => check.name).set(if ok {
            1.0
        } else {
            0.0
        });
    }
    metrics::gauge!("rewind_ready").set(if ready { 1.0 } else { 0.0 });
    checks
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    refresh_ledger_gauges(&state).await;
    run_checks(&state).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.0.metrics.render(),
    )
}

/// Jobs and rollbacks live in the shared database: read them at scrape time
/// so the numbers are right whichever replica is scraped.
async fn refresh_ledger_gauges(state: &AppState) {
    match state.ledger().job_counts().await {
        Ok(counts) => {
            // Every state of every kind, 0 when the ledger has none: a
            // gauge only set from the rows present would keep its last
            // count once a queue empties (`queued` stuck at the last
            // non-zero value after a burst).
            for kind in rewind_engine::JOB_KINDS {
                for job_state in rewind_ledger::JobState::ALL {
                    let n = counts
                        .iter()
                        .find(|c| c.kind == *kind && c.state == job_state)
                        .map_or(0, |c| c.count);
                    metrics::gauge!("rewind_jobs", "kind" => *kind, "state" => job_state.as_str())
                        .set(n as f64);
                }
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot read job counts for /metrics"),
    }
    match state.ledger().rollback_counts().await {
        Ok(counts) => {
            for state_name in rewind_domain::RollbackState::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == state_name)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("rewind_rollbacks", "state" => state_name.as_str()).set(n as f64);
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot read rollback counts for /metrics"),
    }
}
