//! State that cannot be lost, on SQLite and PostgreSQL: approvals raced
//! against every workflow step (push, PR, recovery ticks, the rebuild on a
//! not-mergeable PR, the merge) are all kept, and the PR number and branch
//! too; a rebuild interrupted after saving its intent resumes on the branch
//! derived from the rollback id and its attempt, without a second PR.

use chrono::Utc;
use reqwest::StatusCode;
use rewind_config::{ApiToken, ForgeKind, Role, Secret};
use rewind_domain::{RollbackId, TimelineEntry, TimelineEvent};
use rewind_forge::fake::{FakeGitHub, FakeOptions};
use rewind_tests::{APP, World, databases};
use serde_json::{Value, json};

const GITHUB_TOKEN: &str = "ghs_faketoken";
const APPROVERS: usize = 12;

fn token(name: &str) -> String {
    format!("{name}-token")
}

fn approver(i: usize) -> String {
    format!("approver-{i}")
}

/// A GitHub world where approvals never complete on their own
/// (`required_approvals` above the number of approvers): only an admin's
/// override merges, so every approval may race every step.
async fn world(db: rewind_ledger::testing::TestDatabase) -> (World, FakeGitHub) {
    let mut world = World::new(db);
    let fake = FakeGitHub::start(FakeOptions::new(
        "acme",
        "gitops",
        world.repo.path.clone(),
        GITHUB_TOKEN,
    ))
    .await
    .expect("fake GitHub starts");
    let forge = &mut world.settings.forge;
    forge.kind = ForgeKind::Github;
    forge.api_url = Some(fake.url().to_string());
    forge.owner = Some("acme".into());
    forge.repo = Some("gitops".into());
    forge.token = Some(Secret::new(GITHUB_TOKEN));
    forge.max_wait = rewind_config::HumanDuration::from_secs(2);
    world.settings.policy.required_approvals = 100;
    let mut tokens = vec![
        ("olivia".to_string(), Role::Operator),
        ("root".to_string(), Role::Admin),
    ];
    tokens.extend((0..APPROVERS * 2).map(|i| (approver(i), Role::Approver)));
    world.settings.api.tokens = tokens
        .into_iter()
        .map(|(name, role)| ApiToken {
            token: Secret::new(token(&name)),
            name,
            role,
        })
        .collect();
    world.boot().await;
    (world, fake)
}

