//! The review rule on every path, over HTTP, on SQLite and PostgreSQL:
//! `required_approvals` distinct approvers before any merge (API merge, the
//! web UI's Merge button, `/rewind merge` on GitHub, GitHub reviews), no
//! self-approval by default, and the admin override (reason required,
//! audited, on the timeline and the PR).

use chrono::Utc;
use reqwest::StatusCode;
use rewind_config::{ApiToken, ForgeKind, Role, Secret, Settings};
use rewind_forge::fake::{FakeGitHub, FakeOptions};
use rewind_tests::browser::Browser;
use rewind_tests::{APP, World, databases};
use serde_json::{Value, json};

const GITHUB_TOKEN: &str = "ghs_faketoken";

/// Tokens by name: `<name>-token`.
fn token(name: &str) -> String {
    format!("{name}-token")
}

fn with_people(settings: &mut Settings, required: u32) {
    settings.policy.required_approvals = required;
    let people = [
        ("olivia", Role::Operator),
        ("alice", Role::Approver),
        ("bob", Role::Approver),
        ("carol", Role::Approver),
        ("root", Role::Admin),
    ];
    settings.api.tokens = people
        .into_iter()
        .map(|(name, role)| ApiToken {
            name: name.to_string(),
            token: Secret::new(token(name)),
            role,
        })
        .collect();
}

/// `POST` as `who`, then run the jobs it queued.
async fn post_as(world: &World, who: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let answer = world.post_json(path, &token(who), &body).await;
    world.settle().await;
    answer
}

