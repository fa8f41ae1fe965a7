//! Argo CD notifications, from the real Application fixture.

use rewind_domain::{Health, Observation, Source, SyncStatus};
use rewind_ingest::{IngestSettings, Parsed, WebhookSource, body_delivery_key, ingest};
use serde_json::json;

use crate::common::*;

const SHA: &str = "ea8759964626a583667a2bfd08f334ec2070040a";

fn parse(body: &[u8], s: &IngestSettings) -> Result<Parsed, rewind_ingest::IngestError> {
    let mut h = bearer(ARGOCD_TOKEN);
    // Argo CD sends no Content-Type unless the service is configured to.
    h.remove("content-type");
    ingest(WebhookSource::Argocd, &h, body, s)
}

#[test]
fn on_deployed_fixture_yields_app_history_and_health() {
    let parsed = parse(ARGOCD_ON_DEPLOYED, &settings()).unwrap();
    assert_eq!(parsed.source, "argocd");
    assert_eq!(parsed.ignored, 0);
    assert_eq!(parsed.delivery_key, body_delivery_key(ARGOCD_ON_DEPLOYED));
    assert!(parsed.delivery_key.starts_with("sha256:") && parsed.delivery_key.len() == 71);
    // One app, ten history entries, one health.
    assert_eq!(parsed.accepted(), 12);
    assert!(matches!(parsed.observations[0], Observation::App(_)));

    let app = only(apps(&parsed));
    // The Application lives in the control-plane namespace (`argo-cd`), so
    // its key is the bare name.
    assert_eq!(app.name.as_str(), "velero-test");
    assert_eq!(app.source, Source::Argocd);
    assert_eq!(app.project.as_deref(), Some("sre"));
    assert_eq!(app.cluster.as_str(), "gke-alpha-01-europe-west1");
    assert_eq!(app.sources.len(), 1);
    assert_eq!(
        app.sources[0].repo_url,
        "https://github.com/foo/manifests-velero.git"
    );
    assert_eq!(app.sources[0].path, "instances/test");
    assert_eq!(app.sources[0].target_revision.as_deref(), Some("test-lla"));
    assert_eq!(app.path.as_deref(), Some("instances/test"));
    assert!(
        app.rollbackable,
        "git.url in ssh form must match the https repoURL"
    );
    assert_eq!(app.status, None);
    assert_eq!(app.updated_at, ts("2024-03-05T07:33:04Z"));

    let deployments = deployments(&parsed);
    let ids: Vec<i64> = deployments
        .iter()
        .map(|d| d.cluster_revision.unwrap())
        .collect();
    assert_eq!(ids, (14..=23).collect::<Vec<_>>());
    for d in &deployments {
        assert_eq!(d.app.as_str(), "velero-test");
        assert_eq!(d.cluster.as_str(), "gke-alpha-01-europe-west1");
        assert_eq!(d.revision, SHA);
        assert_eq!(d.commit.as_ref().unwrap().as_str(), SHA);
        assert_eq!(d.source, Source::Argocd);
        assert_eq!(d.initiated_by, None);
    }
    assert_eq!(deployments[0].deployed_at, ts("2024-03-04T22:00:06Z"));
    assert_eq!(deployments[9].deployed_at, ts("2024-03-05T07:33:04Z"));

    let health = only(healths(&parsed));
    assert_eq!(health.health, Health::Healthy);
    assert_eq!(health.sync, Some(SyncStatus::Synced));
    // syncResult.revision wins over the fixture's edited `sync.revision: rev1`.
    assert_eq!(health.revision.as_deref(), Some(SHA));
    assert_eq!(health.commit.as_ref().unwrap().as_str(), SHA);
    assert_eq!(health.at, ts("2024-03-05T07:33:04Z"));
}

