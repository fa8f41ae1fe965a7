//! When is a merged rollback on the cluster? Argo CD may report a commit
//! that was pushed on top of the merge moments ago, before any fetch
//! brought it to rewind's cache, and the clock may run before that
//! deployment's resolve job does. The clock then fetches instead of
//! failing the whole tick.

use chrono::Utc;
use reqwest::StatusCode;
use rewind_tests::{World, databases};
use serde_json::json;

/// Argo CD reports cluster revision `id` running `commit`, Healthy; the
/// clock runs before that deployment's resolve job, and must not fail.
async fn report_then_tick(world: &mut World, id: i64, commit: &str) {
    assert_eq!(
        world.report_deploy(id, commit, "Healthy", Utc::now()).await,
        StatusCode::ACCEPTED
    );
    world
        .service()
        .engine
        .tick(Utc::now())
        .await
        .unwrap_or_else(|e| panic!("the tick after deploying {commit} failed: {e}"));
}

#[tokio::test]
async fn a_deployed_commit_not_yet_fetched_syncs_on_the_next_tick() {
    for db in databases().await {
        let mut world = World::start(db, |_| {}).await;
        let proposal = world.bad_deploy_and_alert().await;
        let id = proposal["id"].as_str().expect("id").to_string();
        let (status, body) = world
            .api(&format!("/api/v1/rollbacks/{id}/approve"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(world.rollback(&id).await["state"], "merged");

        // A commit the remote does not have either (deployed from a
        // branch rewind does not fetch): "not yet", and the tick goes on.
        let elsewhere = "0123456789abcdef0123456789abcdef01234567";
        report_then_tick(&mut world, 3, elsewhere).await;
        assert_eq!(world.rollback(&id).await["state"], "merged");

        // A developer pushes on top of the merge; Argo CD deploys that.
        let on_top = world.repo.commit(
            &[("README.md", "# shop\n\nOn call: #shop-oncall\n".into())],
            "docs: on-call channel",
        );
        report_then_tick(&mut world, 4, &on_top).await;
        let rollback = world.rollback(&id).await;
        assert_eq!(rollback["state"], "synced", "{rollback:#}");
        world.settle().await;
        world.finish().await;
    }
}
