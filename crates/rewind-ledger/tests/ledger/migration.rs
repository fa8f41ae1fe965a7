//! Migration 0002 (app identity = name + cluster) on a database that an
//! older rewind filled: schema 0001 only, rows written by hand in that
//! schema, then today's `connect` runs the remaining migrations. The data
//! must come through under the new keys, on SQLite and PostgreSQL.

use rewind_domain::{AppName, AppRef, ClusterName, Deployment, RollbackState};
use rewind_ledger::Backend;
use rewind_ledger::testing::TestDatabase;

use crate::fixtures::{commit, t};

/// A deployment snapshot as 0001-era rollbacks stored it: the cluster as
/// Argo CD named it (here an empty one).
fn old_doc(id: i64, app: &str, revision: i64) -> String {
    let mut doc = serde_json::to_value(Deployment {
        id,
        app: AppName::new(app).unwrap(),
        cluster: ClusterName::in_cluster(),
        cluster_revision: revision,
        revision: commit(revision as u64).to_string(),
        commit: Some(commit(revision as u64)),
        tree: None,
        config_hash: None,
        images: vec![],
        health: rewind_domain::Health::Healthy,
        sync: rewind_domain::SyncStatus::Synced,
        deployed_at: t(revision),
        source: rewind_domain::Source::Argocd,
        known_good: revision == 1,
        known_good_by_history: false,
        healthy_since: None,
        alerted: false,
        initiated_by: None,
    })
    .unwrap();
    doc["cluster"] = serde_json::json!("");
    doc.to_string().replace('\'', "''")
}

fn old_rows(backend: Backend) -> Vec<String> {
    let time = |minutes: i64| match backend {
        Backend::Sqlite => t(minutes).timestamp_micros().to_string(),
        Backend::Postgres => format!("'{}'", t(minutes).to_rfc3339()),
    };
    let mut rows = vec![
        // Argo CD with a named destination, Argo CD's own cluster, and a
        // Flux app configured without a cluster.
        format!(
            "INSERT INTO apps (name, source, cluster, sources, path, rollbackable, updated_at) \
             VALUES ('shop/checkout', 'argocd', 'prod-eu', '[]', 'apps/checkout/prod', TRUE, {})",
            time(0)
        ),
        format!(
            "INSERT INTO apps (name, source, cluster, sources, path, rollbackable, held_since, updated_at) \
             VALUES ('guestbook', 'argocd', 'https://kubernetes.default.svc', '[]', 'guestbook', TRUE, {}, {})",
            time(3),
            time(0)
        ),
        format!(
            "INSERT INTO apps (name, source, cluster, sources, path, rollbackable, updated_at) \
             VALUES ('flux-system/web', 'flux', '', '[]', 'apps/web', TRUE, {})",
            time(0)
        ),
    ];
    for (app, cluster) in [
        ("shop/checkout", "prod-eu"),
        ("guestbook", "https://kubernetes.default.svc"),
        ("flux-system/web", ""),
    ] {
        for revision in 1..=2i64 {
            rows.push(format!(
                "INSERT INTO deployments (app, cluster, cluster_revision, revision, commit_sha, \
                     images, health, sync, deployed_at, source, known_good, alerted, recorded_at) \
                 VALUES ('{app}', '{cluster}', {revision}, '{sha}', '{sha}', '[]', 'Healthy', \
                     'Synced', {at}, 'argocd', {good}, FALSE, {at})",
                sha = commit(revision as u64),
                at = time(revision),
                good = if revision == 1 { "TRUE" } else { "FALSE" },
            ));
        }
    }
    rows.push(format!(
        "INSERT INTO alerts (app, cluster, name, status, fingerprint, group_key, starts_at, \
             labels, annotations, received_at) \
         VALUES ('shop/checkout', NULL, 'HighErrorRate', 'firing', 'fp1', 'g', {at}, '{{}}', \
             '{{}}', {at})",
        at = time(5)
    ));
    // Ids of the deployments above: 1, 2 for shop/checkout.
    rows.push(format!(
        "INSERT INTO rollbacks (id, app, state, from_deployment_id, to_deployment_id, from_doc, \
             to_doc, reason, trigger, strategy, diff, created_at, updated_at) \
         VALUES ('01936f4e-8b2a-7c3d-9e4f-a1b2c3d4e5f6', 'shop/checkout', 'proposed', 2, 1, \
             '{from}', '{to}', 'error rate', '{{\"kind\": \"manual\", \"caller\": \"oncall\"}}', \
             'restore', '{{\"semantic\": null, \"text\": \"\"}}', {at}, {at})",
        from = old_doc(2, "shop/checkout", 2),
        to = old_doc(1, "shop/checkout", 1),
        at = time(6)
    ));
    rows
}

