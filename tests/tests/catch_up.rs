//! Git catches up with rollbacks Flagger and Argo Rollouts did in the
//! cluster, end to end over HTTP on every backend: Argo CD deploys a good
//! then a bad commit of `checkout`, the canary fails (Flagger's `Canary
//! failed!` event, a real aborted Rollout), and with `policy.catch_up =
//! "propose"` rewind proposes a rollback (trigger `drift`) to the good
//! deployment whose branch makes Git say what the cluster runs, and whose
//! PR says what happened in the cluster. The same event twice is one
//! proposal; `catch_up = "off"` records only; a report rewind cannot map
//! to a Git revision is audited with its reason. Payloads are the fixtures
//! of `crates/rewind-ingest/tests/fixtures` (Flagger v1.44.0 reproduced
//! deliveries, a real aborted Rollout), edited only where a test needs an
//! app, cluster, image or time.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rewind_config::{CatchUp, Secret};
use rewind_tests::github::github_world;
use rewind_tests::{APP, APP_PATH, World, databases};
use serde_json::{Value, json};

const FLAGGER_TOKEN: &str = "flagger-e2e-token";
const ROLLOUTS_TOKEN: &str = "rollouts-e2e-token";

const CANARY_FAILED: &[u8] =
    include_bytes!("../../crates/rewind-ingest/tests/fixtures/flagger/event.canary-failed.json");
const ROLLOUT_ABORTED: &[u8] = include_bytes!(
    "../../crates/rewind-ingest/tests/fixtures/argo-rollouts/on-rollout-aborted.json"
);

fn configure(s: &mut rewind_config::Settings, catch_up: CatchUp) {
    s.webhooks.flagger_token = Some(Secret::new(FLAGGER_TOKEN));
    s.webhooks.rollouts_token = Some(Secret::new(ROLLOUTS_TOKEN));
    s.policy.catch_up = catch_up;
}

/// Flagger's canary-failed event for `app` on `cluster`, now.
fn canary_failed(app: &str, cluster: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(CANARY_FAILED).unwrap();
    let metadata = v["metadata"].as_object_mut().unwrap();
    metadata.insert("app".into(), app.into());
    metadata.insert("cluster".into(), cluster.into());
    metadata.insert(
        "timestamp".into(),
        Utc::now().timestamp_millis().to_string().into(),
    );
    serde_json::to_vec(&v).unwrap()
}

/// The real aborted Rollout, for `app` on `cluster`, refusing `image`, now.
fn rollout_aborted(app: &str, cluster: &str, image: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(ROLLOUT_ABORTED).unwrap();
    v["app"] = app.into();
    v["cluster"] = cluster.into();
    v["rollout"]["spec"]["template"]["spec"]["containers"][0]["image"] = image.into();
    v["rollout"]["status"]["abortedAt"] = Utc::now().to_rfc3339().into();
    serde_json::to_vec(&v).unwrap()
}

async fn send_flagger(world: &World, body: Vec<u8>) -> Value {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/webhooks/flagger?token={FLAGGER_TOKEN}",
            world.url()
        ))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer = response.json().await.unwrap();
    world.settle().await;
    answer
}

async fn send_rollouts(world: &World, body: Vec<u8>) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/argo-rollouts", world.url()))
        .bearer_auth(ROLLOUTS_TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer = response.json().await.unwrap();
    world.settle().await;
    answer
}

/// Revision 1 (good) ran healthy an hour ago; revision 2 (bad) was synced
/// ten minutes ago, which started the canary.
async fn good_then_bad(world: &mut World) {
    let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
    world
        .deploy_at(1, &good, "Healthy", Utc::now() - Duration::hours(1))
        .await;
    world
        .deploy_at(2, &bad, "Progressing", Utc::now() - Duration::minutes(10))
        .await;
    assert!(world.rollbacks().await.is_empty());
}

