//! Recording deliveries: once per key, atomically, with the observations'
//! effects and their follow-up jobs.

use rewind_domain::{
    AlertStatus, ChatCommand, CommentEvent, Health, Observation, PullRequestAction,
    PullRequestEvent, PushEvent, ReviewEvent, ReviewState,
};
use rewind_ledger::testing::for_each_backend;
use rewind_ledger::{DeliveryOutcome, JobState, LedgerError, job_kind};

use crate::fixtures::*;

fn recorded(outcome: &DeliveryOutcome) -> (Vec<i64>, Vec<i64>, usize) {
    match outcome {
        DeliveryOutcome::Recorded {
            new_deployments,
            new_alerts,
            jobs,
            ..
        } => (new_deployments.clone(), new_alerts.clone(), *jobs),
        DeliveryOutcome::Duplicate => panic!("expected Recorded, got Duplicate"),
    }
}

#[tokio::test]
async fn argo_history_is_back_filled_in_order_and_recorded_once() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let d = delivery(
            "argocd",
            "d1",
            vec![
                Observation::App(app("shop")),
                argo("shop", 3, 3, 30),
                argo("shop", 1, 1, 10),
                argo("shop", 2, 2, 20),
                health("shop", Some(commit(3).to_string()), Health::Healthy, 31),
            ],
        );
        let (ids, alerts, jobs) = recorded(&l.record_delivery(d.clone()).await.unwrap());
        assert_eq!(ids.len(), 3);
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids in revision order: {ids:?}"
        );
        assert!(alerts.is_empty());
        assert_eq!(jobs, 3, "one resolve job per deployment with a commit");

        let history = l.history(&aref("shop"), 10).await.unwrap();
        let revisions: Vec<i64> = history.iter().map(|d| d.cluster_revision).collect();
        assert_eq!(revisions, [3, 2, 1]);
        assert_eq!(history[2].id, ids[0], "revision 1 got the first id");
        assert_eq!(history[0].health, Health::Healthy);
        assert_eq!(history[0].healthy_since, Some(t(31)));
        assert_eq!(history[1].health, Health::Unknown);

        // The same delivery again changes nothing.
        let deployments = l.history(&aref("shop"), 1000).await.unwrap().len();
        assert_eq!(
            l.record_delivery(d).await.unwrap(),
            DeliveryOutcome::Duplicate
        );
        assert_eq!(
            l.history(&aref("shop"), 1000).await.unwrap().len(),
            deployments
        );
        let counts = l.job_counts().await.unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].kind, job_kind::RESOLVE_DEPLOYMENT);
        assert_eq!(counts[0].state, JobState::Queued);
        assert_eq!(counts[0].count, 3);

        // A later delivery with overlapping history adds only what is new.
        let d2 = delivery(
            "argocd",
            "d2",
            vec![argo("shop", 3, 3, 30), argo("shop", 4, 4, 40)],
        );
        let (ids2, _, jobs2) = recorded(&l.record_delivery(d2).await.unwrap());
        assert_eq!(ids2.len(), 1);
        assert_eq!(jobs2, 1);
        assert_eq!(
            l.current_deployment(&aref("shop"))
                .await
                .unwrap()
                .unwrap()
                .cluster_revision,
            4
        );
    })
    .await;
}

#[tokio::test]
async fn keys_are_per_source() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let a = delivery("argocd", "same", vec![argo("shop", 1, 1, 10)]);
        let b = delivery("flux", "same", vec![argo("shop", 2, 2, 20)]);
        assert!(matches!(
            l.record_delivery(a).await.unwrap(),
            DeliveryOutcome::Recorded { .. }
        ));
        assert!(matches!(
            l.record_delivery(b).await.unwrap(),
            DeliveryOutcome::Recorded { .. }
        ));
    })
    .await;
}

#[tokio::test]
async fn concurrent_identical_deliveries_are_recorded_exactly_once() {
    for_each_backend(|h| async move {
        let d = delivery(
            "argocd",
            "race",
            vec![
                Observation::App(app("shop")),
                argo("shop", 1, 1, 10),
                argo("shop", 2, 2, 20),
            ],
        );
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let l = h.ledger.clone();
                let d = d.clone();
                tokio::spawn(async move { l.record_delivery(d).await })
            })
            .collect();
        let mut recorded = 0;
        let mut duplicates = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                DeliveryOutcome::Recorded { .. } => recorded += 1,
                DeliveryOutcome::Duplicate => duplicates += 1,
            }
        }
        assert_eq!((recorded, duplicates), (1, 49));
        assert_eq!(h.ledger.history(&aref("shop"), 10).await.unwrap().len(), 2);
        assert_eq!(h.count("SELECT COUNT(*) AS n FROM jobs").await.unwrap(), 2);
        assert_eq!(
            h.count("SELECT COUNT(*) AS n FROM webhook_deliveries")
                .await
                .unwrap(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn flux_revisions_get_the_next_number_only_when_the_revision_changes() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let steps = [
            (1, 10, true),
            (1, 11, false),
            (2, 20, true),
            (2, 21, false),
            (1, 30, true),
        ];
        for (i, (n, at, new)) in steps.into_iter().enumerate() {
            let d = delivery("flux", &format!("f{i}"), vec![flux("ns/web", n, at)]);
            let (ids, _, _) = recorded(&l.record_delivery(d).await.unwrap());
            assert_eq!(ids.len(), usize::from(new), "step {i}");
        }
        let history = l.history(&aref("ns/web"), 10).await.unwrap();
        let seq: Vec<(i64, String)> = history
            .iter()
            .map(|d| (d.cluster_revision, d.commit.clone().unwrap().to_string()))
            .collect();
        assert_eq!(
            seq,
            [
                (3, commit(1).to_string()),
                (2, commit(2).to_string()),
                (1, commit(1).to_string())
            ]
        );
        // The app learnt from a deployment is listed, but not rollbackable.
        let apps = l.list_apps().await.unwrap();
        assert_eq!(apps.len(), 1);
        assert!(!apps[0].app.rollbackable);
        assert_eq!(apps[0].current.as_ref().unwrap().cluster_revision, 3);
    })
    .await;
}

