//! Payloads shaped exactly like the real senders' (see the fixtures under
//! `tests/fixtures/`), built from a few parameters: for `rewind demo`, the
//! end-to-end tests and the benchmarks, which must speak to rewind the way
//! Argo CD and Alertmanager do.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// One entry of an Argo CD Application's `status.history`.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub id: i64,
    pub revision: String,
    pub deployed_at: DateTime<Utc>,
}

/// An Argo CD notification body, `{"event": ..., "app": <Application>}`,
/// as the template `{"event": "on-deployed", "app": {{toJson .app}}}`
/// renders it.
pub fn argocd_notification(
    event: &str,
    name: &str,
    repo_url: &str,
    path: &str,
    history: &[HistoryEntry],
    health: &str,
) -> Value {
    let last = history.last();
    let revision = last.map(|h| h.revision.clone()).unwrap_or_default();
    let finished = last.map(|h| h.deployed_at.to_rfc3339()).unwrap_or_default();
    let source = json!({"repoURL": repo_url, "path": path, "targetRevision": "HEAD"});
    json!({
        "event": event,
        "app": {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {
                "project": "default",
                "source": source,
                "destination": {"name": "in-cluster", "namespace": name},
            },
            "status": {
                "controllerNamespace": "argocd",
                "health": {"status": health},
                "sync": {"status": "Synced", "revision": revision, "comparedTo": {"source": source}},
                "operationState": {
                    "phase": "Succeeded",
                    "message": "successfully synced (all tasks run)",
                    "startedAt": finished,
                    "finishedAt": finished,
                    "operation": {"sync": {"revision": revision}, "initiatedBy": {"automated": true}},
                    "syncResult": {"revision": revision, "source": source},
                },
                "history": history.iter().map(|h| json!({
                    "id": h.id,
                    "revision": h.revision,
                    "deployedAt": h.deployed_at.to_rfc3339(),
                    "deployStartedAt": h.deployed_at.to_rfc3339(),
                    "source": source,
                    "initiatedBy": {"automated": true},
                })).collect::<Vec<_>>(),
            },
        },
    })
}

/// An Alertmanager webhook (payload version 4) with one alert.
pub fn alertmanager_notification(
    status: &str,
    alert_name: &str,
    app: &str,
    severity: &str,
    summary: &str,
    starts_at: DateTime<Utc>,
    fingerprint: &str,
) -> Value {
    let ends_at = if status == "resolved" {
        Utc::now().to_rfc3339()
    } else {
        "0001-01-01T00:00:00Z".to_string()
    };
    let labels = json!({"alertname": alert_name, "app": app, "severity": severity});
    json!({
        "receiver": "rewind",
        "status": status,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": {"summary": summary},
            "startsAt": starts_at.to_rfc3339(),
            "endsAt": ends_at,
            "generatorURL": "http://prometheus.example:9090/graph",
            "fingerprint": fingerprint,
        }],
        "groupLabels": {"alertname": alert_name},
        "commonLabels": labels,
        "commonAnnotations": {"summary": summary},
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alert_name}\"}}"),
        "truncatedAlerts": 0,
    })
}
