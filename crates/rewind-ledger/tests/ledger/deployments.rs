//! Deployment queries, resolution, health and known-good promotion.

use std::time::Duration;

use rewind_domain::{AlertStatus, ConfigHash, Health, Observation, SyncStatus};
use rewind_ledger::LedgerError;
use rewind_ledger::testing::for_each_backend;

use crate::fixtures::*;

const FIVE_MINUTES: Duration = Duration::from_secs(300);

#[tokio::test]
async fn queries_by_revision_commit_time_and_known_good() {
    for_each_backend(|h| async move {
        let l = h.ledger.clone();
        // Revisions 1..=5 deployed at minutes 10, 20, ...; commits 1,2,1,3,4.
        let commits = [1, 2, 1, 3, 4];
        let obs = commits
            .iter()
            .enumerate()
            .map(|(i, &c)| argo("shop", i as i64 + 1, c, (i as i64 + 1) * 10))
            .collect();
        l.record_delivery(delivery("argocd", "a", obs))
            .await
            .unwrap();
        let app = aref("shop");

        let by_commit = l.deployments_by_commit(&app, &commit(1)).await.unwrap();
        let revs: Vec<i64> = by_commit.iter().map(|d| d.cluster_revision).collect();
        assert_eq!(revs, [3, 1]);
        assert!(
            l.deployments_by_commit(&app, &commit(7))
                .await
                .unwrap()
                .is_empty()
        );

        assert_eq!(l.deployment_at(&app, t(5)).await.unwrap(), None);
        assert_eq!(
            l.deployment_at(&app, t(10))
                .await
                .unwrap()
                .unwrap()
                .cluster_revision,
            1
        );
        assert_eq!(
            l.deployment_at(&app, t(29))
                .await
                .unwrap()
                .unwrap()
                .cluster_revision,
            2
        );
        assert_eq!(
            l.deployment_at(&app, t(999))
                .await
                .unwrap()
                .unwrap()
                .cluster_revision,
            5
        );

        assert_eq!(l.history(&app, 2).await.unwrap().len(), 2);
        assert_eq!(l.deployment_by_revision(&app, 9).await.unwrap(), None);
        assert_eq!(l.current_deployment(&aref("other")).await.unwrap(), None);

        // Make revisions 1 and 3 known good: each while current.
        for rev in [1, 3] {
            h.execute_raw(&format!(
                "UPDATE deployments SET known_good = TRUE WHERE cluster_revision = {rev}"
            ))
            .await
            .unwrap();
        }
        let lkg = |rev| {
            let l = l.clone();
            let app = app.clone();
            async move {
                l.last_known_good_before(&app, rev)
                    .await
                    .unwrap()
                    .map(|d| d.cluster_revision)
            }
        };
        assert_eq!(lkg(5).await, Some(3));
        assert_eq!(lkg(3).await, Some(1));
        assert_eq!(lkg(1).await, None);

        let summary = l.list_apps().await.unwrap();
        assert_eq!(summary[0].current.as_ref().unwrap().cluster_revision, 5);
        assert_eq!(summary[0].known_good.as_ref().unwrap().cluster_revision, 3);
    })
    .await;
}

