//! Durable jobs: dedup, claim order and leases, retry, dead, release, and
//! concurrent claimers.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use rewind_ledger::testing::for_each_backend;
use rewind_ledger::{DEFAULT_MAX_ATTEMPTS, JobState, LedgerError};

use crate::fixtures::*;

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn dedup_keys_are_unique_among_live_jobs() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let key = Some("resolve:1".to_string());
        let first = l
            .enqueue("resolve", json!({"n": 1}), key.clone(), t(0))
            .await
            .unwrap();
        assert!(first.is_some());
        assert_eq!(
            l.enqueue("resolve", json!({"n": 2}), key.clone(), t(0))
                .await
                .unwrap(),
            None
        );
        // Without a key, no dedup.
        assert!(
            l.enqueue("resolve", json!({}), None, t(0))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            l.enqueue("resolve", json!({}), None, t(0))
                .await
                .unwrap()
                .is_some()
        );

        let job = l
            .claim("w1", &["resolve"], LEASE, t(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Some(job.id), first);
        assert_eq!(job.payload, json!({"n": 1}));
        // A running job does not swallow the next one: it may have read
        // the state before the change that needs another run.
        let twin = l
            .enqueue("resolve", json!({}), key.clone(), t(1))
            .await
            .unwrap();
        assert!(twin.is_some());
        assert_eq!(
            l.enqueue("resolve", json!({}), key.clone(), t(1))
                .await
                .unwrap(),
            None,
            "one queued job per key"
        );
        // The running one fails with a retry while its twin waits: it is
        // done, not queued twice.
        let state = l.fail(job.id, "w1", "boom", Some(t(5))).await.unwrap();
        assert_eq!(state, JobState::Done);
        let twin = twin.unwrap();
        assert_eq!(l.job(twin).await.unwrap().unwrap().state, JobState::Queued);
        let next = l
            .claim("w2", &["resolve"], LEASE, t(2))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(next.id, job.id, "the failed one is not queued again");
        l.complete(next.id, "w2").await.unwrap();
        // Mark the twin done too, so the key is free again.
        while let Some(j) = l.claim("w2", &["resolve"], LEASE, t(3)).await.unwrap() {
            l.complete(j.id, "w2").await.unwrap();
        }
        assert!(
            l.enqueue("resolve", json!({}), key, t(2))
                .await
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            l.enqueue("", json!({}), None, t(2)).await,
            Err(LedgerError::Invalid(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn claims_follow_due_time_kind_and_lease() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let later = l
            .enqueue("a", json!(1), None, t(10))
            .await
            .unwrap()
            .unwrap();
        let sooner = l.enqueue("a", json!(2), None, t(5)).await.unwrap().unwrap();
        let other = l.enqueue("b", json!(3), None, t(0)).await.unwrap().unwrap();

        assert_eq!(
            l.claim("w1", &["a"], LEASE, t(4)).await.unwrap(),
            None,
            "nothing due yet"
        );
        assert_eq!(
            l.claim("w1", &[], LEASE, t(99)).await.unwrap(),
            None,
            "no kinds, no job"
        );
        let job = l.claim("w1", &["a"], LEASE, t(20)).await.unwrap().unwrap();
        assert_eq!(job.id, sooner, "oldest due first");
        assert_eq!(job.state, JobState::Running);
        assert_eq!(job.attempts, 1);
        assert_eq!(job.locked_by.as_deref(), Some("w1"));
        assert_eq!(job.locked_until, Some(t(21)));
        let job2 = l
            .claim("w2", &["a", "b"], LEASE, t(20))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job2.id, other);
        let job3 = l.claim("w2", &["a"], LEASE, t(20)).await.unwrap().unwrap();
        assert_eq!(job3.id, later);
        assert_eq!(
            l.claim("w3", &["a", "b"], LEASE, t(20)).await.unwrap(),
            None
        );

        // w1 went silent: after its lease another worker takes the job.
        let stolen = l.claim("w3", &["a"], LEASE, t(22)).await.unwrap().unwrap();
        assert_eq!(stolen.id, sooner);
        assert_eq!(stolen.attempts, 2);
        assert!(matches!(
            l.complete(sooner, "w1").await,
            Err(LedgerError::NotFound { .. })
        ));
        l.complete(sooner, "w3").await.unwrap();
        assert_eq!(l.job(sooner).await.unwrap().unwrap().state, JobState::Done);

        // Retry later, then give up without a retry time.
        let state = l
            .fail(job2.id, "w2", "forge down", Some(t(30)))
            .await
            .unwrap();
        assert_eq!(state, JobState::Queued);
        let failed = l.job(job2.id).await.unwrap().unwrap();
        assert_eq!(
            (failed.run_at, failed.last_error.as_deref()),
            (t(30), Some("forge down"))
        );
        assert_eq!(failed.locked_by, None);
        assert_eq!(l.claim("w2", &["b"], LEASE, t(29)).await.unwrap(), None);
        let retry = l.claim("w2", &["b"], LEASE, t(30)).await.unwrap().unwrap();
        assert_eq!(retry.attempts, 2);
        assert_eq!(
            l.fail(retry.id, "w2", "bad payload", None).await.unwrap(),
            JobState::Dead
        );
        assert_eq!(l.claim("w2", &["b"], LEASE, t(99)).await.unwrap(), None);

        // Graceful shutdown hands the job back without using an attempt.
        assert_eq!(l.release("w2").await.unwrap(), 1);
        let back = l.job(later).await.unwrap().unwrap();
        assert_eq!(
            (back.state, back.attempts, back.locked_by),
            (JobState::Queued, 0, None)
        );
        let again = l.claim("w4", &["a"], LEASE, t(20)).await.unwrap().unwrap();
        assert_eq!(again.id, later);

        let counts: Vec<(String, JobState, u64)> = l
            .job_counts()
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.kind, c.state, c.count))
            .collect();
        assert!(
            counts.contains(&("a".into(), JobState::Done, 1)),
            "{counts:?}"
        );
        assert!(
            counts.contains(&("a".into(), JobState::Running, 1)),
            "{counts:?}"
        );
        assert!(
            counts.contains(&("b".into(), JobState::Dead, 1)),
            "{counts:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_job_dies_after_its_last_attempt() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let id = l
            .enqueue("a", json!(null), None, t(0))
            .await
            .unwrap()
            .unwrap();
        let mut now = 0;
        for attempt in 1..=DEFAULT_MAX_ATTEMPTS {
            let job = l.claim("w", &["a"], LEASE, t(now)).await.unwrap().unwrap();
            assert_eq!(job.attempts, attempt);
            now += 1;
            let state = l.fail(id, "w", "boom", Some(t(now))).await.unwrap();
            let expected = if attempt < DEFAULT_MAX_ATTEMPTS {
                JobState::Queued
            } else {
                JobState::Dead
            };
            assert_eq!(state, expected);
        }
        assert_eq!(
            l.claim("w", &["a"], LEASE, t(now + 100)).await.unwrap(),
            None
        );

        // A worker that dies holding the last attempt: the job is buried.
        let id = l
            .enqueue("c", json!(null), None, t(0))
            .await
            .unwrap()
            .unwrap();
        for i in 0..DEFAULT_MAX_ATTEMPTS {
            // Each claim happens after the previous lease expired.
            let job = l
                .claim("w", &["c"], LEASE, t(i64::from(i) * 2))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(job.id, id);
        }
        assert_eq!(l.claim("w", &["c"], LEASE, t(100)).await.unwrap(), None);
        assert_eq!(l.job(id).await.unwrap().unwrap().state, JobState::Dead);
    })
    .await;
}

