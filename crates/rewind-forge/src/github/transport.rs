//! One GitHub call, made the way GitHub asks integrators to call it:
//! secondary rate limits (`retry-after`) and exhausted primary limits
//! (`x-ratelimit-remaining: 0` until `x-ratelimit-reset`) are waited out,
//! server errors and timeouts are retried with exponential backoff (backon),
//! writes for one installation go one at a time, and the whole call is
//! bounded by `max_wait`, after which it fails with the last reason.
//!
//! Every other answer (2xx, 4xx) is handed back to the caller, which knows
//! what a 404, 405, 409 or 422 means for its endpoint.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::{ExponentialBuilder, Retryable};
use http::{HeaderMap, StatusCode, Uri};
use octocrab::Octocrab;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::settings::{GitHubAuth, GitHubSettings};
use crate::ForgeError;

/// What GitHub documents as the wait after a secondary rate limit that
/// names no time.
const SECONDARY_LIMIT_DEFAULT_WAIT: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Patch,
    Put,
}

impl Verb {
    fn is_write(self) -> bool {
        self != Verb::Get
    }

    fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
            Verb::Put => "PUT",
        }
    }
}

/// A final answer from GitHub (not a rate limit, not a server error).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: String,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self, operation: &'static str) -> Result<T, ForgeError> {
        serde_json::from_str(&self.body).map_err(|e| ForgeError::InvalidResponse {
            operation,
            detail: format!("HTTP {}: {e}", self.status.as_u16()),
        })
    }

    /// GitHub's `message` (and the first validation error, which says why a
    /// 422 happened), or the start of the body.
    pub fn message(&self) -> String {
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            message: Option<String>,
            #[serde(default)]
            errors: Vec<serde_json::Value>,
        }
        match serde_json::from_str::<ErrorBody>(&self.body) {
            Ok(ErrorBody { message, errors }) => {
                let detail = errors.first().and_then(|e| {
                    e.get("message")
                        .and_then(|m| m.as_str())
                        .map(str::to_owned)
                        .or_else(|| e.as_str().map(str::to_owned))
                });
                match (message, detail) {
                    (Some(m), Some(d)) => format!("{m}: {d}"),
                    (Some(m), None) => m,
                    (None, Some(d)) => d,
                    (None, None) => self.status.to_string(),
                }
            }
            Err(_) => self.body.chars().take(200).collect(),
        }
    }

    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

/// Why one attempt did not produce an [`Answer`].
#[derive(Debug)]
enum AttemptError {
    /// Try again, after `wait` if GitHub named one.
    Retry {
        cause: RetryCause,
        reason: String,
        wait: Option<Duration>,
    },
    Fatal(ForgeError),
}

/// What made a call wait and retry: the `cause` label of
/// `rewind_forge_retries_total`, so operators tell a rate-limited
/// installation from a GitHub outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RetryCause {
    /// A secondary limit (`retry-after`, or GitHub's message) or an
    /// exhausted primary limit (`x-ratelimit-remaining: 0`), 403 or 429.
    RateLimit,
    /// 5xx.
    ServerError,
    /// No answer within `request_timeout`.
    Timeout,
    /// The connection failed (refused, reset, DNS, TLS).
    Connection,
}

impl RetryCause {
    fn as_str(self) -> &'static str {
        match self {
            RetryCause::RateLimit => "rate_limit",
            RetryCause::ServerError => "server_error",
            RetryCause::Timeout => "timeout",
            RetryCause::Connection => "connection",
        }
    }
}

impl AttemptError {
    fn is_retry(&self) -> bool {
        matches!(self, AttemptError::Retry { .. })
    }
}

/// The HTTP side of the GitHub forge.
pub(crate) struct Transport {
    client: Octocrab,
    /// Shared by every forge that writes as the same installation (or token).
    write_lock: Arc<tokio::sync::Mutex<()>>,
    max_wait: Duration,
    request_timeout: Duration,
    min_backoff: Duration,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("max_wait", &self.max_wait)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(settings: &GitHubSettings) -> Result<Self, ForgeError> {
        let builder = Octocrab::builder()
            // Retries are ours (backon, bounded by `max_wait`); octocrab's
            // own would multiply them.
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .base_uri(settings.api_url.trim_end_matches('/'))
            .map_err(|e| ForgeError::Config(format!("api_url {:?}: {e}", settings.api_url)))?;
        let client = match &settings.auth {
            GitHubAuth::Token(token) => builder.personal_token(token.clone()).build(),
            GitHubAuth::App {
                app_id,
                private_key_pem,
                installation_id,
            } => builder
                .app_from_rsa_pem((*app_id).into(), private_key_pem.as_bytes())
                .map_err(|e| ForgeError::Config(format!("GitHub App private key: {e}")))?
                .build()
                .and_then(|app| app.installation((*installation_id).into())),
        }
        .map_err(|e| ForgeError::Config(format!("GitHub client: {e}")))?;
        Ok(Transport {
            client,
            write_lock: installation_lock(&settings.api_url, &settings.auth),
            max_wait: settings.max_wait,
            request_timeout: settings.request_timeout,
            min_backoff: settings.min_backoff,
        })
    }

