//! Alertmanager v4 payloads captured from a real Alertmanager 0.25.0.

use rewind_domain::AlertStatus;
use rewind_ingest::{
    AlertSettings, AppMapping, IngestSettings, Parsed, WebhookSource, body_delivery_key, ingest,
    triggers_rollback,
};
use serde_json::json;

use crate::common::*;

fn parse(body: &[u8], s: &IngestSettings) -> Result<Parsed, rewind_ingest::IngestError> {
    ingest(
        WebhookSource::Alertmanager,
        &captured_headers(AM_FIRING_HEADERS),
        body,
        s,
    )
}

#[test]
fn firing_alert() {
    let s = settings();
    let parsed = parse(AM_FIRING, &s).unwrap();
    assert_eq!(parsed.source, "alertmanager");
    assert_eq!((parsed.accepted(), parsed.ignored), (1, 0));
    assert_eq!(parsed.delivery_key, body_delivery_key(AM_FIRING));
    let alert = only(alerts(&parsed));
    assert_eq!(alert.app.as_str(), "checkout");
    assert_eq!(
        alert.cluster.as_ref().map(|c| c.as_str()),
        Some("prod-eu-1")
    );
    assert_eq!(alert.name, "HighErrorRate");
    assert_eq!(alert.status, AlertStatus::Firing);
    assert_eq!(alert.severity.as_deref(), Some("critical"));
    assert_eq!(alert.fingerprint, "14e90116c439b532");
    assert_eq!(
        alert.group_key,
        r#"{}:{alertname="HighErrorRate", namespace="shop"}"#
    );
    assert_eq!(alert.starts_at, ts("2026-11-23T00:21:22Z"));
    assert_eq!(alert.ends_at, None, "0001-01-01 means not ended");
    assert!(
        alert
            .generator_url
            .as_deref()
            .unwrap()
            .starts_with("http://prometheus.example:9090/graph?g0.expr=")
    );
    assert_eq!(alert.labels.len(), 6);
    assert_eq!(alert.labels["argocd_app"], "checkout-prod");
    assert_eq!(alert.summary(), Some("checkout 5xx ratio above 5%"));
    assert_eq!(
        alert.annotations["runbook_url"],
        "https://runbooks.example.com/HighErrorRate"
    );
    assert!(triggers_rollback(alert, &s.alerts));
}

#[test]
fn resolved_alert_is_the_same_episode_and_does_not_trigger() {
    let s = settings();
    let firing = parse(AM_FIRING, &s).unwrap();
    let resolved = parse(AM_RESOLVED, &s).unwrap();
    let (f, r) = (only(alerts(&firing)), only(alerts(&resolved)));
    assert_eq!(r.status, AlertStatus::Resolved);
    assert_eq!(r.ends_at, Some(ts("2026-11-23T00:21:39Z")));
    // Same episode: fingerprint + startsAt.
    assert_eq!((&f.fingerprint, f.starts_at), (&r.fingerprint, r.starts_at));
    assert_ne!(firing.delivery_key, resolved.delivery_key);
    assert!(!triggers_rollback(r, &s.alerts));
}

#[test]
fn a_group_of_three_apps_yields_one_alert_each_from_its_own_labels() {
    let parsed = parse(AM_GROUPED, &settings()).unwrap();
    assert_eq!((parsed.accepted(), parsed.ignored), (3, 0));
    let got: Vec<(&str, &str)> = alerts(&parsed)
        .iter()
        .map(|a| (a.app.as_str(), a.fingerprint.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("cart", "623f031fe0659706"),
            ("checkout", "97858743bd9f4d32"),
            ("payment", "dd08603b986b8985")
        ]
    );
    assert!(alerts(&parsed).iter().all(|a| a.labels.contains_key("pod")));
}

