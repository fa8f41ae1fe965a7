//! One app name on two clusters, end to end over HTTP on every backend: two
//! Argo CD instances (one per cluster, each posting to
//! `/webhooks/argocd/{cluster}`) send `checkout` with their own histories
//! (the same history ids) and paths. Both histories are kept, an alert with
//! a cluster label rolls back only that cluster's path, a plain name is a
//! 409 naming the clusters, and `NAME@CLUSTER` works everywhere.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rewind_ingest::samples::{HistoryEntry, alertmanager_notification, argocd_notification};
use rewind_tests::{ALERTMANAGER_TOKEN, APP, APP_PATH, ARGOCD_TOKEN, World, databases};
use serde_json::{Value, json};

const STAGING_PATH: &str = "apps/checkout/overlays/staging";

fn staging_files(tag: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "apps/checkout/overlays/staging/kustomization.yaml",
            "resources:\n  - deployment.yaml\n".to_string(),
        ),
        (
            "apps/checkout/overlays/staging/deployment.yaml",
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: registry.example.com/shop/checkout:{tag}\n"
            ),
        ),
    ]
}

/// What one Argo CD instance sends: its whole history so far.
async fn argocd(
    world: &World,
    cluster: &str,
    path: &str,
    history: &[HistoryEntry],
    health: &str,
) -> Value {
    let body = argocd_notification(
        "on-deployed",
        APP,
        &world.repo.path.display().to_string(),
        path,
        history,
        health,
    );
    let (status, answer) = world
        .post_json(&format!("/webhooks/argocd/{cluster}"), ARGOCD_TOKEN, &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    world.settle().await;
    answer
}

async fn alert(world: &World, cluster: Option<&str>, fingerprint: &str) {
    let mut body = alertmanager_notification(
        "firing",
        "CheckoutHighErrorRate",
        APP,
        "critical",
        "checkout 5xx ratio above 5%",
        Utc::now(),
        fingerprint,
    );
    if let Some(cluster) = cluster {
        body["alerts"][0]["labels"]["cluster"] = json!(cluster);
    }
    let (status, answer) = world
        .post_json("/webhooks/alertmanager", ALERTMANAGER_TOKEN, &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    world.settle().await;
}

fn entry(id: i64, commit: &str, minutes_ago: i64) -> HistoryEntry {
    HistoryEntry {
        id,
        revision: commit.to_string(),
        deployed_at: Utc::now() - Duration::minutes(minutes_ago),
    }
}

/// Two commits that each change both clusters' paths, which share nothing:
/// prod reads its overlay and the base, staging a standalone directory.
fn good_and_bad_on_two_paths(world: &World) -> (String, String) {
    let both = |flag: &str, prod_tag: &str, staging_tag: &str| {
        let mut files = staging_files(staging_tag);
        files.push((
            "apps/checkout/base/deployment.yaml",
            rewind_tests::repo::deployment(flag),
        ));
        files.push((
            "apps/checkout/overlays/prod/kustomization.yaml",
            rewind_tests::repo::overlay(prod_tag),
        ));
        files
    };
    let good = world.repo.commit(
        &both("false", "v1.4.1", "v2.0.0"),
        "deploy: good everywhere",
    );
    let bad = world
        .repo
        .commit(&both("true", "v1.4.2", "v2.0.1"), "deploy: bad everywhere");
    (good, bad)
}

fn path_of(cluster: &str) -> &'static str {
    if cluster == "staging" {
        STAGING_PATH
    } else {
        APP_PATH
    }
}

fn commits(history: &Value) -> Vec<String> {
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["commit"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_name_on_two_clusters_is_two_apps() {
    for db in databases().await {
        let world = World::start(db, |_| {}).await;
        let (prod_good, prod_bad) = (world.repo.good.clone(), world.repo.bad.clone());
        let staging_good = world
            .repo
            .commit(&staging_files("v2.0.0"), "deploy(checkout/staging): v2.0.0");
        let staging_bad = world
            .repo
            .commit(&staging_files("v2.0.1"), "deploy(checkout/staging): v2.0.1");

        // Each instance: revision 1 healthy long enough to be known good,
        // then revision 2 degraded. Same ids, different commits and paths.
        let prod_one = [entry(1, &prod_good, 60)];
        let staging_one = [entry(1, &staging_good, 50)];
        argocd(&world, "prod-eu", APP_PATH, &prod_one, "Healthy").await;
        argocd(&world, "staging", STAGING_PATH, &staging_one, "Healthy").await;
        world.tick(Utc::now()).await;
        let prod_two = [prod_one[0].clone(), entry(2, &prod_bad, 5)];
        let staging_two = [staging_one[0].clone(), entry(2, &staging_bad, 4)];
        argocd(&world, "prod-eu", APP_PATH, &prod_two, "Degraded").await;
        argocd(&world, "staging", STAGING_PATH, &staging_two, "Degraded").await;

        // Two apps, each with its own path and reference.
        let (_, apps) = world.get("/api/v1/apps").await;
        let listed: Vec<(String, String, String)> = apps
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["ref"].as_str().unwrap().to_string(),
                    a["path"].as_str().unwrap().to_string(),
                    a["known_good"]["commit"]
                        .as_str()
                        .unwrap_or("-")
                        .to_string(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                (
                    "checkout@prod-eu".to_string(),
                    APP_PATH.to_string(),
                    prod_good.clone()
                ),
                (
                    "checkout@staging".to_string(),
                    STAGING_PATH.to_string(),
                    staging_good.clone()
                ),
            ],
            "{apps:#}"
        );

        // Both histories kept, in full.
        let (status, prod) = world.get("/api/v1/apps/checkout@prod-eu/history").await;
        assert_eq!(status, StatusCode::OK, "{prod}");
        assert_eq!(commits(&prod), [prod_bad.clone(), prod_good.clone()]);
        assert!(prod[0]["cluster"] == "prod-eu", "{prod:#}");
        let (_, staging) = world.get("/api/v1/apps/checkout%40staging/history").await;
        assert_eq!(
            commits(&staging),
            [staging_bad.clone(), staging_good.clone()]
        );

        // A plain name two clusters run is ambiguous: 409 naming both.
        let (status, body) = world.get("/api/v1/apps/checkout/history").await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("prod-eu") && detail.contains("staging"),
            "{detail}"
        );
        // An unknown reference is a 404 in words, not a Rust type.
        let (status, body) = world.get("/api/v1/apps/checkout@nowhere/history").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("checkout@nowhere"), "{detail}");
        assert!(
            !detail.contains("AppName") && !detail.contains("AppRef"),
            "{detail}"
        );
        let (status, body) = world.get("/api/v1/apps/a@b@c/history").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        // The web UI: one row per app name, one column per cluster.
        let page = |path: &str| {
            let (client, url) = (world.client.clone(), format!("{}{path}", world.url()));
            async move {
                let response = client.get(url).send().await.unwrap();
                (response.status(), response.text().await.unwrap())
            }
        };
        let (status, html) = page("/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(html.matches("<b>checkout</b>").count(), 1, "{html}");
        for cluster in ["prod-eu", "staging"] {
            assert!(html.contains(&format!("<th>{cluster}</th>")), "{html}");
            assert!(
                html.contains(&format!("href=\"/ui/apps/checkout@{cluster}\"")),
                "{html}"
            );
        }
        let (status, html) = page("/ui/apps/checkout@staging").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(STAGING_PATH), "{html}");
        let (status, _) = page("/ui/apps/checkout").await;
        assert_eq!(status, StatusCode::CONFLICT);

        // An alert labelled with its cluster rolls back that cluster's app.
        alert(&world, Some("staging"), "fp-staging").await;
        let (_, rollbacks) = world.get("/api/v1/rollbacks?app=checkout@staging").await;
        let rollbacks = rollbacks.as_array().unwrap().clone();
        assert_eq!(rollbacks.len(), 1, "{rollbacks:#?}");
        let staging_rollback = rollbacks[0].clone();
        assert_eq!(staging_rollback["cluster"], "staging");
        assert_eq!(staging_rollback["to"]["commit"], staging_good.as_str());
        let (status, body) = world.get("/api/v1/rollbacks?app=checkout").await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (_, prod_rollbacks) = world.get("/api/v1/rollbacks?app=checkout@prod-eu").await;
        assert_eq!(prod_rollbacks, json!([]));

        // An alert without a cluster label cannot say which app is bad:
        // no guess, no new rollback.
        alert(&world, None, "fp-unlabelled").await;
        let (_, prod_rollbacks) = world.get("/api/v1/rollbacks?app=checkout@prod-eu").await;
        assert_eq!(prod_rollbacks, json!([]));

        // Manual: the plain name is refused naming the clusters; the
        // reference works, while staging's rollback is still open (one open
        // rollback per app, and these are two apps).
        let (status, body) = world
            .api("/api/v1/apps/checkout/rollbacks", json!({"reason": "bad"}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("staging"),
            "{body}"
        );
        let (status, prod_rollback) = world
            .api(
                "/api/v1/apps/checkout@prod-eu/rollbacks",
                json!({"reason": "prod is bad too"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{prod_rollback}");
        assert_eq!(prod_rollback["cluster"], "prod-eu");
        assert_eq!(prod_rollback["to"]["commit"], prod_good.as_str());

        // Merging staging's rollback restores staging's path only.
        let id = staging_rollback["id"].as_str().unwrap();
        let (status, body) = world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(world.rollback(id).await["state"], "merged");
        assert_eq!(
            world.repo.object("main", STAGING_PATH),
            world.repo.object(&staging_good, STAGING_PATH)
        );
        assert_eq!(
            world.repo.object("main", APP_PATH),
            world.repo.object(&prod_bad, APP_PATH),
            "the prod overlay is untouched by staging's rollback"
        );

        // And prod's restores prod's, leaving staging's rollback in place.
        let id = prod_rollback["id"].as_str().unwrap();
        let (status, body) = world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(world.rollback(id).await["state"], "merged");
        assert_eq!(
            world.repo.object("main", APP_PATH),
            world.repo.object(&prod_good, APP_PATH)
        );
        assert_eq!(
            world.repo.object("main", STAGING_PATH),
            world.repo.object(&staging_good, STAGING_PATH)
        );
        world.repo.fsck();
        world.finish().await;
    }
}

/// The same byte-identical body from two instances is two deliveries: the
/// idempotency key includes the sender's cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_bodies_from_two_clusters_are_both_recorded() {
    for db in databases().await {
        let world = World::start(db, |_| {}).await;
        let good = world.repo.good.clone();
        let history = [entry(1, &good, 30)];
        let first = argocd(&world, "eu", APP_PATH, &history, "Healthy").await;
        let second = argocd(&world, "us", APP_PATH, &history, "Healthy").await;
        assert_eq!(first["duplicate"], false);
        assert_eq!(second["duplicate"], false, "{second}");
        let again = argocd(&world, "us", APP_PATH, &history, "Healthy").await;
        assert_eq!(again["duplicate"], true);
        // A webhook path that names no valid cluster: 400 naming the problem.
        let body = argocd_notification(
            "on-deployed",
            APP,
            &world.repo.path.display().to_string(),
            APP_PATH,
            &history,
            "Healthy",
        );
        let (status, answer) = world
            .post_json("/webhooks/argocd/a@b", ARGOCD_TOKEN, &body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains("cluster"),
            "{answer}"
        );
        for cluster in ["eu", "us"] {
            let (status, history) = world
                .get(&format!("/api/v1/apps/checkout@{cluster}/history"))
                .await;
            assert_eq!(status, StatusCode::OK, "{history}");
            assert_eq!(commits(&history), std::slice::from_ref(&good));
        }
        world.finish().await;
    }
}

/// Drift, produced: a cluster that reports `OutOfSync` (or a sync revision
/// other than its current deployment's) drifts, only that cluster's app
/// shows it, a rollback proposed meanwhile carries the `drift` risk, and a
/// report that agrees with Git clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_recorded_per_cluster_and_carried_by_proposals() {
    for db in databases().await {
        let world = World::start(db, |_| {}).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        let history = [entry(1, &good, 60), entry(2, &bad, 5)];
        argocd(&world, "staging", APP_PATH, &history, "Healthy").await;
        let mut body = argocd_notification(
            "on-health-degraded",
            APP,
            &world.repo.path.display().to_string(),
            APP_PATH,
            &history,
            "Degraded",
        );
        // Someone ran `argocd app rollback`: the cluster runs revision 1's
        // commit again while Git says revision 2's.
        body["app"]["status"]["sync"] = json!({"status": "OutOfSync", "revision": good});
        let (status, answer) = world
            .post_json("/webhooks/argocd/prod-eu", ARGOCD_TOKEN, &body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        world.settle().await;

        let (_, apps) = world.get("/api/v1/apps").await;
        let drift = |cluster: &str| {
            apps.as_array()
                .unwrap()
                .iter()
                .find(|a| a["cluster"] == cluster)
                .map(|a| a["drift"].clone())
                .unwrap()
        };
        let prod = drift("prod-eu");
        assert!(
            prod["detail"].as_str().unwrap().contains("OutOfSync"),
            "{apps:#}"
        );
        assert!(prod["since"].is_string());
        assert_eq!(drift("staging"), Value::Null, "{apps:#}");

        let (status, rollback) = world
            .api(
                "/api/v1/apps/checkout@prod-eu/rollbacks",
                json!({"reason": "bad", "dry_run": true, "to_revision": 1}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{rollback}");
        let codes: Vec<&str> = rollback["risks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&"drift"), "{rollback:#}");

        // Back in sync: the drift clears.
        argocd(&world, "prod-eu", APP_PATH, &history, "Healthy").await;
        let (_, apps) = world.get("/api/v1/apps").await;
        assert!(
            apps.as_array()
                .unwrap()
                .iter()
                .all(|a| a["drift"].is_null()),
            "{apps:#}"
        );
        world.finish().await;
    }
}

/// Git catches up with `argocd app rollback`: Argo CD's history gains an
/// entry running an earlier entry's commit. With `policy.catch_up =
/// "propose"` rewind proposes the same rollback in Git (trigger `drift`);
/// merged, Git says what the cluster runs. Off, nothing is proposed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_catches_up_with_an_in_cluster_rollback() {
    for propose in [true, false] {
        for db in databases().await {
            let mut world = World::start(db, |s| {
                if propose {
                    s.policy.catch_up = rewind_config::CatchUp::Propose;
                }
            })
            .await;
            let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
            world
                .deploy_at(1, &good, "Healthy", Utc::now() - Duration::hours(1))
                .await;
            world
                .deploy_at(2, &bad, "Degraded", Utc::now() - Duration::minutes(10))
                .await;
            assert!(world.rollbacks().await.is_empty());
            // `argocd app rollback checkout 1`: a new history entry, the old commit.
            world.deploy_at(3, &good, "Healthy", Utc::now()).await;
            let rollbacks = world.rollbacks().await;
            if !propose {
                assert!(rollbacks.is_empty(), "{rollbacks:#?}");
                world.finish().await;
                continue;
            }
            assert_eq!(rollbacks.len(), 1, "{rollbacks:#?}");
            let r = &rollbacks[0];
            assert_eq!(r["trigger"]["kind"], "drift", "{r:#}");
            let detail = r["trigger"]["detail"].as_str().unwrap();
            assert!(detail.contains("cluster revision 3"), "{detail}");
            assert_eq!(r["to"]["cluster_revision"], 1);
            let id = r["id"].as_str().unwrap();
            let (status, body) = world
                .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(
                world.repo.object("main", APP_PATH),
                world.repo.object(&good, APP_PATH),
                "Git now says what the cluster runs"
            );
            world.finish().await;
        }
    }
}

/// Waves: the same bad commit on two clusters, an alert without a cluster
/// label. One rollback per cluster in `policy.cluster_order`, sharing a
/// wave group; the second is held until the first is verified, then goes
/// ahead; if the first fails, the second stays held and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_incident_on_two_clusters_is_a_wave() {
    for first_fails in [false, true] {
        for db in databases().await {
            let world = World::start(db, |s| {
                s.policy.cluster_order = vec!["staging".into(), "prod-eu".into()];
            })
            .await;
            let (good, bad) = good_and_bad_on_two_paths(&world);
            let one = [entry(1, &good, 60)];
            for cluster in ["prod-eu", "staging"] {
                argocd(&world, cluster, path_of(cluster), &one, "Healthy").await;
            }
            world.tick(Utc::now()).await;
            let two = [one[0].clone(), entry(2, &bad, 5)];
            for cluster in ["prod-eu", "staging"] {
                argocd(&world, cluster, path_of(cluster), &two, "Degraded").await;
            }
            // Alertmanager without a cluster label (World's alert has none).
            world.alert("firing", "fp-everywhere", Utc::now()).await;

            let (_, list) = world.get("/api/v1/rollbacks?app=checkout@staging").await;
            let first = list[0].clone();
            let (_, list) = world.get("/api/v1/rollbacks?app=checkout@prod-eu").await;
            let second = list[0].clone();
            assert_eq!(first["state"], "proposed", "{first:#}");
            assert_eq!(first["wave"]["index"], 0);
            assert_eq!(second["state"], "held", "{second:#}");
            assert_eq!(second["wave"]["index"], 1);
            assert_eq!(second["wave"]["group"], first["wave"]["group"]);
            assert_eq!(second["wave"]["after"], first["id"]);

            let id = first["id"].as_str().unwrap().to_string();
            let held = second["id"].as_str().unwrap().to_string();
            // Held: it cannot be approved before its turn.
            let (status, body) = world
                .api(&format!("/api/v1/rollbacks/{held}/approve"), json!({}))
                .await;
            assert!(status.is_client_error(), "{status} {body}");
            let (status, body) = world
                .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let head = world.repo.head();
            let three = [two[0].clone(), two[1].clone(), entry(3, &head, 0)];
            argocd(&world, "staging", STAGING_PATH, &three, "Healthy").await;
            assert_eq!(world.rollback(&id).await["state"], "synced");

            let events = |r: &Value| -> Vec<String> {
                r["timeline"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["event"].as_str().unwrap().to_string())
                    .collect()
            };
            if first_fails {
                // The alert fires again after the merge: the first fails,
                // the wave stops.
                world.alert("firing", "fp-again", Utc::now()).await;
                assert_eq!(world.rollback(&id).await["state"], "failed");
                let stopped = world.rollback(&held).await;
                assert_eq!(stopped["state"], "held", "{stopped:#}");
                assert!(events(&stopped).contains(&"wave_stopped".to_string()));
                // A person ends it.
                let (status, body) = world
                    .api(&format!("/api/v1/rollbacks/{held}/cancel"), json!({}))
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(world.rollback(&held).await["state"], "cancelled");
            } else {
                world.resolve("fp-everywhere").await;
                world.tick(Utc::now() + Duration::minutes(10)).await;
                assert_eq!(world.rollback(&id).await["state"], "verified");
                let released = world.rollback(&held).await;
                assert_eq!(released["state"], "proposed", "{released:#}");
                assert!(events(&released).contains(&"released".to_string()));
                assert!(events(&released).contains(&"pushed".to_string()));
            }
            world.finish().await;
        }
    }
}

/// `"all_clusters": true` on the API: a wave over every cluster running the
/// name, clusters not in `policy.cluster_order` by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_clusters_request_proposes_a_wave() {
    for db in databases().await {
        let world = World::start(db, |_| {}).await;
        let (good, bad) = good_and_bad_on_two_paths(&world);
        let one = [entry(1, &good, 60)];
        for cluster in ["staging", "prod-eu"] {
            argocd(&world, cluster, path_of(cluster), &one, "Healthy").await;
        }
        world.tick(Utc::now()).await;
        let two = [one[0].clone(), entry(2, &bad, 5)];
        for cluster in ["staging", "prod-eu"] {
            argocd(&world, cluster, path_of(cluster), &two, "Degraded").await;
        }
        let (status, body) = world
            .api(
                "/api/v1/apps/checkout@staging/rollbacks",
                json!({"reason": "x", "all_clusters": true}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, first) = world
            .api(
                "/api/v1/apps/checkout/rollbacks",
                json!({"reason": "bad everywhere", "all_clusters": true}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        assert_eq!(first["cluster"], "prod-eu");
        assert_eq!(first["wave"]["index"], 0);
        let (_, list) = world.get("/api/v1/rollbacks?app=checkout@staging").await;
        assert_eq!(list[0]["state"], "held", "{list:#}");
        assert_eq!(list[0]["wave"]["after"], first["id"]);
        world.finish().await;
    }
}

/// Both clusters read the same files: one commit rolls both back, so there
/// is no wave to pretend; one rollback says so (`shared-change`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_change_is_one_rollback_not_a_wave() {
    for db in databases().await {
        let world = World::start(db, |_| {}).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        let one = [entry(1, &good, 60)];
        for cluster in ["staging", "prod-eu"] {
            argocd(&world, cluster, APP_PATH, &one, "Healthy").await;
        }
        world.tick(Utc::now()).await;
        let two = [one[0].clone(), entry(2, &bad, 5)];
        for cluster in ["staging", "prod-eu"] {
            argocd(&world, cluster, APP_PATH, &two, "Degraded").await;
        }
        world.alert("firing", "fp-shared", Utc::now()).await;
        let (_, prod) = world.get("/api/v1/rollbacks?app=checkout@prod-eu").await;
        let (_, staging) = world.get("/api/v1/rollbacks?app=checkout@staging").await;
        assert_eq!(prod.as_array().unwrap().len(), 1, "{prod:#}");
        assert_eq!(staging, json!([]), "no held rollback: {staging:#}");
        let risk = prod[0]["risks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["code"] == "shared-change")
            .cloned()
            .unwrap_or_else(|| panic!("{prod:#}"));
        assert!(
            risk["detail"]
                .as_str()
                .unwrap()
                .contains("checkout@staging"),
            "{risk}"
        );
        world.finish().await;
    }
}

/// Contract, Words: every API object that carries an app carries `name`
/// (or `app`), `cluster` and `ref` — apps and their deployments, history,
/// rollbacks (listed, shown, answered by an action, and handed back with a
/// refusal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_object_with_an_app_carries_its_ref() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let proposal = world.bad_deploy_and_alert().await;
        let want = "checkout@in-cluster";
        assert_eq!(proposal["ref"], want, "{proposal:#}");
        assert_eq!(proposal["cluster"], "in-cluster");
        let id = proposal["id"].as_str().unwrap();
        assert_eq!(world.rollback(id).await["ref"], want);

        let (_, apps) = world.get("/api/v1/apps").await;
        let app = &apps[0];
        assert_eq!(app["ref"], want, "{app:#}");
        assert_eq!(app["current"]["ref"], want, "{app:#}");
        assert_eq!(app["known_good"]["ref"], want, "{app:#}");
        let (_, history) = world.get(&format!("/api/v1/apps/{want}/history")).await;
        for d in history.as_array().unwrap() {
            assert_eq!(d["ref"], want, "{d:#}");
            assert_eq!(d["cluster"], "in-cluster", "{d:#}");
        }
        // A second request meets the open rollback: the refusal hands it
        // back with its ref.
        let (status, refused) = world
            .api(
                &format!("/api/v1/apps/{want}/rollbacks"),
                json!({"reason": "again"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["rollback"]["ref"], want, "{refused:#}");
        let (status, cancelled) = world
            .api(&format!("/api/v1/rollbacks/{id}/cancel"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{cancelled}");
        assert_eq!(cancelled["ref"], want);
        world.finish().await;
    }
}
