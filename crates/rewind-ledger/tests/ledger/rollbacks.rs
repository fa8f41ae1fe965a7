//! Rollbacks: storage round trip, one open rollback per app, state
//! compare-and-set with its timeline.

use std::sync::Arc;

use rewind_domain::{
    Approval, Deployment, PullRequestRef, RollbackId, RollbackState, TimelineEvent,
};
use rewind_ledger::testing::for_each_backend;
use rewind_ledger::{Ledger, LedgerError};

use crate::fixtures::*;

/// Records two deployments of `app` and returns them (current first).
async fn two_deployments(l: &Arc<dyn Ledger>, app: &str) -> (Deployment, Deployment) {
    l.record_delivery(delivery(
        "argocd",
        &format!("seed-{app}"),
        vec![argo(app, 1, 1, 0), argo(app, 2, 2, 10)],
    ))
    .await
    .unwrap();
    let from = l
        .deployment_by_revision(&aref(app), 2)
        .await
        .unwrap()
        .unwrap();
    let to = l
        .deployment_by_revision(&aref(app), 1)
        .await
        .unwrap()
        .unwrap();
    (from, to)
}

#[tokio::test]
async fn rollbacks_round_trip_and_are_found_by_app_state_pr_and_branch() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let (from, to) = two_deployments(&l, "shop").await;
        let mut r = rollback("shop", &from, &to, 20);
        l.insert_rollback(&r).await.unwrap();
        assert_eq!(l.rollback(r.id).await.unwrap(), Some(r.clone()));
        assert_eq!(
            l.open_rollback(&aref("shop")).await.unwrap(),
            Some(r.clone())
        );
        assert_eq!(l.rollback(RollbackId::generate()).await.unwrap(), None);

        r.commit = Some(commit(42));
        r.pr = Some(PullRequestRef {
            number: 17,
            url: "https://github.example/acme/gitops/pull/17".into(),
        });
        r.approvals = vec![Approval {
            by: "alice".into(),
            at: t(21),
            via: "api".into(),
        }];
        l.set_rollback_commit(r.id, &commit(42), None)
            .await
            .unwrap();
        l.set_rollback_pr(r.id, r.pr.as_ref().unwrap())
            .await
            .unwrap();
        assert!(l.add_approval(r.id, &r.approvals[0]).await.unwrap());
        // Once per person.
        assert!(!l.add_approval(r.id, &r.approvals[0]).await.unwrap());
        l.append_timeline(r.id, entry("pr_opened", 21))
            .await
            .unwrap();
        r.timeline.push(entry("pr_opened", 21));
        let stored = l.rollback(r.id).await.unwrap().unwrap();
        assert!(stored.updated_at > r.updated_at, "writes move updated_at");
        r.updated_at = stored.updated_at;
        assert_eq!(stored, r);
        assert_eq!(
            l.rollback_by_pr(17).await.unwrap().map(|x| x.id),
            Some(r.id)
        );
        assert_eq!(l.rollback_by_pr(18).await.unwrap(), None);
        let branch = r.branch.clone().unwrap();
        assert_eq!(
            l.rollback_by_branch(&branch).await.unwrap().map(|x| x.id),
            Some(r.id)
        );

        // A second app, and a closed rollback of the first.
        l.transition_rollback(
            r.id,
            RollbackState::Proposed,
            RollbackState::Cancelled,
            entry("cancelled", 22),
        )
        .await
        .unwrap();
        let r2 = rollback("shop", &from, &to, 30);
        l.insert_rollback(&r2).await.unwrap();
        let (f3, t3) = two_deployments(&l, "api").await;
        let r3 = rollback("api", &f3, &t3, 40);
        l.insert_rollback(&r3).await.unwrap();

        let ids = |v: Vec<rewind_domain::Rollback>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(l.list_rollbacks(None, None, 10).await.unwrap()),
            [r3.id, r2.id, r.id]
        );
        assert_eq!(ids(l.list_rollbacks(None, None, 1).await.unwrap()), [r3.id]);
        assert_eq!(
            ids(l
                .list_rollbacks(Some(&aref("shop")), None, 10)
                .await
                .unwrap()),
            [r2.id, r.id]
        );
        assert_eq!(
            ids(l
                .list_rollbacks(None, Some(RollbackState::Cancelled), 10)
                .await
                .unwrap()),
            [r.id]
        );
        assert_eq!(
            ids(l
                .list_rollbacks(Some(&aref("api")), Some(RollbackState::Proposed), 10)
                .await
                .unwrap()),
            [r3.id]
        );

        assert_eq!(
            l.count_rollbacks_since(&aref("shop"), t(0)).await.unwrap(),
            2
        );
        assert_eq!(
            l.count_rollbacks_since(&aref("shop"), t(25)).await.unwrap(),
            1
        );
        assert_eq!(
            l.count_rollbacks_since(&aref("none"), t(0)).await.unwrap(),
            0
        );

        let mut missing = rollback("shop", &from, &to, 50);
        missing.id = RollbackId::generate();
        assert!(matches!(
            l.set_rollback_pr(missing.id, r.pr.as_ref().unwrap()).await,
            Err(LedgerError::NotFound { .. })
        ));
        assert!(matches!(
            l.set_merge_commit(missing.id, &commit(1)).await,
            Err(LedgerError::NotFound { .. })
        ));
        assert!(matches!(
            l.add_approval(missing.id, &r.approvals[0]).await,
            Err(LedgerError::NotFound { .. })
        ));
        assert!(matches!(
            l.append_timeline(missing.id, entry("x", 1)).await,
            Err(LedgerError::NotFound { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn an_app_has_at_most_one_open_rollback_even_under_concurrency() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let (from, to) = two_deployments(&l, "shop").await;
        let candidates: Vec<_> = (0..20).map(|i| rollback("shop", &from, &to, i)).collect();
        let tasks: Vec<_> = candidates
            .iter()
            .cloned()
            .map(|r| {
                let l = l.clone();
                tokio::spawn(async move { (r.id, l.insert_rollback(&r).await) })
            })
            .collect();
        let mut winners = Vec::new();
        let mut blocked_by = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (id, Ok(())) => winners.push(id),
                (_, Err(LedgerError::Conflict { open_rollback, .. })) => {
                    blocked_by.push(open_rollback)
                }
                (_, Err(e)) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(winners.len(), 1);
        assert_eq!(blocked_by.len(), 19);
        assert!(
            blocked_by.iter().all(|b| *b == Some(winners[0])),
            "{blocked_by:?}"
        );
        assert_eq!(l.list_rollbacks(None, None, 100).await.unwrap().len(), 1);

        // The same id twice is a conflict too.
        let open = l.rollback(winners[0]).await.unwrap().unwrap();
        assert!(matches!(
            l.insert_rollback(&open).await,
            Err(LedgerError::Conflict { .. })
        ));

        // Once it is terminal, a new one may open.
        l.transition_rollback(
            open.id,
            RollbackState::Proposed,
            RollbackState::Failed,
            entry("failed", 30),
        )
        .await
        .unwrap();
        l.insert_rollback(&rollback("shop", &from, &to, 31))
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn transitions_compare_and_set_and_append_the_timeline_once() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let (from, to) = two_deployments(&l, "shop").await;
        let r = rollback("shop", &from, &to, 20);
        l.insert_rollback(&r).await.unwrap();
        use RollbackState::*;

        let moved = l
            .transition_rollback(r.id, Proposed, PrOpen, entry("pr_open", 21))
            .await
            .unwrap();
        assert_eq!(moved.state, PrOpen);
        assert_eq!(moved.updated_at, t(21));
        assert_eq!(moved.timeline.len(), 2);
        assert_eq!(moved.timeline[1], entry("pr_open", 21));

        // Again: already there, a no-op that adds no entry.
        let again = l
            .transition_rollback(r.id, Proposed, PrOpen, entry("pr_open", 22))
            .await
            .unwrap();
        assert_eq!(again, moved);

        // From a state it is not in: conflict.
        let err = l
            .transition_rollback(r.id, Approved, Merged, entry("merged", 23))
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::Conflict { .. }), "{err}");
        // A move the state machine forbids: invalid.
        let err = l
            .transition_rollback(r.id, PrOpen, Synced, entry("synced", 23))
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::Invalid(_)), "{err}");
        let err = l
            .transition_rollback(RollbackId::generate(), PrOpen, Approved, entry("x", 23))
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::NotFound { .. }), "{err}");

        // Racing the same transition: all succeed, one entry recorded.
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let l = l.clone();
                tokio::spawn(async move {
                    l.transition_rollback(r.id, PrOpen, Approved, entry("approved", 30 + i))
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().state, Approved);
        }
        let done = l.rollback(r.id).await.unwrap().unwrap();
        let approvals = done
            .timeline
            .iter()
            .filter(|e| e.event == TimelineEvent::Approved)
            .count();
        assert_eq!(approvals, 1);
        assert!(matches!(
            l.transition_rollback(r.id, Approved, Cancelled, entry("cancelled", 40)).await,
            Ok(ref x) if x.state == Cancelled
        ));
        // Terminal: nothing moves it any more.
        assert!(
            l.transition_rollback(r.id, Cancelled, Merged, entry("m", 41))
                .await
                .is_err()
        );
    })
    .await;
}