#[test]
fn label_values_resolve_through_apps_mappings() {
    let s = IngestSettings {
        apps: vec![
            AppMapping {
                name: "shop/checkout".into(),
                path: "apps/checkout/eu".into(),
                cluster: "prod-eu-1".into(),
            },
            AppMapping {
                name: "shop/checkout-us".into(),
                path: "apps/checkout/us".into(),
                cluster: "prod-us-1".into(),
            },
            AppMapping {
                name: "payment".into(),
                path: "apps/payment".into(),
                cluster: String::new(),
            },
        ],
        ..settings()
    };
    let parsed = parse(AM_GROUPED, &s).unwrap();
    let names: Vec<&str> = alerts(&parsed).iter().map(|a| a.app.as_str()).collect();
    // `checkout` is the last segment of `shop/checkout`; `cart` has no
    // mapping and is taken as an app name learnt from Argo CD.
    assert_eq!(names, ["cart", "shop/checkout", "payment"]);

    // Without a cluster label, the mapping's cluster is used.
    let s = IngestSettings {
        alerts: AlertSettings {
            cluster_label: None,
            ..AlertSettings::default()
        },
        ..s
    };
    let parsed = parse(AM_FIRING, &s).unwrap();
    assert_eq!(
        only(alerts(&parsed)).cluster.as_ref().map(|c| c.as_str()),
        Some("prod-eu-1")
    );
}

#[test]
fn the_app_label_is_configurable_and_alerts_without_one_are_ignored() {
    let s = IngestSettings {
        alerts: AlertSettings {
            app_label: "argocd_app".into(),
            ..AlertSettings::default()
        },
        ..settings()
    };
    let parsed = parse(AM_GROUPED, &s).unwrap();
    let names: Vec<&str> = alerts(&parsed).iter().map(|a| a.app.as_str()).collect();
    assert_eq!(names, ["cart-prod", "checkout-prod", "payment-prod"]);

    let s = IngestSettings {
        alerts: AlertSettings {
            app_label: "service".into(),
            ..AlertSettings::default()
        },
        ..settings()
    };
    let parsed = parse(AM_GROUPED, &s).unwrap();
    assert_eq!((parsed.accepted(), parsed.ignored), (0, 3));

    // One alert of the group without the label, one with an invalid name.
    let body = edited(AM_GROUPED, |v| {
        v["alerts"][0]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("app");
        v["alerts"][2]["labels"]["app"] = json!("pay ment");
    });
    let parsed = parse(&body, &settings()).unwrap();
    assert_eq!((parsed.accepted(), parsed.ignored), (1, 2));
}

#[test]
fn severities_decide_what_triggers() {
    let parsed = parse(AM_FIRING, &settings()).unwrap();
    let alert = only(alerts(&parsed)).clone();
    let with = |severities: &[&str]| AlertSettings {
        severities: severities.iter().map(|s| s.to_string()).collect(),
        ..AlertSettings::default()
    };
    assert!(triggers_rollback(&alert, &with(&["critical"])));
    assert!(triggers_rollback(&alert, &with(&["warning", "CRITICAL"])));
    assert!(!triggers_rollback(&alert, &with(&["warning"])));
    assert!(triggers_rollback(&alert, &with(&[])));
    let unlabelled = rewind_domain::Alert {
        severity: None,
        ..alert
    };
    assert!(!triggers_rollback(&unlabelled, &with(&["critical"])));
    assert!(triggers_rollback(&unlabelled, &with(&[])));

    // A warning is still recorded, it just does not trigger.
    let body = edited(AM_FIRING, |v| {
        v["alerts"][0]["labels"]["severity"] = json!("warning")
    });
    let parsed = parse(&body, &settings()).unwrap();
    assert!(!triggers_rollback(
        only(alerts(&parsed)),
        &settings().alerts
    ));
}

#[test]
fn malformed_payloads_name_the_field() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (edited(AM_FIRING, |v| v["version"] = json!("3")), "version"),
        (edited(AM_FIRING, |v| v["version"] = json!(4)), "version"),
        (
            edited(AM_GROUPED, |v| v["alerts"][1]["startsAt"] = json!("soon")),
            "alerts[1].startsAt",
        ),
        (
            edited(AM_GROUPED, |v| v["alerts"][2]["status"] = json!("exploded")),
            "alerts[2].status",
        ),
        (
            edited(AM_FIRING, |v| {
                v["alerts"][0]["labels"]["severity"] = json!(5)
            }),
            "alerts[0].labels.severity",
        ),
        (
            edited(AM_FIRING, |v| v["alerts"][0]["fingerprint"] = json!("")),
            "alerts[0].fingerprint",
        ),
        (edited(AM_FIRING, |v| v["alerts"] = json!({})), "alerts"),
        (b"null".to_vec(), "body"),
    ];
    for (body, field) in cases {
        assert_eq!(malformed_field(parse(&body, &settings())), field);
    }
}
