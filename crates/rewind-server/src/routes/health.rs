//! `/healthz` (the process is alive), `/readyz` (it can do its job: the
//! database answers and the repository cache is ready) and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::state::AppState;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let checks = futures::future::join_all(
        state
            .0
            .readiness
            .iter()
            .map(|check| async move { (check.name(), check.check().await) }),
    )
    .await;
    let ready = checks.iter().all(|(_, result)| result.is_ok());
    let body: serde_json::Map<String, serde_json::Value> = checks
        .into_iter()
        .map(|(name, result)| {
            let value = match result {
                Ok(()) => json!("ok"),
                Err(reason) => json!(reason),
            };
            (name.to_string(), value)
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if ready { "ready" } else { "not ready" }, "checks": body})),
    )
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    refresh_ledger_gauges(&state).await;
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
            for count in counts {
                metrics::gauge!("rewind_jobs", "kind" => count.kind, "state" => count.state.as_str())
                    .set(count.count as f64);
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
