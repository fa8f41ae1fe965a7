//! Verification against a real Prometheus, on every backend: the error
//! ratio is high while the alert fires, then the rollback's commit is
//! deployed and the checks decide. Verified only after `verify.passes`
//! passes in a row; a flap resets the count; a check that never passes
//! fails the rollback at `policy.verify_for`, holds the app and is
//! notified; Prometheus
//! going away mid-verification ends in "not enough evidence".

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use rewind_config::{CheckSettings, HumanDuration, SecretUrl, Settings};
use rewind_tests::prometheus::{Exporter, Prometheus, available};
use rewind_tests::{World, databases};
use serde_json::{Value, json};

const RATIO: &str = r#"app_error_ratio{app="checkout"}"#;

fn configure(settings: &mut Settings, prometheus: &str) {
    settings.verify.prometheus_url = Some(SecretUrl::new(prometheus));
    settings.verify.interval = HumanDuration::from_secs(30);
    settings.verify.passes = 3;
    settings.verify.timeout = HumanDuration::from_secs(2);
    settings.verify.checks = vec![CheckSettings {
        name: "error-rate".into(),
        query: Some(r#"max(app_error_ratio{app="{{app}}"})"#.into()),
        min: None,
        max: Some(0.05),
        no_worse_than: None,
        max_delta: None,
        min_evidence: None,
        apps: vec![],
        http: None,
    }];
}

/// Proposal while the ratio is bad, approval, merge, the merge deployed
/// Healthy, the alert resolved: the rollback is synced and the clock runs.
/// Returns the rollback id and when it synced.
async fn synced_rollback(
    world: &mut World,
    exporter: &Exporter,
    prometheus: &Prometheus,
) -> (String, DateTime<Utc>) {
    exporter.set(RATIO, 0.2);
    prometheus.wait_for(RATIO, 0.2).await;
    let proposal = world.bad_deploy_and_alert().await;
    let id = proposal["id"].as_str().unwrap().to_string();
    // The ticker records the baseline before the merge.
    world.tick(Utc::now()).await;
    let (status, body) = world
        .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let head = world.repo.head();
    assert_eq!(
        world.deploy(3, &head, "Healthy").await,
        StatusCode::ACCEPTED
    );
    world.resolve("fp-1").await;
    assert_eq!(world.rollback(&id).await["state"], "synced");
    (id, Utc::now())
}

/// A notification receiver that answers 200 and keeps the bodies.
async fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let told: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let log = told.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<Value>| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, told)
}

fn verdicts(rollback: &Value) -> Vec<Value> {
    rollback["verification"]
        .as_array()
        .map(|v| v.iter().map(|e| e["pass"].clone()).collect())
        .unwrap_or_default()
}

