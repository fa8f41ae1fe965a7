//! The generated sample payloads (for `rewind demo` and end-to-end tests)
//! parse into what their parameters say, like the real captures do.

use rewind_domain::{AlertStatus, Health};
use rewind_ingest::samples::{HistoryEntry, alertmanager_notification, argocd_notification};
use rewind_ingest::{WebhookSource, ingest};

use crate::common::*;

#[test]
fn argocd_sample_parses_into_its_history_and_health() {
    let history = [
        HistoryEntry {
            id: 1,
            revision: "1".repeat(40),
            deployed_at: ts("2026-01-01T00:00:00Z"),
        },
        HistoryEntry {
            id: 2,
            revision: "2".repeat(40),
            deployed_at: ts("2026-01-02T00:00:00Z"),
        },
    ];
    let body = serde_json::to_vec(&argocd_notification(
        "on-deployed",
        "checkout",
        "https://github.com/foo/manifests-velero.git",
        "apps/checkout",
        &history,
        "Degraded",
    ))
    .unwrap();
    let parsed = ingest(
        WebhookSource::Argocd,
        &bearer(ARGOCD_TOKEN),
        &body,
        &settings(),
    )
    .unwrap();
    let app = only(apps(&parsed));
    assert_eq!(
        (app.name.as_str(), app.path.as_deref(), app.rollbackable),
        ("checkout", Some("apps/checkout"), true)
    );
    let d = deployments(&parsed);
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[1].cluster_revision, d[1].revision.clone()),
        (Some(2), "2".repeat(40))
    );
    assert_eq!(d[1].deployed_at, ts("2026-01-02T00:00:00Z"));
    let h = only(healths(&parsed));
    assert_eq!(
        (h.health, h.revision.clone()),
        (Health::Degraded, Some("2".repeat(40)))
    );
}

#[test]
fn alertmanager_sample_parses_into_one_alert() {
    let body = serde_json::to_vec(&alertmanager_notification(
        "firing",
        "HighErrorRate",
        "checkout",
        "critical",
        "5xx above 5%",
        ts("2026-01-02T00:10:00Z"),
        "abc123",
    ))
    .unwrap();
    let parsed = ingest(
        WebhookSource::Alertmanager,
        &bearer(ALERTMANAGER_TOKEN),
        &body,
        &settings(),
    )
    .unwrap();
    let a = only(alerts(&parsed));
    assert_eq!(
        (a.app.as_str(), a.status, a.ends_at),
        ("checkout", AlertStatus::Firing, None)
    );
    assert_eq!(
        (a.fingerprint.as_str(), a.summary()),
        ("abc123", Some("5xx above 5%"))
    );
    assert!(rewind_ingest::triggers_rollback(a, &settings().alerts));
}