/// The whole fleet's summaries (two statements) say what each app's own
/// summary says: current and newest known-good, per app, none mixed up.
#[tokio::test]
async fn the_fleet_list_agrees_with_each_apps_summary() {
    for_each_backend(|h| async move {
        let l = h.ledger.clone();
        let mut obs = Vec::new();
        for (app, revisions) in [("shop", 4), ("cart", 2), ("search", 3), ("empty", 0)] {
            obs.push(Observation::App(crate::fixtures::app(app)));
            for rev in 1..=revisions {
                obs.push(argo(app, rev, rev as u64, rev * 10));
            }
        }
        l.record_delivery(delivery("argocd", "fleet", obs))
            .await
            .unwrap();
        // shop: 1 and 3 known good (current 4 is not); cart: its current;
        // search: none.
        for (app, rev) in [("shop", 1), ("shop", 3), ("cart", 2)] {
            h.execute_raw(&format!(
                "UPDATE deployments SET known_good = TRUE \
                 WHERE app = '{app}@prod' AND cluster_revision = {rev}"
            ))
            .await
            .unwrap();
        }
        let fleet = l.list_apps().await.unwrap();
        let paged = l.list_apps_page(None, 1000).await.unwrap();
        assert_eq!(format!("{fleet:?}"), format!("{paged:?}"));
        let revisions: Vec<(String, Option<i64>, Option<i64>)> = fleet
            .iter()
            .map(|s| {
                (
                    s.app.name.to_string(),
                    s.current.as_ref().map(|d| d.cluster_revision),
                    s.known_good.as_ref().map(|d| d.cluster_revision),
                )
            })
            .collect();
        assert_eq!(
            revisions,
            [
                ("cart".to_string(), Some(2), Some(2)),
                ("empty".to_string(), None, None),
                ("search".to_string(), Some(3), None),
                ("shop".to_string(), Some(4), Some(3)),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn resolution_and_direct_health_updates() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let outcome = l
            .record_delivery(delivery("argocd", "a", vec![argo("shop", 1, 1, 10)]))
            .await
            .unwrap();
        let id = match outcome {
            rewind_ledger::DeliveryOutcome::Recorded {
                new_deployments, ..
            } => new_deployments[0],
            other => panic!("{other:?}"),
        };
        let hash = ConfigHash::from_digest([7; 32]);
        l.set_deployment_resolution(id, "abc123".into(), hash.clone(), vec!["web:v1".into()])
            .await
            .unwrap();
        let d = l.deployment(id).await.unwrap().unwrap();
        assert_eq!(d.tree.as_deref(), Some("abc123"));
        assert_eq!(d.config_hash, Some(hash.clone()));
        assert_eq!(d.images, ["web:v1"]);
        assert_eq!(d.commit, Some(commit(1)));
        assert_eq!(d.initiated_by.as_deref(), Some("automated"));

        let d = l
            .update_health(id, Health::Healthy, Some(SyncStatus::Synced), t(11))
            .await
            .unwrap();
        assert_eq!(
            (d.health, d.sync, d.healthy_since),
            (Health::Healthy, SyncStatus::Synced, Some(t(11)))
        );
        let d = l
            .update_health(id, Health::Healthy, None, t(12))
            .await
            .unwrap();
        assert_eq!(d.healthy_since, Some(t(11)));
        let d = l
            .update_health(id, Health::Progressing, None, t(13))
            .await
            .unwrap();
        assert_eq!(
            (d.health, d.sync, d.healthy_since),
            (Health::Progressing, SyncStatus::Synced, None)
        );

        assert!(matches!(
            l.set_deployment_resolution(id + 100, "x".into(), hash, vec![])
                .await,
            Err(LedgerError::NotFound { .. })
        ));
        assert!(matches!(
            l.update_health(id + 100, Health::Healthy, None, t(1)).await,
            Err(LedgerError::NotFound { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn only_a_current_healthy_unalerted_deployment_becomes_known_good() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let rec = |key: &str, obs: Vec<Observation>| delivery("argocd", key, obs);
        // a: healthy since minute 10, current → promoted at minute 15.
        // b: revision 1 healthy, but revision 2 is current → only 2 counts.
        // c: healthy only since minute 14 → too recent at 15.
        // d: alerted → never.
        // e: healthy, but a firing alert from before its deployment → no.
        l.record_delivery(rec(
            "1",
            vec![
                argo("a", 1, 1, 0),
                health("a", None, Health::Healthy, 10),
                argo("b", 1, 1, 0),
                health("b", Some(commit(1).to_string()), Health::Healthy, 1),
                argo("b", 2, 2, 5),
                health("b", Some(commit(2).to_string()), Health::Degraded, 6),
                argo("c", 1, 1, 0),
                health("c", None, Health::Healthy, 14),
                argo("d", 1, 1, 0),
                health("d", None, Health::Healthy, 1),
                argo("e", 1, 1, 0),
            ],
        ))
        .await
        .unwrap();
        l.record_delivery(rec(
            "2",
            vec![Observation::Alert(alert("d", "fd", 2, AlertStatus::Firing))],
        ))
        .await
        .unwrap();
        // The alert on e fires while revision 1 is current, then a new
        // deployment arrives; the alert still fires.
        l.record_delivery(rec(
            "3",
            vec![Observation::Alert(alert("e", "fe", 1, AlertStatus::Firing))],
        ))
        .await
        .unwrap();
        l.record_delivery(rec(
            "4",
            vec![argo("e", 2, 2, 2), health("e", None, Health::Healthy, 3)],
        ))
        .await
        .unwrap();

        let promoted = l.promote_known_good(t(15), FIVE_MINUTES).await.unwrap();
        let a = l.current_deployment(&aref("a")).await.unwrap().unwrap();
        assert_eq!(promoted, [a.id]);
        assert!(a.known_good);
        for app in ["b", "c", "d", "e"] {
            let current = l.current_deployment(&aref(app)).await.unwrap().unwrap();
            assert!(!current.known_good, "{app}");
        }
        assert!(
            !l.deployment_by_revision(&aref("b"), 1)
                .await
                .unwrap()
                .unwrap()
                .known_good
        );
        // Idempotent: nothing new to promote.
        assert!(
            l.promote_known_good(t(15), FIVE_MINUTES)
                .await
                .unwrap()
                .is_empty()
        );
        // Later, c qualifies too; e qualifies once its alert resolves.
        l.record_delivery(rec(
            "5",
            vec![Observation::Alert(alert(
                "e",
                "fe",
                1,
                AlertStatus::Resolved,
            ))],
        ))
        .await
        .unwrap();
        let mut later = l.promote_known_good(t(20), FIVE_MINUTES).await.unwrap();
        later.sort_unstable();
        let c = l.current_deployment(&aref("c")).await.unwrap().unwrap();
        let e = l.current_deployment(&aref("e")).await.unwrap().unwrap();
        assert_eq!(later, [c.id, e.id]);

        // A firing alert spoils even a known-good current deployment.
        l.record_delivery(rec(
            "6",
            vec![Observation::Alert(alert(
                "a",
                "fa",
                30,
                AlertStatus::Firing,
            ))],
        ))
        .await
        .unwrap();
        let a = l.current_deployment(&aref("a")).await.unwrap().unwrap();
        assert!(a.alerted && !a.known_good);
        assert_eq!(
            l.last_known_good_before(&aref("a"), 99).await.unwrap(),
            None
        );
    })
    .await;
}
