//! rewind's HTTP surface: the axum router, webhooks, API, web UI, metrics
//! and the one mapping from errors to HTTP.
//!
//! # Layout
//!
//! - [`service`]: everything wired together and started (`Service`).
//! - [`state`]: `AppState`, what every handler can reach.
//! - [`error`]: `ApiError`, the single error-to-HTTP mapping, and the
//!   middleware that makes every answer `{error, detail}` JSON.
//! - [`auth`]: API tokens (configured and stored) and roles.
//! - [`session`]: web UI sessions, CSRF, `Origin` check, login rate limit,
//!   security headers.
//! - [`metrics`]: Prometheus recorder and request middleware.
//! - [`batcher`]: group commit of webhook deliveries.
//! - [`connections`]: the accept loop: connection cap, header-read and
//!   idle timeouts.
//! - [`flux_apps`]: Flux apps discovered in the repository, merged with `[[apps]]`.
//! - [`openapi`]: the OpenAPI description, generated from the handlers.
//! - [`routes`]: one module per area (health, apps, webhooks, rollbacks, UI).
//!
//! Architecture invariant: only this crate knows HTTP. Handlers translate
//! requests into calls on the ledger and engine and their results into
//! responses; they hold no business rules.

#![forbid(unsafe_code)]

pub mod auth;
pub mod batcher;
pub mod connections;
pub mod error;
pub mod flux_apps;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod service;
pub mod session;
pub mod state;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, post};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use service::{Service, ServiceOptions, StartError};
pub use state::{AppState, ReadinessCheck};

/// Every route, with the layers that apply to all of them.
pub fn router(state: AppState) -> Router {
    let settings = state.settings();
    let max_body = settings.server.max_body_bytes;
    let timeout: Duration = settings.server.request_timeout.get();
    let body_timeout: Duration = settings.server.body_read_timeout.get();
    Router::new()
        .route("/api/v1/apps", get(routes::apps::list))
        .route("/api/v1/apps/{app}", get(routes::apps::show))
        .route("/api/v1/apps/{app}/history", get(routes::apps::history))
        .route(
            "/api/v1/apps/{app}/rollbacks",
            post(routes::rollbacks::propose),
        )
        .route(
            "/api/v1/apps/{app}/release",
            post(routes::rollbacks::release),
        )
        .route("/api/v1/rollbacks", get(routes::rollbacks::list))
        .route("/api/v1/rollbacks/{id}", get(routes::rollbacks::show))
        .route(
            "/api/v1/rollbacks/{id}/approve",
            post(routes::rollbacks::approve),
        )
        .route(
            "/api/v1/rollbacks/{id}/merge",
            post(routes::rollbacks::merge),
        )
        .route(
            "/api/v1/rollbacks/{id}/cancel",
            post(routes::rollbacks::cancel),
        )
        .route("/api/v1/audit", get(routes::audit::list))
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route(
            "/api/v1/tokens",
            get(routes::tokens::list).post(routes::tokens::create),
        )
        .route("/api/v1/tokens/{name}", delete(routes::tokens::revoke))
        .route("/webhooks/argocd", post(routes::webhooks::argocd))
        .route("/webhooks/flux", post(routes::webhooks::flux))
        .route(
            "/webhooks/argocd/{cluster}",
            post(routes::webhooks::argocd_on),
        )
        .route("/webhooks/flux/{cluster}", post(routes::webhooks::flux_on))
        .route(
            "/webhooks/alertmanager",
            post(routes::webhooks::alertmanager),
        )
        .route("/webhooks/github", post(routes::webhooks::github))
        .route("/webhooks/flagger", post(routes::webhooks::flagger))
        .route(
            "/webhooks/argo-rollouts",
            post(routes::webhooks::argo_rollouts),
        )
        .route("/", get(routes::ui::index))
        .route(
            "/ui/login",
            get(routes::ui::login_form).post(routes::ui::login),
        )
        .route("/ui/logout", post(routes::ui::logout))
        .route("/ui/apps/{app}", get(routes::ui::app))
        .route("/ui/apps/{app}/preview", get(routes::ui::preview))
        .route("/ui/apps/{app}/rollbacks", post(routes::ui::propose))
        .route("/ui/rollbacks/{id}", get(routes::ui::rollback))
        .route("/ui/rollbacks/{id}/{action}", post(routes::ui::act))
        .fallback(|| async { ApiError::not_found("no such route") })
        // Order matters: the body limit wraps the handlers so oversized
        // bodies are refused with 413 before they are buffered.
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(move |request, next| {
            error::body_deadline(body_timeout, max_body, request, next)
        }))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn(audit_via))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(move |request, next| {
            error::timeout(timeout, request, next)
        }))
        // Outside everything that can answer: whatever answered, the body
        // is `{error, detail}` JSON.
        .layer(axum::middleware::from_fn(move |request, next| {
            error::json_errors(max_body, request, next)
        }))
        // Outside the JSON errors, so their answers carry the headers too.
        .layer(axum::middleware::from_fn(session::security_headers))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &http::Request<_>| {
                let route = request
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default();
                tracing::info_span!("http", http.method = %request.method(), http.route = %route)
            }),
        )
        // Probes come after the layers above, which axum applies only to the
        // routes added before them: kubelet and Prometheus call these every
        // few seconds, and the trace layer logs every 5xx at ERROR, so a
        // replica that is not ready (503) would log a line per probe. They
        // keep the metrics, the security headers and the JSON error answers
        // (a POST to /healthz is a JSON 405 like everywhere else).
        .merge(probes(max_body))
        .with_state(state)
}

/// `/healthz`, `/readyz` and `/metrics`, with every layer but tracing.
fn probes(max_body: usize) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn(move |request, next| {
            error::json_errors(max_body, request, next)
        }))
        // Outermost, so the JSON error answers carry the headers too.
        .layer(axum::middleware::from_fn(session::security_headers))
}

/// Middleware: the path a request came through, for the audit entries it
/// causes (`rewind_ledger::AUDIT_VIA`).
async fn audit_via(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let via = if path.starts_with("/api/") {
        "api"
    } else if path.starts_with("/webhooks/") {
        "webhook"
    } else {
        "ui"
    };
    rewind_ledger::AUDIT_VIA.scope(via, next.run(request)).await
}

/// Serves on an already-bound listener until `shutdown` resolves; then stops
/// accepting and lets in-flight requests finish. Connections are capped and
/// timed out as [`connections`] describes.
///
/// Binding is the caller's job so that tests (and `rewind serve`) know the
/// address is live before anything connects: no sleeps needed.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = connections::ConnectionLimits::from_settings(&state.settings().server);
    connections::serve_connections(listener, router(state), limits, shutdown).await
}
