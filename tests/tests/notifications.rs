//! Notifications on every backend: a signed webhook target that answers
//! 500 twice then 200 gets the proposal on the third try; a dead target
//! never blocks the rollback; deliveries and failures are in /metrics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use rewind_config::{NotifyEvent, NotifyKind, NotifySettings, Secret};
use rewind_tests::prometheus::free_port;
use rewind_tests::{World, databases};
use serde_json::Value;

const SECRET: &str = "notify-hmac-secret";

/// What the receiver saw: (signature header, body), in order.
type Seen = Arc<Mutex<Vec<(Option<String>, Vec<u8>)>>>;

/// A receiver that answers 500 to the first two requests, then 200.
async fn flaky_receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let signature = headers
                    .get("x-rewind-signature")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let mut log = log.lock().unwrap();
                log.push((signature, body.to_vec()));
                if log.len() <= 2 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_is_retried_after_500_twice_and_a_dead_target_blocks_nothing() {
    for db in databases().await {
        let (url, seen) = flaky_receiver().await;
        let dead = format!("http://127.0.0.1:{}/services/T000/B000/x", free_port());
        let mut world = World::start(db, |s| {
            s.notify = vec![
                NotifySettings {
                    name: "oncall-hook".into(),
                    kind: NotifyKind::Webhook,
                    url: Secret::new(url.clone()),
                    secret: Some(Secret::new(SECRET)),
                    events: vec![NotifyEvent::Proposed],
                },
                NotifySettings {
                    name: "dead-slack".into(),
                    kind: NotifyKind::Slack,
                    url: Secret::new(dead.clone()),
                    secret: None,
                    events: NotifyEvent::ALL.to_vec(),
                },
            ];
        })
        .await;
        // The dead target does not stop the proposal.
        let proposal = world.bad_deploy_and_alert().await;
        let id = proposal["id"].as_str().unwrap().to_string();
        assert_eq!(proposal["state"], "proposed");

        // Deliveries retry with backoff (1 s, then 2 s) until the receiver
        // says 200.
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.lock().unwrap().len() < 3 {
            assert!(Instant::now() < deadline, "no third delivery");
            world.settle().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        world.settle().await;
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "no delivery after the 200");
        for (signature, body) in &seen {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(body);
            let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            assert_eq!(signature.as_deref(), Some(expected.as_str()));
        }
        let body: Value = serde_json::from_slice(&seen[2].1).unwrap();
        assert_eq!(body["event"], "proposed");
        assert_eq!(body["app"], "checkout");
        assert_eq!(body["rollback"], id.as_str());
        assert_eq!(body["state"], "proposed");
        assert!(
            body["url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/ui/rollbacks/{id}")),
            "{body}"
        );
        assert!(
            body["reason"]
                .as_str()
                .unwrap()
                .contains("CheckoutHighErrorRate")
        );

        // Counted in /metrics; the dead target's URL is never shown.
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
            metrics.contains("rewind_notifications_delivered_total{target=\"oncall-hook\"}"),
            "{metrics}"
        );
        assert!(
            metrics.contains("rewind_notifications_failed_total{target=\"oncall-hook\"}"),
            "{metrics}"
        );
        assert!(!metrics.contains("T000"));
        world.finish().await;
    }
}