fn last_timeline_detail(rollback: &Value) -> String {
    rollback["timeline"]
        .as_array()
        .and_then(|t| t.last())
        .map(|e| e["detail"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_only_after_three_passes_in_a_row_and_a_flap_resets_the_count() {
    if !available("verified_only_after_three_passes_in_a_row_and_a_flap_resets_the_count") {
        return;
    }
    let exporter = Exporter::start().await;
    let prometheus = Prometheus::start(&exporter).await;
    for db in databases().await {
        let url = prometheus.url.clone();
        let mut world = World::start(db, |s| configure(s, &url)).await;
        let (id, t) = synced_rollback(&mut world, &exporter, &prometheus).await;

        // The rollback worked: the ratio drops.
        exporter.set(RATIO, 0.01);
        prometheus.wait_for(RATIO, 0.01).await;
        world.tick(t).await;
        world.tick(t + Duration::seconds(30)).await;
        // A tick sooner than the interval evaluates nothing.
        world.tick(t + Duration::seconds(45)).await;
        assert_eq!(
            verdicts(&world.rollback(&id).await),
            vec![json!(true), json!(true)]
        );

        // A flap: one bad evaluation resets the count.
        exporter.set(RATIO, 0.3);
        prometheus.wait_for(RATIO, 0.3).await;
        world.tick(t + Duration::seconds(60)).await;
        exporter.set(RATIO, 0.01);
        prometheus.wait_for(RATIO, 0.01).await;
        world.tick(t + Duration::seconds(90)).await;
        world.tick(t + Duration::seconds(120)).await;
        let two_after_flap = world.rollback(&id).await;
        assert_eq!(two_after_flap["state"], "synced", "{two_after_flap:#}");
        world.tick(t + Duration::seconds(150)).await;
        // Healthy for verify_for, the alert resolved, three passes in a row.
        world.tick(t + Duration::seconds(185)).await;
        let verified = world.rollback(&id).await;
        assert_eq!(verified["state"], "verified", "{verified:#}");
        assert_eq!(
            verdicts(&verified),
            [true, true, false, true, true, true, true]
                .map(|p| json!(p))
                .to_vec()
        );
        // Every evaluation carries the value, the baseline while the alert
        // fired, and why.
        let first = &verified["verification"][0];
        assert_eq!(first["check"], "error-rate");
        assert_eq!(first["value"], 0.01);
        assert_eq!(first["baseline"], 0.2);
        assert_eq!(first["detail"], "0.01 within max 0.05");
        assert_eq!(verified["verification"][2]["detail"], "0.3 above max 0.05");
        let detail = last_timeline_detail(&verified);
        assert!(detail.contains("error-rate 0.2 → 0.01"), "{detail}");
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_never_passes_fails_the_rollback_at_verify_for_and_holds_the_app() {
    if !available("a_check_that_never_passes_fails_the_rollback_at_verify_for_and_holds_the_app") {
        return;
    }
    let exporter = Exporter::start().await;
    let prometheus = Prometheus::start(&exporter).await;
    for db in databases().await {
        let url = prometheus.url.clone();
        let (hook, told) = receiver().await;
        let mut world = World::start(db, |s| {
            configure(s, &url);
            s.notify = vec![rewind_config::NotifySettings {
                name: "oncall".into(),
                kind: rewind_config::NotifyKind::Webhook,
                url: rewind_config::Secret::new(hook.clone()),
                secret: Some(rewind_config::Secret::new("hmac-key")),
                events: vec![
                    rewind_config::NotifyEvent::Failed,
                    rewind_config::NotifyEvent::Held,
                ],
            }];
        })
        .await;
        let (id, t) = synced_rollback(&mut world, &exporter, &prometheus).await;
        // The rollback did not help: the ratio stays high.
        for seconds in [0, 30, 60, 90, 120, 150] {
            world.tick(t + Duration::seconds(seconds)).await;
            assert_eq!(world.rollback(&id).await["state"], "synced");
        }
        world.tick(t + Duration::seconds(185)).await;
        let failed = world.rollback(&id).await;
        assert_eq!(failed["state"], "failed", "{failed:#}");
        let reason = last_timeline_detail(&failed);
        assert!(
            reason.contains("check error-rate failed: 0.2 above max 0.05"),
            "{reason}"
        );
        assert!(reason.contains("is held"), "{reason}");
        // The app is held: a new alert opens no proposal.
        let apps = world.get("/api/v1/apps").await.1;
        assert!(apps[0]["held_since"].is_string(), "{apps:#}");
        world.alert("firing", "fp-2", Utc::now()).await;
        assert_eq!(world.rollbacks().await.len(), 1);
        // The people on call were told both.
        let told = told.lock().unwrap().clone();
        let events: Vec<&str> = told.iter().map(|n| n["event"].as_str().unwrap()).collect();
        assert_eq!(events, ["failed", "held"], "{told:#?}");
        assert!(
            told[0]["reason"]
                .as_str()
                .unwrap()
                .contains("check error-rate failed: 0.2 above max 0.05"),
            "{told:#?}"
        );
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_down_mid_verification_ends_in_not_enough_evidence() {
    if !available("prometheus_down_mid_verification_ends_in_not_enough_evidence") {
        return;
    }
    for db in databases().await {
        let exporter = Exporter::start().await;
        let mut prometheus = Prometheus::start(&exporter).await;
        let url = prometheus.url.clone();
        let mut world = World::start(db, |s| configure(s, &url)).await;
        let (id, t) = synced_rollback(&mut world, &exporter, &prometheus).await;
        exporter.set(RATIO, 0.01);
        prometheus.wait_for(RATIO, 0.01).await;
        world.tick(t).await;
        prometheus.stop();
        for seconds in [30, 60, 90, 120, 150, 185] {
            world.tick(t + Duration::seconds(seconds)).await;
        }
        let failed = world.rollback(&id).await;
        assert_eq!(failed["state"], "failed", "{failed:#}");
        let verdicts = verdicts(&failed);
        assert_eq!(verdicts[0], json!(true));
        assert!(verdicts[1..].iter().all(Value::is_null), "{verdicts:?}");
        let reason = last_timeline_detail(&failed);
        assert!(
            reason.contains("not enough evidence: check error-rate"),
            "{reason}"
        );
        assert!(
            failed["verification"][1]["detail"]
                .as_str()
                .unwrap()
                .contains("Prometheus error"),
            "{failed:#}"
        );
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_worse_than_known_good_compares_with_the_targets_own_window() {
    if !available("no_worse_than_known_good_compares_with_the_targets_own_window") {
        return;
    }
    let exporter = Exporter::start().await;
    let prometheus = Prometheus::start(&exporter).await;
    for db in databases().await {
        let url = prometheus.url.clone();
        let mut world = World::start(db, |s| {
            configure(s, &url);
            let check = &mut s.verify.checks[0];
            check.max = None;
            check.no_worse_than = Some(rewind_config::NoWorseThan::KnownGood);
            check.max_delta = Some(0.01);
        })
        .await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        world
            .deploy_at(1, &good, "Healthy", Utc::now() - Duration::hours(1))
            .await;
        world.tick(Utc::now()).await;
        // The known-good deployment runs at 1 % errors until the bad deploy.
        exporter.set(RATIO, 0.01);
        prometheus.wait_for(RATIO, 0.01).await;
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        world.deploy(2, &bad, "Degraded").await;
        exporter.set(RATIO, 0.2);
        prometheus.wait_for(RATIO, 0.2).await;
        world.alert("firing", "fp-1", Utc::now()).await;
        let id = world.rollbacks().await[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        world.tick(Utc::now()).await;
        world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        let head = world.repo.head();
        world.deploy(3, &head, "Healthy").await;
        world.resolve("fp-1").await;
        let t = Utc::now();

        // 3 %: worse than known good (1 %) + 1 point.
        exporter.set(RATIO, 0.03);
        prometheus.wait_for(RATIO, 0.03).await;
        world.tick(t).await;
        // 1.5 %: within.
        exporter.set(RATIO, 0.015);
        prometheus.wait_for(RATIO, 0.015).await;
        for seconds in [30, 60, 90, 185] {
            world.tick(t + Duration::seconds(seconds)).await;
        }
        let verified = world.rollback(&id).await;
        assert_eq!(verified["state"], "verified", "{verified:#}");
        assert_eq!(
            verified["verification"][0]["detail"],
            "0.03 worse than known good 0.01 + max_delta 0.01"
        );
        assert_eq!(
            verified["verification"][1]["detail"],
            "0.015 within known good 0.01 + max_delta 0.01"
        );
        assert_eq!(verified["verification"][1]["baseline"], 0.2);
        world.finish().await;
    }
}
