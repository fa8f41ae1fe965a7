//! Readiness means "can record": while the Git remote is unreachable,
//! `/readyz` stays 200 (so a Kubernetes Service keeps sending webhooks),
//! webhooks are still recorded, and the outage is reported in the body and
//! in `/metrics`; it clears with the next successful fetch. On SQLite and
//! PostgreSQL.

use reqwest::StatusCode;
use rewind_tests::{World, databases};

async fn metrics(world: &World) -> String {
    world
        .client
        .get(format!("{}/metrics", world.url()))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn readiness_stays_200_while_the_git_remote_is_unreachable() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let (status, body) = world.get("/readyz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["checks"]["repository"], "ok", "{body}");

        // A commit the cache has never fetched, then the remote goes away
        // (as an unreachable Git host looks to libgit2).
        let (good, _) = (world.repo.good.clone(), world.repo.bad.clone());
        world.deploy(1, &good, "Healthy").await;
        let unseen = world.repo.commit(
            &[("apps/checkout/overlays/prod/extra.yaml", "a: 1\n".into())],
            "a commit the cache has not fetched",
        );
        let away = world.dir.path().join("gitops.git.away");
        std::fs::rename(&world.repo.path, &away).unwrap();

        // Argo CD reports it: recorded (202), and resolving it needs a fetch,
        // which fails.
        assert_eq!(
            world.deploy(2, &unseen, "Progressing").await,
            StatusCode::ACCEPTED
        );
        for _ in 0..3 {
            let (status, body) = world.get("/readyz").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["status"], "ready", "{body}");
            assert_eq!(body["checks"]["database"], "ok", "{body}");
            let repository = body["checks"]["repository"].as_str().unwrap_or_default();
            assert!(
                repository.starts_with("last fetch failed"),
                "the outage is reported: {body}"
            );
        }
        let scraped = metrics(&world).await;
        assert!(
            scraped.contains("rewind_readiness_check{check=\"repository\"} 0"),
            "{scraped}"
        );
        assert!(scraped.contains("rewind_ready 1"), "{scraped}");
        let (_, history) = world
            .get(&format!("/api/v1/apps/{}/history", rewind_tests::APP))
            .await;
        assert_eq!(
            history.as_array().map(Vec::len),
            Some(2),
            "the deploy during the outage is in the ledger: {history}"
        );

        // The remote is back: the next fetch clears the report.
        std::fs::rename(&away, &world.repo.path).unwrap();
        world.service().engine.git().fetch().await.expect("fetch");
        let (status, body) = world.get("/readyz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["checks"]["repository"], "ok", "{body}");
        world.finish().await;
    }
}
