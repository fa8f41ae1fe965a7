//! The rollback report end to end, on every backend: the pull request rewind
//! opens on (the strict fake) GitHub carries the change table (images first),
//! the review, the link to the rollback's page in the web UI and a timeline
//! whose entries say what happened; the web UI's rollback page shows the
//! same report.

use rewind_config::{ForgeKind, Secret};
use rewind_forge::fake::{FakeGitHub, FakeOptions};
use rewind_tests::{World, databases};

const TOKEN: &str = "ghs_faketoken";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pull_request_and_the_ui_page_show_the_same_report() {
    for db in databases().await {
        let mut world = World::new(db);
        let fake = FakeGitHub::start(FakeOptions::new(
            "acme",
            "gitops",
            world.repo.path.clone(),
            TOKEN,
        ))
        .await
        .expect("fake GitHub starts");
        let forge = &mut world.settings.forge;
        forge.kind = ForgeKind::Github;
        forge.api_url = Some(fake.url().to_string());
        forge.owner = Some("acme".into());
        forge.repo = Some("gitops".into());
        forge.token = Some(Secret::new(TOKEN));
        forge.max_wait = rewind_config::HumanDuration::from_secs(2);
        world.settings.server.public_url = "https://rewind.example.com".into();
        world.boot().await;

        let proposal = world.bad_deploy_and_alert().await;
        let id = proposal["id"].as_str().expect("id").to_owned();
        let prs = fake.pull_requests();
        assert_eq!(prs.len(), 1);
        let body = prs[0].body.clone().unwrap_or_default();

        // The changes as a table, images first, grouped per object.
        let table_at = body
            .find("| object | field | now | after rollback |")
            .unwrap_or_else(|| panic!("no change table:\n{body}"));
        let images_row = body[table_at..]
            .lines()
            .nth(2)
            .expect("first row of the table");
        assert!(
            images_row.starts_with("| **images** |")
                && images_row.contains("checkout:v1.4.2")
                && images_row.contains("checkout:v1.4.1"),
            "images first, now → after: {images_row}\n{body}"
        );
        assert!(body.contains("| **Deployment "), "{body}");
        assert!(
            !body.contains("app_path:") && !body.contains("more: `0`"),
            "no flattened JSON: {body}"
        );
        // The text diff is folded.
        assert!(body.contains("<details><summary>Text diff ("), "{body}");
        // What a reviewer needs to approve from the PR alone.
        assert!(body.contains("**Risks.**"), "{body}");
        assert!(
            body.contains("**Review.** 0 of 1 required approval."),
            "{body}"
        );
        assert!(
            body.contains("1 more needed before rewind merges"),
            "{body}"
        );
        assert!(body.contains("**Verification.**"), "{body}");
        // The link goes to the web UI's page, not the JSON API.
        assert!(
            body.contains(&format!("https://rewind.example.com/ui/rollbacks/{id}")),
            "{body}"
        );
        assert!(!body.contains("/api/v1/rollbacks/"), "{body}");
        // Timeline entries carry their detail.
        let pushed = body
            .lines()
            .find(|l| l.contains("`pushed`"))
            .unwrap_or_else(|| panic!("no pushed entry:\n{body}"));
        assert!(
            pushed.contains("pushed branch rewind/checkout/"),
            "{pushed}"
        );

        // The UI's rollback page: the same table, review and timeline.
        let page = world
            .client
            .get(format!("{}/ui/rollbacks/{id}", world.url()))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html");
        assert!(page.contains("<table class=\"changes\">"), "{page}");
        assert!(page.contains(">after rollback<"), "{page}");
        let images = page.find(">images<").expect("images group");
        let deployment = page.find(">Deployment ").expect("object group");
        assert!(images < deployment, "images first");
        assert!(page.contains("checkout:v1.4.1"), "{page}");
        assert!(page.contains("0 of 1 required approval."), "{page}");
        assert!(page.contains("pushed branch rewind/checkout/"), "{page}");
        assert!(
            page.contains("<details><summary>Text diff ("),
            "folded text diff: {page}"
        );

        world.finish().await;
    }
}