#[test]
fn the_bare_application_fixture_wrapped_by_the_template_parses_the_same() {
    let app: serde_json::Value =
        serde_json::from_slice(include_bytes!("../fixtures/argocd/application.json")).unwrap();
    let body = serde_json::to_vec(&json!({"event": "on-health-degraded", "app": app})).unwrap();
    let a = parse(&body, &settings()).unwrap();
    let b = parse(ARGOCD_ON_DEPLOYED, &settings()).unwrap();
    assert_eq!(a.observations, b.observations);
    assert_ne!(a.delivery_key, b.delivery_key);
}

#[test]
fn apps_from_another_repository_are_recorded_but_not_rollbackable() {
    let s = IngestSettings {
        git_url: "https://github.com/foo/gitops.git".into(),
        ..settings()
    };
    let parsed = parse(ARGOCD_ON_DEPLOYED, &s).unwrap();
    let app = only(apps(&parsed));
    assert!(!app.rollbackable);
    assert_eq!(app.path, None);
    let note = app.status.as_deref().unwrap();
    assert!(
        note.contains("https://github.com/foo/manifests-velero.git"),
        "{note}"
    );
    assert!(note.contains("https://github.com/foo/gitops.git"), "{note}");
    // Its history is still recorded.
    assert_eq!(deployments(&parsed).len(), 10);
}

#[test]
fn apps_outside_the_control_plane_namespace_are_keyed_namespace_slash_name() {
    let body = edited(ARGOCD_ON_DEPLOYED, |v| {
        v["app"]["metadata"]["namespace"] = json!("shop")
    });
    let parsed = parse(&body, &settings()).unwrap();
    assert_eq!(only(apps(&parsed)).name.as_str(), "shop/velero-test");
    assert!(
        deployments(&parsed)
            .iter()
            .all(|d| d.app.as_str() == "shop/velero-test")
    );

    // Without `controllerNamespace`, the control plane is `argocd`.
    let body = edited(ARGOCD_ON_DEPLOYED, |v| {
        v["app"]["status"]
            .as_object_mut()
            .unwrap()
            .remove("controllerNamespace");
        v["app"]["metadata"]["namespace"] = json!("argocd");
    });
    assert_eq!(
        only(apps(&parse(&body, &settings()).unwrap()))
            .name
            .as_str(),
        "velero-test"
    );
    let body = edited(ARGOCD_ON_DEPLOYED, |v| {
        v["app"]["status"]
            .as_object_mut()
            .unwrap()
            .remove("controllerNamespace");
    });
    assert_eq!(
        only(apps(&parse(&body, &settings()).unwrap()))
            .name
            .as_str(),
        "argo-cd/velero-test"
    );
}

/// The cluster every observation of a parsed delivery names.
fn clusters_of(parsed: &Parsed) -> Vec<String> {
    let mut out: Vec<String> = parsed
        .observations
        .iter()
        .filter_map(|o| match o {
            Observation::App(a) => Some(a.cluster.to_string()),
            Observation::Deployment(d) => Some(d.cluster.to_string()),
            Observation::Health(h) => Some(h.cluster.to_string()),
            _ => None,
        })
        .collect();
    out.dedup();
    out
}

#[test]
fn argo_cds_own_cluster_is_the_senders() {
    for destination in [
        json!({"server": "https://kubernetes.default.svc", "namespace": "x"}),
        json!({"server": "https://kubernetes.default.svc/", "namespace": "x"}),
        json!({"name": "in-cluster", "namespace": "x"}),
        json!({"namespace": "x"}),
    ] {
        let body = edited(ARGOCD_ON_DEPLOYED, |v| {
            v["app"]["spec"]["destination"] = destination.clone();
        });
        let parsed = parse(&body, &settings()).unwrap();
        assert_eq!(clusters_of(&parsed), ["in-cluster"], "{destination}");
        let verified =
            rewind_ingest::verify_argocd(&bearer(ARGOCD_TOKEN), &body, ARGOCD_TOKEN).unwrap();
        let sender = rewind_domain::ClusterName::new("prod-eu").unwrap();
        let parsed =
            rewind_ingest::parse_argocd_from(verified, &settings(), Some(&sender)).unwrap();
        assert_eq!(clusters_of(&parsed), ["prod-eu"], "{destination}");
    }
}