    /// Makes the call, waiting out rate limits and retrying failures until
    /// `max_wait` is spent.
    pub async fn call(
        &self,
        operation: &'static str,
        verb: Verb,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ForgeError> {
        let uri: Uri = path_and_query
            .parse()
            .map_err(|e| ForgeError::Config(format!("request path {path_and_query:?}: {e}")))?;
        let started = Instant::now();
        let deadline = started + self.max_wait;
        let attempts = AtomicU32::new(0);
        // The wait that would have overrun the budget, for the final message.
        let over_budget = Mutex::new(None::<Duration>);
        let gave_up = |reason: String| ForgeError::GaveUp {
            operation,
            elapsed: started.elapsed(),
            budget: self.max_wait,
            attempts: attempts.load(Ordering::Relaxed),
            reason,
        };

        // Writes for one installation go one at a time: GitHub's secondary
        // rate limits punish concurrent writes.
        let _write_guard = if verb.is_write() {
            match tokio::time::timeout_at(deadline, self.write_lock.lock()).await {
                Ok(guard) => Some(guard),
                Err(_) => {
                    return Err(gave_up(
                        "other writes to this installation took the whole budget".to_owned(),
                    ));
                }
            }
        } else {
            None
        };

        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(MAX_BACKOFF.max(self.min_backoff))
            .with_jitter()
            .without_max_times();
        let result = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(verb, &uri, body, deadline)
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(AttemptError::is_retry)
        .adjust(|error, backoff| {
            let wait = match error {
                AttemptError::Retry {
                    wait: Some(wait), ..
                } => *wait,
                _ => backoff?,
            };
            if Instant::now() + wait >= deadline {
                *over_budget.lock().unwrap_or_else(PoisonError::into_inner) = Some(wait);
                None
            } else {
                Some(wait)
            }
        })
        .notify(|error, wait| {
            if let AttemptError::Retry { cause, reason, .. } = error {
                metrics::counter!("rewind_forge_retries_total", "cause" => cause.as_str())
                    .increment(1);
                tracing::warn!(
                    github.operation = operation,
                    http.method = verb.as_str(),
                    retry.in_ms = wait.as_millis() as u64,
                    retry.reason = %reason,
                    "GitHub call did not go through, retrying"
                );
            }
        })
        .await;

        match result {
            Ok(answer) => Ok(answer),
            Err(AttemptError::Fatal(error)) => Err(error),
            Err(AttemptError::Retry { cause, reason, .. }) => Err({
                metrics::counter!("rewind_forge_gave_up_total", "cause" => cause.as_str())
                    .increment(1);
                gave_up(
                    match *over_budget.lock().unwrap_or_else(PoisonError::into_inner) {
                        Some(wait) => {
                            format!("{reason}; the next try would be in {wait:?}, past the budget")
                        }
                        None => reason,
                    },
                )
            }),
        }
    }

    async fn attempt(
        &self,
        verb: Verb,
        uri: &Uri,
        body: Option<&serde_json::Value>,
        deadline: Instant,
    ) -> Result<Answer, AttemptError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(AttemptError::Retry {
                cause: RetryCause::Timeout,
                reason: "no time left".to_owned(),
                wait: None,
            });
        }
        let timeout = self.request_timeout.min(remaining);
        let sent = tokio::time::timeout(timeout, self.send(verb, uri, body)).await;
        let (status, headers, body) = match sent {
            Err(_) => {
                return Err(AttemptError::Retry {
                    cause: RetryCause::Timeout,
                    reason: format!("no answer within {timeout:?}"),
                    wait: None,
                });
            }
            // octocrab answers some requests itself: the App token exchange
            // it makes before the first call of an installation.
            Ok(Err(octocrab::Error::GitHub { source, .. })) => {
                let headers = source.headers.clone().unwrap_or_default();
                let body = serde_json::json!({ "message": format!("GitHub App token exchange: {}", source.message) });
                let answer = Answer {
                    status: source.status_code,
                    body: body.to_string(),
                };
                return match classify(answer, &headers)? {
                    // Any other refusal of the token exchange is final.
                    answer if answer.status == StatusCode::NOT_FOUND => {
                        Err(AttemptError::Fatal(ForgeError::NotFound(answer.message())))
                    }
                    answer => Err(AttemptError::Fatal(ForgeError::Unauthorized(
                        answer.message(),
                    ))),
                };
            }
            Ok(Err(error)) => {
                return Err(AttemptError::Retry {
                    cause: RetryCause::Connection,
                    reason: format!("request failed: {error}"),
                    wait: None,
                });
            }
            Ok(Ok(parts)) => parts,
        };
        let answer = Answer { status, body };
        classify(answer, &headers)
    }

    async fn send(
        &self,
        verb: Verb,
        uri: &Uri,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, HeaderMap, String), octocrab::Error> {
        let uri = uri.clone();
        let response = match verb {
            Verb::Get => self.client._get(uri).await?,
            Verb::Post => self.client._post(uri, body).await?,
            Verb::Patch => self.client._patch(uri, body).await?,
            Verb::Put => self.client._put(uri, body).await?,
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = self.client.body_to_string(response).await?;
        Ok((status, headers, body))
    }
}

