//! Apps: upsert, read, list, hold.

use rewind_ledger::LedgerError;
use rewind_ledger::testing::for_each_backend;

use crate::fixtures::*;

#[tokio::test]
async fn upsert_keeps_the_hold_and_lists_by_name() {
    for_each_backend(|h| async move {
        let l = h.ledger;
        let mut shop = app("shop");
        l.upsert_app(&shop).await.unwrap();
        l.upsert_app(&app("api")).await.unwrap();
        assert_eq!(l.get_app(&aref("shop")).await.unwrap(), Some(shop.clone()));
        assert_eq!(l.get_app(&aref("nope")).await.unwrap(), None);

        l.set_app_hold(&aref("shop"), Some(t(5))).await.unwrap();
        shop.rollbackable = false;
        shop.status = Some("syncs from another repository".into());
        shop.updated_at = t(6);
        l.upsert_app(&shop).await.unwrap();
        let stored = l.get_app(&aref("shop")).await.unwrap().unwrap();
        assert_eq!(stored.held_since, Some(t(5)), "upserts keep the hold");
        assert!(!stored.rollbackable);
        assert_eq!(stored.updated_at, t(6));

        l.set_app_hold(&aref("shop"), None).await.unwrap();
        assert_eq!(
            l.get_app(&aref("shop")).await.unwrap().unwrap().held_since,
            None
        );
        assert!(matches!(
            l.set_app_hold(&aref("nope"), None).await,
            Err(LedgerError::NotFound { .. })
        ));

        let names: Vec<String> = l
            .list_apps()
            .await
            .unwrap()
            .into_iter()
            .map(|s| {
                assert!(s.current.is_none() && s.known_good.is_none());
                s.app.name.to_string()
            })
            .collect();
        assert_eq!(names, ["api", "shop"]);
    })
    .await;
}
