//! The web UI over HTTP, on SQLite and PostgreSQL: the fleet's search,
//! filters and pages; the dry-run preview and the confirmed proposal with
//! their CSRF, Origin and role rules; the rollback page's review and wave;
//! the OpenAPI description served without a token.

use reqwest::StatusCode;
use rewind_config::{ApiToken, Role, Secret};
use rewind_ingest::samples::argocd_notification;
use rewind_tests::browser::Browser;
use rewind_tests::{APP, APP_PATH, ARGOCD_TOKEN, World, databases};

const ADMIN: &str = "web-ui-admin-token-1";
const VIEWER: &str = "web-ui-viewer-token-2";

fn people(s: &mut rewind_config::Settings) {
    s.api.tokens = [("admin", ADMIN, Role::Admin), ("vic", VIEWER, Role::Viewer)]
        .into_iter()
        .map(|(name, token, role)| ApiToken {
            name: name.into(),
            token: Secret::new(token),
            role,
        })
        .collect();
}

async fn rollbacks(world: &World) -> Vec<serde_json::Value> {
    let response = world
        .client
        .get(format!("{}/api/v1/rollbacks", world.url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    response.json::<Vec<serde_json::Value>>().await.unwrap()
}

/// `count` more apps (`svc-000`, ...) deployed healthy at the app's commit.
async fn more_apps(world: &World, count: usize) {
    for i in 0..count {
        let body = argocd_notification(
            "on-deployed",
            &format!("svc-{i:03}"),
            &world.repo.path.display().to_string(),
            APP_PATH,
            &world.history,
            "Healthy",
        );
        let (status, _) = world
            .post_json("/webhooks/argocd", ARGOCD_TOKEN, &body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    world.settle().await;
}

#[tokio::test]
async fn the_fleet_page_searches_filters_and_pages() {
    for db in databases().await {
        let mut world = World::start(db, people).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        world.deploy(1, &good, "Healthy").await;
        world.deploy(2, &bad, "Degraded").await;
        more_apps(&world, 60).await;
        let browser = Browser::sign_in(&world, Some(ADMIN)).await;

        let (status, first) = browser.get(&world, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            first.contains("61 of 61 apps match · page 1 of 2"),
            "{first}"
        );
        assert!(first.contains("svc-048"), "names in order");
        assert!(!first.contains("svc-049"), "the 51st name is on page 2");
        assert!(first.contains("href=\"/?page=2\""), "{first}");
        let (_, second) = browser.get(&world, "/?page=2").await;
        assert!(second.contains("svc-049") && second.contains("svc-059"));
        assert!(
            !second.contains(">checkout<"),
            "checkout sorts first, on page 1"
        );

        // Search, cluster, health, drift, open rollback.
        let (_, found) = browser.get(&world, "/?q=SVC-01").await;
        assert!(found.contains("10 of 61 apps match"), "{found}");
        assert!(!found.contains("page 1 of"), "one page");
        let (_, degraded) = browser.get(&world, "/?health=Degraded").await;
        assert!(degraded.contains("1 of 61 apps match"), "{degraded}");
        assert!(degraded.contains("<b>checkout</b>"), "{degraded}");
        let (_, cluster) = browser.get(&world, "/?cluster=prod-eu").await;
        assert!(cluster.contains("0 of 61 apps match"), "{cluster}");
        let (_, drift) = browser.get(&world, "/?drift=yes").await;
        assert!(drift.contains("0 of 61 apps match"), "{drift}");
        let (_, open) = browser.get(&world, "/?open=yes").await;
        assert!(open.contains("0 of 61 apps match"), "{open}");
        let (status, body) = world
            .post_json(
                &format!("/api/v1/apps/{APP}/rollbacks"),
                ADMIN,
                &serde_json::json!({"to_revision": 1, "reason": "bad flag"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        world.settle().await;
        let (_, open) = browser.get(&world, "/?open=yes&health=Degraded").await;
        assert!(open.contains("1 of 61 apps match"), "{open}");
        assert!(
            open.contains("<span class=\"risk\">open rollback</span>"),
            "{open}"
        );

        // Bad filters are 400s naming the parameter.
        for (path, parameter) in [("/?page=0", "page"), ("/?health=sick", "health")] {
            let (status, body) = browser.get(&world, path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
            assert!(body.contains(&format!("{parameter}: ")), "{path}: {body}");
        }
        world.finish().await;
    }
}

#[tokio::test]
async fn rolling_back_from_the_ui_previews_then_proposes_under_the_rules() {
    for db in databases().await {
        let mut world = World::start(db, people).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        world.deploy(1, &good, "Healthy").await;
        world.deploy(2, &bad, "Degraded").await;
        let admin = Browser::sign_in(&world, Some(ADMIN)).await;
        let viewer = Browser::sign_in(&world, Some(VIEWER)).await;
        let app_page = format!("/ui/apps/{APP}@in-cluster");

        // Viewers see the timeline, not the button; the preview is refused.
        let (_, html) = viewer.get(&world, &app_page).await;
        assert!(html.contains("<svg class=\"timeline\""), "{html}");
        assert!(!html.contains("Roll back to this revision"));
        let (status, _) = viewer
            .get(&world, &format!("{app_page}/preview?to_revision=1"))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // The preview: diff and risks, nothing recorded.
        let (_, html) = admin.get(&world, &app_page).await;
        assert_eq!(
            html.matches("Roll back to this revision").count(),
            1,
            "not for the current one"
        );
        let (status, preview) = admin
            .get(&world, &format!("{app_page}/preview?to_revision=1"))
            .await;
        assert_eq!(status, StatusCode::OK, "{preview}");
        assert!(preview.contains("A dry run"));
        assert!(preview.contains("NEW_CHECKOUT_FLOW"), "the diff: {preview}");
        assert!(rollbacks(&world).await.is_empty());
        let (status, body) = admin
            .get(&world, &format!("{app_page}/preview?to_revision=x"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("to_revision: "), "{body}");

        // Confirming needs the CSRF token, the origin, a reason, the role.
        let confirm = format!("{app_page}/rollbacks");
        let form = |csrf: &str, reason: &str| {
            vec![
                ("csrf", csrf.to_string()),
                ("to_revision", "1".to_string()),
                ("reason", reason.to_string()),
            ]
        };
        let post = |b: &Browser, origin: &str, fields: Vec<(&'static str, String)>| {
            b.client
                .post(format!("{}{confirm}", world.url()))
                .header("cookie", b.cookies())
                .header("origin", origin.to_string())
                .form(&fields)
                .send()
        };
        let url = world.url();
        let r = post(&admin, &url, form("forged", "x")).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = post(&admin, "http://evil.example", form(&admin.csrf, "x"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = post(&viewer, &url, form(&viewer.csrf, "x")).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = post(&admin, &url, form(&admin.csrf, "  ")).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(rollbacks(&world).await.is_empty());

        let r = post(&admin, &url, form(&admin.csrf, "checkout 5xx"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        world.settle().await;
        let listed = rollbacks(&world).await;
        assert_eq!(listed.len(), 1);
        let id = listed[0]["id"].as_str().unwrap();
        assert_eq!(location, format!("/ui/rollbacks/{id}"));
        assert_eq!(listed[0]["to"]["cluster_revision"], 1);
        assert_eq!(listed[0]["reason"], "checkout 5xx");
        // The branch is pushed to the real repository.
        assert_eq!(world.repo.rewind_branches().len(), 1);

        // A second one while it is open: the UI says why, and links it.
        let r = post(&admin, &url, form(&admin.csrf, "again"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let html = r.text().await.unwrap();
        assert!(html.contains(&format!("/ui/rollbacks/{id}")), "{html}");

        // The rollback page: the review needed and given, the timeline.
        let (_, page) = admin.get(&world, &location).await;
        assert!(page.contains("0 of 1 required approval."), "{page}");
        assert!(
            page.contains("Requested by <code>admin</code>, whose own approval does not count."),
            "{page}"
        );
        assert!(page.contains("No approvals yet."), "{page}");
        // Said once: the report's Review section, with the buttons in it.
        assert_eq!(page.matches("required approval").count(), 1, "{page}");
        let review = &page[page.find(r#"id="review""#).unwrap()..];
        let review = &review[..review.find("</section>").unwrap()];
        assert!(review.contains("<button>Approve</button>"), "{review}");
        assert!(page.contains("no check evaluated yet"), "{page}");
        world.finish().await;
    }
}

#[tokio::test]
async fn the_openapi_description_is_served_without_a_token() {
    for db in databases().await {
        let world = World::start(db, people).await;
        let response = world
            .client
            .get(format!("{}/api/v1/openapi.json", world.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        let served: serde_json::Value = response.json().await.unwrap();
        let built: serde_json::Value =
            serde_json::from_str(&rewind_server::openapi::pretty_json()).unwrap();
        assert_eq!(served, built);
        assert_eq!(served["openapi"], "3.1.0");
        assert!(served["paths"]["/api/v1/rollbacks"]["get"].is_object());
        world.finish().await;
    }
}
