//! Verification load against a real Prometheus: 200 concurrent rollbacks,
//! each with 3 PromQL checks, evaluated once per 1 s interval for
//! `REWIND_BENCH_ROUNDS` rounds (default 10) through `rewind-probe`
//! (template, instant query, verdict), against the same queries sent as
//! bare HTTP GETs (what `curl` does) in the same run, 64 in flight at once. Reports evaluations
//! per second and p50/p99 latency of each, and the added latency.
//!
//! `cargo bench -p rewind-tests --bench verify_probe` (needs
//! `/usr/bin/prometheus`).

use std::time::{Duration, Instant};

use futures::StreamExt;
use rewind_probe::{Check, CheckKind, LiveProbe, Probe, ProbeSettings, QueryCheck, Target, judge};
use rewind_tests::prometheus::{Exporter, Prometheus, available};

const APPS: usize = 200;
/// Queries in flight at once: Prometheus serves 512 connections by default,
/// and a verifier should not open one per check.
const CONCURRENCY: usize = 64;

fn checks() -> Vec<Check> {
    let query = |name: &str, q: &str, min: Option<f64>, max: Option<f64>| Check {
        name: name.into(),
        kind: CheckKind::Query(QueryCheck {
            query: q.into(),
            min,
            max,
            max_delta_from_known_good: None,
            min_evidence: None,
        }),
        apps: vec![],
    };
    vec![
        query(
            "error-rate",
            r#"max(app_error_ratio{app="{{app}}"})"#,
            None,
            Some(0.05),
        ),
        query(
            "traffic",
            r#"sum(app_requests{app="{{app}}"})"#,
            Some(1.0),
            None,
        ),
        query(
            "latency",
            r#"max(app_latency_seconds{app="{{app}}"})"#,
            None,
            Some(1.0),
        ),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Run {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    passed: usize,
}

fn summary(mut latencies: Vec<Duration>, busy: Duration, passed: usize) -> Run {
    latencies.sort();
    Run {
        per_sec: latencies.len() as f64 / busy.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        passed,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !available("verify_probe bench") {
        return;
    }
    let rounds: usize = std::env::var("REWIND_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let exporter = Exporter::start().await;
    for i in 0..APPS {
        exporter.set(&format!(r#"app_error_ratio{{app="app-{i}"}}"#), 0.01);
        exporter.set(&format!(r#"app_requests{{app="app-{i}"}}"#), 100.0);
        exporter.set(&format!(r#"app_latency_seconds{{app="app-{i}"}}"#), 0.2);
    }
    let prometheus = Prometheus::start(&exporter).await;
    prometheus
        .wait_for(r#"count(app_requests)"#, APPS as f64)
        .await;
    let probe = LiveProbe::new(&ProbeSettings {
        prometheus_url: Some(prometheus.url.clone()),
        timeout: Duration::from_secs(10),
    })
    .expect("probe");
    let checks = checks();
    let targets: Vec<Target> = (0..APPS)
        .map(|i| Target::new(&format!("shop/app-{i}"), "prod"))
        .collect();
    let raw = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");

    let (mut probe_latencies, mut raw_latencies) = (Vec::new(), Vec::new());
    let (mut probe_busy, mut raw_busy) = (Duration::ZERO, Duration::ZERO);
    let mut passed = 0;
    for _ in 0..rounds {
        let tick = Instant::now();
        // Through the probe: 600 evaluations at once.
        let started = Instant::now();
        let probe_ref = &probe;
        let evaluations: Vec<(Duration, bool)> =
            futures::stream::iter(targets.iter().flat_map(|target| {
                checks.iter().map(move |check| {
                    let probe = probe_ref;
                    async move {
                        let sent = Instant::now();
                        let reading = probe.read(check, target, None).await;
                        let evaluation = judge(&check.kind, reading, None);
                        (sent.elapsed(), evaluation.pass == Some(true))
                    }
                })
            }))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        probe_busy += started.elapsed();
        passed += evaluations.iter().filter(|(_, pass)| *pass).count();
        probe_latencies.extend(evaluations.into_iter().map(|(d, _)| d));

        // The same queries as bare GETs.
        let started = Instant::now();
        let (raw_ref, base) = (&raw, &prometheus.url);
        let bare: Vec<Duration> = futures::stream::iter(targets.iter().flat_map(|target| {
            checks.iter().map(move |check| {
                let raw = raw_ref;
                let url = format!("{base}/api/v1/query");
                let CheckKind::Query(q) = &check.kind else {
                    unreachable!("query checks only")
                };
                let query = rewind_probe::template::promql(&q.query, target);
                async move {
                    let sent = Instant::now();
                    let body = raw
                        .get(url)
                        .query(&[("query", query)])
                        .send()
                        .await
                        .expect("query")
                        .bytes()
                        .await
                        .expect("body");
                    assert!(!body.is_empty());
                    sent.elapsed()
                }
            })
        }))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
        raw_busy += started.elapsed();
        raw_latencies.extend(bare);
        // One round per verify.interval (1 s).
        if let Some(rest) = Duration::from_secs(1).checked_sub(tick.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let evaluations = probe_latencies.len();
    let probe = summary(probe_latencies, probe_busy, passed);
    let raw = summary(raw_latencies, raw_busy, 0);
    println!(
        "{APPS} rollbacks x {} checks, {rounds} rounds at 1 s: {evaluations} evaluations, {} passed",
        checks.len(),
        probe.passed
    );
    println!(
        "rewind-probe: {:.0} evaluations/s while busy, p50 {:?}, p99 {:?}",
        probe.per_sec, probe.p50, probe.p99
    );
    println!(
        "bare GET:     {:.0} queries/s while busy, p50 {:?}, p99 {:?}",
        raw.per_sec, raw.p50, raw.p99
    );
    println!(
        "added per evaluation: p50 {:?}, p99 {:?}",
        probe.p50.saturating_sub(raw.p50),
        probe.p99.saturating_sub(raw.p99)
    );
}
