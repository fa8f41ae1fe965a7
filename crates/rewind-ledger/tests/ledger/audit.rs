//! The audit log is append-only, also against direct SQL.

use rewind_ledger::testing::for_each_backend;
use rewind_ledger::{AuditEntry, LedgerError};

use crate::fixtures::*;

fn entry(action: &str, subject: &str, at: i64) -> AuditEntry {
    AuditEntry {
        at: t(at),
        actor: "oncall".into(),
        action: action.into(),
        subject: subject.into(),
        detail: serde_json::json!({"reason": "test", "n": at}),
        trace_id: Some(format!("trace-{at}")),
    }
}

#[tokio::test]
async fn audit_entries_are_appended_read_newest_first_and_never_changed() {
    for_each_backend(|h| async move {
        let l = h.ledger.clone();
        let a = entry("rollback.approve", "rollback/1", 1);
        let b = entry("rollback.merge", "rollback/1", 2);
        let c = entry("app.hold", "app/shop", 3);
        let ids = [
            l.audit(&a).await.unwrap(),
            l.audit(&b).await.unwrap(),
            l.audit(&c).await.unwrap(),
        ];
        assert!(ids[0] < ids[1] && ids[1] < ids[2]);

        let all = l.audit_log(None, 10).await.unwrap();
        let entries: Vec<_> = all.iter().map(|r| r.entry.clone()).collect();
        assert_eq!(entries, [c.clone(), b.clone(), a.clone()]);
        let one = l.audit_log(Some("rollback/1"), 1).await.unwrap();
        assert_eq!(one[0].entry, b);

        for statement in [
            "UPDATE audit_log SET actor = 'mallory'",
            "DELETE FROM audit_log",
        ] {
            let result = h.execute_raw(statement).await;
            assert!(
                matches!(result, Err(LedgerError::Database(_))),
                "{statement}: {result:?}"
            );
        }
        assert_eq!(l.audit_log(None, 10).await.unwrap(), all);
    })
    .await;
}

#[tokio::test]
async fn audit_search_filters_by_app_actor_and_time_and_records_via() {
    use rewind_ledger::{AUDIT_VIA, AuditFilter};
    for_each_backend(|h| async move {
        let l = h.ledger.clone();
        let mut a = entry("rollback.propose", "rollback/1", 1);
        a.detail = serde_json::json!({"app": "shop"});
        let mut b = entry("rollback.approval", "rollback/1", 2);
        b.detail = serde_json::json!({"app": "shop@prod-eu", "via": "github"});
        b.actor = "alice".into();
        let c = entry("app.release_hold", "app/other", 3);
        let mut d = entry("rollback.propose", "rollback/2", 4);
        // A name that would be a pattern in LIKE is matched literally.
        d.detail = serde_json::json!({"app": "sh_p"});
        l.audit(&a).await.unwrap();
        l.audit(&b).await.unwrap();
        AUDIT_VIA.scope("ui", l.audit(&c)).await.unwrap();
        l.audit(&d).await.unwrap();

        let search = |app: Option<&str>, actor: Option<&str>, since: Option<i64>| {
            let l = l.clone();
            let filter = AuditFilter {
                app: app.map(str::to_owned),
                actor: actor.map(str::to_owned),
                since: since.map(t),
                before: None,
                limit: 10,
            };
            async move {
                l.audit_search(&filter)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| (r.entry.action, r.app, r.via))
                    .collect::<Vec<_>>()
            }
        };
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            search(Some("shop"), None, None).await,
            [
                ("rollback.approval".into(), s("shop@prod-eu"), s("github")),
                ("rollback.propose".into(), s("shop"), None),
            ]
        );
        assert_eq!(
            search(Some("other"), None, None).await,
            [("app.release_hold".into(), s("other"), s("ui"))]
        );
        assert_eq!(search(None, Some("alice"), None).await.len(), 1);
        assert_eq!(search(None, None, Some(3)).await.len(), 2);
        assert_eq!(search(Some("sh_p"), None, None).await.len(), 1);
        assert!(search(Some("nobody"), None, None).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn api_tokens_and_sessions_are_stored_by_digest() {
    use rewind_ledger::{StoredApiToken, UiSession};
    for_each_backend(|h| async move {
        let l = h.ledger.clone();
        let token = StoredApiToken {
            name: "ci".into(),
            role: "operator".into(),
            digest: "d1".repeat(32),
            created_at: t(1),
            created_by: "root".into(),
        };
        assert_eq!(l.api_token_count().await.unwrap(), 0);
        l.create_api_token(&token).await.unwrap();
        let again = l.create_api_token(&token).await;
        assert!(
            matches!(&again, Err(LedgerError::Conflict { reason, .. }) if reason.contains("\"ci\"")),
            "{again:?}"
        );
        assert_eq!(l.api_token_by_digest(&token.digest).await.unwrap(), Some(token.clone()));
        assert_eq!(l.list_api_tokens().await.unwrap(), vec![token.clone()]);
        let session = UiSession {
            digest: "s1".into(),
            token_digest: token.digest.clone(),
            csrf: "c1".into(),
            created_at: t(1),
            expires_at: t(100),
        };
        l.create_ui_session(&session).await.unwrap();
        assert_eq!(l.ui_session("s1", t(50)).await.unwrap(), Some(session.clone()));
        assert_eq!(l.ui_session("s1", t(100)).await.unwrap(), None, "expired");
        // Revoking the token ends its sessions.
        assert!(l.revoke_api_token("ci").await.unwrap());
        assert!(!l.revoke_api_token("ci").await.unwrap());
        assert_eq!(l.ui_session("s1", t(50)).await.unwrap(), None);
        assert_eq!(l.api_token_count().await.unwrap(), 0);
    })
    .await;
}
