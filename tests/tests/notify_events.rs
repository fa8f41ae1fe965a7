//! The notification events the flow itself does not go through in the
//! other suites, through a real loopback receiver on every backend: `drift`
//! once per drift episode (a redelivery or a second OutOfSync report tells
//! nobody again), `held` when a wave member waits for the one before it,
//! and `held` again when the wave stops because that one failed.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rewind_config::{NotifyEvent, NotifyKind, NotifySettings, Secret};
use rewind_ingest::samples::{HistoryEntry, argocd_notification};
use rewind_tests::receiver::{Told, receiver, told_about};
use rewind_tests::{APP, APP_PATH, ARGOCD_TOKEN, World, databases};
use serde_json::{Value, json};

const STAGING_PATH: &str = "apps/checkout/overlays/staging";

fn listen(url: &str) -> impl FnOnce(&mut rewind_config::Settings) + '_ {
    move |s| {
        s.notify = vec![NotifySettings {
            name: "oncall".into(),
            kind: NotifyKind::Webhook,
            url: Secret::new(url.to_string()),
            secret: Some(Secret::new("notify-secret")),
            events: NotifyEvent::ALL.to_vec(),
        }];
        s.policy.cluster_order = vec!["staging".into(), "prod-eu".into()];
    }
}

fn entry(id: i64, commit: &str, minutes_ago: i64) -> HistoryEntry {
    HistoryEntry {
        id,
        revision: commit.to_string(),
        deployed_at: Utc::now() - Duration::minutes(minutes_ago),
    }
}