#[tokio::test]
async fn concurrent_claimers_never_share_a_job() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        for i in 0..40 {
            l.enqueue("work", json!(i), None, t(0)).await.unwrap();
        }
        let workers: Vec<_> = (0..6)
            .map(|w| {
                let l = l.clone();
                tokio::spawn(async move {
                    let me = format!("worker-{w}");
                    let mut mine = Vec::new();
                    while let Some(job) = l.claim(&me, &["work"], LEASE, t(1)).await.unwrap() {
                        mine.push(job.id);
                        l.complete(job.id, &me).await.unwrap();
                    }
                    mine
                })
            })
            .collect();
        let mut seen = HashSet::new();
        let mut total = 0;
        for worker in workers {
            for id in worker.await.unwrap() {
                total += 1;
                assert!(seen.insert(id), "job {id} claimed twice");
            }
        }
        assert_eq!(total, 40);
    })
    .await;
}

#[tokio::test]
async fn a_deduplicated_enqueue_makes_the_queued_job_due_sooner() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let key = Some("advance:r1".to_string());
        // Waiting out a retry backoff until t(100).
        let id = l
            .enqueue("advance", json!({}), key.clone(), t(100))
            .await
            .unwrap()
            .unwrap();
        assert!(
            l.claim("w", &["advance"], LEASE, t(10))
                .await
                .unwrap()
                .is_none()
        );
        // The ticker asks for the step now: no second job, but it is due.
        assert_eq!(
            l.enqueue("advance", json!({}), key.clone(), t(5))
                .await
                .unwrap(),
            None
        );
        assert_eq!(l.job(id).await.unwrap().unwrap().run_at, t(5));
        // Asking for later never delays it.
        l.enqueue("advance", json!({}), key, t(50)).await.unwrap();
        let job = l
            .claim("w", &["advance"], LEASE, t(10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, id);
    })
    .await;
}

