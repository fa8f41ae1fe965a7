//! The crate's one error type. Each variant maps to one HTTP status in the
//! server (`Unauthorized` → 401, `UnsupportedMediaType` → 415, `Malformed` →
//! 400); nothing here is a server fault, so nothing maps to 5xx.

/// Why a webhook delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// Missing or wrong token or signature, or no secret configured for the
    /// source. The reason never contains the expected secret.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A `Content-Type` that is present and is not JSON (nor, for GitHub, a
    /// form). A missing `Content-Type` is accepted: Argo CD sends none unless
    /// configured to.
    #[error("unsupported media type {0:?}: send application/json")]
    UnsupportedMediaType(String),
    /// The body is not what the sender sends: bad JSON, a wrong type, a
    /// missing field. `field` is the JSON path (`app.status.history[2].id`),
    /// or `body` when the bytes are not JSON at all.
    #[error("malformed {field}: {detail}")]
    Malformed { field: String, detail: String },
}

impl IngestError {
    pub(crate) fn unauthorized(reason: impl Into<String>) -> Self {
        IngestError::Unauthorized(reason.into())
    }

    pub(crate) fn malformed(field: impl Into<String>, detail: impl Into<String>) -> Self {
        IngestError::Malformed {
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// The HTTP status code the server answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            IngestError::Unauthorized(_) => 401,
            IngestError::UnsupportedMediaType(_) => 415,
            IngestError::Malformed { .. } => 400,
        }
    }
}