/// What one Argo CD instance sends, with `sync` as its `status.sync`.
async fn argocd(
    world: &World,
    cluster: &str,
    path: &str,
    history: &[HistoryEntry],
    health: &str,
    sync: Option<Value>,
) {
    let mut body = argocd_notification(
        "on-deployed",
        APP,
        &world.repo.path.display().to_string(),
        path,
        history,
        health,
    );
    if let Some(sync) = sync {
        body["app"]["status"]["sync"] = sync;
    }
    let (status, answer) = world
        .post_json(&format!("/webhooks/argocd/{cluster}"), ARGOCD_TOKEN, &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    world.settle().await;
}

async fn settled(world: &World, told: &Told, event: &str, at_least: usize) -> Vec<Value> {
    for _ in 0..50 {
        world.settle().await;
        let seen = told_about(told, event);
        if seen.len() >= at_least {
            return seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    told_about(told, event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_told_once_per_episode() {
    for db in databases().await {
        let (url, told) = receiver().await;
        let world = World::start(db, listen(&url)).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        let history = [entry(1, &good, 60), entry(2, &bad, 5)];
        argocd(&world, "prod-eu", APP_PATH, &history, "Healthy", None).await;
        assert!(told_about(&told, "drift").is_empty());

        // Someone ran `argocd app rollback`: OutOfSync, reported twice
        // (the second time with another health).
        let out = json!({"status": "OutOfSync", "revision": good});
        argocd(
            &world,
            "prod-eu",
            APP_PATH,
            &history,
            "Degraded",
            Some(out.clone()),
        )
        .await;
        argocd(
            &world,
            "prod-eu",
            APP_PATH,
            &history,
            "Progressing",
            Some(out.clone()),
        )
        .await;
        let drift = settled(&world, &told, "drift", 1).await;
        assert_eq!(drift.len(), 1, "{drift:#?}");
        assert_eq!(drift[0]["app"], "checkout");
        assert_eq!(drift[0]["cluster"], "prod-eu");
        assert!(
            drift[0]["reason"].as_str().unwrap().contains("OutOfSync"),
            "{drift:#?}"
        );

        // Back in sync, then drifting again (another report, not a
        // redelivery of the first): a new episode, told again.
        // (Progressing: a body other than the first report's, which would
        // be a redelivery and change nothing.)
        argocd(&world, "prod-eu", APP_PATH, &history, "Progressing", None).await;
        let (_, apps) = world.get("/api/v1/apps").await;
        assert_eq!(apps[0]["drift"], Value::Null, "{apps:#}");
        argocd(&world, "prod-eu", APP_PATH, &history, "Missing", Some(out)).await;
        let drift = settled(&world, &told, "drift", 2).await;
        assert_eq!(drift.len(), 2, "{drift:#?}");
        world.finish().await;
    }
}

fn staging_files(tag: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "apps/checkout/overlays/staging/kustomization.yaml",
            "resources:\n  - deployment.yaml\n".to_string(),
        ),
        (
            "apps/checkout/overlays/staging/deployment.yaml",
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: registry.example.com/shop/checkout:{tag}\n"
            ),
        ),
    ]
}

/// Two commits that each change both clusters' paths.
fn good_and_bad_on_two_paths(world: &World) -> (String, String) {
    let both = |flag: &str, prod_tag: &str, staging_tag: &str| {
        let mut files = staging_files(staging_tag);
        files.push((
            "apps/checkout/base/deployment.yaml",
            rewind_tests::repo::deployment(flag),
        ));
        files.push((
            "apps/checkout/overlays/prod/kustomization.yaml",
            rewind_tests::repo::overlay(prod_tag),
        ));
        files
    };
    let good = world.repo.commit(
        &both("false", "v1.4.1", "v2.0.0"),
        "deploy: good everywhere",
    );
    let bad = world
        .repo
        .commit(&both("true", "v1.4.2", "v2.0.1"), "deploy: bad everywhere");
    (good, bad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_wave_member_and_a_stopped_wave_are_told() {
    for db in databases().await {
        let (url, told) = receiver().await;
        let world = World::start(db, listen(&url)).await;
        let (good, bad) = good_and_bad_on_two_paths(&world);
        let path_of = |c: &str| {
            if c == "staging" {
                STAGING_PATH
            } else {
                APP_PATH
            }
        };
        let one = [entry(1, &good, 60)];
        for cluster in ["prod-eu", "staging"] {
            argocd(&world, cluster, path_of(cluster), &one, "Healthy", None).await;
        }
        world.tick(Utc::now()).await;
        let two = [one[0].clone(), entry(2, &bad, 5)];
        for cluster in ["prod-eu", "staging"] {
            argocd(&world, cluster, path_of(cluster), &two, "Degraded", None).await;
        }
        world.alert("firing", "fp-everywhere", Utc::now()).await;
        let (_, list) = world.get("/api/v1/rollbacks?app=checkout@staging").await;
        let first = list[0]["id"].as_str().unwrap().to_string();
        let (_, list) = world.get("/api/v1/rollbacks?app=checkout@prod-eu").await;
        let second = list[0]["id"].as_str().unwrap().to_string();
        assert_eq!(list[0]["state"], "held", "{list:#}");

        let held = settled(&world, &told, "held", 1).await;
        assert_eq!(held.len(), 1, "{held:#?}");
        assert_eq!(held[0]["rollback"], second.as_str());
        assert_eq!(held[0]["state"], "held");
        assert!(
            held[0]["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("held until rollback {first} is verified")),
            "{held:#?}"
        );

        // The first is merged and synced, then its alert fires again: it
        // fails, and the wave stops with the second still held.
        let (status, body) = world
            .api(&format!("/api/v1/rollbacks/{first}/approve"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let three = [
            two[0].clone(),
            two[1].clone(),
            entry(3, &world.repo.head(), 0),
        ];
        argocd(&world, "staging", STAGING_PATH, &three, "Healthy", None).await;
        world.alert("firing", "fp-again", Utc::now()).await;
        assert_eq!(world.rollback(&first).await["state"], "failed");

        let held = settled(&world, &told, "held", 2).await;
        assert_eq!(held.len(), 2, "{held:#?}");
        assert_eq!(held[1]["rollback"], second.as_str());
        assert!(
            held[1]["reason"].as_str().unwrap().starts_with(&format!(
                "wave stopped: rollback {first} of checkout@staging failed"
            )),
            "{held:#?}"
        );
        let failed = settled(&world, &told, "failed", 1).await;
        assert_eq!(failed[0]["rollback"], first.as_str());
        world.finish().await;
    }
}
