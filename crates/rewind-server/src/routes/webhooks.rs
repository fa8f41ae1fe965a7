//! `POST /webhooks/{argocd,flux,alertmanager,github,flagger,argo-rollouts}`:
//! raw headers and bytes go to `rewind-ingest` (verify, then parse); the
//! observations are recorded in one transaction with the delivery's
//! idempotency key; the answer is `202 {"accepted": N, "ignored": M}`.
//!
//! `POST /webhooks/argocd/{cluster}` and `/webhooks/flux/{cluster}` are the
//! same from the instance running on `{cluster}`: what that instance calls
//! `in-cluster` is `{cluster}` to rewind.
//!
//! Flagger cannot send headers, so its token (and optionally its cluster)
//! come in the URL's query: `/webhooks/flagger?token=...&cluster=...`. The
//! request span names the route pattern only, so the token is never logged.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use chrono::Utc;
use rewind_domain::ClusterName;
use rewind_ingest::{IngestError, WebhookSource};
use rewind_ledger::{Delivery, DeliveryOutcome};
use serde_json::json;

use crate::error::ApiError;
use crate::metrics::webhook_delivery;
use crate::state::AppState;

pub async fn argocd(
    state: State<AppState>,
    request: Request<Body>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    receive(state, WebhookSource::Argocd, None, request).await
}

pub async fn argocd_on(
    state: State<AppState>,
    Path(cluster): Path<String>,
    request: Request<Body>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let cluster = sender_cluster(&cluster)?;
    receive(state, WebhookSource::Argocd, Some(cluster), request).await
}

pub async fn flux_on(
    state: State<AppState>,
    Path(cluster): Path<String>,
    request: Request<Body>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let cluster = sender_cluster(&cluster)?;
    receive(state, WebhookSource::Flux, Some(cluster), request).await
}

fn sender_cluster(raw: &str) -> Result<ClusterName, ApiError> {
    ClusterName::new(raw)
        .map_err(|e| ApiError::bad_request(format!("the webhook path names no valid cluster: {e}")))
}

pub async fn flux(
    state: State<AppState>,
    request: Request<Body>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    receive(state, WebhookSource::Flux, None, request).await
}

pub async fn alertmanager(
    state: State<AppState>,
    request: Request<Body>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    receive(state, WebhookSource::Alertmanager, None, request).await
}

pub async fn github(
    state: State<AppState>,
    request: Request<Body>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    receive(state, WebhookSource::Github, None, request).await
}

pub async fn flagger(
    state: State<AppState>,
    request: Request<Body>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    receive(state, WebhookSource::Flagger, None, request).await
}

pub async fn argo_rollouts(
    state: State<AppState>,
    request: Request<Body>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    receive(state, WebhookSource::ArgoRollouts, None, request).await
}

/// The query of `/webhooks/flagger`.
#[derive(serde::Deserialize)]
struct FlaggerQuery {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    cluster: Option<String>,
}

/// Verifies and parses one delivery; Flagger's credentials may be in the
/// URL, and Flux events map onto `[[apps]]` plus the Flux apps discovered
/// in the repository.
async fn ingest(
    state: &AppState,
    source: WebhookSource,
    sender: Option<&ClusterName>,
    parts: &http::request::Parts,
    bytes: &[u8],
) -> Result<rewind_ingest::Parsed, ApiError> {
    let settings = &state.0.ingest;
    let parsed = match source {
        WebhookSource::Flagger => {
            let query = axum::extract::Query::<FlaggerQuery>::try_from_uri(&parts.uri)
                .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))?;
            let url = rewind_ingest::FlaggerUrl {
                token: query.token.as_deref(),
                cluster: query.cluster.as_deref(),
            };
            rewind_ingest::ingest_flagger(&parts.headers, url, bytes, settings)
        }
        // Only a signed delivery may make rewind look at the repository; an
        // unsigned one gets its 401 from the normal path.
        WebhookSource::Flux if signed_flux(settings, parts, bytes) => {
            let git = state.engine().git();
            let settings = state
                .0
                .flux_apps
                .settings(git, &state.settings().git.branch)
                .await;
            rewind_ingest::ingest_from(source, sender, &parts.headers, bytes, &settings)
        }
        _ => rewind_ingest::ingest_from(source, sender, &parts.headers, bytes, settings),
    };
    parsed.map_err(|e| ingest_error(&e))
}

fn signed_flux(
    settings: &rewind_ingest::IngestSettings,
    parts: &http::request::Parts,
    bytes: &[u8],
) -> bool {
    settings
        .flux_hmac_key
        .as_deref()
        .is_some_and(|key| rewind_ingest::verify_flux(&parts.headers, bytes, key).is_ok())
}

#[tracing::instrument(skip_all, fields(webhook.source = source.as_str()))]
async fn receive(
    State(state): State<AppState>,
    source: WebhookSource,
    sender: Option<ClusterName>,
    request: Request<Body>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let name = source.as_str();
    let (parts, body) = request.into_parts();
    let max = state.settings().server.max_body_bytes;
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| {
        webhook_delivery(name, "rejected");
        ApiError::payload_too_large(max)
    })?;
    let parsed = ingest(&state, source, sender.as_ref(), &parts, &bytes)
        .await
        .inspect_err(|_| {
            webhook_delivery(name, "rejected");
        })?;
    let accepted = parsed.observations.len();
    let ignored = parsed.ignored;
    if ignored > 0 {
        // Events for objects rewind does not track (a Flux object not in
        // `[[apps]]`, an alert with no app): accepted, and counted.
        metrics::counter!("rewind_webhook_ignored_total", "source" => name)
            .increment(ignored as u64);
    }
    let delivery = Delivery {
        source: name.to_string(),
        // Two instances may send byte-identical bodies (same app name, same
        // history): the sender's cluster keeps them two deliveries.
        key: match &sender {
            Some(cluster) => format!("{cluster}/{}", parsed.delivery_key),
            None => parsed.delivery_key,
        },
        received_at: Utc::now(),
        observations: parsed.observations,
    };
    let outcome = state.0.deliveries.record(delivery).await.map_err(|e| {
        // Nothing was written. Only "not now" makes the sender retry
        // (503); a delivery the database refuses is the sender's 4xx.
        let error = match &e {
            Some(e) => ApiError::for_delivery(e),
            None => ApiError::writer_stopped(),
        };
        let outcome = if error.status == StatusCode::SERVICE_UNAVAILABLE {
            "unavailable"
        } else {
            "rejected"
        };
        webhook_delivery(name, outcome);
        error
    })?;
    let duplicate = matches!(outcome, DeliveryOutcome::Duplicate);
    if !duplicate && matches!(source, WebhookSource::Argocd | WebhookSource::Flux) {
        // `healthy_for = "0s"`: a Healthy report is known good now. A
        // failure here loses nothing: the next tick promotes it.
        if let Err(e) = state.engine().promote_healthy_now().await {
            tracing::warn!(error = %e, "known-good promotion after a delivery failed");
        }
    }
    if let DeliveryOutcome::Recorded { jobs, .. } = outcome
        && jobs > 0
    {
        state.0.wake.notify_waiters();
    }
    webhook_delivery(name, if duplicate { "duplicate" } else { "recorded" });
    tracing::info!(accepted, ignored, duplicate, "webhook delivery");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": accepted, "ignored": ignored, "duplicate": duplicate})),
    ))
}

fn ingest_error(e: &IngestError) -> ApiError {
    ApiError::from(e)
}
