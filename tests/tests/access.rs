//! Who may do what, over HTTP: every API endpoint and web UI action
//! against every kind of caller (none, a wrong token, viewer, operator,
//! approver, admin), tokens stored in the database, the audit log naming
//! the token, and the web UI's session, CSRF, Origin, rate-limit and
//! header rules.

use reqwest::StatusCode;
use rewind_config::{ApiToken, Role, Secret};
use rewind_tests::browser::{Browser, cookie_value, set_cookie};
use rewind_tests::{APP, World, databases};
use serde_json::{Value, json};

const TOKENS: [(&str, &str, Role); 4] = [
    ("vera-viewer", "viewer-token-0001", Role::Viewer),
    ("otto-operator", "operator-token-02", Role::Operator),
    ("anna-approver", "approver-token-03", Role::Approver),
    ("adam-admin", "admin-token-00004", Role::Admin),
];
const NO_SUCH_ROLLBACK: &str = "0190f5d2-0000-7000-8000-000000000000";

fn with_tokens(s: &mut rewind_config::Settings) {
    s.api.tokens = TOKENS
        .iter()
        .map(|(name, token, role)| ApiToken {
            name: (*name).into(),
            token: Secret::new(*token),
            role: *role,
        })
        .collect();
}

/// The callers of the matrix: a label, the token presented, the role.
fn callers() -> Vec<(&'static str, Option<&'static str>, Option<Role>)> {
    let mut all = vec![
        ("none", None, None),
        ("wrong token", Some("not-a-token-at-all"), None),
    ];
    for (name, token, role) in TOKENS {
        all.push((name, Some(token), Some(role)));
    }
    all
}

async fn call(
    world: &World,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = world
        .client
        .request(method, format!("{}{path}", world.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_against_every_role() {
    for db in databases().await {
        let world = World::start(db, with_tokens).await;
        let id = NO_SUCH_ROLLBACK;
        let propose = json!({"reason": "matrix"});
        let new_token = json!({"name": "made-by-matrix", "role": "viewer"});
        let table: Vec<(&str, String, Option<&Value>, Role)> = vec![
            ("GET", "/api/v1/apps".into(), None, Role::Viewer),
            (
                "GET",
                "/api/v1/apps/nosuch/history".into(),
                None,
                Role::Viewer,
            ),
            (
                "POST",
                "/api/v1/apps/nosuch/rollbacks".into(),
                Some(&propose),
                Role::Operator,
            ),
            (
                "POST",
                "/api/v1/apps/nosuch/release".into(),
                None,
                Role::Operator,
            ),
            ("GET", "/api/v1/rollbacks".into(), None, Role::Viewer),
            ("GET", format!("/api/v1/rollbacks/{id}"), None, Role::Viewer),
            (
                "POST",
                format!("/api/v1/rollbacks/{id}/approve"),
                None,
                Role::Approver,
            ),
            (
                "POST",
                format!("/api/v1/rollbacks/{id}/merge"),
                None,
                Role::Approver,
            ),
            (
                "POST",
                format!("/api/v1/rollbacks/{id}/cancel"),
                None,
                Role::Operator,
            ),
            ("GET", "/api/v1/audit".into(), None, Role::Viewer),
            ("GET", "/api/v1/tokens".into(), None, Role::Admin),
            (
                "POST",
                "/api/v1/tokens".into(),
                Some(&new_token),
                Role::Admin,
            ),
            ("DELETE", "/api/v1/tokens/nosuch".into(), None, Role::Admin),
        ];
        for (method, path, body, needed) in &table {
            for (label, token, role) in callers() {
                let (status, answer) = call(&world, method, path, token, *body).await;
                let what = format!("{method} {path} as {label}: {status} {answer}");
                assert!(!status.is_server_error(), "{what}");
                match role {
                    None => assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}"),
                    Some(role) if role < *needed => {
                        assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                        let detail = answer["detail"].as_str().unwrap_or("");
                        assert!(
                            detail.contains(label) && detail.contains(needed.as_str()),
                            "{what}"
                        );
                    }
                    Some(_) => assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{what}"
                    ),
                }
                if status.is_client_error() {
                    assert!(
                        answer["error"].is_string() && answer["detail"].is_string(),
                        "{what}"
                    );
                }
            }
        }

        // The same matrix through the web UI: sign in with each token.
        let ui_table: Vec<(&str, String, Role)> = vec![
            ("GET", "/".into(), Role::Viewer),
            ("GET", "/ui/apps/nosuch".into(), Role::Viewer),
            ("GET", format!("/ui/rollbacks/{id}"), Role::Viewer),
            (
                "POST",
                format!("/ui/rollbacks/{id}/approve"),
                Role::Approver,
            ),
            ("POST", format!("/ui/rollbacks/{id}/merge"), Role::Approver),
            ("POST", format!("/ui/rollbacks/{id}/cancel"), Role::Operator),
        ];
        for (label, token, role) in callers() {
            let browser = Browser::sign_in(&world, token).await;
            assert_eq!(
                browser.session.is_some(),
                role.is_some(),
                "{label} signs in"
            );
            for (method, path, needed) in &ui_table {
                let status = if *method == "GET" {
                    browser.get(&world, path).await.0
                } else {
                    browser.post(&world, path, &world.url()).await.0
                };
                let what = format!("UI {method} {path} as {label}: {status}");
                match role {
                    None => assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}"),
                    Some(role) if role < *needed => {
                        assert_eq!(status, StatusCode::FORBIDDEN, "{what}")
                    }
                    Some(_) => assert!(
                        status == StatusCode::OK || status == StatusCode::NOT_FOUND,
                        "{what}"
                    ),
                }
            }
        }
        world.finish().await;
    }
}

