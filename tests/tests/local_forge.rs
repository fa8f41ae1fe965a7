//! The whole loop on the local forge, on every backend: deploy events →
//! alert → proposal → approval → merge → the merge deployed → verified →
//! held; checked in the Git repository and through the API.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rewind_tests::repo::{BASE_PATH, overlay};
use rewind_tests::{APP_PATH, World, databases};
use serde_json::{Value, json};

fn events(rollback: &Value) -> Vec<String> {
    rollback["timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|e| e["event"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_to_verified_rollback() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let proposal = world.bad_deploy_and_alert().await;
        let id = proposal["id"].as_str().unwrap().to_string();
        assert_eq!(proposal["state"], "proposed");
        assert_eq!(proposal["trigger"]["kind"], "alert");
        assert_eq!(proposal["from"]["cluster_revision"], 2);
        assert_eq!(proposal["to"]["cluster_revision"], 1);
        assert!(
            events(&proposal).contains(&"pushed".to_string()),
            "{proposal:#}"
        );

        // The branch holds exactly the known-good configuration of the app
        // (its overlay and the base it reads), everything else as on main.
        let branch = proposal["branch"].as_str().unwrap().to_string();
        assert!(branch.starts_with("rewind/checkout/"), "{branch}");
        assert_eq!(world.repo.rewind_branches(), vec![branch.clone()]);
        let good = world.repo.good.clone();
        for path in [APP_PATH, BASE_PATH] {
            assert_eq!(
                world.repo.object(&branch, path),
                world.repo.object(&good, path)
            );
        }
        assert_eq!(
            world.repo.object(&branch, "README.md"),
            world.repo.object("main", "README.md")
        );
        let message = world.repo.git(&["log", "-1", "--format=%B", &branch]);
        assert!(
            message.starts_with(&format!("Revert checkout@in-cluster to {}", &good[..7])),
            "{message}"
        );
        assert!(
            message.contains(&format!("Rewind-Rollback-Id: {id}")),
            "{message}"
        );
        // Nothing merged yet: people decide.
        assert_eq!(world.repo.head(), world.repo.bad);

        let (status, approved) = world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{approved}");
        let merged = world.rollback(&id).await;
        assert_eq!(merged["state"], "merged", "{merged:#}");
        let head = world.repo.head();
        assert_ne!(head, world.repo.bad);
        for path in [APP_PATH, BASE_PATH] {
            assert_eq!(
                world.repo.object("main", path),
                world.repo.object(&good, path)
            );
        }
        world.repo.fsck();

        // Argo CD syncs the merge: synced; healthy for verify_for: verified.
        assert_eq!(
            world.deploy(3, &head, "Healthy").await,
            StatusCode::ACCEPTED
        );
        assert_eq!(world.rollback(&id).await["state"], "synced");
        world.resolve("fp-1").await;
        world.tick(Utc::now() + Duration::minutes(10)).await;
        let verified = world.rollback(&id).await;
        assert_eq!(verified["state"], "verified", "{verified:#}");
        let apps = world.get("/api/v1/apps").await.1;
        assert!(apps[0]["held_since"].is_string(), "{apps:#}");

        // The audit log says who did what.
        let audit = world.get(&format!("/api/v1/rollbacks/{id}")).await.1;
        let timeline = events(&audit);
        for event in [
            "proposed", "pushed", "approval", "approved", "merged", "synced", "verified",
        ] {
            assert!(
                timeline.contains(&event.to_string()),
                "{event} missing: {timeline:?}"
            );
        }
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_rollback_dry_run_and_refusals() {
    for db in databases().await {
        let mut world = World::start(db, |s| s.policy.max_rollbacks_per_hour = 1).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        // No deployment yet: nothing to roll back.
        let (status, body) = world
            .api("/api/v1/apps/checkout/rollbacks", json!({"reason": "x"}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

        world
            .deploy_at(1, &good, "Healthy", Utc::now() - Duration::hours(1))
            .await;
        world.deploy(2, &bad, "Healthy").await;
        // Revision 1 was never healthy for healthy_for: no known good.
        let (status, body) = world
            .api("/api/v1/apps/checkout/rollbacks", json!({"reason": "x"}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"], "no known-good deployment");

        // Naming the target works; a dry run records and pushes nothing.
        let request = json!({"to_revision": 1, "reason": "checkout errors", "dry_run": true});
        let (status, preview) = world.api("/api/v1/apps/checkout/rollbacks", request).await;
        assert_eq!(status, StatusCode::OK, "{preview}");
        assert!(
            preview["diff"]["text"].as_str().unwrap().contains("v1.4.1"),
            "{preview:#}"
        );
        assert!(world.rollbacks().await.is_empty());
        assert!(world.repo.rewind_branches().is_empty());

        let request = json!({"to_revision": 1, "reason": "checkout errors"});
        let (status, created) = world
            .api("/api/v1/apps/checkout/rollbacks", request.clone())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(
            created["trigger"],
            json!({"kind": "manual", "caller": "anonymous"})
        );

        // One open rollback per app: the second request gets it back.
        let (status, body) = world
            .api("/api/v1/apps/checkout/rollbacks", request.clone())
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["rollback"]["id"], created["id"]);

        // Cancel it; the breaker (1 per hour) now refuses with 429.
        let id = created["id"].as_str().unwrap();
        let (status, _) = world
            .api(&format!("/api/v1/rollbacks/{id}/cancel"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = world.api("/api/v1/apps/checkout/rollbacks", request).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("max_rollbacks_per_hour")
        );

        // A cancelled rollback cannot be approved.
        let (status, _) = world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        // Bad input names the problem.
        let (status, body) = world
            .api(
                "/api/v1/apps/checkout/rollbacks",
                json!({"to_revision": "one", "reason": "x"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["detail"].as_str().unwrap().contains("to_revision"),
            "{body}"
        );
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_on_target_is_refused() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let good = world.repo.good.clone();
        world
            .deploy_at(1, &good, "Healthy", Utc::now() - Duration::hours(1))
            .await;
        world.tick(Utc::now()).await;
        // Someone re-deployed the good configuration by hand (a revert).
        let again = world.repo.commit(
            &[
                (
                    "apps/checkout/overlays/prod/kustomization.yaml",
                    overlay("v1.4.1"),
                ),
                (
                    "apps/checkout/base/deployment.yaml",
                    rewind_tests::repo::deployment("false"),
                ),
            ],
            "revert by hand",
        );
        world.deploy(2, &again, "Degraded").await;
        let (status, body) = world
            .api("/api/v1/apps/checkout/rollbacks", json!({"reason": "x"}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"], "already on target");
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_alerts_delivered_a_thousand_times_open_one_rollback() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        world
            .deploy_at(1, &good, "Healthy", Utc::now() - Duration::hours(1))
            .await;
        world.tick(Utc::now()).await;
        world.deploy(2, &bad, "Degraded").await;
        let body = rewind_ingest::samples::alertmanager_notification(
            "firing",
            "CheckoutHighErrorRate",
            "checkout",
            "critical",
            "errors",
            Utc::now(),
            "fp-storm",
        );
        let url = format!("{}/webhooks/alertmanager", world.url());
        let requests = (0..1000).map(|_| {
            world
                .client
                .post(&url)
                .bearer_auth(rewind_tests::ALERTMANAGER_TOKEN)
                .json(&body)
                .send()
        });
        let responses = futures::future::join_all(requests).await;
        for response in responses {
            assert_eq!(response.unwrap().status(), StatusCode::ACCEPTED);
        }
        // Different episodes of other alerts at the same time join it.
        for i in 0..5 {
            world
                .alert("firing", &format!("fp-other-{i}"), Utc::now())
                .await;
        }
        world.settle().await;
        let rollbacks = world.rollbacks().await;
        assert_eq!(rollbacks.len(), 1, "{rollbacks:#?}");
        assert_eq!(world.repo.rewind_branches().len(), 1);
        let timeline = events(&rollbacks[0]);
        assert_eq!(
            timeline.iter().filter(|e| *e == "alert_joined").count(),
            5,
            "{timeline:?}"
        );
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_main_between_proposal_and_merge_is_merged_around() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let proposal = world.bad_deploy_and_alert().await;
        let id = proposal["id"].as_str().unwrap().to_string();
        // Someone changes another app meanwhile, and bumps the bad app's
        // overlay once more.
        world.repo.commit(
            &[(
                "apps/other/kustomization.yaml",
                "resources: [] # touched\n".into(),
            )],
            "other app",
        );
        world.repo.commit(
            &[(
                "apps/checkout/overlays/prod/kustomization.yaml",
                overlay("v1.4.3"),
            )],
            "deploy(checkout/prod): v1.4.3",
        );
        // One approval (required_approvals = 1), then merge.
        let (status, body) = world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let merged = world.rollback(&id).await;
        assert_eq!(merged["state"], "merged", "{merged:#}");
        let good = world.repo.good.clone();
        for path in [APP_PATH, BASE_PATH] {
            assert_eq!(
                world.repo.object("main", path),
                world.repo.object(&good, path),
                "{path}"
            );
        }
        // The other app's change survived: history was not rewritten.
        assert!(
            world
                .repo
                .git(&["show", "main:apps/other/kustomization.yaml"])
                .contains("touched")
        );
        world.repo.fsck();
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_push_resumes_without_a_second_branch() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let proposal = world.bad_deploy_and_alert().await;
        let id = proposal["id"].as_str().unwrap().to_string();
        world.restart().await;
        world.tick(Utc::now() + Duration::minutes(5)).await;
        world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        world.restart().await;
        world.tick(Utc::now() + Duration::minutes(10)).await;
        assert_eq!(world.repo.rewind_branches().len(), 1);
        let rollback = world.rollback(&id).await;
        assert_eq!(rollback["state"], "merged");
        let merges = events(&rollback).iter().filter(|e| *e == "merged").count();
        assert_eq!(merges, 1);
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_rollback_holds_the_app_against_the_bad_image() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let proposal = world.bad_deploy_and_alert().await;
        let id = proposal["id"].as_str().unwrap().to_string();
        world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        let head = world.repo.head();
        world.deploy(3, &head, "Healthy").await;
        world.resolve("fp-1").await;
        world.tick(Utc::now() + Duration::minutes(10)).await;
        assert_eq!(world.rollback(&id).await["state"], "verified");

        // A developer brings v1.4.2 back.
        let bump = world.repo.commit(
            &[(
                "apps/checkout/overlays/prod/kustomization.yaml",
                overlay("v1.4.2"),
            )],
            "bring back v1.4.2",
        );
        let push = json!({
            "ref": "refs/heads/main", "before": head, "after": bump, "created": false, "deleted": false, "forced": false,
            "commits": [{"id": bump, "message": "bring back v1.4.2", "timestamp": Utc::now().to_rfc3339(),
                         "author": {"name": "Dev", "email": "dev@example.com"}}],
            "head_commit": {"id": bump, "message": "bring back v1.4.2", "timestamp": Utc::now().to_rfc3339(),
                            "author": {"name": "Dev", "email": "dev@example.com"}},
            "repository": {"full_name": "acme/gitops", "name": "gitops", "owner": {"login": "acme"}},
            "pusher": {"name": "dev", "email": "dev@example.com"}, "sender": {"login": "dev"}
        });
        assert_eq!(
            world.github_event("push", "delivery-push-1", &push).await,
            StatusCode::ACCEPTED
        );
        let rollback = world.rollback(&id).await;
        let violations: Vec<&Value> = rollback["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "hold_violation")
            .collect();
        assert_eq!(violations.len(), 1, "{rollback:#}");
        assert!(
            violations[0]["detail"].as_str().unwrap().contains("v1.4.2"),
            "{violations:?}"
        );
        // The same delivery again changes nothing.
        world.github_event("push", "delivery-push-1", &push).await;
        let again = world.rollback(&id).await;
        assert_eq!(
            again["timeline"].as_array().unwrap().len(),
            rollback["timeline"].as_array().unwrap().len()
        );
        world.finish().await;
    }
}
