//! Hostile values through HTTP, on every backend and a real repository:
//! app names, labels, paths and reasons (which become commit messages)
//! with `..`, control characters, bidi overrides and very long strings.
//! Each is either recorded as plain text or refused with a 4xx JSON answer
//! naming the problem; nothing answers 5xx, nothing escapes the repository,
//! no branch but `rewind/*` appears, and rewind keeps answering.

use chrono::Utc;
use reqwest::StatusCode;
use rewind_ingest::samples::{HistoryEntry, alertmanager_notification, argocd_notification};
use rewind_tests::{ALERTMANAGER_TOKEN, APP, APP_PATH, ARGOCD_TOKEN, World, databases};
use serde_json::{Value, json};

/// Names, labels and paths an attacker (or a broken sender) might send.
fn hostile_strings() -> Vec<String> {
    vec![
        "../../../../etc/passwd".into(),
        "..".into(),
        "shop/../../escape".into(),
        "bell\u{7}escape\u{1b}[31mred".into(),
        "new\nline\rcarriage\ttab".into(),
        "bidi\u{202e}gnp.exe".into(),
        "x".repeat(64 * 1024),
        "ünïcødé/名前".into(),
        "%2e%2e%2f%2e%2e%2f".into(),
    ]
}

/// A 4xx answer must be `{error, detail}` JSON; nothing may be 5xx.
fn assert_handled(what: &str, status: StatusCode, body: &Value) {
    assert!(!status.is_server_error(), "{what}: {status} {}", trim(body));
    if status.is_client_error() {
        assert!(
            body["error"].is_string() && body["detail"].is_string(),
            "{what}: a {status} without {{error, detail}}: {}",
            trim(body)
        );
    }
}

fn trim(body: &Value) -> String {
    let text = body.to_string();
    text.chars().take(400).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_labels_paths_and_reasons_are_handled_without_a_5xx() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let repo_url = world.repo.path.display().to_string();
        let head_before = world.repo.head();
        let history = [HistoryEntry {
            id: 1,
            revision: world.repo.good.clone(),
            deployed_at: Utc::now(),
        }];

        for value in hostile_strings() {
            // As an Argo CD app name, and as its path.
            let body = argocd_notification(
                "on-deployed",
                &value,
                &repo_url,
                APP_PATH,
                &history,
                "Healthy",
            );
            let (status, answer) = world
                .post_json("/webhooks/argocd", ARGOCD_TOKEN, &body)
                .await;
            assert_handled("argocd app name", status, &answer);
            let body = argocd_notification(
                "on-deployed",
                "hostile-path",
                &repo_url,
                &value,
                &history,
                "Healthy",
            );
            let (status, answer) = world
                .post_json("/webhooks/argocd", ARGOCD_TOKEN, &body)
                .await;
            assert_handled("argocd path", status, &answer);

            // As the alert's app label and another label.
            let mut alert = alertmanager_notification(
                "firing",
                "CheckoutHighErrorRate",
                &value,
                "critical",
                &value,
                Utc::now(),
                "fp-hostile",
            );
            alert["alerts"][0]["labels"]["team"] = json!(value);
            let (status, answer) = world
                .post_json("/webhooks/alertmanager", ALERTMANAGER_TOKEN, &alert)
                .await;
            assert_handled("alert labels", status, &answer);

            // As an app in API paths (percent-encoded as a client would);
            // the 64 KiB string is longer than any client sends as a URI.
            if value.len() > 4096 {
                continue;
            }
            let encoded: String = url_escape(&value);
            let (status, answer) = world.get(&format!("/api/v1/apps/{encoded}/history")).await;
            assert_handled("history path", status, &answer);
            let (status, answer) = world
                .api(
                    &format!("/api/v1/apps/{encoded}/rollbacks"),
                    json!({"to_revision": 1, "reason": "x"}),
                )
                .await;
            assert_handled("propose path", status, &answer);
            let (status, answer) = world.get(&format!("/ui/apps/{encoded}")).await;
            assert!(
                !status.is_server_error(),
                "ui app: {status} {}",
                trim(&answer)
            );
        }
        world.settle().await;

        // A real rollback whose reason (the commit message) is hostile: the
        // commit is written, its message has no control characters but
        // newlines, and the PR body/branch stay inside the repository.
        world.deploy(1, &world.repo.good.clone(), "Healthy").await;
        world.deploy(2, &world.repo.bad.clone(), "Degraded").await;
        let reason = format!(
            "revert ../../main\u{1b}[2J\u{7} {} \u{202e}evil",
            "long ".repeat(2000)
        );
        let (status, answer) = world
            .api(
                &format!("/api/v1/apps/{APP}/rollbacks"),
                json!({"to_revision": 1, "reason": reason}),
            )
            .await;
        assert_handled("hostile reason", status, &answer);
        assert_eq!(status, StatusCode::CREATED, "{}", trim(&answer));
        world.settle().await;
        let branches = world.repo.rewind_branches();
        assert_eq!(branches.len(), 1, "{branches:?}");
        let all = world
            .repo
            .git(&["for-each-ref", "--format=%(refname)", "refs/heads"]);
        for reference in all.lines() {
            assert!(
                reference == "refs/heads/main" || reference.starts_with("refs/heads/rewind/"),
                "an unexpected branch: {reference}"
            );
            assert!(!reference.contains(".."), "{reference}");
        }
        let message = world.repo.git(&["log", "-1", "--format=%B", &branches[0]]);
        assert!(
            !message.chars().any(|c| c.is_control() && c != '\n'),
            "control characters in the commit message: {message:?}"
        );
        assert!(
            !message.contains('\u{202e}'),
            "a bidi override in the commit message: {message:?}"
        );
        assert_eq!(world.repo.head(), head_before, "main moved");
        world.repo.fsck();

        let (status, _) = world.get("/healthz").await;
        assert_eq!(status, StatusCode::OK);
        world.finish().await;
    }
}

/// Percent-encodes everything but unreserved characters, so `/` and `..`
/// reach the router as one path segment.
fn url_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