#[tokio::test]
async fn concurrent_flux_deliveries_get_distinct_numbers() {
    for_each_backend(|h| async move {
        let tasks: Vec<_> = (0..10u64)
            .map(|i| {
                let l = h.ledger.clone();
                tokio::spawn(async move {
                    let d = delivery("flux", &format!("k{i}"), vec![flux("ns/web", 100 + i, 10)]);
                    l.record_delivery(d).await
                })
            })
            .collect();
        for task in tasks {
            assert!(matches!(
                task.await.unwrap().unwrap(),
                DeliveryOutcome::Recorded { .. }
            ));
        }
        let mut revisions: Vec<i64> = h
            .ledger
            .history(&aref("ns/web"), 100)
            .await
            .unwrap()
            .iter()
            .map(|d| d.cluster_revision)
            .collect();
        revisions.sort_unstable();
        assert_eq!(revisions, (1..=10).collect::<Vec<_>>());
    })
    .await;
}

#[tokio::test]
async fn health_tracks_the_healthy_streak_of_the_reported_revision() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let rec = |key: &str, obs| delivery("argocd", key, obs);
        l.record_delivery(rec(
            "a",
            vec![argo("shop", 1, 1, 0), argo("shop", 2, 2, 10)],
        ))
        .await
        .unwrap();
        // Reported for revision 1 (not current): lands on revision 1.
        l.record_delivery(rec(
            "b",
            vec![health(
                "shop",
                Some(commit(1).to_string()),
                Health::Degraded,
                11,
            )],
        ))
        .await
        .unwrap();
        // No revision: the current deployment.
        l.record_delivery(rec("c", vec![health("shop", None, Health::Healthy, 12)]))
            .await
            .unwrap();
        l.record_delivery(rec("d", vec![health("shop", None, Health::Healthy, 15)]))
            .await
            .unwrap();
        let one = l
            .deployment_by_revision(&aref("shop"), 1)
            .await
            .unwrap()
            .unwrap();
        let two = l
            .deployment_by_revision(&aref("shop"), 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(one.health, Health::Degraded);
        assert_eq!(one.healthy_since, None);
        assert_eq!(two.health, Health::Healthy);
        assert_eq!(
            two.healthy_since,
            Some(t(12)),
            "the streak started at the first report"
        );
        // An unknown revision falls back to the current deployment.
        l.record_delivery(rec(
            "e",
            vec![health("shop", Some("v9".into()), Health::Degraded, 16)],
        ))
        .await
        .unwrap();
        let two = l.deployment(two.id).await.unwrap().unwrap();
        assert_eq!(two.health, Health::Degraded);
        assert_eq!(two.healthy_since, None);
    })
    .await;
}

