//! Replicas: two, then three `rewind serve` processes on one PostgreSQL
//! database, each taking any webhook and API call. 1,000 distinct Argo CD
//! deploy events (one per app) and 1,000 identical Alertmanager deliveries
//! are split across them, round robin, many in flight at once; the result
//! is exactly what one rewind would record: 1,000 resolved deployments, one
//! rollback, one branch, one PR, one merge. Every replica's API shows the
//! same ledger. (A second replica on one SQLite file is refused: see
//! `crash.rs`.)

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use reqwest::StatusCode;
use rewind_forge::fake::{FakeGitHub, FakeOptions};
use rewind_ingest::samples::{HistoryEntry, alertmanager_notification, argocd_notification};
use rewind_ledger::testing::TestDatabase;
use rewind_tests::replica::{Replica, ReplicaConfig, eventually};
use rewind_tests::{ALERTMANAGER_TOKEN, APP, APP_PATH, ARGOCD_TOKEN, World};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_rewind-failpoints");
const TOKEN: &str = "ghs_replica_token";
const DEPLOY_EVENTS: usize = 1000;
const ALERT_DELIVERIES: usize = 1000;
const IN_FLIGHT: usize = 24;
const PATIENCE: Duration = Duration::from_secs(180);

async fn postgres() -> Option<TestDatabase> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDatabase::postgres().await;
    if db.is_none() {
        assert!(
            std::env::var("REWIND_REQUIRE_POSTGRES").is_err(),
            "REWIND_REQUIRE_POSTGRES is set but PostgreSQL is unavailable"
        );
        eprintln!("skipped: replicas need PostgreSQL (set REWIND_TEST_POSTGRES_URL)");
    }
    db
}

