//! The database goes away under a running rewind and comes back, on both
//! backends: PostgreSQL refuses connections to rewind's database (and its
//! open sessions are terminated; the shared server itself keeps running),
//! SQLite's file is write-locked by another process. Meanwhile webhooks
//! are answered 503 with JSON and `Retry-After`, nothing is half-written,
//! `/readyz` and `/metrics` say the database is the problem, and rewind
//! recovers by itself (no restart): the sender's retry is recorded once,
//! and its jobs run.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use rewind_ingest::samples::{HistoryEntry, argocd_notification};
use rewind_ledger::Backend;
use rewind_ledger::testing::{POSTGRES_URL_VAR, admin_execute};
use rewind_tests::faults::{sample, scrape};
use rewind_tests::{APP, APP_PATH, ARGOCD_TOKEN, World, databases};
use serde_json::Value;

/// Takes the database away from rewind until [`Outage::end`].
enum Outage {
    Postgres {
        admin: String,
        name: String,
    },
    /// A process holding SQLite's write lock (`BEGIN EXCLUSIVE`).
    SqliteLocked(Child),
}

impl Outage {
    async fn begin(world: &World) -> Outage {
        match world.db.backend() {
            Backend::Postgres => {
                let admin = std::env::var(POSTGRES_URL_VAR).expect("PostgreSQL URL");
                let name = world.db.url().rsplit('/').next().unwrap().to_string();
                for statement in [
                    format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
                    format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{name}'"
                    ),
                ] {
                    admin_execute(&admin, &statement)
                        .await
                        .unwrap_or_else(|e| panic!("{statement}: {e}"));
                }
                Outage::Postgres { admin, name }
            }
            Backend::Sqlite => {
                let file = world
                    .db
                    .url()
                    .strip_prefix("sqlite://")
                    .expect("sqlite URL")
                    .to_string();
                let mut locker = Command::new("python3")
                    .arg("-c")
                    .arg(
                        "import sqlite3, sys\n\
                         c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
                         c.execute('BEGIN EXCLUSIVE')\n\
                         print('locked', flush=True)\n\
                         sys.stdin.read()\n",
                    )
                    .arg(file)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("python3 runs");
                let mut ack = String::new();
                BufReader::new(locker.stdout.take().unwrap())
                    .read_line(&mut ack)
                    .unwrap();
                assert_eq!(ack.trim(), "locked");
                Outage::SqliteLocked(locker)
            }
        }
    }

    async fn end(self) {
        match self {
            Outage::Postgres { admin, name } => {
                let statement = format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true");
                admin_execute(&admin, &statement)
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
            }
            Outage::SqliteLocked(mut locker) => {
                // Closing its stdin ends it, which releases the lock.
                locker.stdin.take().unwrap().write_all(b"").unwrap();
                locker.wait().unwrap();
            }
        }
    }
}

/// An Argo CD delivery as bytes, so the sender's retry is byte-identical.
fn argocd_delivery(world: &World, history: &[HistoryEntry]) -> Vec<u8> {
    let body = argocd_notification(
        "on-deployed",
        APP,
        &world.repo.path.display().to_string(),
        APP_PATH,
        history,
        "Degraded",
    );
    serde_json::to_vec(&body).unwrap()
}

async fn send(world: &World, bytes: &[u8]) -> (StatusCode, Option<String>, Value) {
    let response = world
        .client
        .post(format!("{}/webhooks/argocd", world.url()))
        .bearer_auth(ARGOCD_TOKEN)
        .header("content-type", "application/json")
        .body(bytes.to_vec())
        .send()
        .await
        .expect("request");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_get_503_while_the_database_is_down_and_rewind_recovers_by_itself() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let backend = world.db.backend();
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        assert_eq!(
            world
                .deploy_at(1, &good, "Healthy", Utc::now() - chrono::Duration::hours(1))
                .await,
            StatusCode::ACCEPTED
        );
        world.history.push(HistoryEntry {
            id: 2,
            revision: bad,
            deployed_at: Utc::now(),
        });
        let delivery = argocd_delivery(&world, &world.history);

        let outage = Outage::begin(&world).await;
        let (status, retry_after, body) = send(&world, &delivery).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{backend:?}: {body}"
        );
        assert_eq!(body["error"], "unavailable", "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("database is unavailable"),
            "{body}"
        );
        let wait: u64 = retry_after
            .expect("a 503 says when to retry")
            .parse()
            .expect("Retry-After in seconds");
        assert!(wait >= 1, "{wait}");

        let (status, ready) = world.get("/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
        assert_eq!(ready["status"], "not ready", "{ready}");
        assert_ne!(ready["checks"]["database"], "ok", "{ready}");
        let metrics = scrape(&world).await;
        assert_eq!(sample(&metrics, "rewind_ready"), Some(0.0), "{metrics}");
        assert_eq!(
            sample(&metrics, "rewind_readiness_check{check=\"database\"}"),
            Some(0.0),
            "{metrics}"
        );
        let unavailable =
            "rewind_webhook_deliveries_total{source=\"argocd\",outcome=\"unavailable\"}";
        assert!(
            sample(&metrics, unavailable).unwrap_or(0.0) >= 1.0,
            "{metrics}"
        );

        // The database returns; nobody restarts rewind.
        outage.end().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, ready) = world.get("/readyz").await;
            if status == StatusCode::OK {
                break;
            }
            assert!(Instant::now() < deadline, "never ready again: {ready}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let metrics = scrape(&world).await;
        assert_eq!(sample(&metrics, "rewind_ready"), Some(1.0), "{metrics}");

        // Nothing of the refused delivery was kept: its retry is new, and
        // is recorded exactly once.
        let (status, _, body) = send(&world, &delivery).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["duplicate"], false, "{body}");
        let (status, _, body) = send(&world, &delivery).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["duplicate"], true, "{body}");
        let harness = world.db.connect().await;
        assert_eq!(
            harness
                .count("SELECT COUNT(*) AS n FROM webhook_deliveries")
                .await
                .unwrap(),
            2,
            "the first delivery and the retry"
        );
        assert_eq!(
            harness
                .count("SELECT COUNT(*) AS n FROM deployments")
                .await
                .unwrap(),
            2
        );
        // Its jobs run: the new deployment is resolved.
        world.settle().await;
        let (_, history) = world.get(&format!("/api/v1/apps/{APP}/history")).await;
        let history = history.as_array().cloned().unwrap_or_default();
        assert_eq!(history.len(), 2, "{history:#?}");
        world.finish().await;
    }
}
