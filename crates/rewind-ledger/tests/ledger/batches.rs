//! The set-based group commit gives exactly what recording the same
//! deliveries one by one gives: the outcome of each delivery, and the apps,
//! deployments, jobs and alerts left in the ledger.

use proptest::prelude::*;

use rewind_domain::{
    AlertStatus, ClusterRolledBack, Deployment, Health, HealthObserved, Observation,
    PullRequestAction, PullRequestEvent, RollbackSender, SyncStatus,
};
use rewind_ledger::testing::TestDatabase;
use std::collections::HashMap;

use rewind_ledger::{Delivery, DeliveryOutcome, Ledger, SqlLedger, connect, connect_sql};

use crate::fixtures::*;

/// Apps the tests use; `snapshot` reads every one of them.
const APPS: [&str; 4] = ["shop", "cart", "ghost", "ns/web"];

/// Renames deployment ids, for comparing ledgers whose ids may differ by
/// gaps only: a PostgreSQL sequence value taken by a rolled-back
/// transaction is gone, so after a batch falls back to one by one, ids
/// are the same up to gaps. `None`: ids as they are.
type Ids = Option<HashMap<i64, i64>>;

fn rename(ids: &Ids, id: i64) -> i64 {
    ids.as_ref()
        .map_or(id, |ids| ids.get(&id).copied().unwrap_or(-id))
}

/// Each deployment id's rank, 1 for the lowest.
async fn ranks(l: &dyn Ledger) -> Ids {
    let mut all = Vec::new();
    for app in APPS {
        all.extend(
            l.history(&aref(app), 1000)
                .await
                .unwrap()
                .iter()
                .map(|d| d.id),
        );
    }
    all.sort_unstable();
    Some(all.into_iter().zip(1..).collect())
}

/// What a delivery came to, comparable across ledgers.
fn outcomes(
    results: Vec<Result<DeliveryOutcome, rewind_ledger::LedgerError>>,
    ids: &Ids,
) -> Vec<String> {
    results
        .into_iter()
        .map(|r| match r {
            Ok(DeliveryOutcome::Recorded {
                new_deployments,
                new_alerts,
                jobs,
                new_cluster_rollbacks,
            }) => format!(
                "{:?}",
                DeliveryOutcome::Recorded {
                    new_deployments: new_deployments.iter().map(|&id| rename(ids, id)).collect(),
                    new_alerts,
                    jobs,
                    new_cluster_rollbacks,
                }
            ),
            Ok(outcome) => format!("{outcome:?}"),
            Err(e) => format!("error: {e}"),
        })
        .collect()
}

fn renamed(d: &Deployment, ids: &Ids) -> Deployment {
    Deployment {
        id: rename(ids, d.id),
        ..d.clone()
    }
}

/// Everything the deliveries could have written, in a comparable form.
/// Jobs without their ids: the set-based path may queue a batch's resolve
/// jobs before its drift jobs.
async fn snapshot(l: &dyn Ledger, ids: &Ids) -> String {
    let mut out = String::new();
    for summary in l.list_apps().await.unwrap() {
        out += &format!(
            "{:?}\ncurrent {:?}\nknown good {:?}\n",
            summary.app,
            summary.current.as_ref().map(|d| renamed(d, ids)),
            summary.known_good.as_ref().map(|d| renamed(d, ids)),
        );
    }
    for app in APPS {
        let app = aref(app);
        for d in l.history(&app, 1000).await.unwrap() {
            let images = l.running_images(d.id).await.unwrap();
            out += &format!("{:?} running {images:?}\n", renamed(&d, ids));
        }
        for mut alert in l.alerts_for_app(&app, 1000).await.unwrap() {
            alert.deployment_id = alert.deployment_id.map(|id| rename(ids, id));
            out += &format!("{alert:?}\n");
        }
    }
    let mut jobs = Vec::new();
    let mut id = 1;
    let mut missing = 0;
    // Ids are dense, up to gaps; stop after a long one.
    while missing < 50 {
        match l.job(id).await.unwrap() {
            Some(job) => {
                missing = 0;
                let mut payload = job.payload.clone();
                if let Some(dep) = payload.get_mut("deployment_id")
                    && let Some(n) = dep.as_i64()
                {
                    *dep = rename(ids, n).into();
                }
                let key = match (job.kind.as_str(), &job.dedup_key) {
                    ("resolve_deployment", Some(key)) => key
                        .rsplit_once(':')
                        .and_then(|(kind, n)| {
                            Some(format!("{kind}:{}", rename(ids, n.parse().ok()?)))
                        })
                        .unwrap_or_else(|| key.clone()),
                    (_, key) => format!("{key:?}"),
                };
                jobs.push(format!(
                    "{} {key} {payload} {:?} {}",
                    job.kind, job.state, job.run_at
                ));
            }
            None => missing += 1,
        }
        id += 1;
    }
    jobs.sort();
    out + &jobs.join("\n")
}

