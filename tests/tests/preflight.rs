//! Image pre-flight against a real registry (Debian's `docker-registry`)
//! with basic auth, on every backend: a target image the registry serves is
//! no risk, a missing tag is risk `image-missing` (which blocks
//! `auto_merge = "safe"`), and a registry that is down is a warning on the
//! timeline, not a refusal.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rewind_probe::{ImageLookup, Registry as Client, RegistryAuth};
use rewind_tests::registry::{Registry, available};
use rewind_tests::{World, databases, repo::deployment};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_with_basic_auth_from_a_docker_config() {
    if !available("lookups_with_basic_auth_from_a_docker_config") {
        return;
    }
    let mut registry = Registry::start().await;
    registry.push("shop/checkout", "v1.4.1").await;
    let timeout = std::time::Duration::from_secs(5);
    let auth = RegistryAuth::from_docker_config(&registry.auth_file).unwrap();
    let client = Client::new(timeout, auth).unwrap();
    let host = registry.host.clone();
    let image = |tag: &str| format!("{host}/shop/checkout:{tag}");
    assert_eq!(client.lookup(&image("v1.4.1")).await, ImageLookup::Found);
    let ImageLookup::Missing(why) = client.lookup(&image("gone")).await else {
        panic!("a missing tag");
    };
    assert!(why.contains("serves no manifest for gone"), "{why}");
    // Without credentials the registry cannot say: a warning, not "missing".
    let anonymous = Client::new(timeout, RegistryAuth::default()).unwrap();
    let ImageLookup::Unreachable(why) = anonymous.lookup(&image("v1.4.1")).await else {
        panic!("no credentials");
    };
    assert!(why.contains("needs credentials"), "{why}");
    registry.stop();
    assert!(matches!(
        client.lookup(&image("v1.4.1")).await,
        ImageLookup::Unreachable(_)
    ));
}

/// A World whose target deployment runs `host/shop/checkout:tag`; returns
/// the proposal.
async fn proposal_for(world: &mut World, host: &str, tag: &str) -> Value {
    let with_image = |tag: &str, flag: &str| {
        deployment(flag).replace(
            "registry.example.com/shop/checkout:v1.4.0",
            &format!("{host}/shop/checkout:{tag}"),
        )
    };
    let plain_overlay = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\n".to_string();
    let good = world.repo.commit(
        &[
            (
                "apps/checkout/base/deployment.yaml",
                with_image(tag, "false"),
            ),
            (
                "apps/checkout/overlays/prod/kustomization.yaml",
                plain_overlay.clone(),
            ),
        ],
        "deploy: good",
    );
    let bad = world.repo.commit(
        &[(
            "apps/checkout/base/deployment.yaml",
            with_image("bad", "true"),
        )],
        "deploy: bad",
    );
    world.boot().await;
    world
        .deploy_at(1, &good, "Healthy", Utc::now() - Duration::hours(1))
        .await;
    world.tick(Utc::now()).await;
    assert_eq!(
        world.deploy(2, &bad, "Degraded").await,
        StatusCode::ACCEPTED
    );
    world.alert("firing", "fp-1", Utc::now()).await;
    let rollbacks = world.rollbacks().await;
    assert_eq!(rollbacks.len(), 1, "{rollbacks:#?}");
    rollbacks[0].clone()
}

fn codes(rollback: &Value) -> Vec<String> {
    rollback["risks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["code"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_target_image_is_a_risk_and_a_down_registry_a_warning() {
    if !available("a_missing_target_image_is_a_risk_and_a_down_registry_a_warning") {
        return;
    }
    let mut registry = Registry::start().await;
    registry.push("shop/checkout", "v1.4.1").await;
    let host = registry.host.clone();
    for db in databases().await {
        // The tag was pushed: no risk.
        let mut world = preflight_world(db, &registry);
        let present = proposal_for(&mut world, &host, "v1.4.1").await;
        assert!(codes(&present).is_empty(), "{present:#}");
        // No risk: auto_merge = "safe" merges at once.
        assert_eq!(
            world.rollback(present["id"].as_str().unwrap()).await["state"],
            "merged"
        );
        world.finish().await;
    }
    for db in databases().await {
        let mut world = preflight_world(db, &registry);
        let missing = proposal_for(&mut world, &host, "v0.9.9").await;
        assert!(
            codes(&missing).contains(&"image-missing".to_string()),
            "{missing:#}"
        );
        let detail = missing["risks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["code"] == "image-missing")
            .unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(detail.contains("shop/checkout:v0.9.9"), "{detail}");
        // The risk blocks auto_merge = "safe": it waits for people.
        assert_eq!(missing["state"], "proposed", "{missing:#}");
        world.finish().await;
    }
    registry.stop();
    for db in databases().await {
        let mut world = preflight_world(db, &registry);
        let down = proposal_for(&mut world, &host, "v1.4.1").await;
        assert!(
            !codes(&down).contains(&"image-missing".to_string()),
            "{down:#}"
        );
        let warned = down["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "preflight_warning");
        assert!(warned, "{down:#}");
        world.finish().await;
    }
}

fn preflight_world(db: rewind_ledger::testing::TestDatabase, registry: &Registry) -> World {
    let mut world = World::new(db);
    world.settings.verify.registry_check = true;
    world.settings.verify.registry_auth_file = Some(registry.auth_file.clone());
    world.settings.policy.auto_merge = rewind_config::AutoMerge::Safe;
    world
}

/// The bearer-token flow of the distribution token spec against the real
/// registry configured with `auth: token:`: the registry answers 401 with
/// `WWW-Authenticate: Bearer realm,service,scope`, the client asks the
/// issuer on loopback with the Docker config's credentials, and retries
/// with the JWT, which the registry verifies against its root certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_through_the_bearer_token_flow() {
    if !available("lookups_through_the_bearer_token_flow") {
        return;
    }
    if !std::path::Path::new("/usr/bin/openssl").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl missing and CI is set"
        );
        eprintln!("SKIP lookups_through_the_bearer_token_flow: /usr/bin/openssl missing");
        return;
    }
    let registry = Registry::start_with_tokens().await;
    registry.push("shop/checkout", "v1.4.1").await;
    let issuer = registry.issuer.as_ref().expect("token auth");
    let timeout = std::time::Duration::from_secs(5);
    let auth = RegistryAuth::from_docker_config(&registry.auth_file).unwrap();
    let client = Client::new(timeout, auth).unwrap();
    let host = registry.host.clone();
    let image = |tag: &str| format!("{host}/shop/checkout:{tag}");

    assert_eq!(issuer.issued(), 0);
    assert_eq!(client.lookup(&image("v1.4.1")).await, ImageLookup::Found);
    assert_eq!(issuer.issued(), 1, "one token for one lookup");
    let ImageLookup::Missing(why) = client.lookup(&image("gone")).await else {
        panic!("a missing tag behind token auth");
    };
    assert!(why.contains("serves no manifest for gone"), "{why}");

    // No credentials: the issuer refuses, which is a warning, not "missing".
    let anonymous = Client::new(timeout, RegistryAuth::default()).unwrap();
    let ImageLookup::Unreachable(why) = anonymous.lookup(&image("v1.4.1")).await else {
        panic!("no credentials");
    };
    assert!(why.contains("the token service refused: 401"), "{why}");
}