/// Sorts an answer into final (returned to the caller), wait-and-retry, or
/// fatal.
fn classify(answer: Answer, headers: &HeaderMap) -> Result<Answer, AttemptError> {
    let status = answer.status;
    if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
        if let Some(secs) = header_u64(headers, "retry-after") {
            return Err(AttemptError::Retry {
                cause: RetryCause::RateLimit,
                reason: format!(
                    "secondary rate limit (HTTP {}, retry-after {secs}s): {}",
                    status.as_u16(),
                    answer.message()
                ),
                wait: Some(Duration::from_secs(secs)),
            });
        }
        if header_u64(headers, "x-ratelimit-remaining") == Some(0) {
            let reset = header_u64(headers, "x-ratelimit-reset").unwrap_or(0);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            // The reset is in whole seconds; wait at least one so the retry
            // lands after it.
            let wait = Duration::from_secs(reset.saturating_sub(now).max(1));
            return Err(AttemptError::Retry {
                cause: RetryCause::RateLimit,
                reason: format!(
                    "primary rate limit exhausted until {reset} (HTTP {}): {}",
                    status.as_u16(),
                    answer.message()
                ),
                wait: Some(wait),
            });
        }
        let message = answer.message();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(AttemptError::Retry {
                cause: RetryCause::RateLimit,
                reason: format!("HTTP 429: {message}"),
                wait: None,
            });
        }
        if message
            .to_ascii_lowercase()
            .contains("secondary rate limit")
        {
            return Err(AttemptError::Retry {
                cause: RetryCause::RateLimit,
                reason: format!("secondary rate limit (HTTP 403): {message}"),
                wait: Some(SECONDARY_LIMIT_DEFAULT_WAIT),
            });
        }
        return Err(AttemptError::Fatal(ForgeError::Forbidden(message)));
    }
    if status.is_server_error() {
        return Err(AttemptError::Retry {
            cause: RetryCause::ServerError,
            reason: format!("HTTP {}: {}", status.as_u16(), answer.message()),
            wait: None,
        });
    }
    if status == StatusCode::UNAUTHORIZED {
        return Err(AttemptError::Fatal(ForgeError::Unauthorized(
            answer.message(),
        )));
    }
    Ok(answer)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The write lock of one installation (App) or one token, shared by every
/// forge in the process that writes with it.
fn installation_lock(api_url: &str, auth: &GitHubAuth) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let key = match auth {
        GitHubAuth::App {
            installation_id, ..
        } => format!("{api_url}#installation/{installation_id}"),
        GitHubAuth::Token(token) => {
            // Keyed by a hash so the token itself is not kept around twice.
            let mut hasher = DefaultHasher::new();
            token.hash(&mut hasher);
            format!("{api_url}#token/{:x}", hasher.finish())
        }
    };
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    locks.entry(key).or_default().clone()
}