async fn get_as(world: &World, who: &str, path: &str) -> Value {
    world
        .client
        .get(format!("{}{path}", world.url()))
        .bearer_auth(token(who))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

async fn rollback_as(world: &World, id: &str) -> Value {
    get_as(world, "root", &format!("/api/v1/rollbacks/{id}")).await
}

fn events(rollback: &Value) -> Vec<String> {
    rollback["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .collect()
}

/// Revision 1 known good, revision 2 deployed: `who` asks for a rollback.
async fn manual_rollback(world: &mut World, who: &str) -> String {
    let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
    world
        .deploy_at(1, &good, "Healthy", Utc::now() - chrono::Duration::hours(1))
        .await;
    world.tick(Utc::now()).await;
    world.deploy(2, &bad, "Healthy").await;
    let (status, body) = post_as(
        world,
        who,
        &format!("/api/v1/apps/{APP}/rollbacks"),
        json!({"to_revision": 1, "reason": "checkout errors"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body:#}");
    body["id"].as_str().expect("id").to_string()
}

/// Revision 1 known good, revision 2 degraded, a critical alert: rewind
/// proposes on its own.
async fn alert_rollback(world: &mut World) -> String {
    let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
    world
        .deploy_at(1, &good, "Healthy", Utc::now() - chrono::Duration::hours(1))
        .await;
    world.tick(Utc::now()).await;
    world.deploy(2, &bad, "Degraded").await;
    world.alert("firing", "fp-1", Utc::now()).await;
    let rollbacks = get_as(world, "root", &format!("/api/v1/rollbacks?app={APP}")).await;
    let rollbacks = rollbacks.as_array().cloned().unwrap_or_default();
    assert_eq!(rollbacks.len(), 1, "{rollbacks:#?}");
    rollbacks[0]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_distinct_approvers_are_needed_on_the_api_and_the_ui_and_self_approval_is_refused() {
    for db in databases().await {
        let mut world = World::start(db, |s| with_people(s, 2)).await;
        let id = manual_rollback(&mut world, "alice").await;
        let approve = format!("/api/v1/rollbacks/{id}/approve");
        let merge = format!("/api/v1/rollbacks/{id}/merge");
        let main_before = world.repo.head();

        // The requester cannot approve their own rollback, and is told why.
        let (status, body) = post_as(&world, "alice", &approve, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body:#}");
        assert_eq!(body["error"], "self_approval");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("requested this rollback"),
            "{body:#}"
        );

        // One approver, twice: still one approval.
        for _ in 0..2 {
            let (status, body) = post_as(&world, "bob", &approve, json!({})).await;
            assert_eq!(status, StatusCode::OK, "{body:#}");
        }
        let rollback = rollback_as(&world, &id).await;
        assert_eq!(rollback["approvals"].as_array().unwrap().len(), 1);
        assert_eq!(rollback["state"], "proposed", "{rollback:#}");

        // Merge with one of two approvals: refused, on the API ...
        let (status, body) = post_as(&world, "bob", &merge, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body:#}");
        assert_eq!(body["error"], "approvals_missing");
        assert!(
            body["detail"].as_str().unwrap().contains("1 of the 2"),
            "{body:#}"
        );
        assert_eq!(
            body["rollback"]["id"],
            id.as_str(),
            "the rollback is returned"
        );
        // ... and on the web UI's Merge button.
        let bob = Browser::sign_in(&world, Some(&token("bob"))).await;
        let (status, page) = bob
            .post(&world, &format!("/ui/rollbacks/{id}/merge"), &world.url())
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{page}");
        world.settle().await;
        assert_eq!(world.repo.head(), main_before, "nothing merged");
        let rollback = rollback_as(&world, &id).await;
        assert!(
            events(&rollback).iter().any(|e| e == "merge_refused"),
            "{rollback:#}"
        );
        assert!(
            events(&rollback)
                .iter()
                .any(|e| e == "self_approval_refused"),
            "{rollback:#}"
        );

        // A second person approves: approved and merged by the next step.
        let (status, body) = post_as(&world, "carol", &approve, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        let rollback = rollback_as(&world, &id).await;
        assert_eq!(rollback["state"], "merged", "{rollback:#}");
        assert_ne!(world.repo.head(), main_before);
        let by: Vec<&str> = rollback["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["by"].as_str().unwrap())
            .collect();
        assert_eq!(by, ["bob", "carol"]);
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_override_needs_the_admin_role_and_a_reason_and_is_recorded() {
    for db in databases().await {
        let mut world = World::start(db, |s| with_people(s, 2)).await;
        let id = manual_rollback(&mut world, "olivia").await;
        let merge = format!("/api/v1/rollbacks/{id}/merge");

        let (status, body) = post_as(
            &world,
            "bob",
            &merge,
            json!({"override": true, "reason": "prod is down"}),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body:#}");
        for reason in [json!(null), json!(""), json!("   ")] {
            let (status, body) = post_as(
                &world,
                "root",
                &merge,
                json!({"override": true, "reason": reason}),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body:#}");
            assert!(
                body["detail"].as_str().unwrap().contains("reason"),
                "{body:#}"
            );
        }
        let (status, body) = post_as(&world, "root", &merge, json!({"overide": true})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "unknown field: {body:#}");
        // Without override, an admin is refused like anyone else.
        let (status, body) = post_as(&world, "root", &merge, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body:#}");
        assert_eq!(rollback_as(&world, &id).await["state"], "proposed");

        let (status, body) = post_as(
            &world,
            "root",
            &merge,
            json!({"override": true, "reason": "prod is down, on-call lead"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        let rollback = rollback_as(&world, &id).await;
        assert_eq!(rollback["state"], "merged", "{rollback:#}");
        let override_entry = rollback["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "merge_override")
            .cloned()
            .expect("override on the timeline");
        let detail = override_entry["detail"].as_str().unwrap();
        assert!(
            detail.contains("root") && detail.contains("prod is down, on-call lead"),
            "{detail}"
        );
        let audit = world
            .service()
            .engine
            .ledger()
            .audit_log(Some(&format!("rollback/{id}")), 100)
            .await
            .unwrap();
        let entry = audit
            .iter()
            .find(|a| a.entry.action == "rollback.merge_override")
            .expect("override audited");
        assert_eq!(entry.entry.actor, "root");
        assert_eq!(entry.entry.detail["reason"], "prod is down, on-call lead");
        assert_eq!(entry.entry.detail["approvals"], 0);
        world.finish().await;
    }
}

async fn github_world(
    db: rewind_ledger::testing::TestDatabase,
    required: u32,
) -> (World, FakeGitHub) {
    let mut world = World::new(db);
    let fake = FakeGitHub::start(FakeOptions::new(
        "acme",
        "gitops",
        world.repo.path.clone(),
        GITHUB_TOKEN,
    ))
    .await
    .expect("fake GitHub starts");
    for user in ["alice", "bob", "carol"] {
        fake.set_permission(user, "write");
    }
    let forge = &mut world.settings.forge;
    forge.kind = ForgeKind::Github;
    forge.api_url = Some(fake.url().to_string());
    forge.owner = Some("acme".into());
    forge.repo = Some("gitops".into());
    forge.token = Some(Secret::new(GITHUB_TOKEN));
    forge.max_wait = rewind_config::HumanDuration::from_secs(2);
    with_people(&mut world.settings, required);
    world.boot().await;
    (world, fake)
}

fn review(number: u64, user: &str, id: u64) -> Value {
    json!({
        "action": "submitted",
        "review": {"id": id, "user": {"login": user}, "state": "approved", "commit_id": null,
                   "author_association": "MEMBER", "submitted_at": Utc::now().to_rfc3339(), "body": null},
        "pull_request": {"number": number, "head": {"ref": "x", "sha": "0000000000000000000000000000000000000000"},
                         "base": {"ref": "main"}},
        "repository": {"full_name": "acme/gitops", "name": "gitops", "owner": {"login": "acme"}},
        "sender": {"login": user}
    })
}

fn comment(number: u64, user: &str, body: &str, id: u64) -> Value {
    json!({
        "action": "created",
        "issue": {"number": number, "pull_request": {"url": "x"}, "title": "t", "user": {"login": user}},
        "comment": {"id": id, "body": body, "user": {"login": user}, "author_association": "MEMBER",
                    "created_at": Utc::now().to_rfc3339()},
        "repository": {"full_name": "acme/gitops", "name": "gitops", "owner": {"login": "acme"}},
        "sender": {"login": user}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_github_rewind_merge_and_reviews_count_distinct_people() {
    for db in databases().await {
        let (mut world, fake) = github_world(db, 2).await;
        // An automatic proposal: any person may approve it.
        let id = alert_rollback(&mut world).await;
        let number = fake.pull_requests()[0].number;

        // `/rewind merge` from a writer, with no approval yet: refused, and
        // the PR says why.
        world
            .github_event(
                "issue_comment",
                "c-1",
                &comment(number, "alice", "/rewind merge", 1),
            )
            .await;
        assert_eq!(rollback_as(&world, &id).await["state"], "pr_open");
        assert!(!fake.pull_request(number).unwrap().merged);
        assert!(
            fake.comments(number)
                .iter()
                .any(|c| c.body.contains("approvals missing")),
            "{:#?}",
            fake.comments(number)
        );

        // Alice reviews twice: one approval; `/rewind merge` still refused.
        world
            .github_event("pull_request_review", "r-1", &review(number, "alice", 1))
            .await;
        world
            .github_event("pull_request_review", "r-2", &review(number, "alice", 2))
            .await;
        world
            .github_event(
                "issue_comment",
                "c-2",
                &comment(number, "alice", "/rewind merge", 2),
            )
            .await;
        let rollback = rollback_as(&world, &id).await;
        assert_eq!(rollback["state"], "pr_open", "{rollback:#}");
        assert_eq!(rollback["approvals"].as_array().unwrap().len(), 1);
        assert!(!fake.pull_request(number).unwrap().merged);

        // Bob's review completes the approvals: merged through GitHub.
        world
            .github_event("pull_request_review", "r-3", &review(number, "bob", 3))
            .await;
        let rollback = rollback_as(&world, &id).await;
        assert_eq!(rollback["state"], "merged", "{rollback:#}");
        assert!(fake.pull_request(number).unwrap().merged);
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_github_the_requester_cannot_approve_and_an_override_is_commented() {
    for db in databases().await {
        let (mut world, fake) = github_world(db, 1).await;
        // Alice asks through the API; her GitHub review does not count.
        let id = manual_rollback(&mut world, "alice").await;
        let number = fake.pull_requests()[0].number;
        world
            .github_event("pull_request_review", "r-1", &review(number, "alice", 1))
            .await;
        let rollback = rollback_as(&world, &id).await;
        assert_eq!(rollback["state"], "pr_open", "{rollback:#}");
        assert!(rollback["approvals"].as_array().unwrap().is_empty());
        assert!(
            events(&rollback)
                .iter()
                .any(|e| e == "self_approval_refused")
        );

        let (status, body) = post_as(
            &world,
            "root",
            &format!("/api/v1/rollbacks/{id}/merge"),
            json!({"override": true, "reason": "the incident commander says go"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        assert_eq!(rollback_as(&world, &id).await["state"], "merged");
        let pr = fake.pull_request(number).unwrap();
        assert!(pr.merged);
        assert!(
            fake.comments(number)
                .iter()
                .any(|c| c.body.contains("Admin override")
                    && c.body.contains("the incident commander says go")),
            "{:#?}",
            fake.comments(number)
        );
        world.finish().await;
    }
}
