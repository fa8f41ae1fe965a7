//! Properties of delivery recording over arbitrary sequences (SQLite in
//! memory: the logic under test is the same for both backends).

use proptest::prelude::*;

use rewind_ledger::{Ledger, connect};

use crate::fixtures::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn revisions(l: &dyn Ledger, app: &str) -> Vec<(i64, String)> {
    let mut history = l.history(&aref(app), 1000).await.unwrap();
    history.reverse();
    history
        .into_iter()
        .map(|d| (d.cluster_revision, d.revision))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Flux: the sequence numbers the changes of revision, 1, 2, 3, ...;
    /// repeats of the current revision add nothing, and redelivering any
    /// delivery changes nothing.
    #[test]
    fn flux_numbers_each_change_of_revision(
        seq in prop::collection::vec(0u64..4, 1..20),
        redeliver in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
    ) {
        runtime().block_on(async {
            let l = connect("sqlite::memory:").await.unwrap();
            for (i, n) in seq.iter().enumerate() {
                l.record_delivery(delivery("flux", &format!("k{i}"), vec![flux("ns/web", *n, i as i64)]))
                    .await
                    .unwrap();
            }
            for index in &redeliver {
                let i = index.index(seq.len());
                l.record_delivery(delivery("flux", &format!("k{i}"), vec![flux("ns/web", seq[i], 0)]))
                    .await
                    .unwrap();
            }
            let mut expected: Vec<u64> = seq.clone();
            expected.dedup();
            let got = revisions(l.as_ref(), "ns/web").await;
            let want: Vec<(i64, String)> = expected
                .iter()
                .enumerate()
                .map(|(i, n)| (i as i64 + 1, format!("main@sha1:{}", commit(*n))))
                .collect();
            prop_assert_eq!(got, want);
            Ok(())
        })?;
    }

    /// Argo CD: whatever order and grouping history entries arrive in, the
    /// ledger holds each revision once, with ids in revision order when
    /// they arrived together.
    #[test]
    fn argo_history_is_a_set_of_revisions(
        revs in prop::collection::vec(1i64..30, 1..25),
        chunk in 1usize..6,
    ) {
        runtime().block_on(async {
            let l = connect("sqlite::memory:").await.unwrap();
            for (i, part) in revs.chunks(chunk).enumerate() {
                let obs = part.iter().map(|r| argo("shop", *r, *r as u64, *r)).collect();
                l.record_delivery(delivery("argocd", &format!("k{i}"), obs)).await.unwrap();
            }
            let mut want: Vec<i64> = revs.clone();
            want.sort_unstable();
            want.dedup();
            let history = l.history(&aref("shop"), 1000).await.unwrap();
            let mut got: Vec<i64> = history.iter().map(|d| d.cluster_revision).collect();
            got.reverse();
            prop_assert_eq!(&got, &want);
            if chunk >= revs.len() {
                let mut ids: Vec<i64> = history.iter().map(|d| d.id).collect();
                ids.reverse();
                prop_assert!(ids.windows(2).all(|w| w[0] < w[1]));
            }
            Ok(())
        })?;
    }
}
