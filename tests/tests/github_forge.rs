//! The loop on GitHub, against the strict fake GitHub (the only fake in the
//! suite): the PR is opened with its labels and report, an approving review
//! from a user with write access merges it, GitHub's merge really moves
//! `main`, failures are retried without a second PR or merge.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rewind_config::{ForgeKind, Secret};
use rewind_forge::fake::{FakeGitHub, FakeOptions};
use rewind_tests::repo::BASE_PATH;
use rewind_tests::{APP_PATH, World, databases};
use serde_json::{Value, json};

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
    fake.set_permission("alice", "write");
    fake.set_permission("mallory", "read");
    let forge = &mut world.settings.forge;
    forge.kind = ForgeKind::Github;
    forge.api_url = Some(fake.url().to_string());
    forge.owner = Some("acme".into());
    forge.repo = Some("gitops".into());
    forge.token = Some(Secret::new(TOKEN));
    forge.max_wait = rewind_config::HumanDuration::from_secs(2);
    world.boot().await;
    (world, fake)
}

fn review(number: u64, user: &str, state: &str, id: u64) -> Value {
    json!({
        "action": "submitted",
        "review": {"id": id, "user": {"login": user}, "state": state, "commit_id": null,
                   "author_association": "MEMBER", "submitted_at": Utc::now().to_rfc3339(), "body": null},
        "pull_request": {"number": number, "head": {"ref": "x", "sha": "0000000000000000000000000000000000000000"},
                         "base": {"ref": "main"}},
        "repository": {"full_name": "acme/gitops", "name": "gitops", "owner": {"login": "acme"}},
        "sender": {"login": user}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_request_review_merge_and_verify() {
    for db in databases().await {
        let (mut world, fake) = github_world(db).await;
        let proposal = world.bad_deploy_and_alert().await;
        let id = proposal["id"].as_str().unwrap().to_string();
        let rollback = world.rollback(&id).await;
        assert_eq!(rollback["state"], "pr_open", "{rollback:#}");
        let prs = fake.pull_requests();
        assert_eq!(prs.len(), 1);
        let pr = &prs[0];
        assert_eq!(rollback["pr"]["number"], pr.number);
        assert!(
            pr.labels.contains(&"rewind".to_string())
                && pr.labels.contains(&"rollback".to_string())
        );
        let body = pr.body.clone().unwrap_or_default();
        for needle in ["CheckoutHighErrorRate", "/rewind merge", "v1.4.1"] {
            assert!(body.contains(needle), "PR body lacks {needle}:\n{body}");
        }

        // A review from someone without write access does not count.
        world
            .github_event(
                "pull_request_review",
                "d-1",
                &review(pr.number, "mallory", "approved", 1),
            )
            .await;
        assert_eq!(world.rollback(&id).await["state"], "pr_open");
        // Alice approves: rewind merges through GitHub's merge API.
        let status = world
            .github_event(
                "pull_request_review",
                "d-2",
                &review(pr.number, "alice", "approved", 2),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let merged = world.rollback(&id).await;
        assert_eq!(merged["state"], "merged", "{merged:#}");
        let pr = fake.pull_request(pr.number).unwrap();
        assert!(pr.merged);
        let good = world.repo.good.clone();
        for path in [APP_PATH, BASE_PATH] {
            assert_eq!(
                world.repo.object("main", path),
                world.repo.object(&good, path)
            );
        }
        let head = world.repo.head();
        assert_eq!(Some(head.clone()), pr.merge_commit_sha);
        world.deploy(3, &head, "Healthy").await;
        world.resolve("fp-1").await;
        world.tick(Utc::now() + Duration::minutes(10)).await;
        let verified = world.rollback(&id).await;
        assert_eq!(verified["state"], "verified");
        // The verdict is on the rollback's commit as `rewind/verify`.
        let status = fake
            .statuses()
            .into_iter()
            .rfind(|s| s.context == "rewind/verify")
            .expect("a rewind/verify status");
        assert_eq!(status.state, "success");
        assert_eq!(status.sha, verified["commit"].as_str().unwrap());
        assert!(
            fake.comments(pr.number)
                .iter()
                .any(|c| c.body.contains("verified"))
        );
        assert_eq!(fake.pull_requests().len(), 1, "exactly one PR");
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_failures_are_retried_without_duplicates() {
    for db in databases().await {
        let (mut world, fake) = github_world(db).await;
        // Opening the PR fails hard (the forge's budget runs out): the job
        // fails after the branch was pushed. A restart picks it up.
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        world
            .deploy_at(1, &good, "Healthy", Utc::now() - Duration::hours(1))
            .await;
        world.tick(Utc::now()).await;
        world.deploy(2, &bad, "Degraded").await;
        fake.fail_next(1000, 502);
        world.alert("firing", "fp-1", Utc::now()).await;
        let rollback = world.rollbacks().await.remove(0);
        let id = rollback["id"].as_str().unwrap().to_string();
        assert_eq!(rollback["state"], "proposed");
        assert_eq!(world.repo.rewind_branches().len(), 1);
        fake.clear_faults();
        world.restart().await;
        world.tick(Utc::now() + Duration::minutes(30)).await;
        assert_eq!(world.rollback(&id).await["state"], "pr_open");
        assert_eq!(fake.pull_requests().len(), 1);

        // A secondary rate limit on the merge is waited out (an admin's
        // override: no approvals needed for this test).
        fake.secondary_rate_limit_next(1);
        let (status, body) = world
            .api(
                &format!("/api/v1/rollbacks/{id}/merge"),
                json!({"override": true, "reason": "retry test"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "merged");
        // A second merge request is refused, not repeated.
        let (status, _) = world
            .api(&format!("/api/v1/rollbacks/{id}/merge"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let merges = fake
            .requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.ends_with("/merge"))
            .count();
        assert!(merges >= 1);
        assert_eq!(fake.pull_requests().iter().filter(|p| p.merged).count(), 1);
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_in_comments_and_closing_the_pr() {
    for db in databases().await {
        let (mut world, fake) = github_world(db).await;
        let proposal = world.bad_deploy_and_alert().await;
        let id = proposal["id"].as_str().unwrap().to_string();
        let number = fake.pull_requests()[0].number;
        let comment = |user: &str, body: &str, id: u64| {
            json!({
                "action": "created",
                "issue": {"number": number, "pull_request": {"url": "x"}, "title": "t", "user": {"login": user}},
                "comment": {"id": id, "body": body, "user": {"login": user}, "author_association": "MEMBER",
                            "created_at": Utc::now().to_rfc3339()},
                "repository": {"full_name": "acme/gitops", "name": "gitops", "owner": {"login": "acme"}},
                "sender": {"login": user}
            })
        };
        world
            .github_event(
                "issue_comment",
                "c-1",
                &comment("mallory", "/rewind merge", 11),
            )
            .await;
        assert_eq!(world.rollback(&id).await["state"], "pr_open");
        world
            .github_event(
                "issue_comment",
                "c-2",
                &comment("alice", "/rewind cancel", 12),
            )
            .await;
        let cancelled = world.rollback(&id).await;
        assert_eq!(cancelled["state"], "cancelled", "{cancelled:#}");
        assert!(!fake.pull_request(number).unwrap().open);
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_identical_alerts_open_one_pull_request() {
    for db in databases().await {
        let (mut world, fake) = github_world(db).await;
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
        let sends = (0..1000).map(|_| {
            world
                .client
                .post(&url)
                .bearer_auth(rewind_tests::ALERTMANAGER_TOKEN)
                .json(&body)
                .send()
        });
        for response in futures::future::join_all(sends).await {
            assert_eq!(response.unwrap().status(), StatusCode::ACCEPTED);
        }
        world.settle().await;
        assert_eq!(world.rollbacks().await.len(), 1);
        assert_eq!(fake.pull_requests().len(), 1);
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_approval_and_merge_merges_once() {
    for db in databases().await {
        let (mut world, fake) = github_world(db).await;
        let proposal = world.bad_deploy_and_alert().await;
        let id = proposal["id"].as_str().unwrap().to_string();
        // GitHub is down when the approval arrives: the merge step fails.
        fake.fail_next(1000, 502);
        let (status, body) = world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(world.rollback(&id).await["state"], "approved");
        fake.clear_faults();
        // The merge reaches GitHub but its answer is lost; rewind restarts.
        fake.lose_next_write_answer(std::time::Duration::from_secs(60));
        world.restart().await;
        world.tick(Utc::now() + Duration::minutes(5)).await;
        assert!(
            fake.pull_requests()[0].merged,
            "GitHub merged, rewind did not hear back"
        );
        assert_eq!(world.rollback(&id).await["state"], "approved");
        // The job's retry (due after its backoff; run here directly) finds
        // the merge done and records it, without merging twice.
        world.restart().await;
        let rollback_id = id.parse().unwrap();
        world.service().engine.advance(rollback_id).await.unwrap();
        let rollback = world.rollback(&id).await;
        assert_eq!(rollback["state"], "merged", "{rollback:#}");
        assert_eq!(fake.pull_requests().iter().filter(|p| p.merged).count(), 1);
        let merged_events = rollback["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "merged")
            .count();
        assert_eq!(merged_events, 1);
        world.repo.fsck();
        world.finish().await;
    }
}