#[tokio::test]
async fn field_writes_racing_each_other_lose_nothing() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let (from, to) = two_deployments(&l, "shop").await;
        let r = rollback("shop", &from, &to, 20);
        l.insert_rollback(&r).await.unwrap();
        // Ten approvers, the PR, the commit and a transition, all at once.
        let mut tasks = Vec::new();
        for i in 0..10 {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                let approval = Approval {
                    by: format!("approver-{i}"),
                    at: t(21),
                    via: "api".into(),
                };
                l.add_approval(r.id, &approval).await.map(|_| ())
            }));
        }
        let pr = PullRequestRef {
            number: 99,
            url: "https://github.example/acme/gitops/pull/99".into(),
        };
        {
            let (l, pr) = (l.clone(), pr.clone());
            tasks.push(tokio::spawn(
                async move { l.set_rollback_pr(r.id, &pr).await },
            ));
        }
        {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                l.set_rollback_commit(r.id, &commit(7), Some("rewind/shop/x"))
                    .await
            }));
        }
        {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                l.transition_rollback(
                    r.id,
                    RollbackState::Proposed,
                    RollbackState::PrOpen,
                    entry("pr_opened", 22),
                )
                .await
                .map(|_| ())
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let stored = l.rollback(r.id).await.unwrap().unwrap();
        assert_eq!(stored.approvals.len(), 10, "{:?}", stored.approvals);
        assert_eq!(stored.pr, Some(pr));
        assert_eq!(stored.commit, Some(commit(7)));
        assert_eq!(stored.branch.as_deref(), Some("rewind/shop/x"));
        assert_eq!(stored.state, RollbackState::PrOpen);

        assert!(l.remove_approval(r.id, "approver-3").await.unwrap());
        assert!(!l.remove_approval(r.id, "approver-3").await.unwrap());
        // Merged: no more approvals.
        l.transition_rollback(
            r.id,
            RollbackState::PrOpen,
            RollbackState::Merged,
            entry("merged", 23),
        )
        .await
        .unwrap();
        let late = Approval {
            by: "late".into(),
            at: t(24),
            via: "api".into(),
        };
        assert!(matches!(
            l.add_approval(r.id, &late).await,
            Err(LedgerError::Conflict { .. })
        ));
        assert_eq!(l.rollback(r.id).await.unwrap().unwrap().approvals.len(), 9);
    })
    .await;
}
