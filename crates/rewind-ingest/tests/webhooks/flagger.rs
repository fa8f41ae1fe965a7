//! Flagger event webhooks: the reproduced deliveries of a failed canary
//! (see `fixtures/flagger/README.md`), its token in the URL, and the events
//! that are accepted but ignored.

use rewind_domain::RollbackSender;
use rewind_ingest::{
    FlaggerUrl, IngestError, IngestSettings, Parsed, WebhookSource, ingest, ingest_flagger,
};

use crate::common::*;

fn url(token: &str) -> FlaggerUrl<'_> {
    FlaggerUrl {
        token: Some(token),
        cluster: None,
    }
}

/// A delivery as Flagger sends it (no auth header), with the token in the URL.
fn send(body: &[u8], cluster: Option<&str>) -> Result<Parsed, IngestError> {
    let headers = captured_headers(FLAGGER_FAILED_HEADERS);
    let url = FlaggerUrl {
        token: Some(FLAGGER_TOKEN),
        cluster,
    };
    ingest_flagger(&headers, url, body, &settings())
}

#[test]
fn a_failed_canary_is_a_cluster_rollback() {
    let parsed = send(FLAGGER_FAILED, None).unwrap();
    assert_eq!(parsed.source, "flagger");
    assert_eq!((parsed.accepted(), parsed.ignored), (1, 0));
    let r = only(cluster_rollbacks(&parsed));
    assert_eq!(r.app.as_str(), "test/podinfo");
    assert_eq!(r.cluster, "flagger-test");
    assert_eq!(r.namespace, "test");
    assert_eq!(r.workload, "Canary/podinfo");
    assert_eq!(r.sender, RollbackSender::Flagger);
    assert_eq!(r.rejected_revision.as_deref(), Some("85d557f47b"));
    assert_eq!(r.running_revision, None);
    assert!(r.running_images.is_empty() && r.rejected_images.is_empty());
    assert_eq!(r.at.timestamp_millis(), 1_789_381_567_449);
    assert_eq!(r.message, "Canary failed! Scaling down podinfo.test");
}

#[test]
fn other_events_are_accepted_and_ignored() {
    for body in [FLAGGER_ROLLING_BACK, FLAGGER_HALT, FLAGGER_SUCCEEDED] {
        let parsed = send(body, None).unwrap();
        assert_eq!((parsed.accepted(), parsed.ignored), (0, 1));
    }
    // Every event of Flagger's own promotion test, in its shape.
    let sequence: serde_json::Value = serde_json::from_slice(FLAGGER_SEQUENCE).unwrap();
    let events = sequence["events"].as_array().unwrap();
    assert_eq!(events.len(), 17);
    for (i, event) in events.iter().enumerate() {
        let body = serde_json::json!({
            "name": "podinfo", "namespace": "default", "phase": event["phase"],
            "checksum": "569bdb7cb9",
            "metadata": {"eventMessage": event["eventMessage"], "eventType": "Normal",
                         "timestamp": format!("{}", 1_789_554_067_000u64 + i as u64)},
        });
        let parsed = send(&serde_json::to_vec(&body).unwrap(), None).unwrap();
        assert_eq!((parsed.accepted(), parsed.ignored), (0, 1), "{event}");
    }
}

