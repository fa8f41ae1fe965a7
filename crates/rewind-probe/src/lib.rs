//! Proof that a rollback worked: PromQL checks over the Prometheus HTTP API
//! and HTTP smoke checks against the app itself.
//!
//! # Layout
//!
//! - [`check`]: what a check is (plain structs; `rewind-engine` maps the
//!   configuration onto them) and which apps it applies to.
//! - [`template`]: `{{app}}`, `{{namespace}}`, `{{cluster}}`, `{{ref}}`.
//! - [`verdict`]: the pure rule that turns a reading into pass, fail or
//!   unknown.
//! - `prometheus`: instant queries through `prometheus-http-query`.
//! - `http`: smoke requests through reqwest; header secrets are read from
//!   the environment or a file at each evaluation.
//! - [`registry`]: image pre-flight over the OCI distribution API.
//!
//! Architecture invariant: an evaluation never errors and never panics. A
//! missing series, a Prometheus error, a timeout or NaN is a [`Reading::Unknown`]
//! with the reason; only [`verdict::judge`] decides pass or fail, and an
//! unknown reading is never a pass.

#![forbid(unsafe_code)]

pub mod check;
mod http;
mod prometheus;
pub mod registry;
pub mod template;
pub mod verdict;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use check::{Check, CheckKind, HeaderValueSource, HttpCheck, QueryCheck, Target};
pub use registry::{ImageLookup, Registry, RegistryAuth};
pub use verdict::{Evaluation, judge};

/// What one look at a check found, before it is judged.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// A PromQL query answered one number.
    Value(f64),
    /// A smoke check got what it expected; the detail says what.
    Passed(String),
    /// A smoke check did not get what it expected.
    Failed(String),
    /// No evidence either way: no data, too little evidence, an error.
    Unknown(String),
}

/// The outside systems verification reads. The engine holds one as a trait
/// object, so its tests can run against a real Prometheus or a stand-in.
#[async_trait]
pub trait Probe: std::fmt::Debug + Send + Sync + 'static {
    /// Reads `check` for `target` at `at` (`None`: now). PromQL checks may
    /// be read in the past (baselines); smoke checks always run now.
    async fn read(&self, check: &Check, target: &Target, at: Option<DateTime<Utc>>) -> Reading;
}

/// Settings of the real probe (from `[verify]`).
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// `verify.prometheus_url`; `None`: PromQL checks read as unknown.
    pub prometheus_url: Option<String>,
    /// Longest one query or smoke request may take.
    pub timeout: Duration,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            prometheus_url: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why a probe could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("verify.prometheus_url {url:?} is not usable: {message}")]
    PrometheusUrl { url: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The real probe: Prometheus for PromQL checks, HTTP for smoke checks.
#[derive(Debug, Clone)]
pub struct LiveProbe {
    prometheus: Option<prometheus::Prometheus>,
    http: http::Smoke,
}

impl LiveProbe {
    pub fn new(settings: &ProbeSettings) -> Result<LiveProbe, ProbeError> {
        let prometheus = settings
            .prometheus_url
            .as_deref()
            .map(|url| prometheus::Prometheus::new(url, settings.timeout))
            .transpose()?;
        Ok(LiveProbe {
            prometheus,
            http: http::Smoke::new(settings.timeout)?,
        })
    }
}

#[async_trait]
impl Probe for LiveProbe {
    async fn read(&self, check: &Check, target: &Target, at: Option<DateTime<Utc>>) -> Reading {
        match &check.kind {
            CheckKind::Query(query) => match &self.prometheus {
                Some(prometheus) => prometheus.read(query, target, at).await,
                None => Reading::Unknown("verify.prometheus_url is not set".into()),
            },
            CheckKind::Http(smoke) => self.http.read(smoke, target).await,
        }
    }
}