async fn get(http: &reqwest::Client, url: &str, path: &str) -> Value {
    http.get(format!("{url}{path}"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .unwrap_or(Value::Null)
}

/// POSTs every body, `i`th to replica `i % n`, `IN_FLIGHT` at a time;
/// answers how many were accepted (202).
async fn spread(
    http: &reqwest::Client,
    urls: &[String],
    path: &str,
    token: &str,
    bodies: Vec<Value>,
) -> usize {
    futures::stream::iter(bodies.into_iter().enumerate())
        .map(|(i, body)| {
            let url = format!("{}{path}", urls[i % urls.len()]);
            async move {
                http.post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter(|status| std::future::ready(matches!(status, Ok(StatusCode::ACCEPTED))))
        .count()
        .await
}

async fn replicas_on_one_database(n: usize) {
    let Some(db) = postgres().await else { return };
    let world = World::new(db);
    let fake = FakeGitHub::start(FakeOptions::new(
        "acme",
        "gitops",
        world.repo.path.clone(),
        TOKEN,
    ))
    .await
    .expect("fake GitHub starts");
    let replicas: Vec<Replica> = (0..n)
        .map(|i| {
            let name = format!("replica-{i}");
            let config = ReplicaConfig {
                database_url: world.db.url().to_string(),
                git_url: world.repo.path.clone(),
                cache_dir: world.path().join(format!("cache-{i}")),
                github_url: Some(fake.url().to_string()),
                github_token: TOKEN.into(),
                job_lease: "10s",
            }
            .write(world.path(), &name);
            Replica::start(BINARY, &name, &config, None)
        })
        .collect();
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let http = reqwest::Client::new();
    let repo_url = world.repo.path.display().to_string();
    let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());

    // The app that will go bad: known good first.
    let t0 = Utc::now() - chrono::Duration::hours(1);
    let mut history = vec![HistoryEntry {
        id: 1,
        revision: good.clone(),
        deployed_at: t0,
    }];
    let body = argocd_notification("on-deployed", APP, &repo_url, APP_PATH, &history, "Healthy");
    assert_eq!(
        spread(&http, &urls, "/webhooks/argocd", ARGOCD_TOKEN, vec![body]).await,
        1
    );

    // 1,000 distinct deploy events: one per app, across the replicas.
    let deploys: Vec<Value> = (0..DEPLOY_EVENTS)
        .map(|i| {
            let entry = HistoryEntry {
                id: 1,
                revision: good.clone(),
                deployed_at: t0,
            };
            argocd_notification(
                "on-deployed",
                &format!("fleet-{i:04}"),
                &repo_url,
                APP_PATH,
                &[entry],
                "Healthy",
            )
        })
        .collect();
    let accepted = spread(&http, &urls, "/webhooks/argocd", ARGOCD_TOKEN, deploys).await;
    assert_eq!(accepted, DEPLOY_EVENTS, "every deploy event is accepted");

    eventually("the app to become known good", PATIENCE, || async {
        let apps = get(&http, &urls[0], "/api/v1/apps").await;
        apps.as_array()?
            .iter()
            .find(|a| a["name"] == APP)
            .filter(|a| a["known_good"]["commit"].is_string())
            .map(|_| ())
    })
    .await;
    history.push(HistoryEntry {
        id: 2,
        revision: bad,
        deployed_at: Utc::now() - chrono::Duration::minutes(1),
    });
    let body = argocd_notification(
        "on-deployed",
        APP,
        &repo_url,
        APP_PATH,
        &history,
        "Degraded",
    );
    assert_eq!(
        spread(&http, &urls, "/webhooks/argocd", ARGOCD_TOKEN, vec![body]).await,
        1
    );

    // 1,000 identical alert deliveries (Alertmanager repeats itself).
    let alert = alertmanager_notification(
        "firing",
        "CheckoutHighErrorRate",
        APP,
        "critical",
        "checkout 5xx ratio above 5%",
        Utc::now(),
        "replica-fp",
    );
    let alerts = vec![alert; ALERT_DELIVERIES];
    let accepted = spread(
        &http,
        &urls,
        "/webhooks/alertmanager",
        ALERTMANAGER_TOKEN,
        alerts,
    )
    .await;
    assert_eq!(accepted, ALERT_DELIVERIES, "every delivery is answered 202");

    // Everything settles: no job queued or running, the rollback merged.
    let ledger = world.db.connect().await;
    eventually("every job to finish", PATIENCE, || async {
        let live = ledger
            .count("SELECT COUNT(*) AS n FROM jobs WHERE state IN ('queued', 'running')")
            .await
            .ok()?;
        let rollbacks = get(&http, &urls[0], &format!("/api/v1/rollbacks?app={APP}")).await;
        let merged = rollbacks.as_array()?.first()?["state"] == "merged";
        (live == 0 && merged).then_some(())
    })
    .await;
    let dead = ledger
        .count("SELECT COUNT(*) AS n FROM jobs WHERE state = 'dead'")
        .await
        .expect("count");
    assert_eq!(dead, 0, "no job gave up");
    let resolved = ledger
        .count(
            "SELECT COUNT(*) AS n FROM deployments \
             WHERE app LIKE 'fleet-%' AND config_hash IS NOT NULL",
        )
        .await
        .expect("count");
    assert_eq!(resolved, i64::try_from(DEPLOY_EVENTS).unwrap());
    let alerts_recorded = ledger
        .count("SELECT COUNT(*) AS n FROM alerts")
        .await
        .expect("count");
    assert_eq!(alerts_recorded, 1, "identical deliveries are one alert");

    // Exactly one rollback, branch, PR and merge.
    let rollbacks = get(&http, &urls[0], "/api/v1/rollbacks").await;
    assert_eq!(rollbacks.as_array().map(Vec::len), Some(1), "{rollbacks:#}");
    assert_eq!(world.repo.rewind_branches().len(), 1);
    let prs = fake.pull_requests();
    assert_eq!(prs.len(), 1, "{prs:#?}");
    assert!(prs[0].merged);
    let on_main = world.repo.git(&[
        "rev-list",
        "--count",
        "--first-parent",
        &format!("{}..refs/heads/main", world.repo.bad),
    ]);
    assert_eq!(on_main, "1", "one merge on main");

    // Every replica shows the same ledger. They read one database, so two
    // answers differ only when a write (the clock's health or retention
    // bookkeeping) lands between the reads: read all replicas again until
    // one round agrees.
    for path in ["/api/v1/apps", "/api/v1/rollbacks", "/api/v1/audit"] {
        let mut round = Vec::new();
        for _ in 0..40 {
            round.clear();
            for url in &urls {
                round.push(get(&http, url, path).await);
            }
            if round.iter().all(|answer| *answer == round[0]) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let first = &round[0];
        assert!(first.is_array() || first.is_object(), "{path}: {first}");
        for (url, answer) in urls.iter().zip(&round).skip(1) {
            assert_eq!(answer, first, "{path} differs on {url}");
        }
    }
    let apps = get(&http, &urls[0], "/api/v1/apps").await;
    assert_eq!(apps.as_array().map(Vec::len), Some(DEPLOY_EVENTS + 1));

    drop(replicas);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_record_exactly_once() {
    replicas_on_one_database(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_postgres_record_exactly_once() {
    replicas_on_one_database(3).await;
}