async fn get_rollback(world: &World, id: &str) -> Value {
    world
        .client
        .get(format!("{}/api/v1/rollbacks/{id}", world.url()))
        .bearer_auth(token("root"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

fn approvers_of(rollback: &Value) -> Vec<String> {
    let mut by: Vec<String> = rollback["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["by"].as_str().unwrap().to_string())
        .collect();
    by.sort();
    by
}

/// Revision 2 deployed over known-good revision 1; olivia asks for the
/// rollback. Nothing is run yet: the push and PR steps are queued.
async fn propose(world: &mut World) -> String {
    let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
    world
        .deploy_at(1, &good, "Healthy", Utc::now() - chrono::Duration::hours(1))
        .await;
    world.tick(Utc::now()).await;
    world.deploy(2, &bad, "Healthy").await;
    let (status, body) = world
        .post_json(
            &format!("/api/v1/apps/{APP}/rollbacks"),
            &token("olivia"),
            &json!({"to_revision": 1, "reason": "race"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body:#}");
    body["id"].as_str().unwrap().to_string()
}

/// Approvals from `who`, all at once; answers the ones that were accepted.
async fn approve_all(world: &World, id: &str, who: Vec<String>) -> Vec<String> {
    let url = format!("{}/api/v1/rollbacks/{id}/approve", world.url());
    let sends = who.into_iter().map(|name| {
        let request = world
            .client
            .post(&url)
            .bearer_auth(token(&name))
            .json(&json!({}))
            .send();
        async move {
            let status = request.await.expect("approve").status();
            assert!(
                status == StatusCode::OK || status == StatusCode::CONFLICT,
                "{name}: {status}"
            );
            (status == StatusCode::OK).then_some(name)
        }
    });
    futures::future::join_all(sends)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approvals_racing_every_step_lose_nothing() {
    for db in databases().await {
        let (mut world, fake) = world(db).await;
        let id = propose(&mut world).await;
        let rollback_id: RollbackId = id.parse().unwrap();
        let engine = world.service().engine.clone();

        // Push and PR (three workers and direct steps), recovery ticks, and
        // twelve approvals, all at once.
        let steps = async {
            let runs = (0..3).map(|_| {
                let engine = engine.clone();
                async move {
                    engine.drain().await.expect("jobs");
                    engine.advance(rollback_id).await.expect("advance");
                    engine
                        .tick(Utc::now() + chrono::Duration::minutes(5))
                        .await
                        .expect("tick");
                    engine.drain().await.expect("jobs");
                }
            });
            futures::future::join_all(runs).await;
        };
        let (accepted, ()) = tokio::join!(
            approve_all(&world, &id, (0..APPROVERS).map(approver).collect()),
            steps
        );
        world.settle().await;
        assert_eq!(
            accepted.len(),
            APPROVERS,
            "before the merge, all are accepted"
        );

        let rollback = get_rollback(&world, &id).await;
        let mut expected = accepted.clone();
        expected.sort();
        assert_eq!(approvers_of(&rollback), expected, "{rollback:#}");
        let prs = fake.pull_requests();
        assert_eq!(prs.len(), 1, "one PR: {prs:#?}");
        assert_eq!(rollback["state"], "pr_open");
        assert_eq!(rollback["pr"]["number"], prs[0].number);
        let branch = rewind_git::rollback_branch(&APP.parse().unwrap(), &rollback_id);
        assert_eq!(rollback["branch"], branch.as_str());
        assert_eq!(world.repo.rewind_branches(), std::slice::from_ref(&branch));

        // The PR is not mergeable: an admin's override rebuilds it on a
        // branch of its own and merges that, while twelve more approvals
        // arrive. Every accepted approval is kept; late ones are refused.
        fake.set_mergeable(prs[0].number, false);
        let (merge_path, root, body) = (
            format!("/api/v1/rollbacks/{id}/merge"),
            token("root"),
            json!({"override": true, "reason": "race test"}),
        );
        let merge = world.post_json(&merge_path, &root, &body);
        let more = approve_all(
            &world,
            &id,
            (APPROVERS..APPROVERS * 2).map(approver).collect(),
        );
        let ((status, body), late) = tokio::join!(merge, more);
        assert_eq!(status, StatusCode::OK, "{body:#}");
        world.settle().await;

        let rollback = get_rollback(&world, &id).await;
        assert_eq!(rollback["state"], "merged", "{rollback:#}");
        let mut expected: Vec<String> = accepted.into_iter().chain(late).collect();
        expected.sort();
        assert_eq!(approvers_of(&rollback), expected, "{rollback:#}");
        let rebuilt = format!("{branch}-rebuild-1");
        assert_eq!(rollback["branch"], rebuilt.as_str(), "{rollback:#}");
        let prs = fake.pull_requests();
        assert_eq!(prs.len(), 2, "the old PR and the rebuilt one: {prs:#?}");
        let new_pr = prs
            .iter()
            .find(|p| p.head_ref == rebuilt)
            .expect("rebuilt PR");
        assert_eq!(rollback["pr"]["number"], new_pr.number);
        assert!(new_pr.merged);
        assert!(
            prs.iter()
                .any(|p| p.head_ref == branch && !p.open && !p.merged)
        );
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_interrupted_after_its_intent_resumes_on_its_own_branch() {
    for db in databases().await {
        let (mut world, fake) = world(db).await;
        let id = propose(&mut world).await;
        world.settle().await;
        let rollback_id: RollbackId = id.parse().unwrap();
        let old_pr = fake.pull_requests()[0].number;
        fake.set_mergeable(old_pr, false);
        // A crash right after the rebuild's intent was saved: the timeline
        // says it started, nothing else happened.
        world
            .service()
            .engine
            .ledger()
            .append_timeline(
                rollback_id,
                TimelineEntry {
                    at: Utc::now(),
                    event: TimelineEvent::RebuildStarted,
                    detail: "attempt 1: not mergeable".into(),
                },
            )
            .await
            .unwrap();
        // The `closed` webhook of the old PR (rewind closes it itself when
        // it rebuilds) arrives before the rebuild is done: it does not
        // cancel the rollback.
        let closed = json!({
            "action": "closed",
            "number": old_pr,
            "pull_request": {"number": old_pr, "merged": false, "merge_commit_sha": null,
                             "head": {"ref": "x", "sha": "0000000000000000000000000000000000000000"},
                             "base": {"ref": "main"}, "updated_at": Utc::now().to_rfc3339(),
                             "closed_at": Utc::now().to_rfc3339(), "merged_at": null,
                             "user": {"login": "rewind[bot]"}, "merged_by": null},
            "repository": {"full_name": "acme/gitops", "name": "gitops", "owner": {"login": "acme"}},
            "sender": {"login": "rewind[bot]"}
        });
        assert_eq!(
            world
                .github_event("pull_request", "closed-1", &closed)
                .await,
            StatusCode::ACCEPTED
        );
        // The next steps resume the attempt, then find it done.
        for _ in 0..3 {
            world.service().engine.advance(rollback_id).await.unwrap();
        }

        let rollback = get_rollback(&world, &id).await;
        assert_eq!(rollback["state"], "pr_open", "{rollback:#}");
        let branch = rewind_git::rollback_branch(&APP.parse().unwrap(), &rollback_id);
        let rebuilt = format!("{branch}-rebuild-1");
        assert_eq!(rollback["branch"], rebuilt.as_str());
        let mut branches = world.repo.rewind_branches();
        branches.sort();
        assert_eq!(
            branches,
            [branch.clone(), rebuilt.clone()],
            "no third branch"
        );
        let prs = fake.pull_requests();
        assert_eq!(prs.len(), 2, "{prs:#?}");
        let new_pr = prs.iter().find(|p| p.head_ref == rebuilt).unwrap();
        assert_eq!(rollback["pr"]["number"], new_pr.number);
        assert!(
            !fake.pull_request(old_pr).unwrap().open,
            "the old PR is closed"
        );
        let events: Vec<&str> = rollback["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["event"].as_str())
            .collect();
        assert_eq!(
            events.iter().filter(|e| **e == "rebuild_started").count(),
            1
        );
        assert_eq!(events.iter().filter(|e| **e == "rebuilt").count(), 1);
        world.finish().await;
    }
}
