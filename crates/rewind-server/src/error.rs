//! The one place errors become HTTP responses.
//!
//! Policy: handlers return `Result<_, ApiError>`. Library errors convert
//! into `ApiError` here, once, so a status code is chosen in one place:
//! bad input is 4xx with a body that names the problem, an unavailable
//! database is 503 (senders retry), and only our own bugs are 500. Bodies
//! are always `{"error": "...", "detail": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// A short, stable, machine-readable summary (`"unauthorized"`).
    pub error: String,
    /// What exactly is wrong, for a person.
    pub detail: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    detail: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            detail: detail.into(),
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

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", detail)
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
        });
        (self.status, body).into_response()
    }
}

impl From<rewind_ledger::LedgerError> for ApiError {
    fn from(e: rewind_ledger::LedgerError) -> Self {
        use rewind_ledger::LedgerError as E;
        match &e {
            E::Unavailable(_) => ApiError::unavailable(format!("the ledger is unavailable: {e}")),
            E::NotFound { .. } => ApiError::not_found(e.to_string()),
            E::Conflict { .. } => ApiError::conflict(e.to_string()),
            E::Invalid(_) => ApiError::bad_request(e.to_string()),
            _ => ApiError::internal(e.to_string()),
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
            E::Refused(refusal) => ApiError::new(
                StatusCode::from_u16(refusal.http_status()).unwrap_or(StatusCode::CONFLICT),
                refusal.code(),
                refusal.reason(),
            ),
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
