//! PromQL instant queries (`/api/v1/query`) through `prometheus-http-query`.
//!
//! A query must answer one number: a scalar, or a vector with exactly one
//! sample. An empty vector, several series, a Prometheus error, an
//! unreachable server and a timeout all read as unknown, with the reason.

use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_http_query::Client;
use prometheus_http_query::response::Data;

use crate::{ProbeError, QueryCheck, Reading, Target, template};

#[derive(Clone)]
pub(crate) struct Prometheus {
    client: Client,
    timeout: Duration,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry credentials: show the host only.
        f.debug_struct("Prometheus")
            .field("host", &self.client.base_url().host_str())
            .finish_non_exhaustive()
    }
}

impl Prometheus {
    pub(crate) fn new(url: &str, timeout: Duration) -> Result<Prometheus, ProbeError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| ProbeError::Client(e.to_string()))?;
        let client = Client::from(http, url).map_err(|e| ProbeError::PrometheusUrl {
            url: redact(url),
            message: e.to_string(),
        })?;
        Ok(Prometheus { client, timeout })
    }

    pub(crate) async fn read(
        &self,
        check: &QueryCheck,
        target: &Target,
        at: Option<DateTime<Utc>>,
    ) -> Reading {
        if let Some(evidence) = &check.min_evidence {
            match self.instant(&template::promql(evidence, target), at).await {
                Ok(Some(v)) if v.is_finite() => {}
                Ok(_) => {
                    return Reading::Unknown(format!(
                        "not enough evidence: min_evidence `{evidence}` is not met"
                    ));
                }
                Err(why) => return Reading::Unknown(format!("min_evidence: {why}")),
            }
        }
        match self
            .instant(&template::promql(&check.query, target), at)
            .await
        {
            Ok(Some(v)) => Reading::Value(v),
            Ok(None) => Reading::Unknown("the query answered no series (no data)".into()),
            Err(why) => Reading::Unknown(why),
        }
    }

    /// One instant query: `Ok(None)` for an empty answer, `Err` with the
    /// reason for errors and answers that are not one number.
    async fn instant(&self, query: &str, at: Option<DateTime<Utc>>) -> Result<Option<f64>, String> {
        let mut request = self
            .client
            .query(query)
            .timeout(i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX));
        if let Some(at) = at {
            // `at()` takes whole seconds; a baseline taken right after a
            // scrape needs the milliseconds.
            let time = format!("{}.{:03}", at.timestamp(), at.timestamp_subsec_millis());
            request = request.query("time", time);
        }
        let started = std::time::Instant::now();
        // The client's own timeout covers the connection; this one covers
        // a server that accepts and then never answers.
        let answer = tokio::time::timeout(self.timeout, request.get()).await;
        metrics::histogram!("rewind_verify_query_seconds").record(started.elapsed().as_secs_f64());
        let result = match answer {
            Err(_) => {
                return Err(format!(
                    "Prometheus did not answer within {:?}",
                    self.timeout
                ));
            }
            Ok(Err(e)) => return Err(format!("Prometheus error: {}", describe(&e))),
            Ok(Ok(result)) => result,
        };
        match result.data() {
            Data::Scalar(sample) => Ok(Some(sample.value())),
            Data::Vector(v) if v.is_empty() => Ok(None),
            Data::Vector(v) if v.len() == 1 => Ok(Some(v[0].sample().value())),
            Data::Vector(v) => Err(format!(
                "the query answered {} series; it must answer one (aggregate it, e.g. with sum)",
                v.len()
            )),
            Data::Matrix(_) => {
                Err("the query answered a range vector; it must answer one number".into())
            }
        }
    }
}

/// The error and its causes (reqwest puts "connection refused" in a source).
fn describe(e: &prometheus_http_query::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(unparseable URL)".into(),
    }
}
