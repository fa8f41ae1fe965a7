//! Argo Rollouts notifications: the real aborted Rollout rendered through
//! the documented template (see `fixtures/argo-rollouts/README.md`).

use rewind_domain::RollbackSender;
use rewind_ingest::{IngestError, Parsed, WebhookSource, ingest};

use crate::common::*;

fn send(body: &[u8]) -> Result<Parsed, IngestError> {
    ingest(
        WebhookSource::ArgoRollouts,
        &bearer(ROLLOUTS_TOKEN),
        body,
        &settings(),
    )
}

#[test]
fn an_aborted_rollout_is_a_cluster_rollback() {
    let parsed = send(ROLLOUT_ABORTED).unwrap();
    assert_eq!(parsed.source, "argo-rollouts");
    assert_eq!((parsed.accepted(), parsed.ignored), (1, 0));
    let r = only(cluster_rollbacks(&parsed));
    assert_eq!(r.app.as_str(), "default/rollout-background-analysis");
    assert_eq!(r.cluster, "");
    assert_eq!(r.namespace, "default");
    assert_eq!(r.workload, "Rollout/rollout-background-analysis");
    assert_eq!(r.sender, RollbackSender::ArgoRollouts);
    assert_eq!(r.running_revision.as_deref(), Some("7d84d44bb8"));
    assert_eq!(r.rejected_revision.as_deref(), Some("db976bc44"));
    assert_eq!(r.rejected_images, ["argoproj/rollouts-demo:yellow"]);
    assert_eq!(r.at, ts("2020-09-22T09:10:05Z"));
    assert_eq!(
        r.message,
        r#"metric "web" assessed Failed due to failed (1) > failureLimit (0)"#
    );
}

#[test]
fn the_captured_headers_need_the_real_token() {
    // The capture's token is a placeholder: refused, as any wrong token.
    let headers = captured_headers(ROLLOUT_ABORTED_HEADERS);
    let err = ingest(
        WebhookSource::ArgoRollouts,
        &headers,
        ROLLOUT_ABORTED,
        &settings(),
    )
    .unwrap_err();
    assert!(matches!(err, IngestError::Unauthorized(_)), "{err:?}");
    let mut headers = headers;
    headers.insert(
        "authorization",
        format!("Bearer {ROLLOUTS_TOKEN}").parse().unwrap(),
    );
    let parsed = ingest(
        WebhookSource::ArgoRollouts,
        &headers,
        ROLLOUT_ABORTED,
        &settings(),
    )
    .unwrap();
    assert_eq!(parsed.accepted(), 1);
}

#[test]
fn the_same_abort_from_two_templates_is_one_delivery() {
    let plain = send(ROLLOUT_ABORTED).unwrap();
    let with_runs = send(ROLLOUT_ABORTED_WITH_RUNS).unwrap();
    assert_eq!(plain.delivery_key, with_runs.delivery_key);
    assert_eq!(plain.observations, with_runs.observations);
    let other_cluster = edited(ROLLOUT_ABORTED, |v| v["cluster"] = "prod-eu".into());
    assert_ne!(
        send(&other_cluster).unwrap().delivery_key,
        plain.delivery_key
    );
}

#[test]
fn other_triggers_are_accepted_and_ignored() {
    for event in [
        "on-rollout-completed",
        "on-rollout-updated",
        "on-analysis-run-failed",
        "on-skip-steps",
    ] {
        let body = edited(ROLLOUT_ABORTED, |v| v["event"] = event.into());
        let parsed = send(&body).unwrap();
        assert_eq!((parsed.accepted(), parsed.ignored), (0, 1), "{event}");
    }
}

#[test]
fn cluster_and_app_from_the_template_or_the_tracking_metadata() {
    let body = edited(ROLLOUT_ABORTED, |v| {
        v["cluster"] = "prod-eu".into();
        v["app"] = "checkout".into();
    });
    let r = send(&body).unwrap();
    let r = only(cluster_rollbacks(&r));
    assert_eq!(
        (r.cluster.as_str(), r.app.as_str()),
        ("prod-eu", "checkout")
    );

    let argocd = edited(ROLLOUT_ABORTED, |v| {
        v["rollout"]["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] =
            "shop_checkout:argoproj.io/Rollout:default/rollout-background-analysis".into();
    });
    let r = send(&argocd).unwrap();
    assert_eq!(only(cluster_rollbacks(&r)).app.as_str(), "shop/checkout");

    let label = edited(ROLLOUT_ABORTED, |v| {
        v["rollout"]["metadata"]["labels"] =
            serde_json::json!({"app.kubernetes.io/instance": "guestbook"});
    });
    let r = send(&label).unwrap();
    assert_eq!(only(cluster_rollbacks(&r)).app.as_str(), "guestbook");

    let flux = edited(ROLLOUT_ABORTED, |v| {
        v["rollout"]["metadata"]["labels"] = serde_json::json!({
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
        });
    });
    let r = send(&flux).unwrap();
    assert_eq!(only(cluster_rollbacks(&r)).app.as_str(), "flux-system/apps");
}

#[test]
fn the_event_is_the_signal_not_the_status() {
    // The body is the Rollout from before the abort was written: no
    // `abort`, no `RolloutAborted` condition. Still an abort.
    let early = edited(ROLLOUT_ABORTED, |v| {
        let status = v["rollout"]["status"].as_object_mut().unwrap();
        status.remove("abort");
        status.remove("abortedAt");
        status.remove("conditions");
    });
    let r = send(&early).unwrap();
    let r = only(cluster_rollbacks(&r));
    assert_eq!(r.message, "Rollout aborted update to revision 2");
    assert_eq!(r.rejected_revision.as_deref(), Some("db976bc44"));
}

#[test]
fn bad_bodies_are_named() {
    let body = edited(ROLLOUT_ABORTED, |v| {
        v["rollout"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("name");
    });
    assert_eq!(malformed_field(send(&body)), "rollout.metadata.name");
    let body = edited(ROLLOUT_ABORTED, |v| {
        v.as_object_mut().unwrap().remove("rollout");
    });
    assert!(matches!(send(&body), Err(IngestError::Malformed { .. })));
    let body = edited(ROLLOUT_ABORTED, |v| {
        v["rollout"]["status"]["stableRS"] = 7.into()
    });
    assert_eq!(malformed_field(send(&body)), "rollout.status.stableRS");
    let body = edited(ROLLOUT_ABORTED, |v| v["app"] = "a b".into());
    assert_eq!(malformed_field(send(&body)), "app");
}
