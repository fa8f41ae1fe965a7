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
