//! No secret ever leaks: a real `rewind serve` configured with distinctive
//! secrets everywhere (webhook tokens and keys, API tokens, the forge token
//! and webhook secret, the Git token, the database password as a
//! `?password=` parameter, a registry password, the notify secret and a
//! token in the notify URL) runs a whole rollback over HTTP: deploys, an
//! alert, the pull request on the (strict) fake GitHub, approval, merge,
//! notifications. Then every log line the process wrote (stdout and
//! stderr, at debug level), every API answer, every request body sent to
//! GitHub (PR body, comments, statuses) and every notification are
//! searched for each secret. Bad requests that carry secrets (a wrong
//! token, a config that fails to load) are part of the run.

mod served;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use hmac::{Hmac, Mac};
use rewind_forge::fake::{FakeGitHub, FakeOptions};
use rewind_ingest::samples::{HistoryEntry, alertmanager_notification, argocd_notification};
use rewind_tests::{APP, APP_PATH, Repo};
use serde_json::{Value, json};

const ARGOCD: &str = "S3CRET-argocd-7f1c";
const ALERTMANAGER: &str = "S3CRET-alertmanager-92ab";
const FLUX: &str = "S3CRET-flux-hmac-4d0e";
const FLAGGER: &str = "S3CRET-flagger-a11f";
const ROLLOUTS: &str = "S3CRET-rollouts-5c2d";
const FORGE_TOKEN: &str = "S3CRET-ghs-forge-e8b3";
const GITHUB_HOOK: &str = "S3CRET-github-hook-61f0";
const GIT_TOKEN: &str = "S3CRET-git-token-0b9a";
const OPERATOR: &str = "S3CRET-api-operator-3e7d";
const APPROVER: &str = "S3CRET-api-approver-c4f2";
const DB_PASSWORD: &str = "S3CRET-db-password-77aa";
const REGISTRY_PASSWORD: &str = "S3CRET-registry-pass-19cd";
const NOTIFY_SECRET: &str = "S3CRET-notify-hmac-d5e6";
const NOTIFY_URL_TOKEN: &str = "S3CRET-notify-url-8a8b";

const SECRETS: [&str; 14] = [
    ARGOCD,
    ALERTMANAGER,
    FLUX,
    FLAGGER,
    ROLLOUTS,
    FORGE_TOKEN,
    GITHUB_HOOK,
    GIT_TOKEN,
    OPERATOR,
    APPROVER,
    DB_PASSWORD,
    REGISTRY_PASSWORD,
    NOTIFY_SECRET,
    NOTIFY_URL_TOKEN,
];

/// The database URL with the password as a query parameter: PostgreSQL
/// when the suite has one (trust auth ignores the password; a fresh
/// database per run), else SQLite.
fn database_url(dir: &Path) -> String {
    match std::env::var("REWIND_TEST_POSTGRES_URL") {
        Ok(base) if !base.is_empty() => {
            let name = format!("rewind_secrets_{}", std::process::id());
            let created = std::process::Command::new("psql")
                .arg(&base)
                .args(["-qtAc", &format!("DROP DATABASE IF EXISTS {name}; ")])
                .status()
                .and_then(|_| {
                    std::process::Command::new("psql")
                        .arg(&base)
                        .args(["-qtAc", &format!("CREATE DATABASE {name}")])
                        .status()
                });
            assert!(
                created.map(|s| s.success()).unwrap_or(false),
                "cannot create database {name} with psql at {base}"
            );
            let mut url = url::Url::parse(&base).expect("REWIND_TEST_POSTGRES_URL");
            url.set_path(&name);
            url.query_pairs_mut().append_pair("password", DB_PASSWORD);
            url.to_string()
        }
        _ => {
            assert!(
                std::env::var("REWIND_REQUIRE_POSTGRES").is_err(),
                "REWIND_REQUIRE_POSTGRES is set but REWIND_TEST_POSTGRES_URL is not"
            );
            // SQLite has no password: the database secret is then only
            // exercised by the failing start-up below.
            eprintln!("no REWIND_TEST_POSTGRES_URL: running on SQLite");
            format!("sqlite://{}", dir.join("rewind.db").display())
        }
    }
}

