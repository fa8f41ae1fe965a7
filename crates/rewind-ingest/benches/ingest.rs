//! Webhook ingestion throughput: the whole `ingest` path (content type,
//! token or HMAC, typed parse with path tracking, observations) for each
//! sender's real payload, against a baseline in the same run: decoding the
//! same bytes into an untyped `serde_json::Value`. The ratio says what
//! verification and typed parsing cost over merely reading the JSON.
//!
//! `cargo bench -p rewind-ingest --bench ingest`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use rewind_ingest::{AlertSettings, AppMapping, IngestSettings, WebhookSource, ingest};
use sha2::Sha256;

const SECRET: &str = "bench-secret";

fn settings() -> IngestSettings {
    IngestSettings {
        argocd_token: Some(SECRET.into()),
        alertmanager_token: Some(SECRET.into()),
        flux_hmac_key: Some(SECRET.into()),
        flagger_token: Some(SECRET.into()),
        rollouts_token: Some(SECRET.into()),
        github_webhook_secret: Some(SECRET.into()),
        git_url: "https://github.com/foo/manifests-velero".into(),
        git_branch: "master".into(),
        alerts: AlertSettings::default(),
        apps: vec![AppMapping {
            name: "flux-system/my-app-kustomization".into(),
            path: "apps/my-app".into(),
            cluster: "kind".into(),
        }],
        clusters: Vec::new(),
    }
}

fn headers(source: WebhookSource, body: &[u8], event: &str) -> http::HeaderMap {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let mut h = http::HeaderMap::new();
    h.insert("content-type", "application/json".parse().expect("static"));
    match source {
        WebhookSource::Argocd
        | WebhookSource::Alertmanager
        | WebhookSource::Flagger
        | WebhookSource::ArgoRollouts => {
            h.insert(
                "authorization",
                format!("Bearer {SECRET}").parse().expect("ascii"),
            );
        }
        WebhookSource::Flux => {
            h.insert("x-signature", signature.parse().expect("ascii"));
        }
        WebhookSource::Github => {
            h.insert("x-hub-signature-256", signature.parse().expect("ascii"));
            h.insert("x-github-event", event.parse().expect("ascii"));
            h.insert("x-github-delivery", "bench".parse().expect("static"));
        }
    }
    h
}

fn bench(c: &mut Criterion) {
    let settings = settings();
    let cases: [(&str, WebhookSource, &[u8], &str); 6] = [
        (
            "argocd_on_deployed",
            WebhookSource::Argocd,
            include_bytes!("../tests/fixtures/argocd/on-deployed.json"),
            "",
        ),
        (
            "flux_kustomization",
            WebhookSource::Flux,
            include_bytes!(
                "../tests/fixtures/flux/real-capture.kustomization-progressing.body.json"
            ),
            "",
        ),
        (
            "alertmanager_grouped",
            WebhookSource::Alertmanager,
            include_bytes!("../tests/fixtures/alertmanager/grouped-firing-3-alerts.json"),
            "",
        ),
        (
            "github_pull_request",
            WebhookSource::Github,
            include_bytes!("../tests/fixtures/github/pull_request.opened.payload.json"),
            "pull_request",
        ),
        (
            "flagger_canary_failed",
            WebhookSource::Flagger,
            include_bytes!("../tests/fixtures/flagger/event.canary-failed.json"),
            "",
        ),
        (
            "argo_rollouts_aborted",
            WebhookSource::ArgoRollouts,
            include_bytes!("../tests/fixtures/argo-rollouts/on-rollout-aborted.json"),
            "",
        ),
    ];
    for (name, source, body, event) in cases {
        let h = headers(source, body, event);
        assert!(ingest(source, &h, body, &settings).is_ok(), "{name}");
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function("ingest", |b| {
            b.iter(|| ingest(source, black_box(&h), black_box(body), &settings))
        });
        group.bench_function("baseline_json_value", |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