#[test]
fn destination_servers_are_named_by_clusters_entries() {
    let body = edited(ARGOCD_ON_DEPLOYED, |v| {
        v["app"]["spec"]["destination"] =
            json!({"server": "https://prod-eu.k8s.example.com/", "namespace": "x"});
    });
    let mut named = settings();
    named.clusters = vec![rewind_ingest::ClusterMapping {
        name: "prod-eu".into(),
        server: "https://PROD-EU.k8s.example.com".into(),
    }];
    assert_eq!(clusters_of(&parse(&body, &named).unwrap()), ["prod-eu"]);
    // Unnamed: the URL is the cluster's name, so nothing is merged by guess.
    assert_eq!(
        clusters_of(&parse(&body, &settings()).unwrap()),
        ["https://prod-eu.k8s.example.com/"]
    );
    // A destination name wins over the server.
    let body = edited(ARGOCD_ON_DEPLOYED, |v| {
        v["app"]["spec"]["destination"] =
            json!({"name": "staging", "server": "https://prod-eu.k8s.example.com"});
    });
    assert_eq!(clusters_of(&parse(&body, &named).unwrap()), ["staging"]);
    // `@` cannot be part of a cluster name: a clear 400, not a wrong key.
    let body = edited(ARGOCD_ON_DEPLOYED, |v| {
        v["app"]["spec"]["destination"] = json!({"name": "a@b"});
    });
    let err = parse(&body, &settings()).unwrap_err().to_string();
    assert!(err.contains("app.spec.destination"), "{err}");
}

#[test]
fn multi_source_apps_use_the_revision_of_the_gitops_source() {
    const OURS: &str = "1111111111111111111111111111111111111111";
    const OURS_OLD: &str = "2222222222222222222222222222222222222222";
    let body = edited(ARGOCD_ON_DEPLOYED, |v| {
        let app = &mut v["app"];
        app["spec"].as_object_mut().unwrap().remove("source");
        app["spec"]["sources"] = json!([
            {"repoURL": "https://charts.example.com", "chart": "velero", "targetRevision": "6.5.0"},
            {"repoURL": "https://GITHUB.com/foo/manifests-velero/", "path": "instances/prod", "targetRevision": "main"}
        ]);
        app["status"]["history"] = json!([
            {"id": 3, "revisions": ["6.4.0", OURS_OLD], "deployedAt": "2025-01-01T00:00:00Z",
             "source": {"repoURL": ""}, "initiatedBy": {"automated": true}},
            {"id": 4, "revisions": ["6.5.0", OURS], "deployedAt": "2025-01-02T00:00:00Z",
             "source": {"repoURL": ""}, "initiatedBy": {"username": "alice"}}
        ]);
        app["status"]["operationState"]["syncResult"] =
            json!({"revision": "", "revisions": ["6.5.0", OURS]});
        app["status"]["health"] =
            json!({"status": "Degraded", "lastTransitionTime": "2025-01-02T00:05:00Z"});
        app["status"]["sync"] = json!({"status": "OutOfSync", "revisions": ["6.5.0", OURS]});
    });
    let parsed = parse(&body, &settings()).unwrap();
    let app = only(apps(&parsed));
    assert_eq!(app.sources.len(), 2);
    assert_eq!(app.sources[0].chart.as_deref(), Some("velero"));
    assert_eq!(app.path.as_deref(), Some("instances/prod"));
    assert!(app.rollbackable);

    let d = deployments(&parsed);
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0].cluster_revision, d[0].revision.as_str()),
        (Some(3), OURS_OLD)
    );
    assert_eq!(d[0].initiated_by.as_deref(), Some("automated"));
    assert_eq!(
        (d[1].cluster_revision, d[1].revision.as_str()),
        (Some(4), OURS)
    );
    assert_eq!(d[1].initiated_by.as_deref(), Some("alice"));
    assert_eq!(d[1].deployed_at, ts("2025-01-02T00:00:00Z"));

    let h = only(healths(&parsed));
    assert_eq!(h.health, Health::Degraded);
    assert_eq!(h.sync, Some(SyncStatus::OutOfSync));
    assert_eq!(h.revision.as_deref(), Some(OURS));
    assert_eq!(h.at, ts("2025-01-02T00:05:00Z"));
}