/// The `drift` of `checkout@in-cluster` as the API shows it.
async fn app_drift(world: &World) -> Value {
    let (status, app) = world.get(&format!("/api/v1/apps/{APP}@in-cluster")).await;
    assert_eq!(status, StatusCode::OK, "{app}");
    app["drift"].clone()
}

/// The audit entries `catch_up.skipped`, newest first.
async fn skipped(world: &World) -> Vec<Value> {
    let (_, audit) = world.get("/api/v1/audit").await;
    audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "catch_up.skipped")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flagger_canary_is_caught_up_in_git_once() {
    for db in databases().await {
        let mut world = World::start(db, |s| configure(s, CatchUp::Propose)).await;
        good_then_bad(&mut world).await;
        let event = canary_failed(APP, "in-cluster");
        let answer = send_flagger(&world, event.clone()).await;
        assert_eq!(answer["accepted"], 1, "{answer}");
        // Flagger retries the same event: still one proposal.
        let again = send_flagger(&world, event).await;
        assert_eq!(again["duplicate"], true, "{again}");

        let rollbacks = world.rollbacks().await;
        assert_eq!(rollbacks.len(), 1, "{rollbacks:#?}");
        let r = &rollbacks[0];
        assert_eq!(r["trigger"]["kind"], "drift", "{r:#}");
        assert_eq!(r["to"]["cluster_revision"], 1, "{r:#}");
        assert_eq!(r["from"]["cluster_revision"], 2, "{r:#}");
        let detail = r["trigger"]["detail"].as_str().unwrap();
        for needle in [
            "Flagger rolled back",
            "test/Canary/podinfo",
            "on cluster in-cluster",
            "Canary failed! Scaling down podinfo.test",
            "refusing revision 85d557f47b",
            "checkout@in-cluster goes back to cluster revision 1",
        ] {
            assert!(detail.contains(needle), "{needle} missing from {detail}");
        }
        // The branch says what the cluster runs: the good commit's overlay.
        let branch = r["branch"].as_str().expect("branch pushed");
        assert_eq!(
            world.repo.object(branch, APP_PATH),
            world.repo.object(&world.repo.good, APP_PATH),
        );
        // A second, different failure while the first is open: refused as
        // any proposal would be, not a second rollback.
        let mut later: Value = serde_json::from_slice(&canary_failed(APP, "in-cluster")).unwrap();
        later["checksum"] = "0badc0ffee".into();
        send_flagger(&world, serde_json::to_vec(&later).unwrap()).await;
        assert_eq!(world.rollbacks().await.len(), 1);

        // Approved like any other proposal (one approval here), merged.
        let id = r["id"].as_str().unwrap();
        let (status, body) = world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            world.repo.object("main", APP_PATH),
            world.repo.object(&world.repo.good, APP_PATH),
            "Git now says what the cluster runs"
        );
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_off_records_the_cluster_rollback_only() {
    for db in databases().await {
        let mut world = World::start(db, |s| configure(s, CatchUp::Off)).await;
        good_then_bad(&mut world).await;
        send_flagger(&world, canary_failed(APP, "in-cluster")).await;
        // The cluster no longer runs what Git says: the app drifts, from
        // the first report on, whatever `catch_up` says.
        let first = app_drift(&world).await;
        let detail = first["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("Flagger rolled back test/Canary/podinfo")
                && detail.contains("Git says cluster revision 2"),
            "{first:#}"
        );
        send_rollouts(
            &world,
            rollout_aborted(
                APP,
                "in-cluster",
                "registry.example.com/shop/checkout:v1.4.2",
            ),
        )
        .await;
        assert!(world.rollbacks().await.is_empty());
        assert!(skipped(&world).await.is_empty());
        // The newest report says what happened; the drift began with the first.
        let drift = app_drift(&world).await;
        assert!(
            drift["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("Argo Rollouts aborted")),
            "{drift:#}"
        );
        assert_eq!(drift["since"], first["since"], "{drift:#}");
        // Argo CD still sees Git's revision in sync (Flagger keeps the
        // previous version on the primary): the drift stays.
        let bad = world.repo.bad.clone();
        world
            .deploy_at(2, &bad, "Healthy", Utc::now() - Duration::minutes(10))
            .await;
        assert_eq!(app_drift(&world).await, drift);
        // Git moves past the refused deployment: the drift ends.
        let good = world.repo.good.clone();
        world.deploy(3, &good, "Healthy").await;
        assert_eq!(app_drift(&world).await, Value::Null);
        let ledger = world.service().engine.ledger().clone();
        let recorded = ledger
            .cluster_rollbacks(
                &rewind_domain::AppName::new(APP).unwrap(),
                Some("in-cluster"),
                10,
            )
            .await
            .unwrap();
        assert_eq!(recorded.len(), 2, "{recorded:?}");
        world.finish().await;
    }
}

/// Reports rewind cannot map to a Git revision are not dropped silently:
/// each is audited as `catch_up.skipped` with a code and a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_rewind_cannot_map_say_why() {
    for db in databases().await {
        let mut world = World::start(db, |s| configure(s, CatchUp::Propose)).await;
        good_then_bad(&mut world).await;
        // The fixture as sent: `test/podinfo` is no app rewind knows.
        send_flagger(&world, CANARY_FAILED.to_vec()).await;
        // Refused images the current deployment does not run.
        send_rollouts(
            &world,
            rollout_aborted(APP, "in-cluster", "argoproj/rollouts-demo:yellow"),
        )
        .await;
        // A report from before the current deployment.
        let mut old: Value = serde_json::from_slice(&canary_failed(APP, "in-cluster")).unwrap();
        old["metadata"]["timestamp"] = (Utc::now() - Duration::hours(2))
            .timestamp_millis()
            .to_string()
            .into();
        send_flagger(&world, serde_json::to_vec(&old).unwrap()).await;

        assert!(world.rollbacks().await.is_empty());
        let entries = skipped(&world).await;
        let codes: Vec<&str> = entries
            .iter()
            .map(|e| e["detail"]["code"].as_str().unwrap())
            .collect();
        assert_eq!(
            codes,
            ["stale-report", "unknown-revision", "unknown-app"],
            "{entries:#?}"
        );
        let unknown = entries[2]["detail"]["reason"].as_str().unwrap();
        assert!(unknown.contains("test/podinfo"), "{unknown}");
        let refused = entries[1]["detail"]["reason"].as_str().unwrap();
        assert!(
            refused.contains("argoproj/rollouts-demo:yellow"),
            "{refused}"
        );
        world.finish().await;
    }
}

/// The Argo Rollouts path through GitHub: the PR names the app on its
/// cluster in its title and explains what the cluster did and when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_rollout_opens_a_pull_request_that_explains_it() {
    for db in databases().await {
        let (mut world, fake) = github_world(db, |s| configure(s, CatchUp::Propose)).await;
        good_then_bad(&mut world).await;

        send_rollouts(
            &world,
            rollout_aborted(
                APP,
                "in-cluster",
                "registry.example.com/shop/checkout:v1.4.2",
            ),
        )
        .await;
        let rollbacks = world.rollbacks().await;
        assert_eq!(rollbacks.len(), 1, "{rollbacks:#?}");
        assert_eq!(rollbacks[0]["to"]["cluster_revision"], 1);
        assert_eq!(rollbacks[0]["ref"], "checkout@in-cluster");
        let prs = fake.pull_requests();
        assert_eq!(prs.len(), 1);
        let pr = &prs[0];
        assert!(pr.title.contains("checkout@in-cluster"), "{}", pr.title);
        let body = pr.body.clone().unwrap_or_default();
        for needle in [
            "Git catches up with the cluster",
            "Argo Rollouts aborted",
            "default/Rollout/rollout-background-analysis",
            "registry.example.com/shop/checkout:v1.4.2",
            "assessed Failed",
        ] {
            assert!(body.contains(needle), "PR body lacks {needle}:\n{body}");
        }
        world.finish().await;
    }
}
