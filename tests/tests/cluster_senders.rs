//! Flagger and Argo Rollouts over HTTP: a canary rolled back or a rollout
//! aborted in the cluster is recorded (once) for the app and cluster, other
//! events are accepted and counted as ignored, and bad requests get the
//! contract's 400/401/413/415. Flux apps are discovered in the repository,
//! re-discovered when the fetched branch moves, and `[[apps]]` overrides
//! them. Payloads are the fixtures of `crates/rewind-ingest/tests/fixtures`
//! (Flagger v1.44.0 reproduced deliveries, a real aborted Rollout).

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use rewind_config::{AppMapping, Secret};
use rewind_domain::{AppName, RollbackSender};
use rewind_tests::{World, databases};
use serde_json::{Value, json};

const FLAGGER_TOKEN: &str = "flagger-e2e-token";
const ROLLOUTS_TOKEN: &str = "rollouts-e2e-token";
const FLUX_KEY: &str = "flux-e2e-key";

const CANARY_FAILED: &[u8] =
    include_bytes!("../../crates/rewind-ingest/tests/fixtures/flagger/event.canary-failed.json");
const CANARY_HALT: &[u8] = include_bytes!(
    "../../crates/rewind-ingest/tests/fixtures/flagger/event.halt-metric-check.json"
);
const ROLLOUT_ABORTED: &[u8] = include_bytes!(
    "../../crates/rewind-ingest/tests/fixtures/argo-rollouts/on-rollout-aborted.json"
);

fn configure(s: &mut rewind_config::Settings) {
    s.server.max_body_bytes = 16 * 1024;
    s.webhooks.flagger_token = Some(Secret::new(FLAGGER_TOKEN));
    s.webhooks.rollouts_token = Some(Secret::new(ROLLOUTS_TOKEN));
    s.webhooks.flux_hmac_key = Some(Secret::new(FLUX_KEY));
}

