//! Sustained ingest of Argo CD deploy events over HTTP on loopback: every
//! event durably recorded before its 202 (concurrent requests share group
//! commits), against a no-op axum handler in the same run. Reports events/s,
//! p50 and p99 on SQLite, and on PostgreSQL when `REWIND_TEST_POSTGRES_URL`
//! is set.
//!
//! `cargo bench -p rewind-tests --bench ingest_http` (`REWIND_BENCH_EVENTS`,
//! default 4,000; 64 concurrent requests).

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::Utc;
use futures::StreamExt;
use rewind_ingest::samples::{HistoryEntry, argocd_notification};
use rewind_ledger::testing::TestDatabase;
use rewind_tests::{ARGOCD_TOKEN, World};

const CONCURRENCY: usize = 64;

struct Run {
    events_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(url: &str, bodies: &[Vec<u8>]) -> Run {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(bodies.iter().cloned())
        .map(|body| {
            let client = client.clone();
            async move {
                let sent = Instant::now();
                let response = client
                    .post(url)
                    .bearer_auth(ARGOCD_TOKEN)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), StatusCode::ACCEPTED);
                sent.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Run {
        events_per_sec: bodies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Distinct deliveries: each app's history grows by one entry per event.
fn events(repo_url: &str, commit: &str, n: usize) -> Vec<Vec<u8>> {
    let apps = 50;
    let mut histories: Vec<Vec<HistoryEntry>> = vec![Vec::new(); apps];
    (0..n)
        .map(|i| {
            let history = &mut histories[i % apps];
            history.push(HistoryEntry {
                id: history.len() as i64 + 1,
                revision: commit.to_string(),
                deployed_at: Utc::now(),
            });
            // Argo CD keeps the last 10 entries (revisionHistoryLimit).
            let start = history.len().saturating_sub(10);
            let body = argocd_notification(
                "on-deployed",
                &format!("app-{}", i % apps),
                repo_url,
                "apps/checkout/overlays/prod",
                &history[start..],
                "Healthy",
            );
            serde_json::to_vec(&body).expect("json")
        })
        .collect()
}

fn report(name: &str, run: &Run, baseline: &Run) {
    println!(
        "{name:<28} {:>9.0} events/s  p50 {:>7.2} ms  p99 {:>7.2} ms  throughput {:.2}× the no-op handler",
        run.events_per_sec,
        run.p50.as_secs_f64() * 1e3,
        run.p99.as_secs_f64() * 1e3,
        run.events_per_sec / baseline.events_per_sec
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n: usize = std::env::var("REWIND_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);

    let noop = Router::new().route(
        "/webhooks/argocd",
        post(|body: axum::body::Bytes| async move {
            let _ = body.len();
            (
                StatusCode::ACCEPTED,
                axum::Json(serde_json::json!({"accepted": 1, "ignored": 0})),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let noop_url = format!(
        "http://{}/webhooks/argocd",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move { axum::serve(listener, noop).await });

    let mut databases = vec![TestDatabase::sqlite()];
    databases.extend(TestDatabase::postgres().await);
    println!("{n} Argo CD deploy events, {CONCURRENCY} concurrent, loopback");
    for db in databases {
        let backend = format!("{:?}", db.backend());
        let world = World::start(db, |_| {}).await;
        let bodies = events(&world.repo.path.display().to_string(), &world.repo.good, n);
        let url = format!("{}/webhooks/argocd", world.url());
        // Warm both, then measure them back to back.
        load(&noop_url, &bodies[..200.min(n)]).await;
        let baseline = load(&noop_url, &bodies).await;
        let run = load(&url, &bodies).await;
        report("no-op axum handler", &baseline, &baseline);
        report(&format!("rewind ({backend})"), &run, &baseline);
        world.finish().await;
    }
}
