//! In-cluster rollbacks (Flagger, Argo Rollouts): recorded with their
//! delivery, once, and read back by app and cluster.

use rewind_domain::{ClusterRolledBack, Observation, RollbackSender};
use rewind_ledger::testing::for_each_backend;
use rewind_ledger::{Delivery, DeliveryOutcome};

use crate::fixtures::*;

fn canary(cluster: &str, at: i64) -> ClusterRolledBack {
    ClusterRolledBack {
        app: name("test/podinfo"),
        cluster: cluster.into(),
        namespace: "test".into(),
        workload: "Canary/podinfo".into(),
        sender: RollbackSender::Flagger,
        running_revision: None,
        running_images: vec![],
        rejected_revision: Some("85d557f47b".into()),
        rejected_images: vec![],
        at: t(at),
        message: "Canary failed! Scaling down podinfo.test".into(),
    }
}

fn rollout() -> ClusterRolledBack {
    ClusterRolledBack {
        app: name("test/podinfo"),
        cluster: "prod-eu".into(),
        namespace: "test".into(),
        workload: "Rollout/podinfo".into(),
        sender: RollbackSender::ArgoRollouts,
        running_revision: Some("7d84d44bb8".into()),
        running_images: vec!["ghcr.io/acme/podinfo:1.0".into()],
        rejected_revision: Some("db976bc44".into()),
        rejected_images: vec!["ghcr.io/acme/podinfo:1.1".into(), "busybox:1.36".into()],
        at: t(3),
        message: "metric \"web\" assessed Failed: 'quoted' <text> & more".into(),
    }
}

fn delivery(key: &str, observations: Vec<ClusterRolledBack>) -> Delivery {
    Delivery {
        source: "flagger".into(),
        key: key.into(),
        received_at: t(10),
        observations: observations
            .into_iter()
            .map(Observation::ClusterRolledBack)
            .collect(),
    }
}

#[tokio::test]
async fn recorded_once_and_read_back_by_app_and_cluster() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let first = l
            .record_delivery(delivery("k1", vec![canary("staging", 1)]))
            .await
            .unwrap();
        let DeliveryOutcome::Recorded {
            new_cluster_rollbacks,
            jobs,
            ..
        } = first
        else {
            panic!("expected Recorded, got {first:?}");
        };
        assert_eq!(new_cluster_rollbacks.len(), 1);
        // The catch-up job, in the same transaction as the report.
        assert_eq!(jobs, 1);
        let counts = l.job_counts().await.unwrap();
        assert!(
            counts
                .iter()
                .any(|c| c.kind == rewind_ledger::job_kind::CLUSTER_ROLLED_BACK),
            "{counts:?}"
        );
        // The same delivery again changes nothing.
        assert_eq!(
            l.record_delivery(delivery("k1", vec![canary("staging", 1)]))
                .await
                .unwrap(),
            DeliveryOutcome::Duplicate
        );
        l.record_delivery(delivery("k2", vec![canary("prod-eu", 2), rollout()]))
            .await
            .unwrap();

        let all = l
            .cluster_rollbacks(&name("test/podinfo"), None, 10)
            .await
            .unwrap();
        assert_eq!(all.len(), 3, "{all:?}");
        // Newest first; every field survives the round trip.
        assert_eq!(all[0].rollback, rollout());
        assert_eq!(all[0].received_at, t(10));
        assert_eq!(all[1].rollback, canary("prod-eu", 2));
        assert_eq!(all[2].rollback, canary("staging", 1));
        assert_eq!(all[2].id, new_cluster_rollbacks[0]);

        let prod = l
            .cluster_rollbacks(&name("test/podinfo"), Some("prod-eu"), 10)
            .await
            .unwrap();
        assert_eq!(prod.len(), 2);
        assert!(prod.iter().all(|r| r.rollback.cluster == "prod-eu"));
        let limited = l
            .cluster_rollbacks(&name("test/podinfo"), None, 1)
            .await
            .unwrap();
        assert_eq!(limited.len(), 1);
        assert!(
            l.cluster_rollbacks(&name("other"), None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            l.cluster_rollback(all[1].id).await.unwrap().as_ref(),
            Some(&all[1])
        );
        assert_eq!(l.cluster_rollback(i64::MAX).await.unwrap(), None);
    })
    .await;
}