/// POSTs `body` to `path` with the given headers, as the sender would.
async fn post(
    world: &World,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    // A fresh connection each time: after a 413 the server may close the
    // one it refused the rest of a body on.
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", world.url()))
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Flagger sends only Content-Type (and Go's defaults).
const FLAGGER_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/json"),
    ("user-agent", "Go-http-client/1.1"),
];

fn counts(answer: &Value) -> (u64, u64, bool) {
    (
        answer["accepted"].as_u64().unwrap_or(99),
        answer["ignored"].as_u64().unwrap_or(99),
        answer["duplicate"].as_bool().unwrap_or(true),
    )
}

fn edited(bytes: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(bytes).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagger_rollbacks_are_recorded_once_and_other_events_ignored() {
    for db in databases().await {
        let world = World::start(db, configure).await;
        let url = format!("/webhooks/flagger?token={FLAGGER_TOKEN}");

        let (status, answer) = post(&world, &url, FLAGGER_HEADERS, CANARY_FAILED.to_vec()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(counts(&answer), (1, 0, false));
        // Flagger retries: the same event changes nothing.
        let (status, answer) = post(&world, &url, FLAGGER_HEADERS, CANARY_FAILED.to_vec()).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(counts(&answer).2, "{answer}");
        // A bearer token works too, and the global webhook names its
        // cluster in the URL.
        let global = edited(CANARY_FAILED, |v| {
            v["metadata"].as_object_mut().unwrap().remove("cluster");
        });
        let (status, answer) = post(
            &world,
            "/webhooks/flagger?cluster=prod-eu",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {FLAGGER_TOKEN}")),
            ],
            global,
        )
        .await;
        assert_eq!(
            (status, counts(&answer)),
            (StatusCode::ACCEPTED, (1, 0, false))
        );

        // A failing analysis repeats `Halt` every interval: ignored, and
        // counted in /metrics.
        for timestamp in ["1789381267412", "1789381327412"] {
            let halt = edited(CANARY_HALT, |v| {
                v["metadata"]["timestamp"] = timestamp.into()
            });
            let (status, answer) = post(&world, &url, FLAGGER_HEADERS, halt).await;
            assert_eq!(status, StatusCode::ACCEPTED);
            assert_eq!((counts(&answer).0, counts(&answer).1), (0, 1), "{answer}");
        }
        let metrics = world
            .client
            .get(format!("{}/metrics", world.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("rewind_webhook_ignored_total{source=\"flagger\"}"),
            "{metrics}"
        );

        let ledger = world.service().engine.ledger().clone();
        let app = AppName::new("test/podinfo").unwrap();
        let on_test = ledger
            .cluster_rollbacks(&app, Some("flagger-test"), 10)
            .await
            .unwrap();
        assert_eq!(on_test.len(), 1, "{on_test:?}");
        let r = &on_test[0].rollback;
        assert_eq!(r.sender, RollbackSender::Flagger);
        assert_eq!(r.workload, "Canary/podinfo");
        assert_eq!(r.rejected_revision.as_deref(), Some("85d557f47b"));
        assert_eq!(r.message, "Canary failed! Scaling down podinfo.test");
        let on_eu = ledger
            .cluster_rollbacks(&app, Some("prod-eu"), 10)
            .await
            .unwrap();
        assert_eq!(on_eu.len(), 1);
        assert_eq!(
            ledger
                .cluster_rollbacks(&app, None, 10)
                .await
                .unwrap()
                .len(),
            2
        );
        world.finish().await;
    }
}

/// Path, headers, body, expected status, a word the error detail names.
type Case = (
    String,
    Vec<(&'static str, String)>,
    Vec<u8>,
    StatusCode,
    &'static str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagger_and_rollouts_refuse_bad_requests_with_the_contract_answers() {
    for db in databases().await {
        let world = World::start(db, configure).await;
        let ok_url = format!("/webhooks/flagger?token={FLAGGER_TOKEN}");
        let cases: Vec<Case> = vec![
            // Flagger sends no header: without ?token= it is refused.
            (
                "/webhooks/flagger".into(),
                vec![],
                CANARY_FAILED.to_vec(),
                StatusCode::UNAUTHORIZED,
                "?token=",
            ),
            (
                "/webhooks/flagger?token=wrong".into(),
                vec![],
                CANARY_FAILED.to_vec(),
                StatusCode::UNAUTHORIZED,
                "wrong token",
            ),
            (
                format!("/webhooks/flagger?token={FLAGGER_TOKEN}&token=x"),
                vec![],
                CANARY_FAILED.to_vec(),
                StatusCode::BAD_REQUEST,
                "token",
            ),
            (
                ok_url.clone(),
                vec![("content-type", "text/plain".into())],
                CANARY_FAILED.to_vec(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "text/plain",
            ),
            (
                ok_url.clone(),
                vec![],
                br#"{"name":"podinfo","namespace":7}"#.to_vec(),
                StatusCode::BAD_REQUEST,
                "namespace",
            ),
            (
                ok_url.clone(),
                vec![],
                vec![b' '; 17 * 1024],
                StatusCode::PAYLOAD_TOO_LARGE,
                "max_body_bytes",
            ),
            (
                "/webhooks/argo-rollouts".into(),
                vec![],
                ROLLOUT_ABORTED.to_vec(),
                StatusCode::UNAUTHORIZED,
                "authorization",
            ),
            (
                "/webhooks/argo-rollouts".into(),
                vec![("authorization", "Bearer REDACTED-TOKEN".into())],
                ROLLOUT_ABORTED.to_vec(),
                StatusCode::UNAUTHORIZED,
                "wrong bearer token",
            ),
            (
                "/webhooks/argo-rollouts".into(),
                vec![
                    ("authorization", format!("Bearer {ROLLOUTS_TOKEN}")),
                    ("content-type", "application/xml".into()),
                ],
                ROLLOUT_ABORTED.to_vec(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "application/xml",
            ),
            (
                "/webhooks/argo-rollouts".into(),
                vec![("authorization", format!("Bearer {ROLLOUTS_TOKEN}"))],
                br#"{"event":"on-rollout-aborted","rollout":{"metadata":{"namespace":"default"}}}"#
                    .to_vec(),
                StatusCode::BAD_REQUEST,
                "rollout.metadata.name",
            ),
            (
                "/webhooks/argo-rollouts".into(),
                vec![("authorization", format!("Bearer {ROLLOUTS_TOKEN}"))],
                vec![b' '; 17 * 1024],
                StatusCode::PAYLOAD_TOO_LARGE,
                "max_body_bytes",
            ),
        ];
        for (path, headers, body, expected, detail) in cases {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let (status, answer) = post(&world, &path, &headers, body).await;
            assert_eq!(status, expected, "{path}: {answer}");
            if expected == StatusCode::PAYLOAD_TOO_LARGE {
                // Refused by the body limit before the handler reads it.
                continue;
            }
            assert!(answer["error"].is_string(), "{path}: {answer}");
            let shown = answer["detail"].as_str().unwrap_or_default().to_lowercase();
            assert!(shown.contains(&detail.to_lowercase()), "{path}: {answer}");
            assert!(!answer.to_string().contains(FLAGGER_TOKEN), "{answer}");
            assert!(!answer.to_string().contains(ROLLOUTS_TOKEN), "{answer}");
        }
        // Nothing of the refused deliveries was recorded.
        let ledger = world.service().engine.ledger().clone();
        for app in ["test/podinfo", "default/rollout-background-analysis"] {
            let app = AppName::new(app).unwrap();
            assert!(
                ledger
                    .cluster_rollbacks(&app, None, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_rollout_is_recorded_once_and_other_triggers_ignored() {
    for db in databases().await {
        let world = World::start(db, configure).await;
        let bearer = format!("Bearer {ROLLOUTS_TOKEN}");
        // Argo Rollouts sends no Content-Type unless configured.
        let headers = [("authorization", bearer.as_str())];
        let with_cluster = edited(ROLLOUT_ABORTED, |v| v["cluster"] = "prod-eu".into());
        let (status, answer) = post(
            &world,
            "/webhooks/argo-rollouts",
            &headers,
            with_cluster.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(counts(&answer), (1, 0, false));
        let (_, answer) = post(&world, "/webhooks/argo-rollouts", &headers, with_cluster).await;
        assert!(counts(&answer).2, "{answer}");
        let completed = edited(ROLLOUT_ABORTED, |v| {
            v["event"] = "on-rollout-completed".into()
        });
        let (status, answer) = post(&world, "/webhooks/argo-rollouts", &headers, completed).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!((counts(&answer).0, counts(&answer).1), (0, 1));

        let ledger = world.service().engine.ledger().clone();
        let app = AppName::new("default/rollout-background-analysis").unwrap();
        let recorded = ledger
            .cluster_rollbacks(&app, Some("prod-eu"), 10)
            .await
            .unwrap();
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        let r = &recorded[0].rollback;
        assert_eq!(r.sender, RollbackSender::ArgoRollouts);
        assert_eq!(r.running_revision.as_deref(), Some("7d84d44bb8"));
        assert_eq!(r.rejected_images, ["argoproj/rollouts-demo:yellow"]);
        assert_eq!(r.at.to_rfc3339(), "2020-09-22T09:10:05+00:00");
        world.finish().await;
    }
}

fn flux_kustomization(name: &str, path: &str) -> String {
    format!(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./{path}\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
    )
}

/// A Flux Kustomization event as the generic-hmac provider sends it.
async fn flux_event(world: &World, name: &str, cluster: Option<&str>, commit: &str) -> Value {
    let mut metadata = json!({"revision": format!("main@sha1:{commit}")});
    if let Some(cluster) = cluster {
        metadata["cluster"] = cluster.into();
    }
    let body = serde_json::to_vec(&json!({
        "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": name,
                           "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
        "severity": "info",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "message": "Applied revision",
        "reason": "ReconciliationSucceeded",
        "metadata": metadata,
        "reportingController": "kustomize-controller",
    }))
    .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(FLUX_KEY.as_bytes()).unwrap();
    mac.update(&body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let (status, answer) = post(
        world,
        "/webhooks/flux",
        &[
            ("content-type", "application/json"),
            ("x-signature", &signature),
        ],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer
}

async fn app_entry(world: &World, name: &str) -> Option<Value> {
    let (_, apps) = world.get("/api/v1/apps").await;
    apps.as_array()?.iter().find(|a| a["name"] == name).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_apps_are_discovered_and_follow_the_branch() {
    for db in databases().await {
        let world = World::start(db, |s| {
            configure(s);
            // `[[apps]]` overrides a discovered app with the same name.
            s.apps.push(AppMapping {
                name: "flux-system/pinned".into(),
                path: "apps/other".into(),
                cluster: "prod".into(),
            });
        })
        .await;
        let head = world.repo.head();
        // Not in the repository yet: accepted and ignored.
        let answer = flux_event(&world, "checkout", Some("prod"), &head).await;
        assert_eq!(
            (answer["accepted"].as_u64(), answer["ignored"].as_u64()),
            (Some(0), Some(1))
        );

        // The branch moves: the layout of fluxcd/flux2-kustomize-helm-example,
        // one directory per cluster, the same Kustomization name on both.
        let moved = world.repo.commit(
            &[
                (
                    "clusters/prod/apps.yaml",
                    flux_kustomization("checkout", "apps/checkout/overlays/prod"),
                ),
                (
                    "clusters/staging/apps.yaml",
                    flux_kustomization("checkout", "apps/checkout/base"),
                ),
                (
                    "clusters/prod/pinned.yaml",
                    flux_kustomization("pinned", "apps/checkout/base"),
                ),
            ],
            "flux: sync checkout on prod and staging",
        );
        world.service().engine.git().fetch().await.unwrap();

        let answer = flux_event(&world, "checkout", Some("prod"), &moved).await;
        assert_eq!(answer["ignored"].as_u64(), Some(0), "{answer}");
        assert!(answer["accepted"].as_u64().unwrap() >= 2, "{answer}");
        let app = app_entry(&world, "flux-system/checkout")
            .await
            .expect("app recorded");
        assert_eq!(app["cluster"], "prod", "{app}");
        assert_eq!(app["path"], "apps/checkout/overlays/prod", "{app}");
        assert_eq!(app["source"], "flux");

        // Two clusters have that name and the event names none: not guessed.
        let answer = flux_event(&world, "checkout", None, &moved).await;
        assert_eq!(
            (answer["accepted"].as_u64(), answer["ignored"].as_u64()),
            (Some(0), Some(1))
        );

        // `[[apps]]` wins over what the repository says.
        flux_event(&world, "pinned", Some("prod"), &moved).await;
        let pinned = app_entry(&world, "flux-system/pinned")
            .await
            .expect("pinned recorded");
        assert_eq!(pinned["path"], "apps/other", "{pinned}");

        // The Kustomization moves to another path: the map follows the
        // fetched head.
        let renamed = world.repo.commit(
            &[(
                "clusters/prod/apps.yaml",
                flux_kustomization("checkout", "apps/checkout/base"),
            )],
            "flux: checkout on prod from the base",
        );
        world.service().engine.git().fetch().await.unwrap();
        flux_event(&world, "checkout", Some("prod"), &renamed).await;
        let app = app_entry(&world, "flux-system/checkout").await.unwrap();
        assert_eq!(app["path"], "apps/checkout/base", "{app}");
        world.finish().await;
    }
}

/// `[[clusters]]` names reach the Flux discovery: a Kustomization under a
/// directory named like a configured cluster (`fleet/eu-west/`, not the
/// `clusters/<name>/` layout) belongs to that cluster, so an event that
/// names no cluster still finds its app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_cluster_names_mark_flux_directories() {
    for db in databases().await {
        let world = World::start(db, |s| {
            configure(s);
            s.clusters.push(rewind_config::ClusterEntry {
                name: "eu-west".into(),
                server: "https://eu-west.k8s.example.com".into(),
            });
        })
        .await;
        let moved = world.repo.commit(
            &[(
                "fleet/eu-west/apps.yaml",
                flux_kustomization("checkout", "apps/checkout/overlays/prod"),
            )],
            "flux: checkout on eu-west",
        );
        world.service().engine.git().fetch().await.unwrap();
        let answer = flux_event(&world, "checkout", None, &moved).await;
        assert_eq!(answer["ignored"].as_u64(), Some(0), "{answer}");
        let app = app_entry(&world, "flux-system/checkout")
            .await
            .expect("app recorded");
        assert_eq!(app["cluster"], "eu-west", "{app}");
        assert_eq!(app["path"], "apps/checkout/overlays/prod", "{app}");
        world.finish().await;
    }
}
