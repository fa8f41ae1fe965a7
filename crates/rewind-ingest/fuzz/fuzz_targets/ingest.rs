//! Fuzzes every parser behind valid credentials: the first byte picks the
//! source (and GitHub event; for Flagger, whether the token comes in the URL
//! or as a bearer), the rest is the body, signed with the test
//! secrets so verification passes and the parser sees the bytes. Any panic
//! is a bug; the result must be `Ok` or `Malformed`.

#![no_main]

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use rewind_ingest::{
    AppMapping, FlaggerUrl, IngestError, IngestSettings, WebhookSource, ingest, ingest_flagger,
};
use sha2::Sha256;

const SECRET: &str = "fuzz-secret";
const GITHUB_EVENTS: [&str; 5] = [
    "pull_request",
    "pull_request_review",
    "issue_comment",
    "push",
    "ping",
];

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let settings = IngestSettings {
        argocd_token: Some(SECRET.into()),
        alertmanager_token: Some(SECRET.into()),
        flux_hmac_key: Some(SECRET.into()),
        flagger_token: Some(SECRET.into()),
        rollouts_token: Some(SECRET.into()),
        github_webhook_secret: Some(SECRET.into()),
        git_url: "https://github.com/acme/gitops".into(),
        git_branch: "main".into(),
        apps: vec![AppMapping {
            name: "flux-system/app".into(),
            path: "apps/app".into(),
            cluster: "prod".into(),
        }],
        ..IngestSettings::default()
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {SECRET}").parse().expect("ascii"),
    );
    headers.insert("x-signature", sign(body).parse().expect("ascii"));
    headers.insert("x-hub-signature-256", sign(body).parse().expect("ascii"));
    let event = GITHUB_EVENTS[usize::from(selector / 4) % GITHUB_EVENTS.len()];
    headers.insert("x-github-event", event.parse().expect("ascii"));
    if selector & 0x80 != 0 {
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().expect("ascii"),
        );
    }
    let source = match selector % 6 {
        0 => WebhookSource::Argocd,
        1 => WebhookSource::Flux,
        2 => WebhookSource::Alertmanager,
        3 => WebhookSource::Github,
        4 => WebhookSource::Flagger,
        _ => WebhookSource::ArgoRollouts,
    };
    let result = if source == WebhookSource::Flagger && selector & 0x40 != 0 {
        // Flagger as it really sends: no headers, the token in the URL.
        let url = FlaggerUrl {
            token: Some(SECRET),
            cluster: Some("prod"),
        };
        ingest_flagger(&http::HeaderMap::new(), url, body, &settings)
    } else {
        ingest(source, &headers, body, &settings)
    };
    match result {
        Ok(_) | Err(IngestError::Malformed { .. }) => {}
        // Form bodies are only GitHub's; other sources refuse them as 415.
        Err(IngestError::UnsupportedMediaType(_)) if selector & 0x80 != 0 => {}
        Err(other) => panic!("{source}: unexpected {other:?}"),
    }
});
