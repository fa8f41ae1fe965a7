//! Git faults, against a real Git server (`git daemon`, pushes through
//! `git receive-pack`): a remote whose `pre-receive` hook refuses pushes,
//! and a remote that is unreachable (the daemon stopped). Each time the
//! rollback records the error on its timeline, its job retries with a
//! growing backoff, webhooks are still recorded, and once the remote takes
//! pushes again the rollback completes with one branch and one merge,
//! fast-forward only (never forced). On SQLite and PostgreSQL.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rewind_config::SecretUrl;
use rewind_ingest::samples::{HistoryEntry, argocd_notification};
use rewind_tests::faults::{backoff_elapses, timeline_details, timeline_events};
use rewind_tests::git_daemon::{GitDaemon, accept_pushes, refuse_pushes};
use rewind_tests::{APP, APP_PATH, ARGOCD_TOKEN, World, databases};
use serde_json::json;

/// Argo CD reports revision `id` of the app, naming the repository as
/// `repo_url` (the daemon's URL, which is `git.url`).
async fn deploy(
    world: &mut World,
    repo_url: &str,
    id: i64,
    commit: &str,
    health: &str,
    at: chrono::DateTime<Utc>,
) -> StatusCode {
    if !world.history.iter().any(|h| h.id == id) {
        world.history.push(HistoryEntry {
            id,
            revision: commit.to_string(),
            deployed_at: at,
        });
    }
    let body = argocd_notification(
        "on-deployed",
        APP,
        repo_url,
        APP_PATH,
        &world.history,
        health,
    );
    let (status, _) = world
        .post_json("/webhooks/argocd", ARGOCD_TOKEN, &body)
        .await;
    world.settle().await;
    status
}

/// Seconds until the retry, as the timeline's `step_failed` detail says.
fn retry_wait(detail: &str) -> i64 {
    detail
        .split("retrying in ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retry wait in {detail:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_push_and_an_unreachable_remote_are_retried_and_complete() {
    for db in databases().await {
        let mut world = World::new(db);
        let mut daemon = GitDaemon::start(world.path()).await;
        let url = daemon.url("gitops.git");
        world.settings.git.url = SecretUrl::new(url.clone());
        world.boot().await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        let main_before = world.repo.head();

        // The Git host refuses every push (a policy hook).
        refuse_pushes(&world.repo.path, "pushes are frozen for the release");
        let t0 = Utc::now() - Duration::hours(1);
        assert_eq!(
            deploy(&mut world, &url, 1, &good, "Healthy", t0).await,
            StatusCode::ACCEPTED
        );
        world.tick(Utc::now()).await;
        assert_eq!(
            deploy(&mut world, &url, 2, &bad, "Degraded", Utc::now()).await,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            world.alert("firing", "fp-1", Utc::now()).await,
            StatusCode::ACCEPTED
        );
        let rollbacks = world.rollbacks().await;
        assert_eq!(rollbacks.len(), 1, "{rollbacks:#?}");
        let id = rollbacks[0]["id"].as_str().unwrap().to_string();
        let rollback = world.rollback(&id).await;
        assert_eq!(rollback["state"], "proposed", "{rollback:#}");
        assert!(
            !timeline_events(&rollback).contains(&"pushed".to_string()),
            "{rollback:#}"
        );
        let failures = timeline_details(&rollback, "step_failed");
        assert_eq!(failures.len(), 1, "{rollback:#}");
        assert!(
            failures[0].contains("attempt 1 of") && failures[0].contains("declined"),
            "the timeline says the remote refused: {failures:?}"
        );
        assert!(
            world.repo.rewind_branches().is_empty(),
            "nothing reached the remote"
        );
        let harness = world.db.connect().await;
        assert_eq!(
            harness
                .count(
                    "SELECT COUNT(*) AS n FROM jobs WHERE kind = 'advance_rollback' \
                     AND state = 'queued' AND attempts = 1 AND last_error LIKE '%declined%'"
                )
                .await
                .unwrap(),
            1,
            "the job keeps the error and waits for its retry"
        );

        // The backoff passes; the hook still refuses; the next wait is longer.
        assert_eq!(backoff_elapses(&world).await, 1);
        world.settle().await;
        let failures = timeline_details(&world.rollback(&id).await, "step_failed");
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures[1].contains("attempt 2 of"), "{failures:?}");
        assert!(
            retry_wait(&failures[1]) > retry_wait(&failures[0]),
            "the backoff grows: {failures:?}"
        );

        // Webhooks are still recorded meanwhile.
        assert_eq!(
            deploy(&mut world, &url, 3, &bad, "Degraded", Utc::now()).await,
            StatusCode::ACCEPTED
        );
        let (_, history) = world.get(&format!("/api/v1/apps/{APP}/history")).await;
        assert_eq!(history.as_array().map(Vec::len), Some(3), "{history}");

        // The host takes pushes again: the retry pushes the branch once.
        accept_pushes(&world.repo.path);
        backoff_elapses(&world).await;
        world.settle().await;
        let rollback = world.rollback(&id).await;
        assert!(
            timeline_events(&rollback).contains(&"pushed".to_string()),
            "{rollback:#}"
        );
        let branches = world.repo.rewind_branches();
        assert_eq!(branches.len(), 1, "{branches:?}");
        assert_eq!(Some(branches[0].as_str()), rollback["branch"].as_str());

        // Now the Git host goes away entirely, just as the rollback is
        // approved: the merge cannot be pushed.
        daemon.stop();
        let (status, body) = world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let rollback = world.rollback(&id).await;
        assert_ne!(rollback["state"], "merged", "{rollback:#}");
        let failures = timeline_details(&rollback, "step_failed");
        assert_eq!(failures.len(), 3, "{failures:?}");
        assert!(failures[2].contains("at Git"), "{failures:?}");
        // `/readyz` stays 200: webhooks can still be recorded.
        let (status, ready) = world.get("/readyz").await;
        assert_eq!(status, StatusCode::OK, "{ready}");
        assert_eq!(world.repo.head(), main_before, "main did not move");

        // Back: the retry merges, once, as a fast-forward of main.
        daemon.resume().await;
        backoff_elapses(&world).await;
        world.settle().await;
        let rollback = world.rollback(&id).await;
        assert_eq!(rollback["state"], "merged", "{rollback:#}");
        let merged: Vec<_> = timeline_events(&rollback)
            .into_iter()
            .filter(|e| e == "merged")
            .collect();
        assert_eq!(merged.len(), 1, "{rollback:#}");
        let head = world.repo.head();
        assert_eq!(Some(head.as_str()), rollback["merge_commit"].as_str());
        world
            .repo
            .git(&["merge-base", "--is-ancestor", &main_before, &head]);
        assert_eq!(world.repo.rewind_branches().len(), 1);
        world.repo.fsck();
        drop(daemon);
        world.finish().await;
    }
}
