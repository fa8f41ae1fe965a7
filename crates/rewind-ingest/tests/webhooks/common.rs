//! Shared test helpers: settings matching the fixtures, header builders and
//! signing.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use rewind_domain::Observation;
use rewind_ingest::{AlertSettings, AppMapping, IngestError, IngestSettings, Parsed};
use sha2::Sha256;

pub const ARGOCD_TOKEN: &str = "argocd-test-token";
/// The token in the Alertmanager capture's `Authorization` header.
pub const ALERTMANAGER_TOKEN: &str = "example-shared-secret-token";
/// The key of Flux's upstream `TestForwarder_Post` vector.
pub const FLUX_KEY: &str = "7152fed34dd6149a7c75a276c510da27cb6f82b0";
/// The `?token=` of the Flagger webhook URL in the tests.
pub const FLAGGER_TOKEN: &str = "flagger-test-token";
/// Argo Rollouts' bearer token in the tests (the capture's is redacted).
pub const ROLLOUTS_TOKEN: &str = "rollouts-test-token";
/// GitHub's documented example secret.
pub const GITHUB_SECRET: &str = "It's a Secret to Everybody";

pub const ARGOCD_ON_DEPLOYED: &[u8] = include_bytes!("../fixtures/argocd/on-deployed.json");
pub const FLUX_REAL: &[u8] =
    include_bytes!("../fixtures/flux/real-capture.kustomization-progressing.body.json");
pub const FLUX_VECTOR: &[u8] =
    include_bytes!("../fixtures/flux/generic-hmac.upstream-test-vector.body.json");
pub const FLUX_VECTOR_HEADERS: &str =
    include_str!("../fixtures/flux/generic-hmac.upstream-test-vector.headers.txt");
pub const FLUX_DOCS: &[u8] =
    include_bytes!("../fixtures/flux/docs-example.providers-md-generic.json");
pub const AM_FIRING: &[u8] = include_bytes!("../fixtures/alertmanager/firing.json");
pub const AM_RESOLVED: &[u8] = include_bytes!("../fixtures/alertmanager/resolved.json");
pub const AM_GROUPED: &[u8] =
    include_bytes!("../fixtures/alertmanager/grouped-firing-3-alerts.json");
pub const AM_FIRING_HEADERS: &str = include_str!("../fixtures/alertmanager/firing.headers.txt");
pub const FLAGGER_FAILED: &[u8] = include_bytes!("../fixtures/flagger/event.canary-failed.json");
pub const FLAGGER_FAILED_HEADERS: &str =
    include_str!("../fixtures/flagger/event.canary-failed.headers.txt");
pub const FLAGGER_ROLLING_BACK: &[u8] =
    include_bytes!("../fixtures/flagger/event.rolling-back-threshold.json");
pub const FLAGGER_HALT: &[u8] = include_bytes!("../fixtures/flagger/event.halt-metric-check.json");
pub const FLAGGER_SUCCEEDED: &[u8] =
    include_bytes!("../fixtures/flagger/event.promotion-succeeded.global-flag.json");
pub const FLAGGER_SLACK: &[u8] =
    include_bytes!("../fixtures/flagger/alert.slack-provider.failed-checks.json");
pub const FLAGGER_SEQUENCE: &[u8] =
    include_bytes!("../fixtures/flagger/sequence.upstream-events-test.canary-promoted.json");
pub const ROLLOUT_ABORTED: &[u8] =
    include_bytes!("../fixtures/argo-rollouts/on-rollout-aborted.json");
pub const ROLLOUT_ABORTED_HEADERS: &str =
    include_str!("../fixtures/argo-rollouts/on-rollout-aborted.headers.txt");
pub const ROLLOUT_ABORTED_WITH_RUNS: &[u8] =
    include_bytes!("../fixtures/argo-rollouts/on-rollout-aborted.with-analysisruns.json");
pub const GH_PR_OPENED: &[u8] =
    include_bytes!("../fixtures/github/pull_request.opened.payload.json");
pub const GH_PR_CLOSED: &[u8] =
    include_bytes!("../fixtures/github/pull_request.closed.payload.json");
pub const GH_REVIEW: &[u8] =
    include_bytes!("../fixtures/github/pull_request_review.submitted.payload.json");
pub const GH_COMMENT: &[u8] =
    include_bytes!("../fixtures/github/issue_comment.created.payload.json");
pub const GH_PUSH_TAG_DELETE: &[u8] = include_bytes!("../fixtures/github/push.payload.json");
pub const GH_PUSH_NEW_BRANCH: &[u8] =
    include_bytes!("../fixtures/github/push.with-new-branch.payload.json");