/// A loopback receiver that records every notification (headers and body).
async fn notification_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let app = axum::Router::new().fallback(
        // Headers and body only: the URL with its token is where the
        // notification goes, so the receiver sees it by definition.
        move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(format!("{headers:?} {body}"));
                "ok"
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

fn write_config(dir: &Path, repo: &Repo, github: &str, notify: &str, database: &str) {
    let auth = base64_auth(&format!("robot:{REGISTRY_PASSWORD}"));
    std::fs::write(
        dir.join("registry.json"),
        format!(r#"{{"auths": {{"registry.example.com": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[database]
url = "{database}"
[git]
url = "{git}"
cache_dir = "cache"
token = "{GIT_TOKEN}"
[forge]
kind = "github"
api_url = "{github}"
owner = "acme"
repo = "gitops"
token = "{FORGE_TOKEN}"
webhook_secret = "{GITHUB_HOOK}"
max_wait = "2s"
[webhooks]
argocd_token = "{ARGOCD}"
alertmanager_token = "{ALERTMANAGER}"
flux_hmac_key = "{FLUX}"
flagger_token = "{FLAGGER}"
rollouts_token = "{ROLLOUTS}"
[[api.tokens]]
name = "oncall"
token = "{OPERATOR}"
role = "operator"
[[api.tokens]]
name = "lead"
token = "{APPROVER}"
role = "approver"
[policy]
healthy_for = "5m"
[verify]
registry_check = true
registry_auth_file = "registry.json"
[[notify]]
name = "hook"
kind = "webhook"
url = "{notify}/notify?token={NOTIFY_URL_TOKEN}"
secret = "{NOTIFY_SECRET}"
"#,
        git = repo.path.display(),
    );
    std::fs::write(dir.join("rewind.toml"), config).unwrap();
}

fn base64_auth(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Everything seen over HTTP, to be searched at the end.
#[derive(Default)]
struct Seen(Vec<String>);

struct Client {
    url: String,
    http: reqwest::Client,
}

impl Client {
    async fn send(
        &self,
        seen: &mut Seen,
        request: reqwest::RequestBuilder,
    ) -> (reqwest::StatusCode, Value) {
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = format!("{:?}", response.headers());
        let text = response.text().await.unwrap_or_default();
        seen.0.push(format!("{status} {headers} {text}"));
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(
        &self,
        seen: &mut Seen,
        path: &str,
        token: &str,
        body: &Value,
    ) -> (reqwest::StatusCode, Value) {
        let request = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(body);
        self.send(seen, request).await
    }

    async fn get(&self, seen: &mut Seen, path: &str, token: &str) -> (reqwest::StatusCode, Value) {
        let request = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token);
        self.send(seen, request).await
    }

    /// Polls the app's rollbacks until `done` holds for the first one.
    async fn wait_for(&self, seen: &mut Seen, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, list) = self
                .get(seen, &format!("/api/v1/rollbacks?app={APP}"), OPERATOR)
                .await;
            if let Some(first) = list.as_array().and_then(|l| l.first())
                && done(first)
            {
                return first.clone();
            }
            assert!(Instant::now() < deadline, "never {what}: {list:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_rollback_with_secrets_everywhere_leaks_none_of_them() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::create(&dir.path().join("gitops.git"));
    let fake = FakeGitHub::start(FakeOptions::new(
        "acme",
        "gitops",
        repo.path.clone(),
        FORGE_TOKEN,
    ))
    .await
    .expect("fake GitHub");
    fake.set_permission("lead", "write");
    let (notify_url, notifications) = notification_receiver().await;
    let database = database_url(dir.path());
    write_config(dir.path(), &repo, fake.url(), &notify_url, &database);
    let config = dir.path().join("rewind.toml");

    // `rewind config show` and `config check` print the settings.
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["config", "show", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    let mut printed = vec![
        String::from_utf8_lossy(&shown.stdout).into_owned(),
        String::from_utf8_lossy(&shown.stderr).into_owned(),
    ];
    assert!(printed[0].contains("[database]"), "{}", printed[0]);

    // A start-up that fails on the database prints its URL, redacted.
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&config).unwrap().replace(
            &database,
            &format!(
                "postgres://rewind@127.0.0.1:1/rewind?password={DB_PASSWORD}&connect_timeout=2"
            ),
        ),
    )
    .unwrap();
    let failed = std::process::Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["serve", "--config"])
        .arg(&broken)
        .current_dir(dir.path())
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(!failed.status.success(), "{failed:?}");
    let failure = String::from_utf8_lossy(&failed.stderr).into_owned();
    assert!(failure.contains("127.0.0.1:1"), "{failure}");
    printed.push(failure);
    printed.push(String::from_utf8_lossy(&failed.stdout).into_owned());

    // A config whose TOML is broken on the line holding a secret.
    let syntax = dir.path().join("syntax.toml");
    std::fs::write(&syntax, format!("[webhooks]\nargocd_token = \"{ARGOCD}\n")).unwrap();
    let failed = std::process::Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["serve", "--config"])
        .arg(&syntax)
        .output()
        .unwrap();
    let failure = String::from_utf8_lossy(&failed.stderr).into_owned();
    assert!(failure.contains("webhooks.argocd_token"), "{failure}");
    assert!(failure.contains("line 2"), "{failure}");
    printed.push(failure);

    let served = served::serve(&config, dir.path(), &[], &[]);
    let client = Client {
        url: served.url.clone(),
        http: reqwest::Client::new(),
    };
    let mut seen = Seen::default();

    // Wrong and missing credentials on every webhook and the API.
    for path in [
        "/webhooks/argocd",
        "/webhooks/alertmanager",
        "/webhooks/argo-rollouts",
        "/webhooks/flagger",
        "/api/v1/rollbacks",
    ] {
        let (status, _) = client
            .post(&mut seen, path, &format!("{ARGOCD}-wrong"), &json!({}))
            .await;
        assert!(status.is_client_error(), "{path}: {status}");
    }
    let request = client
        .http
        .post(format!("{}/webhooks/flux", client.url))
        .header("x-signature", "sha256=00")
        .json(&json!({}));
    let (status, _) = client.send(&mut seen, request).await;
    assert_eq!(status, 401);

    // Revision 1 healthy for an hour, revision 2 degraded, then an alert.
    let repo_url = repo.path.display().to_string();
    let t0 = Utc::now() - chrono::Duration::hours(1);
    let mut history = vec![HistoryEntry {
        id: 1,
        revision: repo.good.clone(),
        deployed_at: t0,
    }];
    let body = argocd_notification("on-deployed", APP, &repo_url, APP_PATH, &history, "Healthy");
    let (status, answer) = client
        .post(&mut seen, "/webhooks/argocd", ARGOCD, &body)
        .await;
    assert_eq!(status, 202, "{answer}");
    history.push(HistoryEntry {
        id: 2,
        revision: repo.bad.clone(),
        deployed_at: Utc::now(),
    });
    let body = argocd_notification(
        "on-deployed",
        APP,
        &repo_url,
        APP_PATH,
        &history,
        "Degraded",
    );
    let (status, answer) = client
        .post(&mut seen, "/webhooks/argocd", ARGOCD, &body)
        .await;
    assert_eq!(status, 202, "{answer}");
    let alert = alertmanager_notification(
        "firing",
        "CheckoutHighErrorRate",
        APP,
        "critical",
        "checkout 5xx ratio above 5%",
        Utc::now(),
        "fp-secrets",
    );
    let (status, answer) = client
        .post(&mut seen, "/webhooks/alertmanager", ALERTMANAGER, &alert)
        .await;
    assert_eq!(status, 202, "{answer}");

    // The on-call operator asks for the rollback too (409 when the alert
    // already proposed it).
    let (status, answer) = client
        .post(
            &mut seen,
            &format!("/api/v1/apps/{APP}/rollbacks"),
            OPERATOR,
            &json!({"to_revision": 1, "reason": "checkout 5xx"}),
        )
        .await;
    assert!(status == 201 || status == 409, "{status} {answer}");
    let rollback = client
        .wait_for(&mut seen, "a pull request", |r| r["state"] == "pr_open")
        .await;
    let id = rollback["id"].as_str().unwrap().to_string();
    let (status, answer) = client
        .post(
            &mut seen,
            &format!("/api/v1/rollbacks/{id}/approve"),
            APPROVER,
            &json!({}),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    let (status, answer) = client
        .post(
            &mut seen,
            &format!("/api/v1/rollbacks/{id}/merge"),
            APPROVER,
            &json!({}),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    client
        .wait_for(&mut seen, "merged", |r| {
            ["merged", "synced", "verified"].contains(&r["state"].as_str().unwrap_or(""))
        })
        .await;

    // A GitHub comment, signed with the webhook secret.
    let number = fake.pull_requests()[0].number;
    let comment = json!({
        "action": "created",
        "issue": {"number": number, "pull_request": {}},
        "comment": {"id": 9, "body": "looks good", "user": {"login": "lead"}},
        "repository": {"full_name": "acme/gitops", "name": "gitops", "owner": {"login": "acme"}},
        "sender": {"login": "lead"}
    });
    let bytes = serde_json::to_vec(&comment).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(GITHUB_HOOK.as_bytes()).unwrap();
    mac.update(&bytes);
    let request = client
        .http
        .post(format!("{}/webhooks/github", client.url))
        .header("content-type", "application/json")
        .header("x-github-event", "issue_comment")
        .header("x-github-delivery", "secrets-1")
        .header(
            "x-hub-signature-256",
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        )
        .body(bytes);
    let (status, answer) = client.send(&mut seen, request).await;
    assert!(status.is_success(), "{answer}");

    // Everything the API shows about it.
    for path in [
        format!("/api/v1/rollbacks/{id}"),
        "/api/v1/apps".to_string(),
        format!("/api/v1/apps/{APP}/history"),
        "/api/v1/audit".to_string(),
        "/readyz".to_string(),
        "/metrics".to_string(),
        format!("/ui/rollbacks/{id}"),
    ] {
        client.get(&mut seen, &path, APPROVER).await;
    }

    // Notifications arrive asynchronously: wait for the merge's.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !notifications
        .lock()
        .unwrap()
        .iter()
        .any(|n| n.contains("merged"))
    {
        assert!(
            Instant::now() < deadline,
            "no merged notification: {:#?}",
            notifications.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let log = served.stop();
    assert!(
        log.len() > 10,
        "the log is suspiciously short, nothing was checked: {log:#?}"
    );
    let github: Vec<String> = fake
        .requests()
        .into_iter()
        .map(|r| format!("{} {} {:?} {}", r.method, r.path, r.query, r.body))
        .collect();
    assert!(
        github.iter().any(|r| r.contains("/pulls")),
        "no pull request was opened: {github:#?}"
    );
    let notifications = notifications.lock().unwrap().clone();
    let places: [(&str, &[String]); 5] = [
        ("log line", &log),
        ("command output", &printed),
        ("HTTP answer", &seen.0),
        ("request to GitHub", &github),
        ("notification", &notifications),
    ];
    let mut leaks = Vec::new();
    for (place, texts) in places {
        for text in texts {
            for secret in SECRETS {
                if text.contains(secret) {
                    leaks.push(format!("{secret} in a {place}: {text}"));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}
