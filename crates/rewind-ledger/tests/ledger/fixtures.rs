//! Builders for the values tests record: apps, observations, deliveries,
//! rollbacks, at fixed times.

use chrono::{DateTime, Duration, TimeZone, Utc};

use rewind_domain::{
    Alert, AlertStatus, App, AppName, AppRef, AppSource, ClusterName, CommitId, Deployment,
    DeploymentObserved, Health, HealthObserved, Observation, Rollback, RollbackDiff, RollbackId,
    RollbackState, Source, Strategy, TimelineEntry, Trigger,
};
use rewind_ledger::Delivery;

/// Minutes after a fixed origin.
pub fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + Duration::minutes(minutes)
}

pub fn name(s: &str) -> AppName {
    AppName::new(s).unwrap()
}

/// The cluster the fixtures' apps run on.
pub fn prod() -> ClusterName {
    ClusterName::new("prod").unwrap()
}

/// `s@prod`: the identity of a fixture app.
pub fn aref(s: &str) -> AppRef {
    AppRef::new(name(s), prod())
}

pub fn commit(n: u64) -> CommitId {
    CommitId::new(format!("{n:040x}")).unwrap()
}

pub fn app(s: &str) -> App {
    App {
        name: name(s),
        source: Source::Argocd,
        cluster: prod(),
        project: Some("default".into()),
        sources: vec![AppSource {
            repo_url: "file:///srv/gitops.git".into(),
            path: format!("apps/{s}"),
            target_revision: Some("main".into()),
            chart: None,
        }],
        path: Some(format!("apps/{s}")),
        rollbackable: true,
        status: None,
        held_since: None,
        updated_at: t(0),
        drift: None,
    }
}

/// An Argo CD history entry: revision `main@sha1:<commit n>`.
pub fn argo(app: &str, cluster_revision: i64, n: u64, at: i64) -> Observation {
    Observation::Deployment(DeploymentObserved {
        app: name(app),
        cluster: prod(),
        cluster_revision: Some(cluster_revision),
        revision: commit(n).to_string(),
        commit: Some(commit(n)),
        deployed_at: t(at),
        source: Source::Argocd,
        initiated_by: Some("automated".into()),
    })
}

/// A Flux event: no cluster revision, the ledger assigns one.
pub fn flux(app: &str, n: u64, at: i64) -> Observation {
    Observation::Deployment(DeploymentObserved {
        app: name(app),
        cluster: prod(),
        cluster_revision: None,
        revision: format!("main@sha1:{}", commit(n)),
        commit: Some(commit(n)),
        deployed_at: t(at),
        source: Source::Flux,
        initiated_by: None,
    })
}

pub fn health(app: &str, revision: Option<String>, h: Health, at: i64) -> Observation {
    Observation::Health(HealthObserved {
        app: name(app),
        cluster: prod(),
        revision,
        commit: None,
        health: h,
        sync: Some(rewind_domain::SyncStatus::Synced),
        sync_revision: None,
        running_images: None,
        at: t(at),
    })
}

pub fn alert(app: &str, fingerprint: &str, starts: i64, status: AlertStatus) -> Alert {
    Alert {
        app: name(app),
        cluster: Some(prod()),
        name: "HighErrorRate".into(),
        status,
        severity: Some("critical".into()),
        fingerprint: fingerprint.into(),
        group_key: "{}:{alertname=\"HighErrorRate\"}".into(),
        starts_at: t(starts),
        ends_at: match status {
            AlertStatus::Firing => None,
            AlertStatus::Resolved => Some(t(starts + 10)),
        },
        generator_url: None,
        labels: [("app".to_string(), app.to_string())].into(),
        annotations: [("summary".to_string(), "errors".to_string())].into(),
    }
}

pub fn delivery(source: &str, key: &str, observations: Vec<Observation>) -> Delivery {
    Delivery {
        source: source.into(),
        key: key.into(),
        received_at: t(0),
        observations,
    }
}

pub fn rollback(app: &str, from: &Deployment, to: &Deployment, created: i64) -> Rollback {
    let id = RollbackId::generate();
    Rollback {
        id,
        app: name(app),
        cluster: prod(),
        from: from.clone(),
        to: to.clone(),
        state: RollbackState::Proposed,
        reason: "error rate".into(),
        trigger: Trigger::Manual {
            caller: "oncall".into(),
        },
        strategy: Strategy::Restore,
        branch: Some(format!("rewind/{app}/{id}")),
        commit: None,
        merge_commit: None,
        pr: None,
        diff: RollbackDiff {
            semantic: serde_json::json!({"changed": ["Deployment/web"]}),
            text: "-image: v2\n+image: v1\n".into(),
        },
        risks: vec![],
        approvals: vec![],
        timeline: vec![entry("proposed", created)],
        verification: vec![],
        created_at: t(created),
        updated_at: t(created),
        wave: None,
    }
}

pub fn entry(event: &str, at: i64) -> TimelineEntry {
    TimelineEntry {
        at: t(at),
        event: event.into(),
        detail: format!("{event} at {at}"),
    }
}