/// Records `before` one by one in both ledgers, then `batch` as one batch
/// in `together` and one by one (the per-delivery code alone) in `alone`;
/// asserts the same outcomes and contents, and that every key is now
/// taken in both. `exact_ids`: deployment ids must be equal, not only
/// equal up to gaps.
async fn assert_same(
    together: &dyn Ledger,
    alone: &SqlLedger,
    before: &[Delivery],
    batch: &[Delivery],
    exact_ids: bool,
) {
    for d in before {
        let a = together.record_delivery(d.clone()).await;
        let b = alone.record_one_by_one(d.clone()).await;
        assert_eq!(outcomes(vec![a], &None), outcomes(vec![b], &None));
    }
    let batched = together.record_deliveries(batch.to_vec()).await;
    let mut one_by_one = Vec::new();
    for d in batch {
        one_by_one.push(alone.record_one_by_one(d.clone()).await);
    }
    let (ids_together, ids_alone) = if exact_ids {
        (None, None)
    } else {
        (ranks(together).await, ranks(alone).await)
    };
    assert_eq!(
        outcomes(batched, &ids_together),
        outcomes(one_by_one, &ids_alone),
        "per-delivery outcomes"
    );
    assert_eq!(
        snapshot(together, &ids_together).await,
        snapshot(alone, &ids_alone).await,
        "ledger contents"
    );
    let again = together.record_deliveries(batch.to_vec()).await;
    let mut alone_again = Vec::new();
    for d in batch {
        alone_again.push(alone.record_one_by_one(d.clone()).await);
    }
    assert_eq!(
        outcomes(again, &ids_together),
        outcomes(alone_again, &ids_alone),
        "the same batch again"
    );
}

fn at(mut d: Delivery, minutes: i64) -> Delivery {
    d.received_at = t(minutes);
    d
}

fn out_of_sync(app: &str, at: i64) -> Observation {
    Observation::Health(HealthObserved {
        sync: Some(SyncStatus::OutOfSync),
        sync_revision: Some(commit(9).to_string()),
        ..match health(app, None, Health::Degraded, at) {
            Observation::Health(h) => h,
            _ => unreachable!(),
        }
    })
}

fn pull_request(number: u64) -> Observation {
    Observation::PullRequest(PullRequestEvent {
        repository: "acme/gitops".into(),
        number,
        action: PullRequestAction::Opened,
        head_ref: "rewind/shop/x".into(),
        head_sha: Some(commit(9)),
        base_ref: "main".into(),
        merge_commit: None,
        actor: "rewind".into(),
        at: t(1),
    })
}

