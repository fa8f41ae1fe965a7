//! Flux generic-hmac events: the real capture, the upstream vector and the
//! docs example.

use rewind_domain::{Health, Observation, Source, SyncStatus};
use rewind_ingest::flux::health_of;
use rewind_ingest::{
    IngestSettings, Parsed, WebhookSource, body_delivery_key, commit_of_revision, ingest,
};
use serde_json::json;

use crate::common::*;

const REAL_SHA: &str = "07a684d59d1bc9a58e0c0d07ed480812b2b9a29e";

fn parse(body: &[u8], s: &IngestSettings) -> Result<Parsed, rewind_ingest::IngestError> {
    ingest(WebhookSource::Flux, &flux_headers(body), body, s)
}

#[test]
fn real_kustomization_capture_yields_app_deployment_and_health() {
    let parsed = parse(FLUX_REAL, &settings()).unwrap();
    assert_eq!(parsed.source, "flux");
    assert_eq!(parsed.ignored, 0);
    assert_eq!(parsed.delivery_key, body_delivery_key(FLUX_REAL));
    assert_eq!(parsed.accepted(), 3);

    let app = only(apps(&parsed));
    assert_eq!(app.name.as_str(), "flux-system/my-app-kustomization");
    assert_eq!(app.source, Source::Flux);
    assert_eq!(app.cluster.as_str(), "kind");
    assert_eq!(app.path.as_deref(), Some("apps/my-app"));
    assert!(app.rollbackable);
    assert_eq!(
        app.sources[0].repo_url,
        "git@github.com:foo/manifests-velero"
    );
    assert_eq!(app.sources[0].path, "apps/my-app");
    assert_eq!(app.sources[0].target_revision.as_deref(), Some("master"));

    let d = only(deployments(&parsed));
    assert_eq!(d.app.as_str(), "flux-system/my-app-kustomization");
    assert_eq!(d.cluster.as_str(), "kind");
    assert_eq!(d.cluster_revision, None);
    assert_eq!(d.revision, format!("main@sha1:{REAL_SHA}"));
    assert_eq!(d.commit.as_ref().unwrap().as_str(), REAL_SHA);
    assert_eq!(d.deployed_at, ts("2024-07-12T08:56:37Z"));
    assert_eq!(d.source, Source::Flux);

    let h = only(healths(&parsed));
    assert_eq!(h.health, Health::Progressing);
    assert_eq!(h.sync, None);
    assert_eq!(h.revision.as_deref(), Some(d.revision.as_str()));
    assert_eq!(h.commit, d.commit);
    assert_eq!(h.at, ts("2024-07-12T08:56:37Z"));
}

#[test]
fn events_for_unconfigured_objects_are_accepted_and_ignored() {
    let s = IngestSettings {
        apps: vec![],
        ..settings()
    };
    let parsed = parse(FLUX_REAL, &s).unwrap();
    assert_eq!((parsed.accepted(), parsed.ignored), (0, 1));

    // The upstream vector is about a GitRepository: not an app.
    let parsed = parse(FLUX_VECTOR, &settings()).unwrap();
    assert_eq!((parsed.accepted(), parsed.ignored), (0, 1));
}

#[test]
fn the_same_name_on_several_clusters_is_chosen_by_the_cluster_metadata() {
    let entry = |cluster: &str, path: &str| rewind_ingest::AppMapping {
        name: "flux-system/my-app-kustomization".into(),
        path: path.into(),
        cluster: cluster.into(),
    };
    let s = IngestSettings {
        apps: vec![
            entry("staging", "apps/staging"),
            entry("production", "apps/production"),
        ],
        ..settings()
    };
    let with_cluster =
        |cluster: &str| edited(FLUX_REAL, |v| v["metadata"]["cluster"] = cluster.into());
    let parsed = parse(&with_cluster("production"), &s).unwrap();
    let app = only(apps(&parsed));
    assert_eq!(
        (app.cluster.as_str(), app.path.as_deref()),
        ("production", Some("apps/production"))
    );
    let parsed = parse(&with_cluster("staging"), &s).unwrap();
    assert_eq!(only(apps(&parsed)).path.as_deref(), Some("apps/staging"));
    // No cluster metadata, or a cluster with no entry: never guessed.
    let parsed = parse(FLUX_REAL, &s).unwrap();
    assert_eq!((parsed.accepted(), parsed.ignored), (0, 1));
    let parsed = parse(&with_cluster("dev"), &s).unwrap();
    assert_eq!((parsed.accepted(), parsed.ignored), (0, 1));
}

