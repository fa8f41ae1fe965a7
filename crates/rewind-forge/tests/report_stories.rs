//! Whole pull request bodies for the three rollbacks reviewers meet most:
//! an image rollback, a change to a shared base with risks, and a rollback
//! across a database migration. The semantic diffs have the shape rewind
//! stores (`rewind_manifest::AppDiff` as JSON), so the snapshots show what a
//! reviewer sees: the change table (images first, grouped per object), the
//! risks, the review, the verification, the link to the web UI and the
//! timeline with its details.
//!
//! Update the snapshots after an intended change with
//! `INSTA_UPDATE=always cargo test -p rewind-forge --test report_stories`
//! (no cargo-insta needed), then read the `.snap` diff before committing.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rewind_domain::{
    AppName, Approval, CommitId, ConfigHash, Deployment, Health, PullRequestRef, Risk, RiskCode,
    Rollback, RollbackDiff, RollbackId, RollbackState, Source, Strategy, SyncStatus, TimelineEntry,
    TimelineEvent, Trigger,
};
use rewind_forge::{ChangeTable, ReportStage, RollbackReport, render_pull_request_body};
use serde_json::json;

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 9, minute, 0)
        .single()
        .expect("time")
}

fn deployment(
    app: &str,
    revision: i64,
    digit: char,
    images: &[&str],
    health: Health,
) -> Deployment {
    let sha = digit.to_string().repeat(40);
    Deployment {
        id: revision,
        app: AppName::new(app).expect("app"),
        cluster: "prod-eu".parse().expect("cluster"),
        cluster_revision: revision,
        revision: sha.clone(),
        commit: Some(CommitId::new(&sha).expect("sha")),
        tree: None,
        config_hash: Some(ConfigHash::from_digest([digit as u8; 32])),
        images: images.iter().map(|i| (*i).to_owned()).collect(),
        health,
        sync: SyncStatus::Synced,
        deployed_at: at(revision as u32),
        source: Source::Argocd,
        known_good: health == Health::Healthy,
        known_good_by_history: false,
        healthy_since: None,
        alerted: health == Health::Degraded,
        initiated_by: None,
    }
}

fn rollback(
    app: &str,
    from: Deployment,
    to: Deployment,
    trigger: Trigger,
    semantic: serde_json::Value,
    text: &str,
    risks: Vec<Risk>,
) -> Rollback {
    let id = RollbackId::from_uuid(
        "01936f4e-8b2a-7c3d-9e4f-a1b2c3d4e5f6"
            .parse()
            .expect("uuid"),
    );
    let branch = format!("rewind/{}/{id}", app.replace('/', "-"));
    Rollback {
        id,
        app: AppName::new(app).expect("app"),
        cluster: "prod-eu".parse().expect("cluster"),
        from,
        to,
        state: RollbackState::PrOpen,
        reason: "error rate doubled after the deploy".to_owned(),
        trigger,
        strategy: Strategy::Restore,
        branch: Some(branch.clone()),
        commit: Some(CommitId::new("d".repeat(40)).expect("sha")),
        merge_commit: None,
        pr: Some(PullRequestRef {
            number: 7,
            url: "https://github.com/acme/gitops/pull/7".to_owned(),
        }),
        diff: RollbackDiff {
            semantic,
            text: text.to_owned(),
        },
        risks,
        approvals: vec![],
        timeline: vec![
            TimelineEntry {
                at: at(46),
                event: TimelineEvent::Proposed,
                detail: "alert CheckoutErrorRate fired".to_owned(),
            },
            TimelineEntry {
                at: at(46),
                event: TimelineEvent::Pushed,
                detail: format!("pushed branch {branch} at ddddddd"),
            },
            TimelineEntry {
                at: at(47),
                event: TimelineEvent::PrOpened,
                detail: "opened pull request #7 https://github.com/acme/gitops/pull/7".to_owned(),
            },
        ],
        verification: vec![],
        created_at: at(46),
        updated_at: at(47),
        wave: None,
    }
}