pub const GH_STATUS: &[u8] = include_bytes!("../fixtures/github/status.payload.json");

/// Settings that fit the fixtures: the Argo CD fixture's repository (in its
/// ssh spelling, to exercise URL normalisation), GitHub's `master`, and an
/// `[[apps]]` entry for the real Flux capture.
pub fn settings() -> IngestSettings {
    IngestSettings {
        argocd_token: Some(ARGOCD_TOKEN.into()),
        alertmanager_token: Some(ALERTMANAGER_TOKEN.into()),
        flux_hmac_key: Some(FLUX_KEY.into()),
        flagger_token: Some(FLAGGER_TOKEN.into()),
        rollouts_token: Some(ROLLOUTS_TOKEN.into()),
        github_webhook_secret: Some(GITHUB_SECRET.into()),
        git_url: "git@github.com:foo/manifests-velero".into(),
        git_branch: "master".into(),
        alerts: AlertSettings::default(),
        clusters: Vec::new(),
        apps: vec![
            AppMapping {
                name: "flux-system/my-app-kustomization".into(),
                path: "apps/my-app".into(),
                cluster: "kind".into(),
            },
            AppMapping {
                name: "apps/webapp".into(),
                path: "apps/webapp/prod".into(),
                cluster: "prod".into(),
            },
        ],
    }
}

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// Headers from a capture file (`Name: value` lines after the request line).
pub fn captured_headers(text: &str) -> HeaderMap {
    let pairs: Vec<(&str, &str)> = text
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(": "))
        .collect();
    headers(&pairs)
}

pub fn bearer(token: &str) -> HeaderMap {
    headers(&[
        ("content-type", "application/json"),
        ("authorization", &format!("Bearer {token}")),
    ])
}

pub fn hmac_sha256_hex(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

pub fn flux_headers(body: &[u8]) -> HeaderMap {
    headers(&[
        ("content-type", "application/json"),
        (
            "x-signature",
            &format!("sha256={}", hmac_sha256_hex(FLUX_KEY, body)),
        ),
    ])
}

pub fn github_headers(event: &str, body: &[u8]) -> HeaderMap {
    headers(&[
        ("content-type", "application/json"),
        ("x-github-event", event),
        ("x-github-delivery", "f2da33dc-9a3b-11f0-9aea-a663f22a3216"),
        (
            "x-hub-signature-256",
            &format!("sha256={}", hmac_sha256_hex(GITHUB_SECRET, body)),
        ),
    ])
}

/// Applies `edit` to a JSON fixture and returns the new bytes.
pub fn edited(fixture: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(fixture).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

pub fn ts(s: &str) -> chrono::DateTime<chrono::Utc> {
    s.parse().unwrap()
}

pub fn malformed_field(result: Result<Parsed, IngestError>) -> String {
    match result {
        Err(IngestError::Malformed { field, .. }) => field,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

pub fn only<T>(items: Vec<T>) -> T {
    assert_eq!(items.len(), 1, "expected exactly one item");
    items.into_iter().next().unwrap()
}

pub fn apps(parsed: &Parsed) -> Vec<&rewind_domain::App> {
    parsed
        .observations
        .iter()
        .filter_map(|o| match o {
            Observation::App(a) => Some(a),
            _ => None,
        })
        .collect()
}

pub fn deployments(parsed: &Parsed) -> Vec<&rewind_domain::DeploymentObserved> {
    parsed
        .observations
        .iter()
        .filter_map(|o| match o {
            Observation::Deployment(d) => Some(d),
            _ => None,
        })
        .collect()
}

pub fn healths(parsed: &Parsed) -> Vec<&rewind_domain::HealthObserved> {
    parsed
        .observations
        .iter()
        .filter_map(|o| match o {
            Observation::Health(h) => Some(h),
            _ => None,
        })
        .collect()
}

pub fn cluster_rollbacks(parsed: &Parsed) -> Vec<&rewind_domain::ClusterRolledBack> {
    parsed
        .observations
        .iter()
        .filter_map(|o| match o {
            Observation::ClusterRolledBack(r) => Some(r),
            _ => None,
        })
        .collect()
}

pub fn alerts(parsed: &Parsed) -> Vec<&rewind_domain::Alert> {
    parsed
        .observations
        .iter()
        .filter_map(|o| match o {
            Observation::Alert(a) => Some(a),
            _ => None,
        })
        .collect()
}
