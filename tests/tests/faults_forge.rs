//! Forge faults through the whole service, against the strict fake GitHub:
//! while the rollback's pull request is opened and merged, GitHub answers
//! 502s, a 429 and a 403 secondary rate limit with `retry-after`, an
//! exhausted primary limit with `x-ratelimit-reset`, and a response slower
//! than `forge.request_timeout`. rewind waits as told (never before
//! `retry-after` or the reset), never opens a second pull request or merges
//! twice, and completes. When the faults outlast `forge.max_wait`, the step
//! fails with the reason on the timeline and the job's retry finishes it.
//! On SQLite and PostgreSQL.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use rewind_config::{ForgeKind, HumanDuration, Secret};
use rewind_forge::fake::{FakeGitHub, FakeOptions, RecordedRequest};
use rewind_tests::faults::{backoff_elapses, timeline_details};
use rewind_tests::{World, databases};
use serde_json::json;

const TOKEN: &str = "ghs_faketoken";

async fn github_world(db: rewind_ledger::testing::TestDatabase) -> (World, FakeGitHub) {
    let mut world = World::new(db);
    let fake = FakeGitHub::start(FakeOptions::new(
        "acme",
        "gitops",
        world.repo.path.clone(),
        TOKEN,
    ))
    .await
    .expect("fake GitHub starts");
    let forge = &mut world.settings.forge;
    forge.kind = ForgeKind::Github;
    forge.api_url = Some(fake.url().to_string());
    forge.owner = Some("acme".into());
    forge.repo = Some("gitops".into());
    forge.token = Some(Secret::new(TOKEN));
    forge.max_wait = HumanDuration::from_secs(20);
    forge.request_timeout = HumanDuration::from_secs(1);
    world.boot().await;
    (world, fake)
}

fn pull_request_creations(requests: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/pulls"))
        .collect()
}

/// The gap between the first request answered `status` and the request
/// after it.
fn wait_after(requests: &[RecordedRequest], status: u16) -> Duration {
    let i = requests
        .iter()
        .position(|r| r.status == status)
        .unwrap_or_else(|| panic!("no request answered {status}: {requests:#?}"));
    let next = requests
        .get(i + 1)
        .unwrap_or_else(|| panic!("nothing after the {status}"));
    next.at.duration_since(requests[i].at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_server_errors_and_slow_answers_are_waited_out_with_one_pull_request() {
    for db in databases().await {
        let (mut world, fake) = github_world(db).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        world
            .deploy_at(1, &good, "Healthy", Utc::now() - chrono::Duration::hours(1))
            .await;
        world.tick(Utc::now()).await;
        world.deploy(2, &bad, "Degraded").await;

        // Opening the PR meets every kind of trouble GitHub produces, in a
        // row: an answer slower than the request timeout, a server error,
        // a secondary limit as 429 and as 403 with `retry-after`.
        fake.clear_requests();
        fake.delay_next(Duration::from_secs(3));
        fake.fail_next(1, 502);
        fake.too_many_requests_next(2);
        fake.secondary_rate_limit_next(1);
        assert_eq!(
            world.alert("firing", "fp-1", Utc::now()).await,
            StatusCode::ACCEPTED
        );
        let rollbacks = world.rollbacks().await;
        assert_eq!(rollbacks.len(), 1);
        let id = rollbacks[0]["id"].as_str().unwrap().to_string();
        let rollback = world.rollback(&id).await;
        assert_eq!(rollback["state"], "pr_open", "{rollback:#}");
        assert_eq!(fake.pull_requests().len(), 1, "exactly one pull request");
        let requests = fake.requests();
        let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
        for status in [502, 429, 403] {
            assert!(statuses.contains(&status), "{status} in {statuses:?}");
        }
        assert!(
            statuses.contains(&0),
            "the slow answer was given up on: {statuses:?}"
        );
        assert!(
            wait_after(&requests, 429) >= Duration::from_secs(2),
            "waited the 429's retry-after"
        );
        assert!(
            wait_after(&requests, 403) >= Duration::from_secs(1),
            "waited the 403's retry-after"
        );
        let creations = pull_request_creations(&requests);
        assert_eq!(
            creations.iter().filter(|r| r.status == 201).count(),
            1,
            "one creation went through: {creations:#?}"
        );

        // The merge finds the primary rate limit exhausted (answered 429,
        // with only `x-ratelimit-reset`): it waits for the reset.
        fake.clear_requests();
        fake.primary_rate_limit_429_next(2);
        let (status, body) = world
            .api(
                &format!("/api/v1/rollbacks/{id}/merge"),
                json!({"override": true, "reason": "fault test"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "merged", "{body}");
        let requests = fake.requests();
        assert!(
            wait_after(&requests, 429) >= Duration::from_secs(1),
            "waited for x-ratelimit-reset: {requests:#?}"
        );
        assert_eq!(fake.pull_requests().iter().filter(|p| p.merged).count(), 1);
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_max_wait_is_recorded_and_the_retry_completes() {
    for db in databases().await {
        let (mut world, fake) = github_world(db).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        world
            .deploy_at(1, &good, "Healthy", Utc::now() - chrono::Duration::hours(1))
            .await;
        world.tick(Utc::now()).await;
        world.deploy(2, &bad, "Degraded").await;
        // A rate limit longer than the budget: rewind does not sit on it.
        fake.secondary_rate_limit_next(3600);
        world.alert("firing", "fp-1", Utc::now()).await;
        let id = world.rollbacks().await[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let rollback = world.rollback(&id).await;
        assert_eq!(rollback["state"], "proposed", "{rollback:#}");
        let failures = timeline_details(&rollback, "step_failed");
        assert_eq!(failures.len(), 1, "{rollback:#}");
        assert!(
            failures[0].contains("at the forge") && failures[0].contains("secondary rate limit"),
            "{failures:?}"
        );
        assert!(failures[0].contains("retrying in"), "{failures:?}");
        assert!(fake.pull_requests().is_empty());

        // GitHub is fine again when the job's backoff has passed.
        backoff_elapses(&world).await;
        world.settle().await;
        assert_eq!(world.rollback(&id).await["state"], "pr_open");
        assert_eq!(fake.pull_requests().len(), 1);
        assert_eq!(
            world.repo.rewind_branches().len(),
            1,
            "the branch is reused"
        );
        world.finish().await;
    }
}
