//! HTTP smoke checks: one request to the app's core path, judged by status
//! and body.
//!
//! Header secrets are read from the environment or a file at each
//! evaluation (a rotated Secret is picked up) and never appear in a detail
//! or a log line: details name the header and where its value should come
//! from, never the value.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use crate::{HeaderValueSource, HttpCheck, ProbeError, Reading, Target, template};

/// Longest body read from a smoke endpoint.
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone)]
pub(crate) struct Smoke {
    client: reqwest::Client,
}

impl Smoke {
    pub(crate) fn new(timeout: Duration) -> Result<Smoke, ProbeError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect to a login page must not look like success.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ProbeError::Client(e.to_string()))?;
        Ok(Smoke { client })
    }

    pub(crate) async fn read(&self, check: &HttpCheck, target: &Target) -> Reading {
        let method = match reqwest::Method::from_bytes(check.method.to_ascii_uppercase().as_bytes())
        {
            Ok(m) => m,
            Err(_) => return Reading::Unknown(format!("{:?} is not an HTTP method", check.method)),
        };
        let url = template::url(&check.url, target);
        let mut request = self.client.request(method.clone(), &url);
        for (name, source) in &check.headers {
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                return Reading::Unknown(format!("{name:?} is not a header name"));
            };
            let value = match header_value(name, source) {
                Ok(v) => v,
                Err(why) => return Reading::Unknown(why),
            };
            request = request.header(header, value);
        }
        if let Some(body) = &check.body {
            request = request.body(template::plain(body, target));
        }
        let response = match request.send().await {
            Ok(r) => r,
            // The app not answering its core path is the app's failure.
            Err(e) => {
                return Reading::Failed(format!("{method} {}: {}", strip_query(&url), cause(&e)));
            }
        };
        let status = response.status().as_u16();
        let body = match read_body(response).await {
            Ok(b) => b,
            Err(why) => return Reading::Failed(format!("{method} {}: {why}", strip_query(&url))),
        };
        let path = strip_query(&url);
        if status != check.expect_status {
            return Reading::Failed(format!(
                "{method} {path} answered {status}, expected {}",
                check.expect_status
            ));
        }
        if let Some(needle) = &check.expect_body
            && !body.contains(needle.as_str())
        {
            return Reading::Failed(format!(
                "{method} {path} answered {status} without {needle:?} in the body"
            ));
        }
        if let Some(pointer) = &check.expect_json_pointer {
            let found = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.pointer(pointer).cloned())
                .filter(|v| !v.is_null());
            if found.is_none() {
                return Reading::Failed(format!(
                    "{method} {path} answered {status} without JSON {pointer} in the body"
                ));
            }
        }
        Reading::Passed(format!("{method} {path} answered {status} as expected"))
    }
}

fn header_value(name: &str, source: &HeaderValueSource) -> Result<HeaderValue, String> {
    let raw = match source {
        HeaderValueSource::Plain(v) => v.clone(),
        HeaderValueSource::Env(var) => std::env::var(var)
            .map_err(|_| format!("header {name}: environment variable {var} is not set"))?,
        HeaderValueSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("header {name}: cannot read {}: {e}", path.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
    };
    let mut value = HeaderValue::from_str(&raw)
        .map_err(|_| format!("header {name}: the value is not a valid header value"))?;
    if !matches!(source, HeaderValueSource::Plain(_)) {
        value.set_sensitive(true);
    }
    Ok(value)
}

async fn read_body(mut response: reqwest::Response) -> Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the body: {}", cause(&e)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            body.truncate(MAX_BODY);
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Query strings may carry tokens: details show scheme, host and path.
fn strip_query(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => "(invalid URL)".into(),
    }
}

fn cause(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "no answer in time".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        // reqwest's own message repeats the URL, with its query.
        if !s_text.contains("://") && !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
