//! The one place errors become HTTP responses.
//!
//! Policy: handlers return `Result<_, ApiError>`. Library errors convert
//! into `ApiError` here, once, so a status code is chosen in one place:
//!
//! - bad input is 4xx with a body that names the problem (a ledger
//!   `Invalid` too: a webhook sender must not retry what can never be
//!   recorded);
//! - "cannot record right now" (database unavailable, the request timed
//!   out) is 503, so senders retry;
//! - a failing Git or forge step is 502; only our own bugs are 500.
//!
//! Bodies are always `{"error": "...", "detail": "..."}` (refusals add the
//! conflicting `rollback`). [`json_errors`] wraps the whole router so that
//! framework answers (unknown route, wrong method, body limit, query and
//! path extraction, panics) follow the same shape. Details never echo the
//! database's own messages: those are logged, with the request's span.

use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// How long a sender is asked to wait after a `503` before it retries:
/// long enough not to hammer a database that is coming back, short enough
/// that Alertmanager and Argo CD retry within their own budgets.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u32 = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// A short, stable, machine-readable summary (`"unauthorized"`).
    pub error: String,
    /// What exactly is wrong, for a person.
    pub detail: String,
    /// A refusal's conflicting rollback, handed back with it.
    pub rollback: Option<serde_json::Value>,
}

/// Every error answer, as the OpenAPI description shows it (the answers
/// themselves are written from [`ApiError`]).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A short, stable, machine-readable summary (`"bad request"`).
    pub error: String,
    /// What exactly is wrong, for a person.
    pub detail: String,
    /// A refusal's conflicting rollback.
    #[schema(value_type = Option<rewind_domain::Rollback>)]
    pub rollback: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback: Option<&'a serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            detail: detail.into(),
            rollback: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad request", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn too_many_requests(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "too many requests", detail)
    }

    pub fn payload_too_large(max: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload too large",
            format!("the body is larger than server.max_body_bytes ({max} bytes)"),
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", detail)
    }

    /// A webhook delivery that could not be recorded. Only "not now" is
    /// 503; a delivery the database refuses for its content is 400, so
    /// Alertmanager and Flux stop retrying it.
    pub fn for_delivery(e: &rewind_ledger::LedgerError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "delivery not recorded: database unavailable");
            return ApiError::unavailable(
                "cannot record the delivery now: the database is unavailable; retry later",
            );
        }
        ApiError::from(e.clone())
    }

    /// The delivery writer stopped (the server is shutting down).
    pub fn writer_stopped() -> Self {
        ApiError::unavailable("cannot record the delivery now: rewind is shutting down; retry")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(http.status = self.status.as_u16(), error.detail = %self.detail, "request failed");
        }
        let body = Json(Body {
            error: &self.error,
            detail: &self.detail,
            rollback: self.rollback.as_ref(),
        });
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // "Not now": every 503 says when to try again (RFC 9110 §10.2.3).
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(RETRY_AFTER_UNAVAILABLE_SECS),
            );
        }
        response
    }
}

impl From<rewind_ledger::LedgerError> for ApiError {
    fn from(e: rewind_ledger::LedgerError) -> Self {
        use rewind_ledger::LedgerError as E;
        match &e {
            E::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::unavailable("the database is unavailable right now; try again")
            }
            E::NotFound { .. } => ApiError::not_found(e.to_string()),
            E::Conflict { reason, .. } => ApiError::conflict(reason.clone()),
            // Our own words (the ledger never puts database text here).
            E::Invalid(detail) => ApiError::new(StatusCode::BAD_REQUEST, "invalid", detail.clone()),
            _ => {
                tracing::error!(error = %e, "database error");
                ApiError::internal("a database error occurred; the server log has the details")
            }
        }
    }
}

impl From<&rewind_ingest::IngestError> for ApiError {
    fn from(e: &rewind_ingest::IngestError) -> Self {
        use rewind_ingest::IngestError as E;
        match e {
            E::Unauthorized(reason) => ApiError::unauthorized(reason.clone()),
            E::UnsupportedMediaType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported media type",
                e.to_string(),
            ),
            E::Malformed { field, detail } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed body",
                format!("{field}: {detail}"),
            ),
        }
    }
}

