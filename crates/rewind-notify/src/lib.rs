//! Notifications: what happened to a rollback, told to the people on call.
//!
//! # Layout
//!
//! - [`Notification`]: the message, as plain data (the engine fills it).
//! - [`render`]: the bodies: Slack-compatible blocks (also Mattermost) and
//!   the signed JSON webhook body.
//! - [`Notifier`]: one HTTP POST per delivery. Retries are not here: the
//!   engine delivers from durable jobs, with backoff, so a dead target
//!   never blocks or fails a rollback.
//!
//! Architecture invariant: text that comes from outside rewind (alert
//! summaries, reasons people typed, commit messages) is shown as code,
//! never as markup: it cannot add links, mentions or formatting.

#![forbid(unsafe_code)]

pub mod render;

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Header carrying the webhook signature: `sha256=<hex HMAC-SHA256 of the
/// body>` with the target's secret.
pub const SIGNATURE_HEADER: &str = "X-Rewind-Signature";

/// What a target is told about one event of one rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// `proposed`, `approved`, `merged`, `verified`, `failed`, `refused`,
    /// `held` or `drift`.
    pub event: String,
    pub app: String,
    #[serde(default)]
    pub cluster: String,
    /// The rollback's id, when the event is about one.
    pub rollback: Option<String>,
    /// The rollback's state after the event.
    pub state: Option<String>,
    /// Why (from outside text: shown as code).
    pub reason: String,
    /// Where to look: the rollback in rewind's UI, or the PR.
    pub url: Option<String>,
}

/// How a target wants its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Slack,
    Webhook,
}

/// One `[[notify]]` target, as plain data.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub kind: Kind,
    pub url: String,
    pub secret: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL of an incoming webhook is a credential, like the secret.
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Why one delivery did not arrive. Messages never include the URL.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("target {target} answered {status}")]
    Status { target: String, status: u16 },
    #[error("target {target} is unreachable: {reason}")]
    Unreachable { target: String, reason: String },
    #[error("target {target} has no secret to sign with")]
    NoSecret { target: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Sends notifications.
#[derive(Debug, Clone)]
pub struct Notifier {
    client: reqwest::Client,
}

impl Notifier {
    pub fn new(timeout: Duration) -> Result<Notifier, NotifyError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifyError::Client(e.to_string()))?;
        Ok(Notifier { client })
    }

    /// One delivery: any 2xx is success.
    pub async fn deliver(
        &self,
        target: &Target,
        notification: &Notification,
    ) -> Result<(), NotifyError> {
        let (body, signature) = match target.kind {
            Kind::Slack => (render::slack(notification), None),
            Kind::Webhook => {
                let secret = target
                    .secret
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| NotifyError::NoSecret {
                        target: target.name.clone(),
                    })?;
                let body = render::webhook(notification);
                let signature = render::sign(secret, &body);
                (body, Some(signature))
            }
        };
        let mut request = self
            .client
            .post(&target.url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let response = request.send().await.map_err(|e| NotifyError::Unreachable {
            target: target.name.clone(),
            reason: if e.is_timeout() {
                "no answer in time".into()
            } else if e.is_connect() {
                "cannot connect".into()
            } else {
                "request failed".into()
            },
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(NotifyError::Status {
                target: target.name.clone(),
                status: status.as_u16(),
            })
        }
    }
}
