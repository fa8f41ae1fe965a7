//! Prometheus metrics: the `metrics` facade with the Prometheus exporter's
//! recorder, installed once per process, rendered by `GET /metrics`.
//!
//! Names (all prefixed `rewind_`):
//! - `http_requests_total{route, method, status}`: route is the matched
//!   pattern (low cardinality), never the raw path.
//! - `http_request_duration_seconds{route}`.
//! - `webhook_deliveries_total{source, outcome}`: outcome is `recorded`,
//!   `duplicate`, `rejected` (4xx) or `unavailable` (503).
//! - `webhook_ignored_total{source}`: parsed events about objects rewind
//!   does not track (Flux objects not in `[[apps]]`, alerts without an app).
//! - `rollbacks_{proposed,refused,merged,verified,failed}_total`,
//!   `jobs_run_total{kind}`: counted by the engine.
//! - `jobs{kind, state}` and `rollbacks{state}`: gauges refreshed from the
//!   ledger at each scrape, so every replica reports the shared truth.
//! - `readiness_check{check}` (1 passing, 0 failing; `database`,
//!   `repository`) and `ready` (what `/readyz` answers: 1 for 200), set at
//!   each scrape and each `/readyz`.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

impl Metrics {
    /// The process-wide recorder. Installing it twice would fail, and tests
    /// start many servers in one process, so it is installed on first use.
    pub fn global() -> Self {
        let handle = HANDLE
            .get_or_init(|| {
                let recorder = PrometheusBuilder::new()
                    .set_buckets(&[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    ])
                    .map(PrometheusBuilder::build_recorder)
                    .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
                let handle = recorder.handle();
                // Another recorder may already be installed (an embedding
                // program's): then ours renders only what we record directly.
                let _ = metrics::set_global_recorder(recorder);
                handle
            })
            .clone();
        Metrics { handle }
    }

    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// Counts a webhook delivery by source and outcome.
pub fn webhook_delivery(source: &'static str, outcome: &'static str) {
    metrics::counter!("rewind_webhook_deliveries_total", "source" => source, "outcome" => outcome)
        .increment(1);
}

/// Middleware: counts and times every request by its route pattern.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("rewind_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("rewind_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