impl From<rewind_domain::DomainError> for ApiError {
    fn from(e: rewind_domain::DomainError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<rewind_engine::EngineError> for ApiError {
    fn from(e: rewind_engine::EngineError) -> Self {
        use rewind_engine::EngineError as E;
        match e {
            E::Refused(refusal) => {
                let mut error = ApiError::new(
                    StatusCode::from_u16(refusal.http_status()).unwrap_or(StatusCode::CONFLICT),
                    refusal.code(),
                    refusal.reason(),
                );
                // Refusals keep returning the conflicting rollback.
                error.rollback = refusal
                    .existing()
                    .map(crate::routes::app_ref::rollback_json);
                error
            }
            E::NotFound(detail) => ApiError::not_found(detail),
            E::Invalid(detail) => ApiError::bad_request(detail),
            E::Conflict(detail) => ApiError::conflict(detail),
            E::Ledger(e) => e.into(),
            // Git, forge and manifest failures are failures of a step, not
            // of the caller's input; the step is retried by its job.
            other => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream failure",
                other.to_string(),
            ),
        }
    }
}

/// Framework rejections carry plain-text bodies at most this long.
const MAX_REJECTION_BODY: usize = 4096;

/// Middleware around the whole router: every error answer that is not
/// already JSON (or an HTML page of the web UI) becomes `{error, detail}`
/// JSON with the same status. This is what catches axum's and tower's own
/// answers: 404 and 405, 413 from the body limit (Content-Length checked
/// before any byte is read), 400 from query, path (invalid UTF-8 too) and
/// form extraction, 500 from a caught panic.
pub async fn json_errors(max_body: usize, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") || content_type.starts_with("text/html") {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_REJECTION_BODY)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let mut error = match status {
        StatusCode::NOT_FOUND => ApiError::not_found(format!("no route for {method} {path}")),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method not allowed",
            format!("{path} does not answer {method}"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(max_body),
        StatusCode::INTERNAL_SERVER_ERROR => {
            ApiError::internal("the request failed inside rewind; the server log has the details")
        }
        _ => {
            let error = status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase();
            let detail = if text.is_empty() { error.clone() } else { text };
            ApiError::new(status, error, detail)
        }
    };
    error.status = status;
    let mut answer = error.into_response();
    // Keep what the framework said beyond the body (`Allow` on 405).
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        answer.headers_mut().insert(header::ALLOW, allow.clone());
    }
    answer
}

/// Middleware: reads the whole request body within
/// `server.body_read_timeout`, so a client trickling a body cannot hold a
/// request (and its connection) for `server.request_timeout` or longer.
/// Too slow: `408` and the connection is closed (the rest of the body is
/// never read). Over `server.max_body_bytes`: `413`. Handlers then get the
/// buffered body, which they would buffer anyway: webhooks are verified over
/// their exact bytes.
pub async fn body_deadline(
    limit: Duration,
    max_body: usize,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(limit, axum::body::to_bytes(body, max_body)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) if is_length_limit(&error) => {
            return ApiError::payload_too_large(max_body).into_response();
        }
        Ok(Err(_)) => {
            return ApiError::bad_request(
                "the connection failed while the request body was being read",
            )
            .into_response();
        }
        Err(_) => {
            let mut response = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request timeout",
                format!(
                    "the request body did not arrive within server.body_read_timeout ({}s)",
                    limit.as_secs_f64()
                ),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Whether reading a body failed because it was over the limit (the error
/// arrives wrapped, from `to_bytes` or from `RequestBodyLimitLayer`).
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

/// Middleware: a request that takes longer than `server.request_timeout`
/// is answered `503 {error: "timeout"}` (the work it started may still
/// finish; a webhook sender retries, and deliveries are idempotent).
pub async fn timeout(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "no answer within server.request_timeout ({}s); retry",
                    limit.as_secs_f64()
                ),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}
