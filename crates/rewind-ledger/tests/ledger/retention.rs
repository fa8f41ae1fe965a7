//! Retention in the ledger: periodic jobs are enqueued once per period
//! (across replicas sharing the database), and pruning removes old delivery
//! records and finished jobs, never live ones.

use std::time::Duration;

use rewind_domain::Observation;
use serde_json::json;

use rewind_ledger::JobState;
use rewind_ledger::testing::for_each_backend;

use crate::fixtures::*;

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_periodic_job_is_enqueued_once_per_period() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let first = l
            .enqueue_periodic("retention", json!({}), "retention", HOUR, t(0))
            .await
            .unwrap();
        assert!(first.is_some());
        // Another replica's clock, within the hour, whatever state the
        // first one is in.
        for minutes in [1, 30, 59] {
            assert_eq!(
                l.enqueue_periodic("retention", json!({}), "retention", HOUR, t(minutes))
                    .await
                    .unwrap(),
                None,
                "at +{minutes} min"
            );
        }
        let job = l
            .claim("w", &["retention"], HOUR, chrono::Utc::now())
            .await
            .unwrap()
            .expect("due at once");
        l.complete(job.id, "w").await.unwrap();
        assert_eq!(
            l.enqueue_periodic("retention", json!({}), "retention", HOUR, t(30))
                .await
                .unwrap(),
            None,
            "done within the hour still counts"
        );
        let next = l
            .enqueue_periodic("retention", json!({}), "retention", HOUR, t(61))
            .await
            .unwrap();
        assert!(next.is_some() && next != first);
    })
    .await;
}

#[tokio::test]
async fn pruning_deletes_old_deliveries_and_finished_jobs_only() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let now = chrono::Utc::now();
        let old = now - chrono::Duration::days(40);
        let mut stale = delivery(
            "argocd",
            "old-1",
            vec![Observation::App(app("shop")), argo("shop", 1, 1, 10)],
        );
        stale.received_at = old;
        assert!(matches!(
            l.record_delivery(stale.clone()).await.unwrap(),
            rewind_ledger::DeliveryOutcome::Recorded { .. }
        ));
        let mut young = delivery("argocd", "young-1", vec![argo("shop", 2, 2, 20)]);
        young.received_at = now;
        l.record_delivery(young.clone()).await.unwrap();

        // A finished job, a dead one, and one still queued.
        let done = l.enqueue("k", json!({}), None, now).await.unwrap().unwrap();
        let job = l.claim("w", &["k"], HOUR, now).await.unwrap().unwrap();
        assert_eq!(job.id, done);
        l.complete(done, "w").await.unwrap();
        let queued = l
            .enqueue("later", json!({}), None, now)
            .await
            .unwrap()
            .unwrap();

        // Nothing is older than the cutoff yet but the old delivery.
        let pruned = l
            .prune_deliveries(now - chrono::Duration::days(30))
            .await
            .unwrap();
        assert_eq!((pruned.deliveries, pruned.jobs), (1, 0));
        // Its key is free again: a redelivery is recorded (the young one
        // is still a duplicate).
        assert!(matches!(
            l.record_delivery(stale).await.unwrap(),
            rewind_ledger::DeliveryOutcome::Recorded { .. }
        ));
        assert_eq!(
            l.record_delivery(young).await.unwrap(),
            rewind_ledger::DeliveryOutcome::Duplicate
        );

        let later = l
            .prune_deliveries(now + chrono::Duration::days(1))
            .await
            .unwrap();
        assert!(later.deliveries >= 2, "{later:?}");
        assert!(later.jobs >= 1, "{later:?}");
        assert_eq!(l.job(done).await.unwrap(), None);
        assert_eq!(
            l.job(queued).await.unwrap().map(|j| j.state),
            Some(JobState::Queued)
        );
    })
    .await;
}
