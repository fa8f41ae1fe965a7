//! One error policy, over raw HTTP on loopback: every answer of the server,
//! framework rejections included, is `{error, detail}` JSON; bad input is
//! 4xx; only "cannot record right now" (here: the request timeout) is 503;
//! a delivery the database refuses for its content is 4xx (senders must
//! not retry it forever) and the detail does not echo the database.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use rewind_ingest::samples::{HistoryEntry, argocd_notification};
use rewind_tests::{ALERTMANAGER_TOKEN, APP_PATH, ARGOCD_TOKEN, World, databases};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Asserts the answer is `{error, detail}` JSON and returns it.
async fn json_error(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{status}: content-type {content_type:?}, body {text:?}"
    );
    let value: Value = serde_json::from_str(&text).unwrap();
    assert!(
        value["error"].as_str().is_some_and(|s| !s.is_empty())
            && value["detail"].as_str().is_some_and(|s| !s.is_empty()),
        "{status}: {value}"
    );
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_rejections_are_json_errors() {
    for db in databases().await {
        let world = World::start(db, |s| s.server.max_body_bytes = 8 * 1024).await;
        let url = world.url();
        let client = reqwest::Client::new();

        // 413 decided from Content-Length, before the body is read.
        let response = reqwest::Client::new()
            .post(format!("{url}/webhooks/argocd"))
            .bearer_auth(ARGOCD_TOKEN)
            .header("content-type", "application/json")
            .body(vec![b' '; 9 * 1024])
            .send()
            .await
            .unwrap();
        let body = json_error(response, StatusCode::PAYLOAD_TOO_LARGE).await;
        assert!(
            body["detail"].as_str().unwrap().contains("max_body_bytes"),
            "{body}"
        );
        // Also on the API, whose body extractor has its own limit.
        let response = reqwest::Client::new()
            .post(format!("{url}/api/v1/apps/checkout/rollbacks"))
            .header("content-type", "application/json")
            .body(vec![b' '; 9 * 1024])
            .send()
            .await
            .unwrap();
        json_error(response, StatusCode::PAYLOAD_TOO_LARGE).await;

        // Query extraction.
        let response = client
            .get(format!("{url}/api/v1/apps/checkout/history?limit=abc"))
            .send()
            .await
            .unwrap();
        let body = json_error(response, StatusCode::BAD_REQUEST).await;
        assert!(body["detail"].as_str().unwrap().contains("limit"), "{body}");
        let response = client
            .get(format!("{url}/api/v1/rollbacks?limit=-1"))
            .send()
            .await
            .unwrap();
        json_error(response, StatusCode::BAD_REQUEST).await;

        // Path extraction: segments that are not UTF-8 once decoded.
        for path in [
            "/api/v1/rollbacks/%FF%FE",
            "/api/v1/apps/%C3%28/history",
            "/ui/rollbacks/%FF/approve",
        ] {
            let request = if path.ends_with("approve") {
                client.post(format!("{url}{path}"))
            } else {
                client.get(format!("{url}{path}"))
            };
            let response = request.send().await.unwrap();
            assert!(response.status().is_client_error(), "{path}");
            let status = response.status();
            json_error(response, status).await;
        }
        // A rollback id that is not one.
        let response = client
            .get(format!("{url}/api/v1/rollbacks/not-an-id"))
            .send()
            .await
            .unwrap();
        json_error(response, StatusCode::BAD_REQUEST).await;

        // Unknown route and wrong method.
        let response = client.get(format!("{url}/nope")).send().await.unwrap();
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        json_error(response, StatusCode::NOT_FOUND).await;
        let response = client
            .get(format!("{url}/webhooks/argocd"))
            .send()
            .await
            .unwrap();
        assert!(response.headers().contains_key("allow"));
        let body = json_error(response, StatusCode::METHOD_NOT_ALLOWED).await;
        assert!(body["detail"].as_str().unwrap().contains("GET"), "{body}");
        // The probes too, which sit outside the request-logging layers.
        for probe in ["/healthz", "/readyz", "/metrics"] {
            let response = client.post(format!("{url}{probe}")).send().await.unwrap();
            assert!(
                response.headers().contains_key("content-security-policy"),
                "{probe}: {} {:?}",
                response.status(),
                response.headers()
            );
            let body = json_error(response, StatusCode::METHOD_NOT_ALLOWED).await;
            assert!(body["detail"].as_str().unwrap().contains(probe), "{body}");
        }

        // A JSON body that is not the right shape names the field.
        let response = client
            .post(format!("{url}/api/v1/apps/checkout/rollbacks"))
            .json(&serde_json::json!({"reason": 3}))
            .send()
            .await
            .unwrap();
        let body = json_error(response, StatusCode::BAD_REQUEST).await;
        assert!(
            body["detail"].as_str().unwrap().contains("reason"),
            "{body}"
        );
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_timeout_is_a_json_503() {
    let db = databases().await.remove(0);
    let world = World::start(db, |s| {
        s.server.request_timeout = rewind_config::HumanDuration::from_secs(1);
    })
    .await;
    let addr = world.url().trim_start_matches("http://").to_string();
    // A sender that announces 100 bytes and sends 2: the handler waits for
    // the body until the timeout answers.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /webhooks/argocd HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ARGOCD_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "an answer within 10s");
    let text = String::from_utf8_lossy(&answer).to_string();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{text}"
    );
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(value["error"], "timeout", "{value}");
    assert!(
        value["detail"]
            .as_str()
            .unwrap()
            .contains("request_timeout")
    );
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_the_database_refuses_is_4xx_without_database_text() {
    for db in databases().await {
        let backend = db.backend();
        let world = World::start(db, |_| {}).await;
        let history = [HistoryEntry {
            id: 1,
            revision: world.repo.good.clone(),
            deployed_at: Utc::now(),
        }];
        // A NUL inside the app's path: PostgreSQL refuses it ("invalid
        // byte sequence" / "unsupported Unicode escape sequence").
        let nul_path = format!("{APP_PATH}\u{0}x");
        let body = argocd_notification(
            "on-deployed",
            "checkout",
            &world.repo.path.display().to_string(),
            &nul_path,
            &history,
            "Healthy",
        );
        let mut alert = rewind_ingest::samples::alertmanager_notification(
            "firing",
            "X",
            "checkout",
            "critical",
            "s",
            Utc::now(),
            "fp-nul",
        );
        alert["alerts"][0]["labels"]["team"] = Value::String("a\u{0}b".into());
        for (path, token, body) in [
            ("/webhooks/argocd", ARGOCD_TOKEN, &body),
            ("/webhooks/alertmanager", ALERTMANAGER_TOKEN, &alert),
        ] {
            let (status, answer) = world.post_json(path, token, body).await;
            let text = answer.to_string();
            assert!(
                !status.is_server_error(),
                "{backend:?} {path}: {status} {answer}"
            );
            if backend == rewind_ledger::Backend::Postgres {
                assert!(status.is_client_error(), "{path}: {status} {answer}");
            }
            if status.is_client_error() {
                assert!(answer["error"].is_string() && answer["detail"].is_string());
            }
            for leak in [
                "invalid byte sequence",
                "SQLSTATE",
                "22021",
                "22P05",
                "sqlx",
            ] {
                assert!(!text.contains(leak), "{path}: {text}");
            }
        }
        world.finish().await;
    }
}
