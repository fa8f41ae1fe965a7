//! `[verify]`, `[[verify.checks]]` and `[[notify]]`: how a rollback is
//! proven and who is told, and the checks these keys need beyond their
//! types.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{HumanDuration, Secret, SecretUrl};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifySettings {
    /// Base URL of the Prometheus HTTP API; required by PromQL checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_url: Option<SecretUrl>,
    /// Evaluations of one check are at least this far apart.
    pub interval: HumanDuration,
    /// Consecutive passing evaluations each check needs.
    pub passes: u32,
    /// Pre-flight: target images must exist in their registry.
    pub registry_check: bool,
    /// A Docker `config.json` with registry credentials for the pre-flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_auth_file: Option<PathBuf>,
    /// Longest one query or smoke request may take.
    pub timeout: HumanDuration,
    #[serde(default)]
    pub checks: Vec<CheckSettings>,
}

/// `no_worse_than`: the one comparison there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoWorseThan {
    #[serde(rename = "known-good")]
    KnownGood,
}

/// One `[[verify.checks]]`: a PromQL `query` with bounds, or an `http`
/// smoke check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSettings {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_worse_than: Option<NoWorseThan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_evidence: Option<String>,
    #[serde(default)]
    pub apps: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheckSettings>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCheckSettings {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: Vec<HeaderSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default = "default_status")]
    pub expect_status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_json_pointer: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}

fn default_status() -> u16 {
    200
}

/// A request header. Secret values come from `value_env` or `value_file`,
/// never from the configuration text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeaderSettings {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// Slack-compatible incoming webhook (also Mattermost).
    Slack,
    /// JSON, signed `X-Rewind-Signature: sha256=<HMAC>`.
    Webhook,
}

/// What a notification target can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyEvent {
    Proposed,
    Approved,
    Merged,
    Verified,
    Failed,
    Refused,
    Held,
    Drift,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 8] = [
        NotifyEvent::Proposed,
        NotifyEvent::Approved,
        NotifyEvent::Merged,
        NotifyEvent::Verified,
        NotifyEvent::Failed,
        NotifyEvent::Refused,
        NotifyEvent::Held,
        NotifyEvent::Drift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Proposed => "proposed",
            NotifyEvent::Approved => "approved",
            NotifyEvent::Merged => "merged",
            NotifyEvent::Verified => "verified",
            NotifyEvent::Failed => "failed",
            NotifyEvent::Refused => "refused",
            NotifyEvent::Held => "held",
            NotifyEvent::Drift => "drift",
        }
    }
}

/// One `[[notify]]` target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotifySettings {
    pub name: String,
    pub kind: NotifyKind,
    /// A Slack URL is itself a credential: redacted whole when shown.
    pub url: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Default: every event.
    #[serde(default = "all_events")]
    pub events: Vec<NotifyEvent>,
}

fn all_events() -> Vec<NotifyEvent> {
    NotifyEvent::ALL.to_vec()
}

/// Header names whose values are credentials: a literal `value` for them is
/// refused, so secrets stay out of configuration files.
fn is_sensitive_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["authorization", "cookie"].contains(&lower.as_str())
        || ["token", "secret", "key", "auth", "password", "session"]
            .iter()
            .any(|w| lower.contains(w))
}

