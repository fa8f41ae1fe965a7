//! The webhook endpoints' answers, over HTTP, exactly as the contract says:
//! 202 with counts, 400 naming the field, 401, 413, 415, 503 when the
//! database is down (and nothing half-written), and duplicates change
//! nothing.

use chrono::Utc;
use reqwest::StatusCode;
use rewind_ingest::samples::{HistoryEntry, argocd_notification};
use rewind_ledger::testing::admin_execute;
use rewind_tests::{ALERTMANAGER_TOKEN, APP_PATH, ARGOCD_TOKEN, World, databases};
use serde_json::{Value, json};

async fn post_raw(
    world: &World,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = world
        .client
        .post(format!("{}{path}", world.url()))
        .bearer_auth(token)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_follow_the_contract() {
    for db in databases().await {
        let world = World::start(db, |s| s.server.max_body_bytes = 8 * 1024).await;
        let good = world.repo.good.clone();
        let history = [HistoryEntry {
            id: 1,
            revision: good,
            deployed_at: Utc::now(),
        }];
        let body = argocd_notification(
            "on-deployed",
            "checkout",
            &world.repo.path.display().to_string(),
            APP_PATH,
            &history,
            "Healthy",
        );
        let bytes = serde_json::to_vec(&body).unwrap();

        // Argo CD sends no Content-Type unless configured: fine.
        let (status, answer) = post_raw(
            &world,
            "/webhooks/argocd",
            ARGOCD_TOKEN,
            None,
            bytes.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["duplicate"], false);
        assert!(answer["accepted"].as_u64().unwrap() >= 2, "{answer}");
        assert_eq!(answer["ignored"], 0);
        // The same delivery again: accepted, and nothing changes.
        world.settle().await;
        let before = world.get("/api/v1/apps/checkout/history").await.1;
        let (status, answer) = post_raw(
            &world,
            "/webhooks/argocd",
            ARGOCD_TOKEN,
            Some("application/json"),
            bytes.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(answer["duplicate"], true);
        world.settle().await;
        assert_eq!(world.get("/api/v1/apps/checkout/history").await.1, before);

        // Wrong or missing credentials.
        let (status, answer) =
            post_raw(&world, "/webhooks/argocd", "wrong", None, bytes.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert!(answer["error"].is_string() && answer["detail"].is_string());
        let (status, _) = post_raw(
            &world,
            "/webhooks/alertmanager",
            ARGOCD_TOKEN,
            None,
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Not JSON.
        let (status, _) = post_raw(
            &world,
            "/webhooks/argocd",
            ARGOCD_TOKEN,
            Some("text/plain"),
            bytes.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // Malformed: the answer names the field.
        let mut wrong = body.clone();
        wrong["app"]["status"]["history"][0]["id"] = json!("one");
        let (status, answer) = post_raw(
            &world,
            "/webhooks/argocd",
            ARGOCD_TOKEN,
            None,
            serde_json::to_vec(&wrong).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains("history[0].id"),
            "{answer}"
        );
        let (status, answer) = post_raw(
            &world,
            "/webhooks/alertmanager",
            ALERTMANAGER_TOKEN,
            None,
            b"{\"alerts\": [".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        // Too large.
        // (On its own connection: the server closes it rather than read the
        // rest of a body it refused.)
        let response = reqwest::Client::new()
            .post(format!("{}/webhooks/argocd", world.url()))
            .bearer_auth(ARGOCD_TOKEN)
            .body(vec![b' '; 9 * 1024])
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // An alert for an app rewind has not seen deploy is accepted (it is
        // recorded by name) and opens nothing.
        let alert = rewind_ingest::samples::alertmanager_notification(
            "firing",
            "X",
            "unknown-app",
            "critical",
            "s",
            Utc::now(),
            "fp-x",
        );
        let (status, answer) = post_raw(
            &world,
            "/webhooks/alertmanager",
            ALERTMANAGER_TOKEN,
            None,
            serde_json::to_vec(&alert).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        world.settle().await;
        let (_, rollbacks) = world.get("/api/v1/rollbacks").await;
        assert_eq!(rollbacks, json!([]));

        // Webhook deliveries are counted by source and outcome.
        let metrics = world
            .client
            .get(format!("{}/metrics", world.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("rewind_webhook_deliveries_total"),
            "{metrics}"
        );
        assert!(metrics.contains("outcome=\"duplicate\""), "{metrics}");
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_means_503_and_nothing_recorded() {
    for db in databases().await {
        if db.backend() != rewind_ledger::Backend::Postgres {
            continue;
        }
        let world = World::start(db, |_| {}).await;
        let admin = std::env::var(rewind_ledger::testing::POSTGRES_URL_VAR).unwrap();
        let name = world.db.url().rsplit('/').next().unwrap().to_string();
        // The database disappears under rewind (connections killed).
        let admin_sql = |statement: String| {
            let admin = admin.clone();
            async move {
                admin_execute(&admin, &statement)
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
            }
        };
        admin_sql(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
        admin_sql(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await;

        let good = world.repo.good.clone();
        let history = [HistoryEntry {
            id: 1,
            revision: good,
            deployed_at: Utc::now(),
        }];
        let body = argocd_notification(
            "on-deployed",
            "checkout",
            &world.repo.path.display().to_string(),
            APP_PATH,
            &history,
            "Healthy",
        );
        let (status, answer) = post_raw(
            &world,
            "/webhooks/argocd",
            ARGOCD_TOKEN,
            None,
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        let (status, _) = world.get("/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

        // Back: the sender's retry is recorded, once.
        admin_sql(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
        let (status, answer) = post_raw(
            &world,
            "/webhooks/argocd",
            ARGOCD_TOKEN,
            None,
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["duplicate"], false);
        world.finish().await;
    }
}
