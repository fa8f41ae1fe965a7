//! Helpers shared by the fault tests (`tests/tests/faults_*.rs`): moving a
//! failed job's backoff into the past (the clock passing, without sleeping),
//! reading the timeline, scraping `/metrics`.

use rewind_ledger::Backend;
use serde_json::Value;

use crate::World;

/// Every queued job whose retry is scheduled later becomes due now, as if
/// its backoff had passed. Answers how many jobs moved.
pub async fn backoff_elapses(world: &World) -> u64 {
    let harness = world.db.connect().await;
    let statement = match world.db.backend() {
        Backend::Postgres => {
            "UPDATE jobs SET run_at = now() - interval '1 second' \
             WHERE state = 'queued' AND run_at > now()"
        }
        // SQLite stores times as microseconds since the epoch.
        Backend::Sqlite => {
            "UPDATE jobs SET run_at = CAST(strftime('%s','now') AS INTEGER) * 1000000 - 1000000 \
             WHERE state = 'queued' AND run_at > CAST(strftime('%s','now') AS INTEGER) * 1000000"
        }
    };
    harness.execute_raw(statement).await.expect("move run_at")
}

/// The timeline's entries of `event`, their details in order.
pub fn timeline_details(rollback: &Value, event: &str) -> Vec<String> {
    rollback["timeline"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["event"] == event)
                .map(|e| e["detail"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The event names of the timeline, in order.
pub fn timeline_events(rollback: &Value) -> Vec<String> {
    rollback["timeline"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["event"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// `/metrics` as text.
pub async fn scrape(world: &World) -> String {
    world
        .client
        .get(format!("{}/metrics", world.url()))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text")
}

/// The value of one sample line (`name{labels}` exactly as rendered), if
/// present.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}
