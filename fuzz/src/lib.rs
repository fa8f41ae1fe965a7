//! What every fuzz target shares: a delivery that passes verification (the
//! right bearer token or HMAC over exactly the fuzzed bytes), so libFuzzer
//! spends its time in the parsers, which must return `Ok` or an
//! `IngestError` for any body and never panic.

#![forbid(unsafe_code)]

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use rewind_ingest::{IngestSettings, WebhookSource};

const TOKEN: &str = "fuzz-token";

/// Settings with every source's credential configured and one `[[apps]]`
/// mapping, so Flux objects and alerts can name a known app.
pub fn settings() -> IngestSettings {
    IngestSettings {
        argocd_token: Some(TOKEN.into()),
        alertmanager_token: Some(TOKEN.into()),
        flux_hmac_key: Some(TOKEN.into()),
        github_webhook_secret: Some(TOKEN.into()),
        flagger_token: Some(TOKEN.into()),
        rollouts_token: Some(TOKEN.into()),
        ..IngestSettings::default()
    }
}

/// Headers that authenticate `body` for `source`; `github_event` names the
/// `X-GitHub-Event` for GitHub deliveries.
pub fn headers(source: WebhookSource, body: &[u8], github_event: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    match source {
        WebhookSource::Flux => {
            let mac = hmac_sha256(body);
            headers.insert(
                "x-signature",
                HeaderValue::from_str(&format!("sha256={mac}")).expect("hex"),
            );
        }
        WebhookSource::Github => {
            let mac = hmac_sha256(body);
            headers.insert(
                "x-hub-signature-256",
                HeaderValue::from_str(&format!("sha256={mac}")).expect("hex"),
            );
            headers.insert(
                "x-github-event",
                HeaderValue::from_str(github_event).expect("event name"),
            );
            headers.insert(
                "x-github-delivery",
                HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            );
        }
        _ => {
            headers.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("token"),
            );
        }
    }
    headers
}

/// One delivery of `body` from `source`, verified and parsed.
pub fn deliver(source: WebhookSource, body: &[u8], github_event: &str) {
    let settings = settings();
    let headers = headers(source, body, github_event);
    // Ok or a typed error are both fine; a panic is the finding.
    let _ = rewind_ingest::ingest(source, &headers, body, &settings);
}

fn hmac_sha256(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(TOKEN.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}