pub(crate) fn validate_verify(v: &VerifySettings) -> Result<(), (&'static str, String)> {
    if v.passes == 0 {
        return Err(("verify.passes", "must be at least 1".into()));
    }
    if v.interval.get().is_zero() {
        return Err(("verify.interval", "must be positive".into()));
    }
    if v.timeout.get().is_zero() {
        return Err(("verify.timeout", "must be positive".into()));
    }
    if let Some(url) = &v.prometheus_url {
        let parsed = url::Url::parse(url.expose())
            .map_err(|e| ("verify.prometheus_url", format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err((
                "verify.prometheus_url",
                "must be http:// or https://".into(),
            ));
        }
    }
    let mut names = HashSet::new();
    for check in &v.checks {
        let fail = |message: String| {
            (
                "verify.checks",
                format!("check {:?}: {message}", check.name),
            )
        };
        if check.name.trim().is_empty() {
            return Err(("verify.checks", "every check needs a name".into()));
        }
        if !names.insert(check.name.as_str()) {
            return Err(fail("the name is used twice".into()));
        }
        match (&check.query, &check.http) {
            (Some(_), Some(_)) => return Err(fail("has both `query` and `http`; pick one".into())),
            (None, None) => return Err(fail("needs `query` or `http`".into())),
            (Some(query), None) => {
                if query.trim().is_empty() {
                    return Err(fail("`query` is empty".into()));
                }
                if v.prometheus_url.is_none() {
                    return Err(fail("a `query` check needs verify.prometheus_url".into()));
                }
                if check.min.is_none() && check.max.is_none() && check.no_worse_than.is_none() {
                    return Err(fail("needs `min`, `max` or `no_worse_than`".into()));
                }
                if let (Some(min), Some(max)) = (check.min, check.max)
                    && min > max
                {
                    return Err(fail(format!("min {min} is above max {max}")));
                }
                if check.max_delta.is_some() && check.no_worse_than.is_none() {
                    return Err(fail(
                        "`max_delta` needs no_worse_than = \"known-good\"".into(),
                    ));
                }
                if check.max_delta.is_some_and(|d| d < 0.0) {
                    return Err(fail("`max_delta` must be 0 or more".into()));
                }
                for bound in [check.min, check.max, check.max_delta]
                    .into_iter()
                    .flatten()
                {
                    if !bound.is_finite() {
                        return Err(fail("bounds must be finite numbers".into()));
                    }
                }
            }
            (None, Some(http)) => {
                if check.min.is_some()
                    || check.max.is_some()
                    || check.no_worse_than.is_some()
                    || check.max_delta.is_some()
                    || check.min_evidence.is_some()
                {
                    return Err(fail(
                        "min, max, no_worse_than, max_delta and min_evidence belong to `query` checks"
                            .into(),
                    ));
                }
                validate_http(http).map_err(fail)?;
            }
        }
    }
    Ok(())
}

fn validate_http(http: &HttpCheckSettings) -> Result<(), String> {
    if http.method.is_empty() || !http.method.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!("{:?} is not an HTTP method", http.method));
    }
    // Placeholders may sit where a URL allows no braces (the host).
    let sample = ["app", "namespace", "cluster", "ref"]
        .iter()
        .fold(http.url.clone(), |u, p| {
            u.replace(&format!("{{{{{p}}}}}"), "x")
        });
    let url = url::Url::parse(&sample).map_err(|e| format!("http.url is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("http.url must be http:// or https://".into());
    }
    if !(100..=599).contains(&http.expect_status) {
        return Err(format!(
            "expect_status {} is not an HTTP status",
            http.expect_status
        ));
    }
    if let Some(pointer) = &http.expect_json_pointer
        && !pointer.is_empty()
        && !pointer.starts_with('/')
    {
        return Err(format!(
            "expect_json_pointer {pointer:?} must start with `/`"
        ));
    }
    for header in &http.headers {
        let sources = [
            header.value.is_some(),
            header.value_env.is_some(),
            header.value_file.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(format!(
                "header {:?} needs exactly one of value, value_env, value_file",
                header.name
            ));
        }
        if header.value.is_some() && is_sensitive_header(&header.name) {
            return Err(format!(
                "header {:?} carries a credential: set value_env or value_file instead of value",
                header.name
            ));
        }
    }
    Ok(())
}

pub(crate) fn validate_notify(targets: &[NotifySettings]) -> Result<(), (&'static str, String)> {
    let mut names = HashSet::new();
    for target in targets {
        let fail = |message: String| ("notify", format!("target {:?}: {message}", target.name));
        if target.name.trim().is_empty() {
            return Err(("notify", "every [[notify]] target needs a name".into()));
        }
        if !names.insert(target.name.as_str()) {
            return Err(fail("the name is used twice".into()));
        }
        let url = url::Url::parse(target.url.expose())
            .map_err(|e| fail(format!("url is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail("url must be http:// or https://".into()));
        }
        if target.kind == NotifyKind::Webhook
            && target.secret.as_ref().is_none_or(|s| s.expose().is_empty())
        {
            return Err(fail(
                "kind = \"webhook\" needs a `secret` to sign with".into(),
            ));
        }
        if target.events.is_empty() {
            return Err(fail("`events` is empty".into()));
        }
    }
    Ok(())
}
