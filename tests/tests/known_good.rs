//! Known good on first contact, over HTTP on every backend: with
//! `policy.trust_history` an Argo CD history entry that ran `healthy_for`
//! before the next one with no alert is known good *by history* (and the
//! first alert after installing rewind gets a rollback); without it, the
//! same alert is refused. With `healthy_for = "0s"` a Healthy report is
//! known good at once, without waiting for a tick.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rewind_config::HumanDuration;
use rewind_ingest::samples::HistoryEntry;
use rewind_tests::{World, databases};

fn entry(id: i64, commit: &str, minutes_ago: i64) -> HistoryEntry {
    HistoryEntry {
        id,
        revision: commit.to_string(),
        deployed_at: Utc::now() - Duration::minutes(minutes_ago),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_contact_history_is_known_good_only_when_trusted() {
    for trusted in [true, false] {
        for db in databases().await {
            let mut world = World::start(db, |s| s.policy.trust_history = trusted).await;
            let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
            // rewind is installed now: Argo CD's first message already
            // carries revision 1 (ran 55 minutes) and the bad revision 2.
            world.history = vec![entry(1, &good, 60), entry(2, &bad, 5)];
            assert_eq!(
                world.deploy_at(2, &bad, "Degraded", Utc::now()).await,
                StatusCode::ACCEPTED
            );
            assert_eq!(
                world.alert("firing", "fp-1", Utc::now()).await,
                StatusCode::ACCEPTED
            );
            let rollbacks = world.rollbacks().await;
            if trusted {
                assert_eq!(rollbacks.len(), 1, "{rollbacks:#?}");
                let to = &rollbacks[0]["to"];
                assert_eq!(to["commit"], good.as_str());
                assert_eq!(to["known_good"], true);
                assert_eq!(to["known_good_by_history"], true, "{to:#}");
                let (_, history) = world.get("/api/v1/apps/checkout/history").await;
                // The bad, current revision is never trusted.
                assert_eq!(history[0]["known_good"], false, "{history:#}");
            } else {
                assert!(rollbacks.is_empty(), "{rollbacks:#?}");
                let (_, history) = world.get("/api/v1/apps/checkout/history").await;
                assert_eq!(history[1]["known_good"], false, "{history:#}");
            }
            world.finish().await;
        }
    }
}

/// An entry that ran less than `healthy_for` is not trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_history_is_not_trusted() {
    for db in databases().await {
        let mut world = World::start(db, |s| s.policy.trust_history = true).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        // Revision 1 ran 3 minutes (healthy_for is 5).
        world.history = vec![entry(1, &good, 8), entry(2, &bad, 5)];
        world.deploy_at(2, &bad, "Degraded", Utc::now()).await;
        world.alert("firing", "fp-1", Utc::now()).await;
        assert!(world.rollbacks().await.is_empty());
        let (_, history) = world.get("/api/v1/apps/checkout/history").await;
        assert_eq!(history[1]["known_good"], false, "{history:#}");
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_for_zero_is_known_good_at_once() {
    for db in databases().await {
        let mut world =
            World::start(db, |s| s.policy.healthy_for = HumanDuration::from_secs(0)).await;
        let good = world.repo.good.clone();
        world.deploy_at(1, &good, "Healthy", Utc::now()).await;
        // No tick: the delivery itself made it known good.
        let (_, apps) = world.get("/api/v1/apps").await;
        assert_eq!(apps[0]["known_good"]["commit"], good.as_str(), "{apps:#}");
        world.finish().await;
    }
}