#[tokio::test]
async fn alerts_mark_the_current_deployment_and_repeats_change_nothing() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        l.record_delivery(delivery(
            "argocd",
            "a",
            vec![argo("shop", 1, 1, 0), argo("shop", 2, 2, 10)],
        ))
        .await
        .unwrap();
        let firing = alert("shop", "fp1", 20, AlertStatus::Firing);
        let d = delivery(
            "alertmanager",
            "x1",
            vec![Observation::Alert(firing.clone())],
        );
        let (_, alerts, jobs) = recorded(&l.record_delivery(d).await.unwrap());
        assert_eq!(alerts.len(), 1);
        assert_eq!(jobs, 1);
        let stored = l.alert(alerts[0]).await.unwrap().unwrap();
        assert_eq!(stored.alert, firing);
        let current = l.current_deployment(&aref("shop")).await.unwrap().unwrap();
        assert_eq!(stored.deployment_id, Some(current.id));
        assert!(current.alerted && !current.known_good);
        assert!(
            !l.deployment_by_revision(&aref("shop"), 1)
                .await
                .unwrap()
                .unwrap()
                .alerted
        );

        // The same episode in another delivery (Alertmanager repeats).
        let d = delivery(
            "alertmanager",
            "x2",
            vec![Observation::Alert(firing.clone())],
        );
        let (_, alerts2, jobs2) = recorded(&l.record_delivery(d).await.unwrap());
        assert!(alerts2.is_empty());
        assert_eq!(jobs2, 0);
        assert_eq!(l.firing_alerts(&aref("shop")).await.unwrap().len(), 1);

        // Resolved: the episode is updated, not duplicated.
        let resolved = alert("shop", "fp1", 20, AlertStatus::Resolved);
        let d = delivery("alertmanager", "x3", vec![Observation::Alert(resolved)]);
        let (_, alerts3, jobs3) = recorded(&l.record_delivery(d).await.unwrap());
        assert!(alerts3.is_empty());
        assert_eq!(jobs3, 0);
        let all = l.alerts_for_app(&aref("shop"), 10).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].alert.status, AlertStatus::Resolved);
        assert_eq!(all[0].alert.ends_at, Some(t(30)));
        assert!(l.firing_alerts(&aref("shop")).await.unwrap().is_empty());

        // A new episode of the same alert is a new row.
        let again = alert("shop", "fp1", 50, AlertStatus::Firing);
        let d = delivery("alertmanager", "x4", vec![Observation::Alert(again)]);
        let (_, alerts4, _) = recorded(&l.record_delivery(d).await.unwrap());
        assert_eq!(alerts4.len(), 1);
        let newest = l.alerts_for_app(&aref("shop"), 1).await.unwrap();
        assert_eq!(newest[0].id, alerts4[0]);
    })
    .await;
}

#[tokio::test]
async fn forge_events_are_stored_per_pull_request_with_a_job_each() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let pr = Observation::PullRequest(PullRequestEvent {
            repository: "acme/gitops".into(),
            number: 7,
            action: PullRequestAction::Opened,
            head_ref: "rewind/shop/x".into(),
            head_sha: Some(commit(9)),
            base_ref: "main".into(),
            merge_commit: None,
            actor: "rewind".into(),
            at: t(1),
        });
        let review = Observation::Review(ReviewEvent {
            repository: "acme/gitops".into(),
            pr_number: 7,
            review_id: 1,
            reviewer: "alice".into(),
            author_association: "MEMBER".into(),
            state: ReviewState::Approved,
            commit: Some(commit(9)),
            at: t(2),
        });
        let comment = Observation::Comment(CommentEvent {
            repository: "acme/gitops".into(),
            pr_number: 8,
            comment_id: 3,
            author: "bob".into(),
            author_association: "MEMBER".into(),
            command: ChatCommand::Merge,
            at: t(3),
        });
        let push = Observation::Push(PushEvent {
            repository: "acme/gitops".into(),
            branch: "main".into(),
            before: Some(commit(1)),
            after: Some(commit(2)),
            forced: false,
            commits: vec![commit(2)],
            pusher: "carol".into(),
            at: t(4),
        });
        let d = delivery(
            "github",
            "g1",
            vec![pr.clone(), review.clone(), comment, push],
        );
        let (_, _, jobs) = recorded(&l.record_delivery(d).await.unwrap());
        assert_eq!(jobs, 4);
        let events = l.forge_events_for_pr(7).await.unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].observation, pr);
        assert_eq!(events[0].kind, "pull_request");
        assert_eq!(events[1].observation, review);
        assert_eq!(l.forge_events_for_pr(8).await.unwrap().len(), 1);
        assert!(l.forge_events_for_pr(99).await.unwrap().is_empty());
        let job = l
            .claim(
                "w",
                &[job_kind::FORGE_EVENT],
                std::time::Duration::from_secs(60),
                t(5),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.payload["forge_event_id"], events[0].id);
        assert_eq!(job.payload["pr_number"], 7);
    })
    .await;
}

#[tokio::test]
async fn a_batch_commits_together_and_a_bad_delivery_fails_alone() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let good = delivery("argocd", "b1", vec![argo("shop", 1, 1, 0)]);
        let bad = delivery("argocd", "", vec![argo("shop", 2, 2, 10)]);
        let also_good = delivery("argocd", "b3", vec![argo("shop", 3, 3, 20)]);
        let results = l
            .record_deliveries(vec![good.clone(), bad, also_good, good])
            .await;
        assert_eq!(results.len(), 4);
        assert!(matches!(results[0], Ok(DeliveryOutcome::Recorded { .. })));
        assert!(matches!(results[1], Err(LedgerError::Invalid(_))));
        assert!(matches!(results[2], Ok(DeliveryOutcome::Recorded { .. })));
        assert!(matches!(results[3], Ok(DeliveryOutcome::Duplicate)));
        let revisions: Vec<i64> = l
            .history(&aref("shop"), 10)
            .await
            .unwrap()
            .iter()
            .map(|d| d.cluster_revision)
            .collect();
        assert_eq!(revisions, [3, 1]);
    })
    .await;
}