#[test]
fn docs_example_with_prefixed_key_and_legacy_revision() {
    let parsed = parse(FLUX_DOCS, &settings()).unwrap();
    let d = only(deployments(&parsed));
    assert_eq!(d.app.as_str(), "apps/webapp");
    assert_eq!(d.revision, "main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1");
    assert_eq!(
        d.commit.as_ref().unwrap().as_str(),
        "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1"
    );
    // severity error, reason ValidationFailed.
    assert_eq!(only(healths(&parsed)).health, Health::Degraded);
}

#[test]
fn reconciliation_succeeded_is_healthy_and_synced() {
    let body = edited(FLUX_REAL, |v| {
        v["reason"] = json!("ReconciliationSucceeded");
        v["message"] = json!("Reconciliation finished in 1.2s, next run in 10m0s");
        v["metadata"] = json!({"commit_status": "update", "revision": format!("refs/heads/main@sha1:{REAL_SHA}")});
    });
    let parsed = parse(&body, &settings()).unwrap();
    let h = only(healths(&parsed));
    assert_eq!(
        (h.health, h.sync),
        (Health::Healthy, Some(SyncStatus::Synced))
    );
    assert_eq!(
        only(deployments(&parsed)).commit.as_ref().unwrap().as_str(),
        REAL_SHA
    );
}

#[test]
fn info_events_without_health_meaning_change_no_health() {
    let body = edited(FLUX_REAL, |v| v["reason"] = json!("DependencyNotReady"));
    let parsed = parse(&body, &settings()).unwrap();
    assert!(healths(&parsed).is_empty());
    assert_eq!(parsed.accepted(), 2);

    // No revision in metadata: the app only.
    let body = edited(FLUX_REAL, |v| {
        v["reason"] = json!("Other");
        v.as_object_mut().unwrap().remove("metadata");
    });
    let parsed = parse(&body, &settings()).unwrap();
    assert_eq!(parsed.accepted(), 1);
    assert!(matches!(parsed.observations[0], Observation::App(_)));
}

#[test]
fn helm_release_chart_versions_have_no_commit() {
    let body = edited(FLUX_REAL, |v| {
        v["involvedObject"] = json!({"kind": "HelmRelease", "namespace": "apps", "name": "webapp", "apiVersion": "helm.toolkit.fluxcd.io/v2"});
        v["reason"] = json!("UpgradeSucceeded");
        v["metadata"] =
            json!({"revision": "6.5.0", "app-version": "6.5.0", "oci-digest": "sha256:ab"});
    });
    let parsed = parse(&body, &settings()).unwrap();
    let d = only(deployments(&parsed));
    assert_eq!((d.revision.as_str(), d.commit.as_ref()), ("6.5.0", None));
    assert_eq!(only(healths(&parsed)).health, Health::Healthy);
}

#[test]
fn commit_and_origin_revision_take_precedence() {
    const OCI: &str =
        "latest@sha256:3c4e2f5a1e8c2b0f5d27b9c1e0a4d6f8b7c9e1a2d3f4b5c6d7e8f9a0b1c2d3e4";
    const ORIGIN: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const COMMIT: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    let body = edited(FLUX_REAL, |v| {
        v["metadata"] = json!({"revision": OCI, "originRevision": format!("main@sha1:{ORIGIN}")});
    });
    let parsed = parse(&body, &settings()).unwrap();
    let d = only(deployments(&parsed));
    assert_eq!(d.revision, OCI);
    assert_eq!(d.commit.as_ref().unwrap().as_str(), ORIGIN);

    let body = edited(FLUX_REAL, |v| {
        v["metadata"] = json!({"revision": OCI, "originRevision": format!("main@sha1:{ORIGIN}"), "commit": COMMIT});
    });
    let parsed = parse(&body, &settings()).unwrap();
    assert_eq!(
        only(deployments(&parsed)).commit.as_ref().unwrap().as_str(),
        COMMIT
    );

    // An OCI digest alone names no commit.
    let body = edited(FLUX_REAL, |v| v["metadata"] = json!({"revision": OCI}));
    let parsed = parse(&body, &settings()).unwrap();
    assert_eq!(only(deployments(&parsed)).commit, None);
}