/// Two replicas never work on one app at once: a job of an app another
/// live job holds is passed over (another app's job is claimed instead),
/// and the hold ends with the job, or with its lease when its worker died.
#[tokio::test]
async fn jobs_of_one_app_run_one_at_a_time_across_workers() {
    for_each_backend(|h| async move {
        let checkout: rewind_domain::AppRef = "checkout@prod".parse().unwrap();
        let billing: rewind_domain::AppRef = "billing@prod".parse().unwrap();
        h.seed_deployments(&checkout, 2, t(-100)).await.unwrap();
        h.seed_deployments(&billing, 1, t(-100)).await.unwrap();
        let l = h.ledger;
        let ids: Vec<i64> = l
            .history(&checkout, 10)
            .await
            .unwrap()
            .iter()
            .chain(l.history(&billing, 10).await.unwrap().iter())
            .map(|d| d.id)
            .collect();
        // checkout's two deployments first, then billing's.
        for (n, id) in ids.iter().enumerate() {
            let minutes = i64::try_from(n).unwrap();
            l.enqueue(
                "resolve_deployment",
                json!({"deployment_id": id, "app": "x", "commit": "0".repeat(40)}),
                Some(format!("resolve_deployment:{id}")),
                t(minutes),
            )
            .await
            .unwrap();
        }
        let kinds = &["resolve_deployment"];
        let first = l.claim("w1", kinds, LEASE, t(5)).await.unwrap().unwrap();
        assert_eq!(first.payload["deployment_id"], ids[0]);
        // checkout is busy: w2 gets billing's job, then nothing.
        let second = l.claim("w2", kinds, LEASE, t(5)).await.unwrap().unwrap();
        assert_eq!(second.payload["deployment_id"], ids[2]);
        assert!(l.claim("w2", kinds, LEASE, t(5)).await.unwrap().is_none());
        // A renewed lease keeps the hold past the first deadline.
        l.renew(first.id, "w1", LEASE).await.unwrap();
        l.complete(first.id, "w1").await.unwrap();
        let next = l.claim("w2", kinds, LEASE, t(6)).await.unwrap().unwrap();
        assert_eq!(next.payload["deployment_id"], ids[1]);
        // w2 dies holding checkout: nobody takes it until the lease ends.
        l.complete(second.id, "w2").await.unwrap();
        assert!(l.claim("w3", kinds, LEASE, t(7)).await.unwrap().is_none());
        let taken = l.claim("w3", kinds, LEASE, t(6) + chrono::Duration::minutes(2));
        let taken = taken.await.unwrap().expect("expired lease taken over");
        assert_eq!(taken.id, next.id);
        assert_eq!(taken.locked_by.as_deref(), Some("w3"));
        // The dead worker's late completion is refused; the new holder's
        // counts.
        assert!(l.complete(next.id, "w2").await.is_err());
        l.complete(taken.id, "w3").await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_claim_takes_the_apps_other_queued_resolves_with_it() {
    for_each_backend(|h| async move {
        let checkout: rewind_domain::AppRef = "checkout@prod".parse().unwrap();
        let billing: rewind_domain::AppRef = "billing@prod".parse().unwrap();
        h.seed_deployments(&checkout, 4, t(-100)).await.unwrap();
        h.seed_deployments(&billing, 2, t(-100)).await.unwrap();
        let l = h.ledger;
        let oldest_first = |mut ds: Vec<rewind_domain::Deployment>| {
            ds.reverse();
            ds.iter().map(|d| d.id).collect::<Vec<i64>>()
        };
        let c = oldest_first(l.history(&checkout, 10).await.unwrap());
        let b = oldest_first(l.history(&billing, 10).await.unwrap());
        // Interleaved in the queue, as several reports arrive.
        let queue = [
            (c[0], 0),
            (c[1], 1),
            (b[0], 2),
            (c[2], 3),
            (b[1], 4),
            (c[3], 5),
        ];
        let mut job_of = std::collections::HashMap::new();
        for (id, minutes) in queue {
            let job = l
                .enqueue(
                    "resolve_deployment",
                    json!({"deployment_id": id, "app": "x", "commit": "0".repeat(40)}),
                    Some(format!("resolve_deployment:{id}")),
                    t(minutes),
                )
                .await
                .unwrap()
                .unwrap();
            job_of.insert(job, id);
        }
        let kinds = &["resolve_deployment"];
        let deployments =
            |jobs: &[rewind_ledger::Job]| jobs.iter().map(|j| job_of[&j.id]).collect::<Vec<i64>>();

        // w1 takes checkout's oldest and, with it, two more (its bound),
        // oldest first; the fourth stays queued.
        let w1 = l
            .claim_with_siblings("w1", kinds, LEASE, t(6), 2)
            .await
            .unwrap();
        assert_eq!(deployments(&w1), vec![c[0], c[1], c[2]]);
        assert!(w1.iter().all(|j| j.state == JobState::Running
            && j.locked_by.as_deref() == Some("w1")
            && j.attempts == 1));
        // w2 gets billing's two; checkout's fourth waits for the hold.
        let w2 = l
            .claim_with_siblings("w2", kinds, LEASE, t(6), 8)
            .await
            .unwrap();
        assert_eq!(deployments(&w2), vec![b[0], b[1]]);
        assert!(
            l.claim_with_siblings("w3", kinds, LEASE, t(6), 8)
                .await
                .unwrap()
                .is_empty()
        );

        // Siblings done: the lead still holds the app.
        let siblings: Vec<i64> = w1[1..].iter().map(|j| j.id).collect();
        assert_eq!(l.complete_many(&siblings, "w1").await.unwrap(), 2);
        assert!(
            l.claim_with_siblings("w3", kinds, LEASE, t(6), 8)
                .await
                .unwrap()
                .is_empty()
        );
        // Another worker's completion counts nothing and releases nothing.
        assert_eq!(l.complete_many(&[w1[0].id], "w2").await.unwrap(), 0);
        assert!(
            l.claim_with_siblings("w3", kinds, LEASE, t(6), 8)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(l.complete_many(&[w1[0].id], "w1").await.unwrap(), 1);
        let w3 = l
            .claim_with_siblings("w3", kinds, LEASE, t(6), 8)
            .await
            .unwrap();
        assert_eq!(deployments(&w3), vec![c[3]]);
        for job in &w1 {
            assert_eq!(l.job(job.id).await.unwrap().unwrap().state, JobState::Done);
        }
        // Jobs of other kinds never bring siblings.
        l.enqueue("notify", json!({}), None, t(0)).await.unwrap();
        let notify = l
            .claim_with_siblings("w4", &["notify"], LEASE, t(6), 8)
            .await
            .unwrap();
        assert_eq!(notify.len(), 1);
    })
    .await;
}
