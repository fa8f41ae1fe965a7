//! History benchmark: one app with 100,000 deployments; times the queries
//! the API and the engine run on every request (`history(50)`,
//! `last_known_good_before`, `current_deployment`, `deployment_at`) against
//! a `SELECT 1` round-trip through the same pool in the same run.
//!
//! `cargo bench -p rewind-ledger --bench history`; PostgreSQL too when
//! `REWIND_BENCH_POSTGRES_URL` (or `REWIND_TEST_POSTGRES_URL`) names a
//! server. Optional `REWIND_BENCH_DEPLOYMENTS` and `REWIND_BENCH_CALLS`.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};

use rewind_domain::AppRef;
use rewind_ledger::testing::{Harness, TestDatabase};

fn env_number(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// A small deterministic sequence (xorshift), so runs query the same
/// revisions without a random-number dependency.
struct Sequence(u64);

impl Sequence {
    fn next_below(&mut self, n: i64) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as i64 + 1
    }
}

struct Stats {
    median: Duration,
    p99: Duration,
}

async fn measure<F, Fut>(calls: i64, mut call: F) -> Stats
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut times = Vec::with_capacity(calls as usize);
    for i in 0..calls {
        let start = Instant::now();
        call(i).await;
        times.push(start.elapsed());
    }
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        median: at(0.5),
        p99: at(0.99),
    }
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

async fn run(label: &str, db: TestDatabase, deployments: i64, calls: i64) {
    let h: Harness = db.connect().await;
    let app: AppRef = "bench/app@bench".parse().expect("valid app reference");
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let seeding = Instant::now();
    h.seed_deployments(&app, deployments, start)
        .await
        .expect("seed deployments");
    let seeded = seeding.elapsed();
    let l = h.ledger.clone();

    // Warm-up: statement caches, page cache.
    for _ in 0..50 {
        l.ping().await.expect("ping");
        l.history(&app, 50).await.expect("history");
    }

    let baseline = measure(calls, |_| async { l.ping().await.expect("ping") }).await;
    let mut seq = Sequence(0x9e37_79b9_7f4a_7c15);
    let revisions: Vec<i64> = (0..calls).map(|_| seq.next_below(deployments)).collect();

    let history = measure(calls, |_| async {
        let page = l.history(&app, 50).await.expect("history");
        assert_eq!(page.len(), 50.min(deployments as usize));
    })
    .await;
    let lkg = measure(calls, |i| {
        let rev = revisions[i as usize];
        let l = &l;
        let app = &app;
        async move {
            l.last_known_good_before(app, rev)
                .await
                .expect("last known good");
        }
    })
    .await;
    let by_id = measure(calls, |i| {
        let rev = revisions[i as usize];
        let l = &l;
        async move {
            l.deployment(rev)
                .await
                .expect("deployment")
                .expect("a deployment");
        }
    })
    .await;
    let current = measure(calls, |_| async {
        l.current_deployment(&app)
            .await
            .expect("current")
            .expect("a deployment");
    })
    .await;
    let at = measure(calls, |i| {
        let when = start + chrono::Duration::minutes(revisions[i as usize]);
        let l = &l;
        let app = &app;
        async move {
            l.deployment_at(app, when)
                .await
                .expect("deployment at")
                .expect("a deployment");
        }
    })
    .await;

    println!(
        "\n{label}: {deployments} deployments of one app seeded in {:.2} s; {calls} calls each\n",
        seeded.as_secs_f64()
    );
    println!("| query | median | p99 | median / SELECT 1 |");
    println!("| --- | --- | --- | --- |");
    let row = |name: &str, s: &Stats| {
        println!(
            "| {name} | {} | {} | {:.2} |",
            micros(s.median),
            micros(s.p99),
            s.median.as_secs_f64() / baseline.median.as_secs_f64()
        );
    };
    row("SELECT 1 (baseline)", &baseline);
    row("history(limit 50)", &history);
    row("last_known_good_before", &lkg);
    row("deployment(id)", &by_id);
    row("current_deployment", &current);
    row("deployment_at", &at);

    drop(l);
    drop(h);
    db.cleanup().await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; this binary takes no arguments.
    let deployments = env_number("REWIND_BENCH_DEPLOYMENTS", 100_000);
    let calls = env_number("REWIND_BENCH_CALLS", 1_000);
    run("SQLite", TestDatabase::sqlite(), deployments, calls).await;
    let pg = ["REWIND_BENCH_POSTGRES_URL", "REWIND_TEST_POSTGRES_URL"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()));
    match pg {
        Some(url) => {
            run(
                "PostgreSQL",
                TestDatabase::postgres_from(&url).await,
                deployments,
                calls,
            )
            .await
        }
        None => println!("\nPostgreSQL skipped: set REWIND_BENCH_POSTGRES_URL to include it."),
    }
}
