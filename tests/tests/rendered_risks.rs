//! Rendering the cluster will see, end to end over HTTP on every backend,
//! through the fake GitHub: a rollback whose diff changes an Argo CD
//! PostSync hook Job (named by `generateName`, running no migration tool)
//! carries risk `hook`, not `migration`; one whose target changes a
//! `configMapGenerator`'s content carries risk `rollout` naming the
//! Deployment that restarts. Both are in the API's risks and the PR body.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rewind_tests::github::github_world;
use rewind_tests::{World, databases};
use serde_json::{Value, json};

const BASE: &str = "apps/checkout/base";

fn hook_job(url: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: smoke-\n  annotations:\n    argocd.argoproj.io/hook: PostSync\n    argocd.argoproj.io/hook-delete-policy: HookSucceeded\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: smoke\n          image: curlimages/curl:8.5.0\n          command: [\"curl\", \"-fsS\", \"{url}\"]\n"
    )
}

/// A Deployment that reads the generated ConfigMap `checkout-config`.
const CONFIGURED_DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\nspec:\n  selector:\n    matchLabels:\n      app: checkout\n  template:\n    metadata:\n      labels:\n        app: checkout\n    spec:\n      containers:\n        - name: api\n          image: registry.example.com/shop/checkout:v1.4.0\n          envFrom:\n            - configMapRef:\n                name: checkout-config\n";

fn generated_base(flow: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "apps/checkout/base/kustomization.yaml",
            format!(
                "resources:\n  - deployment.yaml\nconfigMapGenerator:\n  - name: checkout-config\n    literals:\n      - CHECKOUT_FLOW={flow}\n"
            ),
        ),
        (
            "apps/checkout/base/deployment.yaml",
            CONFIGURED_DEPLOYMENT.to_string(),
        ),
    ]
}

fn hooked_base(url: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "apps/checkout/base/kustomization.yaml",
            "resources:\n  - deployment.yaml\n  - smoke-hook.yaml\n".to_string(),
        ),
        ("apps/checkout/base/smoke-hook.yaml", hook_job(url)),
    ]
}

/// Deploys `good` (known good) then `bad`, asks for a rollback over the
/// API, and answers it with the PR body GitHub got.
async fn roll_back(
    world: &mut World,
    good: &str,
    bad: &str,
    fake: &rewind_forge::fake::FakeGitHub,
) -> (Value, String) {
    world
        .deploy_at(1, good, "Healthy", Utc::now() - Duration::hours(1))
        .await;
    world.tick(Utc::now()).await;
    world.deploy(2, bad, "Degraded").await;
    let (status, rollback) = world
        .api(
            "/api/v1/apps/checkout@in-cluster/rollbacks",
            json!({"reason": "checkout errors after the change"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rollback}");
    let prs = fake.pull_requests();
    assert_eq!(prs.len(), 1);
    (rollback, prs[0].body.clone().unwrap_or_default())
}

fn risk<'a>(rollback: &'a Value, code: &str) -> Option<&'a str> {
    rollback["risks"]
        .as_array()?
        .iter()
        .find(|r| r["code"] == code)
        .and_then(|r| r["detail"].as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_sync_hook_is_risk_hook_not_migration() {
    for db in databases().await {
        let (mut world, fake) = github_world(db, |_| {}).await;
        let good = world
            .repo
            .commit(&hooked_base("http://checkout/healthz"), "hook: smoke test");
        let bad = world.repo.commit(
            &hooked_base("http://checkout/readyz"),
            "hook: smoke test the readiness endpoint",
        );
        let (rollback, body) = roll_back(&mut world, &good, &bad, &fake).await;
        let detail = risk(&rollback, "hook").unwrap_or_else(|| panic!("{rollback:#}"));
        assert!(detail.contains("PostSync"), "{detail}");
        assert!(
            detail.contains("hook Job") && detail.contains("smoke-"),
            "{detail}"
        );
        assert!(risk(&rollback, "migration").is_none(), "{rollback:#}");
        assert!(body.contains("`hook`"), "{body}");
        assert!(body.contains("PostSync"), "{body}");
        let branch = rollback["branch"].as_str().unwrap();
        assert_eq!(
            world
                .repo
                .object(branch, &format!("{BASE}/smoke-hook.yaml")),
            world.repo.object(&good, &format!("{BASE}/smoke-hook.yaml"))
        );
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_map_generator_is_risk_rollout_naming_the_workload() {
    for db in databases().await {
        let (mut world, fake) = github_world(db, |_| {}).await;
        let good = world
            .repo
            .commit(&generated_base("classic"), "config: classic flow");
        let bad = world
            .repo
            .commit(&generated_base("express"), "config: express flow");
        let (rollback, body) = roll_back(&mut world, &good, &bad, &fake).await;
        let detail = risk(&rollback, "rollout").unwrap_or_else(|| panic!("{rollback:#}"));
        assert!(detail.contains("Deployment checkout"), "{detail}");
        assert!(detail.contains("checkout-config"), "{detail}");
        assert!(body.contains("`rollout`"), "{body}");
        assert!(body.contains("Deployment checkout"), "{body}");
        world.finish().await;
    }
}
