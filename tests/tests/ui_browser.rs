//! The web UI in a real browser (headless Chromium through chromedriver),
//! against a running rewind on SQLite and PostgreSQL: sign in, the fleet
//! with its filters, an app's SVG timeline, "Roll back to this revision"
//! with its dry-run preview, proposing, cancelling, approving and merging
//! from the rollback page, signing out. Every button is pressed in the
//! browser; what it did is checked in the API, the database and the Git
//! repository. Screenshots: `target/ui-screenshots/`.

use reqwest::StatusCode;
use rewind_config::{ApiToken, Role, Secret};
use rewind_tests::chromium::Chromium;
use rewind_tests::{APP, World, databases};
use serde_json::Value;

const ADMIN: (&str, &str) = ("adam-admin", "browser-admin-token-1");
const APPROVER: (&str, &str) = ("anna-approver", "browser-approver-token-2");

fn people(s: &mut rewind_config::Settings) {
    s.api.tokens = [(ADMIN, Role::Admin), (APPROVER, Role::Approver)]
        .into_iter()
        .map(|((name, token), role)| ApiToken {
            name: name.into(),
            token: Secret::new(token),
            role,
        })
        .collect();
    s.policy.required_approvals = 1;
}

async fn api_get(world: &World, path: &str) -> Value {
    let response = world
        .client
        .get(format!("{}{path}", world.url()))
        .bearer_auth(ADMIN.1)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

async fn rollbacks(world: &World) -> Vec<Value> {
    api_get(world, &format!("/api/v1/rollbacks?app={APP}"))
        .await
        .as_array()
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn every_page_and_button_works_in_headless_chromium() {
    let Some(browser) = Chromium::start().await else {
        return;
    };
    for db in databases().await {
        let backend = format!("{:?}", db.backend()).to_lowercase();
        let mut world = World::start(db, people).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        let t0 = chrono::Utc::now() - chrono::Duration::hours(1);
        assert_eq!(
            world.deploy_at(1, &good, "Healthy", t0).await,
            StatusCode::ACCEPTED
        );
        world.tick(chrono::Utc::now()).await;
        assert_eq!(
            world.deploy(2, &bad, "Degraded").await,
            StatusCode::ACCEPTED
        );
        let base = world.url();

        // Sign in: the fleet, with the app.
        let html = browser.sign_in(&base, ADMIN.1).await;
        assert!(html.contains("adam-admin (admin)"), "{html}");
        assert!(html.contains("1 of 1 apps match"), "{html}");
        browser.screenshot(&format!("{backend}-1-fleet")).await;

        // Filters: Healthy hides the degraded app, Degraded shows it.
        browser.choose("health", "Healthy").await;
        let html = browser.press("Filter").await;
        assert!(html.contains("0 of 1 apps match"), "{html}");
        browser.choose("health", "Degraded").await;
        let html = browser.press("Filter").await;
        assert!(html.contains("1 of 1 apps match"), "{html}");
        browser
            .screenshot(&format!("{backend}-2-fleet-filtered"))
            .await;

        // The app page: its timeline as SVG and as text.
        let html = browser
            .goto(&format!("{base}/ui/apps/{APP}@in-cluster"))
            .await;
        assert!(html.contains("<svg class=\"timeline\""), "{html}");
        assert!(html.contains("Timeline of checkout@in-cluster"), "{html}");
        assert_eq!(
            html.matches("class=\"deployment\"").count(),
            4,
            "two points, two list items"
        );
        assert!(html.contains("revision 2 deployed"), "{html}");
        browser
            .screenshot(&format!("{backend}-3-app-timeline"))
            .await;

        // Roll back to revision 1: the dry run first, nothing recorded.
        let html = browser.press("Roll back to this revision").await;
        assert!(
            html.contains("Roll back checkout@in-cluster to revision 1?"),
            "{html}"
        );
        assert!(html.contains("A dry run"), "{html}");
        assert!(html.contains("v1.4.1"), "the diff names the image: {html}");
        assert!(
            rollbacks(&world).await.is_empty(),
            "a preview records nothing"
        );
        browser.screenshot(&format!("{backend}-4-preview")).await;

        // Confirm: proposed, then cancelled with the button.
        browser.fill("reason", "checkout 5xx after 1.4.2").await;
        let html = browser.press("Propose this rollback").await;
        assert!(html.contains("Rollback of checkout@in-cluster"), "{html}");
        assert!(
            html.contains("0 of 1"),
            "approvals needed and given: {html}"
        );
        assert!(
            html.contains("Requested by <code>adam-admin</code>"),
            "{html}"
        );
        world.settle().await;
        let listed = rollbacks(&world).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["reason"], "checkout 5xx after 1.4.2");
        assert_eq!(listed[0]["trigger"]["caller"], "adam-admin");
        browser
            .screenshot(&format!("{backend}-5-rollback-proposed"))
            .await;
        let html = browser.press("Cancel").await;
        assert!(html.contains(">cancelled<"), "{html}");
        assert_eq!(rollbacks(&world).await[0]["state"], "cancelled");

        // Again, and this time another person approves and merges.
        browser
            .goto(&format!("{base}/ui/apps/{APP}@in-cluster"))
            .await;
        browser.press("Roll back to this revision").await;
        browser.fill("reason", "second try").await;
        browser.press("Propose this rollback").await;
        world.settle().await;
        let id = rollbacks(&world).await[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let html = browser.sign_in(&base, APPROVER.1).await;
        assert!(html.contains("anna-approver (approver)"), "{html}");
        browser.goto(&format!("{base}/ui/rollbacks/{id}")).await;
        let html = browser.press("Approve").await;
        assert!(html.contains("1 of 1"), "{html}");
        assert!(html.contains("<code>anna-approver</code> via ui"), "{html}");
        let html = browser.press("Merge").await;
        assert!(html.contains(">merged<"), "{html}");
        browser
            .screenshot(&format!("{backend}-6-rollback-merged"))
            .await;
        let merged = api_get(&world, &format!("/api/v1/rollbacks/{id}")).await;
        assert_eq!(merged["state"], "merged", "{merged:#}");
        // The merge is on the branch Argo CD syncs: its tree is revision 1's.
        assert_eq!(
            world.repo.object("refs/heads/main", rewind_tests::APP_PATH),
            world.repo.object(&good, rewind_tests::APP_PATH),
            "main carries the rollback"
        );

        // Sign out: back to the sign-in form.
        let html = browser.press("Sign out").await;
        assert!(html.contains("API token"), "{html}");
        world.finish().await;
    }
    browser.finish().await;
}