/// Deploys good then bad and proposes a rollback to the good one as
/// `token`; returns the rollback.
async fn propose(world: &mut World, token: &str, reason: &str) -> Value {
    let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
    assert_eq!(
        world.deploy(1, &good, "Healthy").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        world.deploy(2, &bad, "Degraded").await,
        StatusCode::ACCEPTED
    );
    let (status, rollback) = call(
        world,
        "POST",
        &format!("/api/v1/apps/{APP}/rollbacks"),
        Some(token),
        Some(&json!({"to_revision": 1, "reason": reason})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{rollback}");
    world.settle().await;
    rollback
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_names_the_token_and_filters_newest_first() {
    for db in databases().await {
        let mut world = World::start(db, with_tokens).await;
        let rollback = propose(&mut world, "operator-token-02", "audit me").await;
        let id = rollback["id"].as_str().unwrap().to_string();
        // Approve through the UI as the approver.
        let browser = Browser::sign_in(&world, Some("approver-token-03")).await;
        let (status, _) = browser
            .post(&world, &format!("/ui/rollbacks/{id}/approve"), &world.url())
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        world.settle().await;

        let viewer = Some("viewer-token-0001");
        let (status, log) = call(&world, "GET", "/api/v1/audit", viewer, None).await;
        assert_eq!(status, StatusCode::OK, "{log}");
        let log = log.as_array().unwrap().clone();
        let ids: Vec<i64> = log.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(ids, sorted, "newest first");
        let proposed = log
            .iter()
            .find(|e| e["action"] == "rollback.propose")
            .expect("the proposal is audited");
        assert_eq!(proposed["actor"], "otto-operator", "{proposed}");
        assert_eq!(proposed["via"], "api", "{proposed}");
        assert!(proposed["at"].is_string() && proposed.get("trace_id").is_some());
        let approved = log
            .iter()
            .find(|e| e["actor"] == "anna-approver" && e["action"] == "rollback.approval")
            .expect("the approval is audited under the approver's token");
        assert_eq!(approved["via"], "ui", "{approved}");

        // Filters.
        let (_, by_actor) = call(
            &world,
            "GET",
            "/api/v1/audit?actor=otto-operator",
            viewer,
            None,
        )
        .await;
        let by_actor = by_actor.as_array().unwrap();
        assert!(!by_actor.is_empty());
        assert!(by_actor.iter().all(|e| e["actor"] == "otto-operator"));
        let (_, by_app) = call(
            &world,
            "GET",
            &format!("/api/v1/audit?app={APP}"),
            viewer,
            None,
        )
        .await;
        assert!(by_app.as_array().unwrap().len() >= 2, "{by_app}");
        let (_, other_app) = call(&world, "GET", "/api/v1/audit?app=other", viewer, None).await;
        assert_eq!(other_app, json!([]));
        let (_, future) = call(
            &world,
            "GET",
            "/api/v1/audit?since=2999-01-01T00:00:00Z",
            viewer,
            None,
        )
        .await;
        assert_eq!(future, json!([]));
        let (_, recent) = call(&world, "GET", "/api/v1/audit?since=1h", viewer, None).await;
        assert_eq!(recent.as_array().unwrap().len(), log.len());
        let (status, bad) =
            call(&world, "GET", "/api/v1/audit?since=yesterday", viewer, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_tokens_are_hashed_revocable_and_end_their_sessions() {
    for db in databases().await {
        let world = World::start(db, with_tokens).await;
        let admin = Some("admin-token-00004");
        let (status, made) = call(
            &world,
            "POST",
            "/api/v1/tokens",
            admin,
            Some(&json!({"name": "ci", "role": "operator"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let token = made["token"].as_str().unwrap().to_string();
        assert!(token.len() >= 64, "{token}");
        // Only the digest is in the database.
        let (status, list) = call(&world, "GET", "/api/v1/tokens", admin, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!list.to_string().contains(&token));
        assert!(
            list.as_array().unwrap().iter().any(|t| t["name"] == "ci"
                && t["source"] == "database"
                && t["created_by"] == "adam-admin"),
            "{list}"
        );
        // A duplicate name, a bad name, a bad role.
        for (body, expected) in [
            (
                json!({"name": "ci", "role": "viewer"}),
                StatusCode::CONFLICT,
            ),
            (
                json!({"name": "vera-viewer", "role": "viewer"}),
                StatusCode::CONFLICT,
            ),
            (
                json!({"name": "a b", "role": "viewer"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"name": "x", "role": "root"}),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (status, answer) = call(&world, "POST", "/api/v1/tokens", admin, Some(&body)).await;
            assert_eq!(status, expected, "{body}: {answer}");
        }
        // The stored token works, as its name, with its role.
        let (status, _) = call(&world, "GET", "/api/v1/apps", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, answer) = call(
            &world,
            "POST",
            &format!("/api/v1/rollbacks/{NO_SUCH_ROLLBACK}/approve"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            answer["detail"].as_str().unwrap().contains("\"ci\""),
            "{answer}"
        );
        // It signs in to the UI; revoking it ends that session.
        let browser = Browser::sign_in(&world, Some(&token)).await;
        assert_eq!(browser.get(&world, "/").await.0, StatusCode::OK);
        let (status, _) = call(&world, "DELETE", "/api/v1/tokens/ci", admin, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(browser.get(&world, "/").await.0, StatusCode::UNAUTHORIZED);
        let (status, _) = call(&world, "GET", "/api/v1/apps", Some(&token), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Configured tokens are not revocable through the API.
        let (status, _) = call(&world, "DELETE", "/api/v1/tokens/vera-viewer", admin, None).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (_, log) = call(&world, "GET", "/api/v1/audit?actor=adam-admin", admin, None).await;
        let actions: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert_eq!(actions, ["token.revoke", "token.create"], "{log}");
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_api_is_closed_by_its_first_stored_token() {
    let db = databases().await.remove(0);
    let world = World::start(db, |_| {}).await;
    let (status, _) = call(&world, "GET", "/api/v1/apps", None, None).await;
    assert_eq!(status, StatusCode::OK, "open");
    let (status, answer) = call(
        &world,
        "POST",
        "/api/v1/tokens",
        None,
        Some(&json!({"name": "viewer", "role": "viewer"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the first must be an admin: {answer}"
    );
    let (status, made) = call(
        &world,
        "POST",
        "/api/v1/tokens",
        None,
        Some(&json!({"name": "root", "role": "admin"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(&world, "GET", "/api/v1/apps", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "closed");
    let (status, _) = call(&world, "GET", "/api/v1/apps", made["token"].as_str(), None).await;
    assert_eq!(status, StatusCode::OK);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_sessions_csrf_origin_headers_and_rate_limit() {
    for db in databases().await {
        let mut world = World::start(db, with_tokens).await;
        let rollback = propose(
            &mut world,
            "admin-token-00004",
            "bidi \u{202E}txt.exe\u{202C} in a reason",
        )
        .await;
        let id = rollback["id"].as_str().unwrap().to_string();
        let url = world.url();

        // Headers on pages and API answers alike.
        for path in ["/", "/ui/login", "/api/v1/apps"] {
            let response = world
                .client
                .get(format!("{url}{path}"))
                .send()
                .await
                .unwrap();
            let h = response.headers();
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
            assert_eq!(h["x-frame-options"], "DENY");
            assert_eq!(h["x-content-type-options"], "nosniff");
        }

        // Sign in: the cookie is a random session id, not the token.
        let anonymous = Browser::sign_in(&world, None).await;
        let (status, headers, _) = anonymous.login(&world, "approver-token-03", &url).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let cookie = set_cookie(&headers, "rewind_session").unwrap();
        assert!(!cookie.contains("approver-token-03"), "{cookie}");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        assert!(!cookie.contains("Secure"), "plain http: {cookie}");
        let approver = Browser::sign_in(&world, Some("approver-token-03")).await;
        assert_ne!(
            approver.session,
            Some(cookie_value(&cookie)),
            "a fresh id each time"
        );

        // The token as a cookie is not a session, and a session cookie is
        // not an API credential.
        let response = world
            .client
            .get(format!("{url}/"))
            .header(
                "cookie",
                "rewind_session=approver-token-03; rewind_token=approver-token-03",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let response = world
            .client
            .get(format!("{url}/api/v1/apps"))
            .header("cookie", approver.cookies())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

        // Bidi controls are shown as text, not obeyed.
        let (status, html) = approver.get(&world, &format!("/ui/rollbacks/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            !html.contains('\u{202E}') && !html.contains('\u{202C}'),
            "bidi in page"
        );

        // Cross-site posts are refused, whatever else they carry.
        let approve = format!("/ui/rollbacks/{id}/approve");
        let evil = "https://evil.example";
        for (origin, csrf, why) in [
            (Some(evil), Some(approver.csrf.as_str()), "foreign origin"),
            (None, Some(approver.csrf.as_str()), "no origin"),
            (Some(url.as_str()), None, "no csrf"),
            (
                Some(url.as_str()),
                Some("0123456789abcdef0123456789abcdef"),
                "wrong csrf",
            ),
            (
                Some(url.as_str()),
                Some(anonymous.csrf.as_str()),
                "another browser's csrf",
            ),
        ] {
            let (status, body) = approver.post_with(&world, &approve, origin, csrf).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{why}: {body}");
        }
        world.settle().await;
        let (_, now) = call(
            &world,
            "GET",
            &format!("/api/v1/rollbacks/{id}"),
            Some("viewer-token-0001"),
            None,
        )
        .await;
        assert_eq!(now["approvals"], json!([]), "nothing was approved: {now}");
        // Login from another site is refused too (login CSRF).
        let (status, headers, _) = anonymous.login(&world, "admin-token-00004", evil).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(set_cookie(&headers, "rewind_session").is_none());
        // The real button works.
        let (status, _) = approver.post(&world, &approve, &url).await;
        assert_eq!(status, StatusCode::SEE_OTHER);

        // Sign out ends the session.
        let (status, _) = approver.post(&world, "/ui/logout", &url).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(approver.get(&world, "/").await.0, StatusCode::UNAUTHORIZED);

        // Failed sign-ins are limited; then even the right token waits.
        let guesser = Browser::sign_in(&world, None).await;
        for _ in 0..5 {
            let (status, _, _) = guesser.login(&world, "guess-guess-guess", &url).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, headers, _) = guesser.login(&world, "viewer-token-0001", &url).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(headers.contains_key("retry-after"));
        assert!(set_cookie(&headers, "rewind_session").is_none());
        world.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_behind_https() {
    let db = databases().await.remove(0);
    let world = World::start(db, |s| {
        with_tokens(s);
        s.server.public_url = "https://rewind.example.com".into();
    })
    .await;
    let browser = Browser::sign_in(&world, None).await;
    let (status, headers, body) = browser
        .login(&world, "viewer-token-0001", "https://rewind.example.com")
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let cookie = set_cookie(&headers, "rewind_session").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    world.finish().await;
}
