//! Argo CD reports an app's history; each new entry queues a resolve job,
//! and a worker takes the app's queued resolves together (one Git call, one
//! write). Each job still gets its own answer: resolved from its own
//! commit, left unresolved (the app reads outside the repository there),
//! or retried (a commit the remote does not have).

use chrono::Utc;
use reqwest::StatusCode;
use rewind_domain::AppRef;
use rewind_ledger::JobState;
use rewind_tests::repo::{APP, APP_PATH, overlay};
use rewind_tests::{World, databases};

#[tokio::test]
async fn an_apps_queued_resolves_run_together_each_with_its_own_answer() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        let newer = world.repo.commit(
            &[(
                "apps/checkout/overlays/prod/kustomization.yaml",
                overlay("v1.4.3"),
            )],
            "deploy(checkout/prod): v1.4.3",
        );
        let escaping = world.repo.commit(
            &[(
                "apps/checkout/overlays/prod/kustomization.yaml",
                "resources:\n  - ../../../../../../etc\n".into(),
            )],
            "deploy(checkout/prod): read outside the repository",
        );
        let missing = "0123456789abcdef0123456789abcdef01234567".to_string();
        let entries = [&good, &bad, &newer, &missing, &escaping];
        for (revision, commit) in (1..).zip(entries) {
            let status = world
                .report_deploy(revision, commit, "Healthy", Utc::now())
                .await;
            assert_eq!(status, StatusCode::ACCEPTED);
        }
        let ledger = world.service().engine.ledger().clone();
        let app: AppRef = format!("{APP}@in-cluster").parse().expect("app ref");
        let queued = ledger.job_counts().await.expect("job counts");
        assert!(
            queued.iter().any(|c| c.kind == "resolve_deployment"
                && c.state == JobState::Queued
                && c.count == 5),
            "{queued:?}"
        );

        world.settle().await;

        let mut history = ledger.history(&app, 10).await.expect("history");
        history.reverse();
        assert_eq!(history.len(), 5);
        // Each resolved entry holds its own commit's tree and images.
        for (deployment, (commit, tag)) in
            history
                .iter()
                .zip([(&good, "v1.4.1"), (&bad, "v1.4.2"), (&newer, "v1.4.3")])
        {
            assert_eq!(
                deployment.tree.as_deref(),
                Some(world.repo.object(commit, APP_PATH).as_str()),
                "cluster revision {}",
                deployment.cluster_revision
            );
            assert_eq!(
                deployment.images,
                vec![format!("registry.example.com/shop/checkout:{tag}")]
            );
            assert!(deployment.config_hash.is_some());
        }
        let hashes: std::collections::HashSet<_> =
            history[..3].iter().map(|d| d.config_hash.clone()).collect();
        assert_eq!(hashes.len(), 3, "three configurations, three hashes");
        // The missing commit and the escaping one stay unresolved.
        assert!(history[3].config_hash.is_none() && history[4].config_hash.is_none());

        // Every job was claimed once; only the missing commit's is retried.
        for deployment in &history {
            let job = job_of(&world, deployment.id).await;
            assert_eq!(job.attempts, 1, "{job:?}");
            if deployment.cluster_revision == 4 {
                assert_eq!(job.state, JobState::Queued, "{job:?}");
                let error = job.last_error.as_deref().unwrap_or_default();
                assert!(error.contains(&missing[..7]), "{error}");
            } else {
                assert_eq!(job.state, JobState::Done, "{job:?}");
            }
        }
        world.finish().await;
    }
}

/// The resolve job of deployment `id` (a test database holds few jobs).
async fn job_of(world: &World, id: i64) -> rewind_ledger::Job {
    let ledger = world.service().engine.ledger().clone();
    for job_id in 1..=100 {
        if let Some(job) = ledger.job(job_id).await.expect("job")
            && job.kind == "resolve_deployment"
            && job.payload["deployment_id"] == id
        {
            return job;
        }
    }
    panic!("no resolve job for deployment {id}");
}