fn app_ref(s: &str) -> AppRef {
    s.parse().unwrap()
}

#[tokio::test]
async fn migration_0002_carries_a_0001_database_over() {
    for db in TestDatabase::all().await {
        let backend = db.backend();
        let rows = old_rows(backend);
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        db.at_schema_version(1, &rows).await;
        let h = db.connect().await;
        let l = h.ledger.clone();

        // Every app got its cluster; Argo CD's own and Flux's empty one
        // became `in-cluster`; the hold survived.
        let listed: Vec<String> = l
            .list_apps()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.app.app_ref().to_string())
            .collect();
        assert_eq!(
            listed,
            [
                "flux-system/web@in-cluster",
                "guestbook@in-cluster",
                "shop/checkout@prod-eu"
            ],
            "{backend:?}"
        );
        let guestbook = l
            .get_app(&app_ref("guestbook@in-cluster"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(guestbook.held_since, Some(t(3)), "{backend:?}");
        assert_eq!(
            l.app_clusters(&AppName::new("shop/checkout").unwrap())
                .await
                .unwrap(),
            [ClusterName::new("prod-eu").unwrap()]
        );

        // History, known good and the current deployment under the new key.
        let checkout = app_ref("shop/checkout@prod-eu");
        let history = l.history(&checkout, 10).await.unwrap();
        assert_eq!(history.len(), 2, "{backend:?}");
        assert!(history.iter().all(|d| d.cluster.as_str() == "prod-eu"));
        assert_eq!(
            l.last_known_good_before(&checkout, 2)
                .await
                .unwrap()
                .map(|d| d.cluster_revision),
            Some(1)
        );
        let web = l
            .current_deployment(&app_ref("flux-system/web@in-cluster"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(web.cluster_revision, 2);

        // The alert and the open rollback follow their app; the snapshots
        // inside the rollback name the cluster too.
        let alerts = l.firing_alerts(&checkout).await.unwrap();
        assert_eq!(alerts.len(), 1, "{backend:?}");
        assert_eq!(alerts[0].alert.app_ref(), Some(checkout.clone()));
        let open = l.open_rollback(&checkout).await.unwrap().unwrap();
        assert_eq!(open.state, RollbackState::Proposed);
        assert_eq!(open.app_ref(), checkout);
        assert_eq!(open.from.cluster.as_str(), "prod-eu");
        assert_eq!(open.to.app_ref(), checkout);
        assert_eq!(l.count_rollbacks_since(&checkout, t(0)).await.unwrap(), 1);

        // The one-open-rollback index still holds, per app and cluster.
        let mut second = open.clone();
        second.id = rewind_domain::RollbackId::generate();
        assert!(l.insert_rollback(&second).await.is_err(), "{backend:?}");
        second.cluster = ClusterName::new("staging").unwrap();
        second.from.cluster = second.cluster.clone();
        second.to.cluster = second.cluster.clone();
        l.insert_rollback(&second).await.unwrap();

        drop(l);
        drop(h);
        db.cleanup().await;
    }
}
