//! Shutdown does not wait for the queue: a worker told to stop finishes
//! the job in hand and claims nothing more (a fleet's first reports are
//! thousands of jobs; `rewind serve` once kept resolving for minutes after
//! SIGTERM). What it leaves stays queued for the next start.

use chrono::Utc;
use reqwest::StatusCode;
use rewind_ingest::samples::{HistoryEntry, argocd_notification};
use rewind_tests::{APP, APP_PATH, ARGOCD_TOKEN, World, databases};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_claims_nothing_more() {
    for db in databases().await {
        let world = World::start(db, |_| {}).await;
        // Recorded, not yet run: one resolve job per history entry.
        let history: Vec<HistoryEntry> = (1..=3)
            .map(|id| HistoryEntry {
                id,
                revision: world.repo.good.clone(),
                deployed_at: Utc::now(),
            })
            .collect();
        let body = argocd_notification(
            "on-deployed",
            APP,
            &world.repo.path.display().to_string(),
            APP_PATH,
            &history,
            "Healthy",
        );
        let (status, answer) = world
            .post_json("/webhooks/argocd", ARGOCD_TOKEN, &body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

        let engine = &world.service().engine;
        let stop = CancellationToken::new();
        stop.cancel();
        assert_eq!(engine.drain_until(&stop).await.unwrap(), 0);
        // The work was there all along, and runs at the next start.
        assert_eq!(engine.drain().await.unwrap(), 3);
        world.finish().await;
    }
}
