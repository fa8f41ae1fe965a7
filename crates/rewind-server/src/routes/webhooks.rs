//! `POST /webhooks/{argocd,flux,alertmanager,github}`: raw headers and
//! bytes go to `rewind-ingest` (verify, then parse); the observations are
//! recorded in one transaction with the delivery's idempotency key; the
//! answer is `202 {"accepted": N, "ignored": M}`.
//!
//! `POST /webhooks/argocd/{cluster}` and `/webhooks/flux/{cluster}` are the
//! same from the instance running on `{cluster}`: what that instance calls
//! `in-cluster` is `{cluster}` to rewind.

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
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload too large",
            format!("the body is larger than server.max_body_bytes ({max} bytes)"),
        )
    })?;
    let parsed = rewind_ingest::ingest_from(
        source,
        sender.as_ref(),
        &parts.headers,
        &bytes,
        &state.0.ingest,
    )
    .map_err(|e| {
        webhook_delivery(name, "rejected");
        ingest_error(&e)
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
        webhook_delivery(name, "unavailable");
        // The sender retries on 503; nothing was written.
        ApiError::unavailable(format!("cannot record the delivery now: {e}"))
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
    match e {
        IngestError::Unauthorized(reason) => ApiError::unauthorized(reason.clone()),
        IngestError::UnsupportedMediaType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            e.to_string(),
        ),
        IngestError::Malformed { field, detail } => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed body",
            format!("{field}: {detail}"),
        ),
    }
}
