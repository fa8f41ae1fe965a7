//! The fleet at scale: with N apps (default 4,000), the time and size of
//! `GET /api/v1/apps` whole against one page of it (`?limit=100`), and of
//! the web UI's `/` (a page of 50 names) against a filtered view, in the
//! same run. Reports medians of 5 requests, on SQLite and on PostgreSQL
//! when `REWIND_TEST_POSTGRES_URL` is set.
//!
//! `cargo bench -p rewind-tests --bench fleet_pages` (`REWIND_BENCH_APPS`,
//! default 4,000).

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures::StreamExt;
use rewind_ingest::samples::{HistoryEntry, argocd_notification};
use rewind_ledger::testing::TestDatabase;
use rewind_tests::{APP_PATH, ARGOCD_TOKEN, World};

/// Median time and the body size of `path`, 5 requests.
async fn measure(client: &reqwest::Client, url: &str) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let response = client.get(url).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        size = response.bytes().await.expect("body").len();
        times.push(started.elapsed());
    }
    times.sort();
    (times[2], size)
}

fn row(name: &str, (time, size): (Duration, usize), baseline: (Duration, usize)) {
    println!(
        "{name:<36} {:>9.1} ms {:>10} bytes   {:.3}× the time, {:.4}× the bytes",
        time.as_secs_f64() * 1e3,
        size,
        time.as_secs_f64() / baseline.0.as_secs_f64(),
        size as f64 / baseline.1 as f64
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n: usize = std::env::var("REWIND_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let mut databases = vec![TestDatabase::sqlite()];
    databases.extend(TestDatabase::postgres().await);
    println!("{n} apps, loopback, median of 5");
    for db in databases {
        let backend = format!("{:?}", db.backend());
        let world = World::start(db, |_| {}).await;
        let history = vec![HistoryEntry {
            id: 1,
            revision: world.repo.good.clone(),
            deployed_at: chrono::Utc::now(),
        }];
        let repo_url = world.repo.path.display().to_string();
        let client = reqwest::Client::new();
        let url = format!("{}/webhooks/argocd", world.url());
        futures::stream::iter(0..n)
            .map(|i| {
                let body = argocd_notification(
                    "on-deployed",
                    &format!("app-{i:05}"),
                    &repo_url,
                    APP_PATH,
                    &history,
                    if i % 10 == 0 { "Degraded" } else { "Healthy" },
                );
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let response = client
                        .post(url)
                        .bearer_auth(ARGOCD_TOKEN)
                        .json(&body)
                        .send()
                        .await
                        .expect("webhook");
                    assert_eq!(response.status(), StatusCode::ACCEPTED);
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<()>>()
            .await;
        world.settle().await;
        let base = world.url();
        let whole = measure(&client, &format!("{base}/api/v1/apps")).await;
        let page = measure(&client, &format!("{base}/api/v1/apps?limit=100")).await;
        let ui = measure(&client, &format!("{base}/")).await;
        let ui_filtered = measure(&client, &format!("{base}/?health=Degraded&q=app-01")).await;
        println!("-- {backend}");
        row("GET /api/v1/apps (all)", whole, whole);
        row("GET /api/v1/apps?limit=100", page, whole);
        row("GET / (page 1 of 50 names)", ui, whole);
        row("GET /?health=Degraded&q=app-01", ui_filtered, ui);
        world.finish().await;
    }
}
