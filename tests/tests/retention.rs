//! `[retention]` on every backend, against a real Git remote: the
//! `rewind/*` branches of finished rollbacks go after `branches`, on the
//! remote and in the cache, audited; open rollbacks' branches, branches of
//! rollbacks rewind does not know and every other branch stay. Delivery
//! records and finished jobs go after `deliveries`; queued jobs stay.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rewind_ledger::JobState;
use rewind_tests::{APP, World, databases};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_rollbacks_lose_their_branches_and_old_deliveries_go() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;

        // A: proposed by the alert, then cancelled (finished).
        let first = world.bad_deploy_and_alert().await;
        let finished = first["id"].as_str().unwrap().to_string();
        let finished_branch = first["branch"].as_str().unwrap().to_string();
        let (status, cancelled) = world
            .api(&format!("/api/v1/rollbacks/{finished}/cancel"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{cancelled}");
        assert_eq!(world.rollback(&finished).await["state"], "cancelled");

        // B: asked for by a person, still open.
        let (status, open) = world
            .api(
                &format!("/api/v1/apps/{APP}/rollbacks"),
                json!({"reason": "still being reviewed"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{open}");
        let open_branch = open["branch"].as_str().unwrap().to_string();
        assert_ne!(open_branch, finished_branch);

        // Branches that are not rewind's to delete: a person's branch, and
        // a rewind-shaped one whose rollback this ledger never had.
        let main = world.repo.head();
        let stranger = "rewind/checkout/01890a5d-ac96-774b-bcce-b302099a8057".to_string();
        for branch in ["feature/keep-me", stranger.as_str()] {
            world.repo.git(&["branch", branch, "refs/heads/main"]);
        }
        // The cache sees them at its next fetch, as it would in production.
        world.service().engine.git().fetch().await.unwrap();

        let now = Utc::now();
        let ledger = world.service().engine.ledger().clone();
        let mut expected = vec![
            finished_branch.clone(),
            open_branch.clone(),
            stranger.clone(),
        ];
        expected.sort();

        // Younger than `branches` (7d): nothing goes.
        world.tick(now + Duration::days(1)).await;
        assert_eq!(world.repo.rewind_branches(), expected);

        // Older: only the finished rollback's branch, on the remote and in
        // the cache, once.
        world.tick(now + Duration::days(8)).await;
        let mut left = vec![open_branch.clone(), stranger.clone()];
        left.sort();
        assert_eq!(world.repo.rewind_branches(), left);
        assert_eq!(
            world.repo.git(&["rev-parse", "refs/heads/feature/keep-me"]),
            main
        );
        assert_eq!(world.repo.head(), main);
        let cached = world
            .service()
            .engine
            .git()
            .rollback_branches()
            .await
            .unwrap();
        assert_eq!(cached, left, "the cache forgets the deleted branch too");
        let audit = ledger
            .audit_log(Some(&format!("rollback/{finished}")), 50)
            .await
            .unwrap();
        let deletions: Vec<_> = audit
            .iter()
            .filter(|r| r.entry.action == "retention.branch_deleted")
            .collect();
        assert_eq!(deletions.len(), 1, "{audit:#?}");
        assert_eq!(deletions[0].entry.actor, "system");
        assert_eq!(
            deletions[0].entry.detail["branch"],
            finished_branch.as_str()
        );
        assert_eq!(deletions[0].entry.detail["state"], "cancelled");
        // The open rollback is untouched and still works.
        let open_now = world.rollback(open["id"].as_str().unwrap()).await;
        assert_eq!(open_now["state"], open["state"], "{open_now:#}");

        // Running it again (another replica, a retried job) changes nothing.
        let again = world
            .service()
            .engine
            .apply_retention(now + Duration::days(8))
            .await
            .unwrap();
        assert!(again.branches_deleted.is_empty(), "{again:?}");
        assert_eq!(world.repo.rewind_branches(), left);

        // Deliveries and finished jobs: kept for 30 days, then pruned;
        // a job still queued is never pruned.
        let queued = ledger
            .enqueue(
                "retention-test-never-claimed",
                json!({}),
                None,
                now - Duration::days(60),
            )
            .await
            .unwrap()
            .unwrap();
        let young = world
            .service()
            .engine
            .apply_retention(now + Duration::days(8))
            .await
            .unwrap();
        assert_eq!((young.deliveries_pruned, young.jobs_pruned), (0, 0));
        let old = world
            .service()
            .engine
            .apply_retention(now + Duration::days(31))
            .await
            .unwrap();
        assert!(old.deliveries_pruned >= 3, "{old:?}");
        assert!(old.jobs_pruned >= 3, "{old:?}");
        let counts = ledger.job_counts().await.unwrap();
        assert!(
            counts
                .iter()
                .all(|c| !matches!(c.state, JobState::Done | JobState::Dead)),
            "{counts:?}"
        );
        assert_eq!(
            ledger.job(queued).await.unwrap().map(|j| j.state),
            Some(JobState::Queued)
        );
        // With its record gone, the same Argo CD delivery is recorded
        // again, and still adds no deployment the ledger already has.
        let deployments = |history: serde_json::Value| -> Vec<(i64, i64)> {
            history
                .as_array()
                .expect("a history")
                .iter()
                .map(|d| {
                    (
                        d["id"].as_i64().unwrap(),
                        d["cluster_revision"].as_i64().unwrap(),
                    )
                })
                .collect()
        };
        let path = format!("/api/v1/apps/{APP}/history");
        let before = deployments(world.get(&path).await.1);
        assert_eq!(before.len(), 2, "{before:?}");
        let bad = world.repo.bad.clone();
        assert_eq!(
            world.deploy(2, &bad, "Degraded").await,
            StatusCode::ACCEPTED
        );
        assert_eq!(deployments(world.get(&path).await.1), before);

        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_keeps_everything() {
    for db in databases().await {
        let mut world = World::start(db, |s| {
            s.retention.branches = rewind_config::HumanDuration::from_secs(0);
            s.retention.deliveries = rewind_config::HumanDuration::from_secs(0);
        })
        .await;
        let first = world.bad_deploy_and_alert().await;
        let id = first["id"].as_str().unwrap().to_string();
        let (status, _) = world
            .api(&format!("/api/v1/rollbacks/{id}/cancel"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        let report = world
            .service()
            .engine
            .apply_retention(Utc::now() + Duration::days(3650))
            .await
            .unwrap();
        assert_eq!(report, rewind_engine::RetentionReport::default());
        assert_eq!(world.repo.rewind_branches().len(), 1);
        world.finish().await;
    }
}
