//! What verification proves before and while it counts, on GitHub (the
//! strict fake) against a real Prometheus, on every backend:
//!
//! - the clock starts only once the rollback's commit is deployed AND the
//!   images Argo CD reports running (`status.summary.images`) are the
//!   target's: while the old image still runs, the rollback stays `merged`,
//!   the timeline says what it waits for, and no evaluation is recorded;
//! - one verification comment on the pull request, created at the first
//!   evaluation and edited in place on every later one and on the verdict:
//!   after N evaluations there is exactly one, holding the latest values.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rewind_config::{CheckSettings, ForgeKind, HumanDuration, Secret, SecretUrl};
use rewind_forge::fake::{FakeGitHub, FakeOptions};
use rewind_ingest::samples::{HistoryEntry, argocd_notification};
use rewind_tests::prometheus::{Exporter, Prometheus, available};
use rewind_tests::{APP, APP_PATH, ARGOCD_TOKEN, World, databases};
use serde_json::{Value, json};

const TOKEN: &str = "ghs_faketoken";
const RATIO: &str = r#"app_error_ratio{app="checkout"}"#;
const MARKER: &str = "<!-- rewind-verification";

async fn github_world(
    db: rewind_ledger::testing::TestDatabase,
    prometheus: &str,
) -> (World, FakeGitHub) {
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
    let forge = &mut world.settings.forge;
    forge.kind = ForgeKind::Github;
    forge.api_url = Some(fake.url().to_string());
    forge.owner = Some("acme".into());
    forge.repo = Some("gitops".into());
    forge.token = Some(Secret::new(TOKEN));
    forge.max_wait = HumanDuration::from_secs(2);
    let verify = &mut world.settings.verify;
    verify.prometheus_url = Some(SecretUrl::new(prometheus));
    verify.interval = HumanDuration::from_secs(30);
    verify.passes = 3;
    verify.timeout = HumanDuration::from_secs(2);
    verify.checks = vec![CheckSettings {
        name: "error-rate".into(),
        query: Some(r#"max(app_error_ratio{app="{{app}}"})"#.into()),
        min: None,
        max: Some(0.05),
        no_worse_than: None,
        max_delta: None,
        min_evidence: None,
        apps: vec![],
        http: None,
    }];
    world.boot().await;
    (world, fake)
}

fn approval(number: u64) -> Value {
    json!({
        "action": "submitted",
        "review": {"id": 7, "user": {"login": "alice"}, "state": "approved", "commit_id": null,
                   "author_association": "MEMBER", "submitted_at": Utc::now().to_rfc3339(), "body": null},
        "pull_request": {"number": number, "head": {"ref": "x", "sha": "0000000000000000000000000000000000000000"},
                         "base": {"ref": "main"}},
        "repository": {"full_name": "acme/gitops", "name": "gitops", "owner": {"login": "acme"}},
        "sender": {"login": "alice"}
    })
}

/// Argo CD reports the merge deployed (cluster revision 3), Healthy, with
/// `images` in `status.summary.images`.
async fn deployed_running(world: &World, images: &[Value]) {
    let history: Vec<HistoryEntry> = [
        world.history[0].clone(),
        world.history[1].clone(),
        HistoryEntry {
            id: 3,
            revision: world.repo.head(),
            deployed_at: Utc::now(),
        },
    ]
    .to_vec();
    let mut body = argocd_notification(
        "on-deployed",
        APP,
        &world.repo.path.display().to_string(),
        APP_PATH,
        &history,
        "Healthy",
    );
    body["app"]["status"]["summary"] = json!({ "images": images });
    let (status, answer) = world
        .post_json("/webhooks/argocd", ARGOCD_TOKEN, &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    world.settle().await;
}

fn events(rollback: &Value) -> Vec<String> {
    rollback["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

fn verification_comments(fake: &FakeGitHub, number: u64) -> Vec<String> {
    fake.comments(number)
        .into_iter()
        .filter(|c| c.body.starts_with(MARKER))
        .map(|c| c.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_waits_for_the_targets_images_and_one_comment_keeps_the_latest_values() {
    if !available("the_clock_waits_for_the_targets_images_and_one_comment_keeps_the_latest_values")
    {
        return;
    }
    let exporter = Exporter::start().await;
    let prometheus = Prometheus::start(&exporter).await;
    for db in databases().await {
        let (mut world, fake) = github_world(db, &prometheus.url).await;
        exporter.set(RATIO, 0.2);
        prometheus.wait_for(RATIO, 0.2).await;
        let proposal = world.bad_deploy_and_alert().await;
        let id = proposal["id"].as_str().unwrap().to_string();
        world.tick(Utc::now()).await;
        let number = fake.pull_requests()[0].number;
        world
            .github_event("pull_request_review", "review-1", &approval(number))
            .await;
        let merged = world.rollback(&id).await;
        assert_eq!(merged["state"], "merged", "{merged:#}");
        let target: Vec<Value> = merged["to"]["images"].as_array().unwrap().clone();
        let bad: Vec<Value> = merged["from"]["images"].as_array().unwrap().clone();
        assert!(!target.is_empty() && target != bad, "{merged:#}");

        // The merge is deployed, but Argo CD still reports the bad image
        // running (pods not rolled yet): no clock, no evaluation.
        exporter.set(RATIO, 0.01);
        prometheus.wait_for(RATIO, 0.01).await;
        let mut lagging = bad.clone();
        lagging.push(json!("istio/proxyv2:1.20.0"));
        deployed_running(&world, &lagging).await;
        world.resolve("fp-1").await;
        let t = Utc::now();
        world.tick(t).await;
        world.tick(t + Duration::seconds(30)).await;
        let waiting = world.rollback(&id).await;
        assert_eq!(waiting["state"], "merged", "{waiting:#}");
        assert_eq!(waiting["verification"], json!([]), "{waiting:#}");
        let said = events(&waiting);
        assert_eq!(
            said.iter().filter(|e| *e == "waiting_for_images").count(),
            1,
            "said once, not per tick: {said:?}"
        );
        let wait = waiting["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|e| e["event"] == "waiting_for_images")
            .unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_string();
        let (target_image, bad_image) = (target[0].as_str().unwrap(), bad[0].as_str().unwrap());
        assert!(
            wait.contains(&format!("{target_image} not running yet")),
            "{wait}"
        );
        assert!(
            wait.contains(&format!("{bad_image} still running")),
            "{wait}"
        );
        assert!(verification_comments(&fake, number).is_empty());

        // The target's image runs (with the sidecar): synced, the clock runs.
        let mut running = target.clone();
        running.push(json!("istio/proxyv2:1.20.0"));
        deployed_running(&world, &running).await;
        let t = Utc::now();
        world.tick(t).await;
        let synced = world.rollback(&id).await;
        assert_eq!(synced["state"], "synced", "{synced:#}");
        let synced_detail = synced["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|e| e["event"] == "synced")
            .unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(synced_detail.contains(target_image), "{synced_detail}");

        // Evaluations: one comment, edited in place each time.
        world.tick(t + Duration::seconds(1)).await;
        let first = verification_comments(&fake, number);
        assert_eq!(first.len(), 1, "{first:#?}");
        assert!(first[0].contains("1 evaluation(s)"), "{}", first[0]);
        world.tick(t + Duration::seconds(31)).await;
        exporter.set(RATIO, 0.02);
        prometheus.wait_for(RATIO, 0.02).await;
        world.tick(t + Duration::seconds(61)).await;
        let comments = verification_comments(&fake, number);
        assert_eq!(comments.len(), 1, "{comments:#?}");
        assert!(comments[0].contains("3 evaluation(s)"), "{}", comments[0]);
        assert!(comments[0].contains("0.2 → 0.02"), "{}", comments[0]);
        assert!(comments[0].contains("✅ pass"), "{}", comments[0]);

        // The verdict edits the same comment.
        world.tick(t + Duration::minutes(10)).await;
        let verified = world.rollback(&id).await;
        assert_eq!(verified["state"], "verified", "{verified:#}");
        let comments = verification_comments(&fake, number);
        assert_eq!(comments.len(), 1, "{comments:#?}");
        assert!(comments[0].contains("`verified`"), "{}", comments[0]);
        let edits = fake
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.contains("/issues/comments/"))
            .count();
        assert!(edits >= 3, "edited in place: {edits} PATCHes");
        world.finish().await;
    }
}