#[test]
fn upstream_revision_vectors() {
    let vectors: serde_json::Value = serde_json::from_str(include_str!(
        "../fixtures/flux/revision-parse.upstream-test-vectors.json"
    ))
    .unwrap();
    let vectors = vectors["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 6);
    for v in vectors {
        let revision = v["revision"].as_str().unwrap();
        let got = commit_of_revision(revision).map(|c| c.as_str().to_owned());
        match v.get("expect") {
            Some(expect) => assert_eq!(got.as_deref(), expect.as_str(), "{}", v["name"]),
            None => assert_eq!(got, None, "{}", v["name"]),
        }
    }
    let sha = "a1afe267b54f38b46b487f6e938a6fd508278c07";
    for revision in [
        format!("refs/heads/main@sha1:{sha}"),
        format!("v1.2.3@sha1:{sha}"),
        format!("feature@x@sha1:{sha}"),
        sha.to_uppercase(),
    ] {
        assert_eq!(
            commit_of_revision(&revision).unwrap().as_str(),
            sha,
            "{revision}"
        );
    }
    for revision in [
        "",
        "6.5.0",
        "main@sha1:abc",
        "main@sha256:abc",
        "sha256:0000",
        "main@",
        "@",
    ] {
        assert_eq!(commit_of_revision(revision), None, "{revision:?}");
    }
}

#[test]
fn reason_and_severity_map_to_health() {
    let cases = [
        ("ReconciliationSucceeded", "info", Some(Health::Healthy)),
        ("HealthCheckFailed", "error", Some(Health::Degraded)),
        ("ReconciliationFailed", "error", Some(Health::Degraded)),
        ("HealthCheckFailed", "info", Some(Health::Degraded)),
        ("Progressing", "info", Some(Health::Progressing)),
        ("ArtifactFailed", "error", Some(Health::Degraded)),
        ("SomethingElse", "error", Some(Health::Degraded)),
        ("DependencyNotReady", "info", None),
        ("", "", None),
    ];
    for (reason, severity, health) in cases {
        assert_eq!(health_of(reason, severity), health, "{reason}/{severity}");
    }
}

#[test]
fn malformed_events_name_the_field() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            edited(FLUX_REAL, |v| v["timestamp"] = json!("not a time")),
            "timestamp",
        ),
        (
            edited(FLUX_REAL, |v| v["metadata"]["revision"] = json!(7)),
            "metadata.revision",
        ),
        (
            edited(FLUX_REAL, |v| {
                v["involvedObject"]["kind"] = json!(["Kustomization"])
            }),
            "involvedObject.kind",
        ),
        (
            edited(FLUX_REAL, |v| {
                v.as_object_mut().unwrap().remove("involvedObject");
            }),
            "body",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(malformed_field(parse(&body, &settings())), field);
    }
    // A configured key that is not a valid app name is refused, not recorded.
    let s = IngestSettings {
        apps: vec![rewind_ingest::AppMapping {
            name: "flux-system/has space".into(),
            path: "p".into(),
            cluster: String::new(),
        }],
        ..settings()
    };
    let body = edited(FLUX_REAL, |v| {
        v["involvedObject"]["name"] = json!("has space")
    });
    assert_eq!(malformed_field(parse(&body, &s)), "involvedObject.name");
}

/// One Flux per cluster, the same Kustomization on each: the event metadata
/// `cluster` (the Flux `Alert`'s `eventMetadata`), else the webhook path's
/// cluster, picks the `[[apps]]` entry and names the app's cluster.
#[test]
fn the_cluster_comes_from_event_metadata_then_the_webhook_path() {
    let mut s = settings();
    s.apps = vec![
        rewind_ingest::AppMapping {
            name: "flux-system/my-app-kustomization".into(),
            path: "apps/my-app/staging".into(),
            cluster: "staging".into(),
        },
        rewind_ingest::AppMapping {
            name: "flux-system/my-app-kustomization".into(),
            path: "apps/my-app/prod".into(),
            cluster: "prod-eu".into(),
        },
    ];
    let with_metadata = edited(FLUX_REAL, |v| {
        v["metadata"]["cluster"] = json!("prod-eu");
    });
    let app = only(apps(&parse(&with_metadata, &s).unwrap())).clone();
    assert_eq!(
        (app.cluster.as_str(), app.path.as_deref()),
        ("prod-eu", Some("apps/my-app/prod"))
    );

    let from_path = |body: &[u8], cluster: &str| {
        let verified = rewind_ingest::verify_flux(&flux_headers(body), body, FLUX_KEY).unwrap();
        let sender = rewind_domain::ClusterName::new(cluster).unwrap();
        rewind_ingest::parse_flux_from(verified, &s, Some(&sender)).unwrap()
    };
    let parsed = from_path(FLUX_REAL, "staging");
    let app = only(apps(&parsed));
    assert_eq!(
        (app.cluster.as_str(), app.path.as_deref()),
        ("staging", Some("apps/my-app/staging"))
    );
    assert_eq!(only(deployments(&parsed)).cluster.as_str(), "staging");
    assert_eq!(only(healths(&parsed)).cluster.as_str(), "staging");
    // Metadata beats the path (a hub receiving for several clusters).
    let app = only(apps(&from_path(&with_metadata, "staging"))).clone();
    assert_eq!(app.cluster.as_str(), "prod-eu");

    // No cluster anywhere and two entries: ignored, not guessed.
    let parsed = parse(FLUX_REAL, &s).unwrap();
    assert_eq!((parsed.accepted(), parsed.ignored), (0, 1));
}
