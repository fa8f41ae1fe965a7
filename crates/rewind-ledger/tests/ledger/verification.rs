//! Verification records: appended per phase, returned oldest first, and
//! the evaluations are the rollback's `verification`.

use rewind_domain::{CheckPhase, CheckResult, RollbackId};
use rewind_ledger::LedgerError;
use rewind_ledger::testing::for_each_backend;

use crate::fixtures::*;

fn result(check: &str, minute: i64, value: Option<f64>, pass: Option<bool>) -> CheckResult {
    CheckResult {
        check: check.into(),
        at: t(minute),
        value,
        baseline: Some(0.2),
        pass,
        detail: format!("{check} at {minute}"),
    }
}

#[tokio::test]
async fn check_results_are_appended_per_phase_and_shown_on_the_rollback() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        l.record_delivery(delivery(
            "argocd",
            "seed",
            vec![argo("shop", 1, 1, 0), argo("shop", 2, 2, 10)],
        ))
        .await
        .unwrap();
        let from = l
            .deployment_by_revision(&aref("shop"), 2)
            .await
            .unwrap()
            .unwrap();
        let to = l
            .deployment_by_revision(&aref("shop"), 1)
            .await
            .unwrap()
            .unwrap();
        let r = rollback("shop", &from, &to, 20);
        l.insert_rollback(&r).await.unwrap();

        let baseline = result("error-rate", 20, Some(0.2), None);
        l.record_check_result(r.id, CheckPhase::Baseline, &baseline)
            .await
            .unwrap();
        let evaluations = [
            result("error-rate", 30, Some(0.01), Some(true)),
            result("error-rate", 31, None, None),
            result("smoke", 31, None, Some(false)),
        ];
        for e in &evaluations {
            l.record_check_result(r.id, CheckPhase::Evaluation, e)
                .await
                .unwrap();
        }
        assert_eq!(
            l.check_results(r.id, CheckPhase::Baseline).await.unwrap(),
            vec![baseline]
        );
        assert_eq!(
            l.check_results(r.id, CheckPhase::Evaluation).await.unwrap(),
            evaluations.to_vec()
        );
        assert!(
            l.check_results(r.id, CheckPhase::KnownGood)
                .await
                .unwrap()
                .is_empty()
        );
        // The rollback carries its evaluations (not the baseline), also in lists.
        let stored = l.rollback(r.id).await.unwrap().unwrap();
        assert_eq!(stored.verification, evaluations.to_vec());
        let listed = l.list_rollbacks(None, None, 10).await.unwrap();
        assert_eq!(listed[0].verification.len(), 3);

        let missing = l
            .record_check_result(
                RollbackId::generate(),
                CheckPhase::Evaluation,
                &evaluations[0],
            )
            .await;
        assert!(
            matches!(missing, Err(LedgerError::NotFound { .. })),
            "{missing:?}"
        );
    })
    .await;
}