fn alert_trigger() -> Trigger {
    Trigger::Alert {
        group_key: "{}:{alertname=\"CheckoutErrorRate\"}".to_owned(),
        alert_name: "CheckoutErrorRate".to_owned(),
        fingerprint: "5a1b2c3d4e5f".to_owned(),
        severity: Some("critical".to_owned()),
    }
}

fn body(rollback: &Rollback, required_approvals: u32) -> String {
    let recent = [rollback.from.clone(), rollback.to.clone()];
    render_pull_request_body(&RollbackReport {
        rollback,
        alert: None,
        recent_deployments: &recent,
        public_url: "https://rewind.example.com",
        verify_for: Duration::from_secs(600),
        required_approvals,
        allow_self_approval: false,
        stage: ReportStage::Opened,
    })
}

#[test]
fn image_rollback() {
    let (now, after) = (
        "registry.example/shop/checkout:2.0.0",
        "registry.example/shop/checkout:1.9.3",
    );
    let rollback = rollback(
        "shop/checkout",
        deployment("shop/checkout", 12, 'c', &[now], Health::Degraded),
        deployment("shop/checkout", 11, 'b', &[after], Health::Healthy),
        alert_trigger(),
        json!({
            "app_path": "apps/checkout/overlays/prod",
            "added": [], "removed": [],
            "changed": [{
                "api_version": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "checkout",
                "fields": [{"path": "spec.template.spec.containers[api].image", "old": now, "new": after}],
                "more": 0
            }],
            "images": {"from": [now], "to": [after]},
            "files": [{"path": "apps/checkout/overlays/prod/kustomization.yaml", "status": "modified"}],
            "text": "", "warnings": []
        }),
        "--- a/apps/checkout/overlays/prod/kustomization.yaml\n+++ b/apps/checkout/overlays/prod/kustomization.yaml\n@@ -6,3 +6,3 @@\n images:\n   - name: registry.example/shop/checkout\n-    newTag: 2.0.0\n+    newTag: 1.9.3\n",
        vec![],
    );
    let body = body(&rollback, 1);
    assert!(
        body.contains("| **images** | `registry.example/shop/checkout` | `registry.example/shop/checkout:2.0.0` | `registry.example/shop/checkout:1.9.3` |"),
        "{body}"
    );
    assert!(body.contains("https://rewind.example.com/ui/rollbacks/"));
    assert!(!body.contains("/api/v1/rollbacks/"), "links the UI page");
    insta::assert_snapshot!(body);
}

#[test]
fn shared_base_rollback_with_risks() {
    let image = "registry.example/shop/checkout:2.0.0";
    let mut rollback = rollback(
        "shop/checkout",
        deployment("shop/checkout", 12, 'c', &[image], Health::Degraded),
        deployment("shop/checkout", 11, 'b', &[image], Health::Healthy),
        Trigger::Manual {
            caller: "oncall-alice".to_owned(),
        },
        json!({
            "app_path": "apps/checkout/overlays/prod",
            "added": [],
            "removed": [{"api_version": "policy/v1", "kind": "PodDisruptionBudget", "namespace": "shop", "name": "checkout", "source": "apps/base/pdb.yaml"}],
            "changed": [
                {
                    "api_version": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "checkout-flags",
                    "fields": [{"path": "data.NEW_CHECKOUT_FLOW", "old": "true", "new": "false"}],
                    "more": 0
                },
                {
                    "api_version": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "checkout",
                    "fields": [
                        {"path": "spec.replicas", "old": 6, "new": 4},
                        {"path": "spec.template.spec.containers[api].resources.limits.memory", "old": "1Gi", "new": "512Mi"},
                        {"path": "spec.template.spec.containers[api].env[LOG_LEVEL]", "old": null, "new": {"name": "LOG_LEVEL", "value": "debug"}}
                    ],
                    "more": 0
                }
            ],
            "images": {"from": [image], "to": [image]},
            "files": [
                {"path": "apps/base/deployment.yaml", "status": "modified"},
                {"path": "apps/base/pdb.yaml", "status": "removed"}
            ],
            "text": "", "warnings": []
        }),
        "--- a/apps/base/deployment.yaml\n+++ b/apps/base/deployment.yaml\n@@ -4,1 +4,1 @@\n-  replicas: 6\n+  replicas: 4\n",
        vec![
            Risk::new(
                RiskCode::SharedChange,
                "apps/base/deployment.yaml is also used by shop/cart@prod-eu and shop/search@prod-eu; their next sync changes them too",
            ),
            Risk::new(
                RiskCode::Scale,
                "spec.replicas of Deployment shop/checkout changes 6 → 4",
            ),
        ],
    );
    rollback.approvals = vec![
        Approval {
            by: "oncall-alice".to_owned(),
            at: at(48),
            via: "cli".to_owned(),
        },
        Approval {
            by: "bob".to_owned(),
            at: at(49),
            via: "github-review".to_owned(),
        },
    ];
    let body = body(&rollback, 2);
    assert!(body.contains("1 of 2 required approvals"), "{body}");
    assert!(body.contains("does not count: requested it"), "{body}");
    assert!(body.contains("1 more needed"), "{body}");
    let table = ChangeTable::from_semantic(&rollback.diff.semantic);
    assert_eq!(table.objects[0].object, "ConfigMap shop/checkout-flags");
    insta::assert_snapshot!(body);
}

