//! `limit` + `cursor` on every list endpoint, over HTTP on SQLite and
//! PostgreSQL: pages follow each other without a gap or a repeat, the
//! next page is named by `X-Next-Cursor` and `Link: <...>; rel="next"`,
//! the last page names none, an answer without `limit` is what it always
//! was, and a bad `limit` or `cursor` is a 400 naming the parameter.

use reqwest::StatusCode;
use rewind_config::{ApiToken, Role, Secret};
use rewind_tests::{APP, World, databases};
use serde_json::{Value, json};

const ADMIN: &str = "pagination-admin-token";

fn with_admin(s: &mut rewind_config::Settings) {
    s.api.tokens = vec![ApiToken {
        name: "root".into(),
        token: Secret::new(ADMIN),
        role: Role::Admin,
    }];
    // Three manual rollbacks within the hour.
    s.policy.max_rollbacks_per_hour = 10;
}

/// One answer: status, the JSON array, and the next cursor from both
/// headers (which must agree).
async fn page(world: &World, path: &str) -> (StatusCode, Value, Option<String>) {
    let response = world
        .client
        .get(format!("{}{path}", world.url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let cursor = header("x-next-cursor");
    let link = header("link");
    match (&cursor, &link) {
        (Some(cursor), Some(link)) => {
            assert!(link.ends_with("; rel=\"next\""), "{link}");
            assert!(link.contains(&format!("cursor={cursor}")), "{link}");
            assert!(
                link.starts_with(&format!("<{}?", path.split('?').next().unwrap())),
                "{link}"
            );
        }
        (None, None) => {}
        other => panic!("X-Next-Cursor and Link disagree: {other:?}"),
    }
    (status, response.json().await.unwrap_or(Value::Null), cursor)
}

/// Every page of `path` (which has a query) with `limit`, following the
/// cursors; returns the pages.
async fn all_pages(world: &World, path: &str, limit: u32) -> Vec<Vec<Value>> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut pages = Vec::new();
    let mut next = format!("{path}{sep}limit={limit}");
    loop {
        let (status, body, cursor) = page(world, &next).await;
        assert_eq!(status, StatusCode::OK, "{next}: {body}");
        let items = body.as_array().cloned().expect("a JSON array");
        assert!(
            items.len() <= limit as usize,
            "{next}: {} items",
            items.len()
        );
        pages.push(items);
        match cursor {
            Some(cursor) => next = format!("{path}{sep}limit={limit}&cursor={cursor}"),
            None => return pages,
        }
        assert!(pages.len() < 50, "cursors never end");
    }
}

fn field(items: &[Value], name: &str) -> Vec<String> {
    items.iter().map(|v| v[name].to_string()).collect()
}

async fn api(world: &World, path: &str, body: Value) -> (StatusCode, Value) {
    let (status, value) = world.post_json(path, ADMIN, &body).await;
    world.settle().await;
    (status, value)
}

#[tokio::test]
async fn every_list_endpoint_pages_with_limit_and_cursor() {
    for db in databases().await {
        let mut world = World::start(db, with_admin).await;
        let (good, bad) = (world.repo.good.clone(), world.repo.bad.clone());
        assert_eq!(
            world.deploy(1, &good, "Healthy").await,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            world.deploy(2, &bad, "Degraded").await,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            world.deploy(3, &bad, "Degraded").await,
            StatusCode::ACCEPTED
        );
        // Three rollbacks, two cancelled, newest open.
        for i in 0..3 {
            let (status, rollback) = api(
                &world,
                &format!("/api/v1/apps/{APP}/rollbacks"),
                json!({"to_revision": 1, "reason": format!("attempt {i}")}),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{rollback}");
            if i < 2 {
                let id = rollback["id"].as_str().unwrap();
                let (status, body) =
                    api(&world, &format!("/api/v1/rollbacks/{id}/cancel"), json!({})).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }
        // A second app, so the apps list has two pages of one.
        let body = rewind_ingest::samples::argocd_notification(
            "on-deployed",
            "billing",
            &world.repo.path.display().to_string(),
            rewind_tests::APP_PATH,
            &world.history,
            "Healthy",
        );
        let (status, _) = world
            .post_json("/webhooks/argocd", rewind_tests::ARGOCD_TOKEN, &body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        world.settle().await;

        // Rollbacks: pages of two, newest first, the same as one answer.
        let (_, whole, cursor) = page(&world, "/api/v1/rollbacks").await;
        assert_eq!(
            cursor, None,
            "nothing follows an unpaged answer that holds everything"
        );
        let whole = whole.as_array().unwrap().clone();
        assert_eq!(whole.len(), 3);
        let pages = all_pages(&world, "/api/v1/rollbacks", 2).await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(field(&pages.concat(), "id"), field(&whole, "id"));
        assert_eq!(pages[0][0]["reason"], "attempt 2", "newest first");
        // Filters are kept across pages.
        let cancelled = all_pages(&world, "/api/v1/rollbacks?state=cancelled", 1).await;
        assert_eq!(cancelled.len(), 2);
        assert!(cancelled.concat().iter().all(|r| r["state"] == "cancelled"));

        // History: cluster revisions 3, 2 | 1.
        let pages = all_pages(&world, &format!("/api/v1/apps/{APP}/history"), 2).await;
        let revisions: Vec<Vec<i64>> = pages
            .iter()
            .map(|p| {
                p.iter()
                    .map(|d| d["cluster_revision"].as_i64().unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(revisions, [vec![3, 2], vec![1]]);

        // Audit: one entry a page, newest first, all of them.
        let (_, whole, _) = page(&world, "/api/v1/audit").await;
        let whole = whole.as_array().unwrap().clone();
        assert!(whole.len() >= 5, "{whole:#?}");
        let pages = all_pages(&world, "/api/v1/audit", 2).await;
        assert_eq!(field(&pages.concat(), "id"), field(&whole, "id"));

        // Apps: by name, one a page; the unpaged answer is unchanged.
        let (_, whole, cursor) = page(&world, "/api/v1/apps").await;
        assert_eq!(cursor, None);
        let whole = whole.as_array().unwrap().clone();
        assert_eq!(field(&whole, "ref").len(), 2);
        let pages = all_pages(&world, "/api/v1/apps", 1).await;
        assert_eq!(pages.len(), 2);
        assert_eq!(field(&pages.concat(), "ref"), field(&whole, "ref"));
        assert_eq!(pages[0][0]["name"], "billing");
        assert!(pages[0][0]["current"].is_object(), "{}", pages[0][0]);

        // Tokens: the configured one, then two stored ones.
        for name in ["ci-bot", "pager"] {
            let (status, body) = api(
                &world,
                "/api/v1/tokens",
                json!({"name": name, "role": "viewer"}),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let pages = all_pages(&world, "/api/v1/tokens", 2).await;
        assert_eq!(
            field(&pages.concat(), "name"),
            ["\"root\"", "\"ci-bot\"", "\"pager\""]
        );

        // Bad parameters name themselves.
        let rollbacks_cursor = page(&world, "/api/v1/rollbacks?limit=1").await.2.unwrap();
        for (path, parameter) in [
            ("/api/v1/rollbacks?limit=0".to_string(), "limit"),
            ("/api/v1/rollbacks?limit=1001".to_string(), "limit"),
            ("/api/v1/audit?limit=ten".to_string(), "limit"),
            ("/api/v1/apps?limit=-3".to_string(), "limit"),
            ("/api/v1/tokens?limit=2.5".to_string(), "limit"),
            (
                "/api/v1/rollbacks?cursor=not-a-cursor".to_string(),
                "cursor",
            ),
            (format!("/api/v1/audit?cursor={rollbacks_cursor}"), "cursor"),
            (
                format!("/api/v1/apps/{APP}/history?limit=1&cursor={rollbacks_cursor}"),
                "cursor",
            ),
        ] {
            let (status, body, _) = page(&world, &path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert!(
                body["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{parameter}: ")),
                "{path}: {body}"
            );
        }
        world.finish().await;
    }
}