#[test]
fn the_token_comes_in_the_url_or_as_a_bearer() {
    let bare = captured_headers(FLAGGER_FAILED_HEADERS);
    let s = settings();
    let err = ingest_flagger(&bare, FlaggerUrl::default(), FLAGGER_FAILED, &s).unwrap_err();
    assert!(
        matches!(&err, IngestError::Unauthorized(m) if m.contains("?token=")),
        "{err:?}"
    );
    let err = ingest_flagger(&bare, url("wrong"), FLAGGER_FAILED, &s).unwrap_err();
    assert!(matches!(err, IngestError::Unauthorized(_)), "{err:?}");
    // A bearer alone is accepted (through the generic entry point too) ...
    let parsed = ingest(
        WebhookSource::Flagger,
        &bearer(FLAGGER_TOKEN),
        FLAGGER_FAILED,
        &s,
    )
    .unwrap();
    assert_eq!(parsed.accepted(), 1);
    // ... but a wrong one is refused even beside a right URL token.
    let err = ingest_flagger(&bearer("wrong"), url(FLAGGER_TOKEN), FLAGGER_FAILED, &s).unwrap_err();
    assert!(matches!(err, IngestError::Unauthorized(_)), "{err:?}");
    // The error never echoes the expected token.
    assert!(!format!("{err:?}").contains(FLAGGER_TOKEN));
    // Unconfigured: everything is refused.
    let unset = IngestSettings {
        flagger_token: None,
        ..settings()
    };
    let err = ingest_flagger(&bare, url(FLAGGER_TOKEN), FLAGGER_FAILED, &unset).unwrap_err();
    assert!(
        matches!(&err, IngestError::Unauthorized(m) if m.contains("webhooks.flagger_token")),
        "{err:?}"
    );
    assert!(!format!("{:?}", url(FLAGGER_TOKEN)).contains(FLAGGER_TOKEN));
}

#[test]
fn cluster_from_metadata_else_url_and_app_from_metadata() {
    let global = edited(FLAGGER_FAILED, |v| {
        v["metadata"].as_object_mut().unwrap().remove("cluster");
    });
    let r = send(&global, Some("prod-eu")).unwrap();
    assert_eq!(only(cluster_rollbacks(&r)).cluster, "prod-eu");
    let r = send(&global, None).unwrap();
    assert_eq!(only(cluster_rollbacks(&r)).cluster, "");
    // The hook's own metadata wins over the URL.
    let r = send(FLAGGER_FAILED, Some("prod-eu")).unwrap();
    assert_eq!(only(cluster_rollbacks(&r)).cluster, "flagger-test");

    let named = edited(FLAGGER_FAILED, |v| {
        v["metadata"]["app"] = "shop/checkout".into();
    });
    let r = send(&named, None).unwrap();
    assert_eq!(only(cluster_rollbacks(&r)).app.as_str(), "shop/checkout");
}

#[test]
fn delivery_key_ignores_the_timestamp_only() {
    let key = |body: &[u8], cluster| send(body, cluster).unwrap().delivery_key;
    let later = edited(FLAGGER_HALT, |v| {
        v["metadata"]["timestamp"] = "1789381327412".into();
    });
    // `Halt` repeats every interval with a new timestamp: one delivery.
    assert_eq!(key(FLAGGER_HALT, None), key(&later, None));
    let other_message = edited(FLAGGER_HALT, |v| {
        v["metadata"]["eventMessage"] =
            "Halt podinfo.test advancement success rate 40% < 99%".into();
    });
    assert_ne!(key(FLAGGER_HALT, None), key(&other_message, None));
    // The same canary on another cluster is another delivery.
    let global = edited(FLAGGER_FAILED, |v| {
        v["metadata"].as_object_mut().unwrap().remove("cluster");
    });
    assert_ne!(key(&global, Some("a")), key(&global, Some("b")));
    assert!(key(FLAGGER_FAILED, None).starts_with("flagger:sha256:"));
}

#[test]
fn bad_bodies_are_named() {
    // Flagger's Slack-type alert provider is not an event webhook.
    let err = send(FLAGGER_SLACK, None).unwrap_err();
    assert!(
        matches!(&err, IngestError::Malformed { detail, .. } if detail.contains("name")),
        "{err:?}"
    );
    let body = edited(FLAGGER_FAILED, |v| {
        v["metadata"]["timestamp"] = "soon".into()
    });
    assert_eq!(malformed_field(send(&body, None)), "metadata.timestamp");
    let body = edited(FLAGGER_FAILED, |v| v["metadata"]["retries"] = 3.into());
    assert_eq!(malformed_field(send(&body, None)), "metadata.retries");
    let body = edited(FLAGGER_FAILED, |v| v["namespace"] = "".into());
    assert_eq!(malformed_field(send(&body, None)), "namespace");
    let body = edited(FLAGGER_FAILED, |v| v["metadata"]["app"] = "a/b/c".into());
    assert_eq!(malformed_field(send(&body, None)), "metadata.app");
}