/// New deliveries, a duplicate of an earlier one, the same key twice in
/// the batch, two deliveries for one app, an app only seen in a
/// deployment, a drift, an alert, and an invalid delivery.
fn mixed() -> (Vec<Delivery>, Vec<Delivery>) {
    let first = delivery(
        "argocd",
        "d0",
        vec![
            Observation::App(app("shop")),
            argo("shop", 1, 1, 1),
            health("shop", Some(commit(1).to_string()), Health::Healthy, 2),
        ],
    );
    let batch = vec![
        at(first.clone(), 3),
        at(
            delivery(
                "argocd",
                "d1",
                vec![
                    Observation::App(app("shop")),
                    argo("shop", 2, 2, 3),
                    argo("shop", 1, 1, 1),
                    health("shop", Some(commit(2).to_string()), Health::Healthy, 4),
                ],
            ),
            4,
        ),
        at(
            delivery(
                "argocd",
                "d2",
                vec![Observation::App(app("cart")), argo("cart", 1, 3, 4)],
            ),
            4,
        ),
        at(
            delivery(
                "argocd",
                "d2",
                vec![Observation::App(app("cart")), argo("cart", 1, 3, 4)],
            ),
            5,
        ),
        at(
            delivery(
                "argocd",
                "d3",
                vec![
                    Observation::App(app("shop")),
                    argo("shop", 3, 3, 5),
                    argo("shop", 2, 2, 3),
                    health("shop", Some(commit(3).to_string()), Health::Progressing, 6),
                ],
            ),
            6,
        ),
        at(
            delivery(
                "argocd",
                "d4",
                vec![argo("ghost", 7, 4, 6), argo("ghost", 6, 5, 5)],
            ),
            6,
        ),
        at(delivery("argocd", "", vec![argo("cart", 2, 4, 6)]), 6),
        at(delivery("argocd", "d5", vec![out_of_sync("cart", 7)]), 7),
        at(
            delivery(
                "alertmanager",
                "a1",
                vec![Observation::Alert(alert(
                    "shop",
                    "f1",
                    7,
                    AlertStatus::Firing,
                ))],
            ),
            7,
        ),
        at(
            delivery(
                "argocd",
                "d6",
                vec![
                    argo("shop", 4, 4, 8),
                    argo("cart", 2, 4, 8),
                    argo("cart", 2, 4, 8),
                ],
            ),
            8,
        ),
        at(
            delivery(
                "flux",
                "f1",
                vec![flux("ns/web", 1, 8), flux("ns/web", 2, 9)],
            ),
            9,
        ),
    ];
    (vec![first], batch)
}

#[tokio::test]
async fn a_mixed_batch_records_as_one_by_one() {
    let mut pairs = vec![(TestDatabase::sqlite(), TestDatabase::sqlite())];
    if let (Some(a), Some(b)) = (
        TestDatabase::postgres().await,
        TestDatabase::postgres().await,
    ) {
        pairs.push((a, b));
    }
    for (a, b) in pairs {
        let (together, alone) = (a.connect().await, b.connect().await);
        let (before, batch) = mixed();
        assert_same(together.ledger.as_ref(), alone.sql(), &before, &batch, true).await;
        a.cleanup().await;
        b.cleanup().await;
    }
}

/// A delivery that fails in the database (a PR number beyond a 64-bit
/// integer) sends the batch to the savepoint path: the others still land,
/// exactly as one by one.
#[tokio::test]
async fn a_failing_delivery_leaves_the_others_recorded() {
    let mut pairs = vec![(TestDatabase::sqlite(), TestDatabase::sqlite())];
    if let (Some(a), Some(b)) = (
        TestDatabase::postgres().await,
        TestDatabase::postgres().await,
    ) {
        pairs.push((a, b));
    }
    for (a, b) in pairs {
        let (together, alone) = (a.connect().await, b.connect().await);
        let (before, mut batch) = mixed();
        batch.insert(2, delivery("github", "g1", vec![pull_request(u64::MAX)]));
        batch.push(delivery("github", "g2", vec![pull_request(7)]));
        assert_same(
            together.ledger.as_ref(),
            alone.sql(),
            &before,
            &batch,
            false,
        )
        .await;
        let recorded = together.ledger.record_delivery(batch[2].clone()).await;
        assert!(
            recorded.is_err(),
            "the bad delivery stays refused: {recorded:?}"
        );
        a.cleanup().await;
        b.cleanup().await;
    }
}

