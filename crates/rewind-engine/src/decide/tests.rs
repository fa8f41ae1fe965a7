//! Each refusal rule, one case each, plus the happy path; the auto-merge
//! policy against every risk code.

use chrono::Utc;
use rewind_domain::*;

use super::*;

fn app(rollbackable: bool) -> App {
    App {
        name: AppName::new("shop/checkout").unwrap(),
        source: Source::Argocd,
        cluster: ClusterName::new("prod").unwrap(),
        project: None,
        sources: vec![],
        path: Some("apps/checkout".into()),
        rollbackable,
        status: (!rollbackable).then(|| "syncs from https://example.com/other.git".into()),
        held_since: None,
        updated_at: Utc::now(),
        drift: None,
    }
}

fn deployment(id: i64, hash: u8, commit: bool) -> Deployment {
    Deployment {
        id,
        app: AppName::new("shop/checkout").unwrap(),
        cluster: ClusterName::new("prod").unwrap(),
        cluster_revision: id,
        revision: "main".into(),
        commit: commit.then(|| CommitId::new(format!("{id:040x}")).unwrap()),
        tree: None,
        config_hash: Some(ConfigHash::from_digest([hash; 32])),
        images: vec![],
        health: Health::Healthy,
        sync: SyncStatus::Synced,
        deployed_at: Utc::now(),
        source: Source::Argocd,
        known_good: true,
        known_good_by_history: false,
        healthy_since: None,
        alerted: false,
        initiated_by: None,
    }
}

fn rollback(state: RollbackState) -> Rollback {
    Rollback {
        id: RollbackId::generate(),
        app: AppName::new("shop/checkout").unwrap(),
        cluster: ClusterName::new("prod").unwrap(),
        from: deployment(2, 2, true),
        to: deployment(1, 1, true),
        state,
        reason: "test".into(),
        trigger: Trigger::Manual {
            caller: "me".into(),
        },
        strategy: Strategy::Restore,
        branch: None,
        commit: None,
        merge_commit: None,
        pr: None,
        diff: RollbackDiff::default(),
        risks: vec![],
        approvals: vec![],
        timeline: vec![],
        verification: vec![],
        created_at: Utc::now(),
        updated_at: Utc::now(),
        wave: None,
    }
}

struct Case {
    app: App,
    current: Option<Deployment>,
    target: Option<Deployment>,
    open: Option<Rollback>,
    last_hour: u64,
}

impl Case {
    fn new() -> Self {
        Case {
            app: app(true),
            current: Some(deployment(2, 2, true)),
            target: Some(deployment(1, 1, true)),
            open: None,
            last_hour: 0,
        }
    }

    fn decide(&self) -> Result<(i64, i64), Refusal> {
        let facts = Facts {
            app: &self.app,
            current: self.current.as_ref(),
            target: self.target.as_ref(),
            open_rollback: self.open.as_ref(),
            rollbacks_last_hour: self.last_hour,
            max_rollbacks_per_hour: 2,
            head_config_hash: None,
        };
        decide(&facts).map(|d| (d.from.id, d.to.id))
    }
}

#[test]
fn rolls_current_back_to_target() {
    assert_eq!(Case::new().decide(), Ok((2, 1)));
}

#[test]
fn refusals() {
    let mut c = Case::new();
    c.open = Some(rollback(RollbackState::PrOpen));
    assert!(matches!(c.decide(), Err(Refusal::OpenRollbackExists(_))));

    let mut c = Case::new();
    c.open = Some(rollback(RollbackState::Synced));
    assert!(matches!(
        c.decide(),
        Err(Refusal::UndoesRollbackBeingVerified(_))
    ));

    let mut c = Case::new();
    c.app = app(false);
    let refusal = c.decide().unwrap_err();
    assert!(
        refusal.reason().contains("other.git"),
        "{}",
        refusal.reason()
    );

    let mut c = Case::new();
    c.last_hour = 2;
    let refusal = c.decide().unwrap_err();
    assert_eq!(refusal.http_status(), 429);
    assert_eq!(refusal.code(), "breaker open");

    let mut c = Case::new();
    c.target = None;
    assert_eq!(c.decide(), Err(Refusal::NoKnownGood));

    let mut c = Case::new();
    c.current = None;
    assert_eq!(c.decide(), Err(Refusal::NoCurrentDeployment));

    let mut c = Case::new();
    c.target = Some(deployment(1, 2, true));
    assert_eq!(
        c.decide(),
        Err(Refusal::AlreadyOnTarget { target_revision: 1 })
    );

    let mut c = Case::new();
    c.target = Some(deployment(1, 1, false));
    assert_eq!(
        c.decide(),
        Err(Refusal::TargetHasNoCommit { target_revision: 1 })
    );

    let mut c = Case::new();
    c.target = c.current.clone();
    assert_eq!(
        c.decide(),
        Err(Refusal::TargetIsCurrent { target_revision: 2 })
    );
}

#[test]
fn the_head_of_the_branch_wins_over_the_last_deployment() {
    let c = Case::new();
    let head = ConfigHash::from_digest([1; 32]);
    let facts = Facts {
        app: &c.app,
        current: c.current.as_ref(),
        target: c.target.as_ref(),
        open_rollback: None,
        rollbacks_last_hour: 0,
        max_rollbacks_per_hour: 2,
        head_config_hash: Some(&head),
    };
    assert!(matches!(
        decide(&facts),
        Err(Refusal::AlreadyOnTarget { .. })
    ));
}

/// `never`, `safe` and `always` against each risk code alone, all of them
/// together, and none: only `always` merges a risky rollback, only
/// `never` holds back a clean one.
#[test]
fn auto_merge_policy_against_every_risk_code() {
    use rewind_config::AutoMerge;
    // Every code, including ones added later: `ALL` lists them all.
    for code in RiskCode::ALL {
        let risks = [Risk::new(code, format!("{code} found"))];
        assert!(!auto_merge_allowed(AutoMerge::Never, &risks), "{code}");
        assert!(!auto_merge_allowed(AutoMerge::Safe, &risks), "{code}");
        assert!(auto_merge_allowed(AutoMerge::Always, &risks), "{code}");
    }
    for (code, what) in [
        (
            RiskCode::Crd,
            "CustomResourceDefinitions change: widgets.example.com changes",
        ),
        (
            RiskCode::Drift,
            "Argo CD reports OutOfSync at another revision than Git",
        ),
        (
            RiskCode::Unrenderable,
            "apps/a/passwd.yaml (symlink: to \"/etc/passwd\")",
        ),
    ] {
        assert!(!auto_merge_allowed(
            AutoMerge::Safe,
            &[Risk::new(code, what)]
        ));
    }
    let all: Vec<Risk> = RiskCode::ALL.iter().map(|c| Risk::new(*c, "x")).collect();
    assert!(!auto_merge_allowed(AutoMerge::Safe, &all));
    assert!(!auto_merge_allowed(AutoMerge::Never, &[]));
    assert!(auto_merge_allowed(AutoMerge::Safe, &[]));
    assert!(auto_merge_allowed(AutoMerge::Always, &[]));
}