#[test]
fn migration_rollback() {
    let (now, after) = (
        "registry.example/shop/orders:3.1.0",
        "registry.example/shop/orders:3.0.4",
    );
    let (job_now, job_after) = (
        "registry.example/shop/orders-migrate:3.1.0",
        "registry.example/shop/orders-migrate:3.0.4",
    );
    let rollback = rollback(
        "shop/orders",
        deployment("shop/orders", 31, 'c', &[now, job_now], Health::Degraded),
        deployment("shop/orders", 30, 'b', &[after, job_after], Health::Healthy),
        alert_trigger(),
        json!({
            "app_path": "apps/orders/overlays/prod",
            "added": [],
            "removed": [],
            "changed": [
                {
                    "api_version": "batch/v1", "kind": "Job", "namespace": "shop", "name": "orders-migrate",
                    "fields": [
                        {"path": "metadata.annotations[argocd.argoproj.io/hook]", "old": "PreSync", "new": "PreSync"},
                        {"path": "spec.template.spec.containers[migrate].image", "old": job_now, "new": job_after},
                        {"path": "spec.template.spec.containers[migrate].args", "old": ["migrate", "up", "--to", "0042"], "new": ["migrate", "up", "--to", "0041"]}
                    ],
                    "more": 0
                },
                {
                    "api_version": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "orders",
                    "fields": [{"path": "spec.template.spec.containers[api].image", "old": now, "new": after}],
                    "more": 0
                }
            ],
            "images": {"from": [now, job_now], "to": [after, job_after]},
            "files": [{"path": "apps/orders/overlays/prod/kustomization.yaml", "status": "modified"}],
            "text": "", "warnings": []
        }),
        "--- a/apps/orders/overlays/prod/kustomization.yaml\n+++ b/apps/orders/overlays/prod/kustomization.yaml\n@@ -8,4 +8,4 @@\n-    newTag: 3.1.0\n+    newTag: 3.0.4\n",
        vec![
            Risk::new(
                RiskCode::Migration,
                "Job shop/orders-migrate runs migrations (PreSync hook); the rollback runs the 3.0.4 migration image against a schema 3.1.0 already migrated: check that 3.0.4 works with schema 0042 or plan a down migration",
            ),
            Risk::new(
                RiskCode::Hook,
                "Job shop/orders-migrate is an Argo CD PreSync hook: it runs again before the rollback syncs",
            ),
        ],
    );
    let body = body(&rollback, 1);
    assert!(body.contains("`migration`"), "{body}");
    insta::assert_snapshot!(body);
}