/// One observation of a random delivery.
fn observation() -> impl Strategy<Value = Observation> {
    let names = prop::sample::select(vec!["shop", "cart", "ghost"]);
    prop_oneof![
        4 => names.clone().prop_map(|a| Observation::App(app(a))),
        8 => (names.clone(), 1i64..6, 1u64..4, 0i64..20)
            .prop_map(|(a, rev, n, at)| argo(a, rev, n, at)),
        4 => (names.clone(), prop::option::of(1u64..4), any::<bool>(), 0i64..20).prop_map(
            |(a, n, healthy, at)| {
                let h = if healthy { Health::Healthy } else { Health::Degraded };
                health(a, n.map(|n| commit(n).to_string()), h, at)
            }
        ),
        2 => (names.clone(), prop::option::of(1u64..4), 0i64..20).prop_map(|(a, n, at)| {
            match out_of_sync(a, at) {
                Observation::Health(h) => Observation::Health(HealthObserved {
                    revision: n.map(|n| commit(n).to_string()),
                    ..h
                }),
                other => other,
            }
        }),
        1 => (names.clone(), 0i64..20, any::<bool>()).prop_map(|(a, at, firing)| {
            let status = if firing { AlertStatus::Firing } else { AlertStatus::Resolved };
            Observation::Alert(alert(a, "f", at, status))
        }),
        1 => (1u64..3, 0i64..20).prop_map(|(n, at)| flux("ns/web", n, at)),
        1 => (names.clone(), any::<bool>(), 0i64..20).prop_map(|(a, named, at)| {
            Observation::ClusterRolledBack(ClusterRolledBack {
                app: name(a),
                cluster: if named { "prod".into() } else { String::new() },
                namespace: "shop".into(),
                workload: "Canary/web".into(),
                sender: RollbackSender::Flagger,
                running_revision: None,
                running_images: vec![],
                rejected_revision: None,
                rejected_images: vec![],
                at: t(at),
                message: "canary failed".into(),
            })
        }),
        2 => (names.clone(), prop::option::of(1u64..4), any::<bool>(), 0i64..20).prop_map(
            |(a, n, odd, at)| {
                // Reports the running images, and a revision the ledger
                // has, or one it cannot have.
                let revision = n.map(|n| match odd {
                    true => format!("main@sha1:{}", commit(n)),
                    false => commit(n).to_string(),
                });
                match health(a, revision, Health::Healthy, at) {
                    Observation::Health(h) => Observation::Health(HealthObserved {
                        running_images: Some(vec![format!("web:{at}")]),
                        sync_revision: n.map(|n| commit(n).to_string()),
                        ..h
                    }),
                    other => other,
                }
            }
        ),
    ]
}

fn random_delivery() -> impl Strategy<Value = Delivery> {
    (
        0usize..8,
        prop::collection::vec(observation(), 0..5),
        0i64..20,
    )
        .prop_map(|(key, observations, minutes)| {
            // Key 0 is invalid (empty); the others repeat across and within
            // batches.
            let key = if key == 0 {
                String::new()
            } else {
                format!("k{key}")
            };
            at(delivery("argocd", &key, observations), minutes)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random batches after random history: the set-based batch and one
    /// by one agree on every outcome and on the ledger's contents.
    #[test]
    fn random_batches_record_as_one_by_one(
        before in prop::collection::vec(random_delivery(), 0..4),
        batch in prop::collection::vec(random_delivery(), 1..16),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let together = connect("sqlite::memory:").await.unwrap();
            let alone = connect_sql("sqlite::memory:").await.unwrap();
            assert_same(together.as_ref(), &alone, &before, &batch, true).await;
        });
    }
}

/// A batch larger than the chunks of its statements (600 apps, each with
/// 12 history entries): the same outcomes as one by one.
#[tokio::test]
async fn a_large_batch_is_chunked() {
    let mut pairs = vec![(TestDatabase::sqlite(), TestDatabase::sqlite())];
    if let (Some(a), Some(b)) = (
        TestDatabase::postgres().await,
        TestDatabase::postgres().await,
    ) {
        pairs.push((a, b));
    }
    let apps: Vec<String> = (0..600).map(|i| format!("app-{i}")).collect();
    let batch: Vec<Delivery> = apps
        .iter()
        .map(|a| {
            let mut observations = vec![Observation::App(app(a))];
            observations.extend((1..=12).map(|rev| argo(a, rev, rev as u64, rev)));
            observations.push(health(a, Some(commit(12).to_string()), Health::Healthy, 13));
            delivery("argocd", a, observations)
        })
        .collect();
    for (a, b) in pairs {
        let (together, alone) = (a.connect().await, b.connect().await);
        let batched = outcomes(
            together.ledger.record_deliveries(batch.clone()).await,
            &None,
        );
        let mut one_by_one = Vec::new();
        for d in &batch {
            one_by_one.push(alone.sql().record_one_by_one(d.clone()).await);
        }
        assert_eq!(batched, outcomes(one_by_one, &None));
        let current = together
            .ledger
            .current_deployment(&aref("app-599"))
            .await
            .unwrap();
        assert_eq!(
            current.map(|d| (d.cluster_revision, d.health)),
            Some((12, Health::Healthy))
        );
        a.cleanup().await;
        b.cleanup().await;
    }
}