#[test]
fn health_falls_back_to_sync_revision_and_chart_revisions_have_no_commit() {
    let body = edited(ARGOCD_ON_DEPLOYED, |v| {
        let status = &mut v["app"]["status"];
        status.as_object_mut().unwrap().remove("operationState");
        status["history"] = json!([{"id": 0, "revision": "6.5.0", "deployedAt": "2025-01-01T00:00:00Z", "initiatedBy": {}}]);
    });
    let parsed = parse(&body, &settings()).unwrap();
    let d = only(deployments(&parsed));
    assert_eq!((d.revision.as_str(), d.commit.as_ref()), ("6.5.0", None));
    assert_eq!(d.initiated_by, None);
    let h = only(healths(&parsed));
    assert_eq!(h.revision.as_deref(), Some("rev1"));
    assert_eq!(h.commit, None);
}

#[test]
fn a_minimal_application_without_status_yields_just_the_app() {
    let body = br#"{"event":"on-created","app":{"metadata":{"name":"guestbook"}}}"#;
    let parsed = parse(body, &settings()).unwrap();
    assert_eq!(parsed.accepted(), 1);
    let app = only(apps(&parsed));
    assert_eq!(app.name.as_str(), "guestbook");
    assert!(!app.rollbackable);
}

#[test]
fn malformed_bodies_name_the_field() {
    let s = settings();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (edited(ARGOCD_ON_DEPLOYED, |v| v["app"]["status"]["history"][2]["id"] = json!("fifteen")), "app.status.history[2].id"),
        (edited(ARGOCD_ON_DEPLOYED, |v| v["app"]["status"]["history"][0]["deployedAt"] = json!("yesterday")), "app.status.history[0].deployedAt"),
        (edited(ARGOCD_ON_DEPLOYED, |v| v["app"]["status"]["health"]["status"] = json!(3)), "app.status.health.status"),
        (edited(ARGOCD_ON_DEPLOYED, |v| v["app"]["spec"]["sources"] = json!({"repoURL": "x"})), "app.spec.sources"),
        (edited(ARGOCD_ON_DEPLOYED, |v| v["app"]["metadata"]["name"] = json!("a b")), "app.metadata.name"),
        (edited(ARGOCD_ON_DEPLOYED, |v| { v["app"]["metadata"].as_object_mut().unwrap().remove("name"); }), "app.metadata"),
        (br#"{"event":"on-deployed"}"#.to_vec(), "body"),
        (b"[]".to_vec(), "body"),
        (b"".to_vec(), "body"),
        (br#"{"app":{"metadata":{"name":"x"}}} trailing"#.to_vec(), "body"),
        (br#"{"app":{"metadata":{"name":"x"},"status":{"history":[{"id":1e400}]}}}"#.to_vec(), "app.status.history[0].id"),
        (br#"{"app":{"metadata":{"name":"x"},"status":{"history":[{"id":99999999999999999999}]}}}"#.to_vec(), "app.status.history[0].id"),
    ];
    for (body, field) in cases {
        assert_eq!(
            malformed_field(parse(&body, &s)),
            field,
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
    }
    // Truncation names the innermost field reached.
    let truncated = &ARGOCD_ON_DEPLOYED[..ARGOCD_ON_DEPLOYED.len() / 2];
    let field = malformed_field(parse(truncated, &s));
    assert!(field.starts_with("app."), "{field}");
}
