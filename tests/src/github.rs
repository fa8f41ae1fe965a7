//! A [`World`] whose forge is the strict fake GitHub, for tests that read
//! the pull request rewind opened (title, body, labels).

use rewind_config::{ForgeKind, Secret, Settings};
use rewind_forge::fake::{FakeGitHub, FakeOptions};
use rewind_ledger::testing::TestDatabase;

use crate::World;

/// The installation token the fake accepts.
pub const GITHUB_TOKEN: &str = "ghs_faketoken";

/// Starts the fake GitHub on the world's repository (`acme/gitops`), points
/// rewind's forge at it, lets `configure` change the rest, and boots.
pub async fn github_world(
    db: TestDatabase,
    configure: impl FnOnce(&mut Settings),
) -> (World, FakeGitHub) {
    let mut world = World::new(db);
    let fake = FakeGitHub::start(FakeOptions::new(
        "acme",
        "gitops",
        world.repo.path.clone(),
        GITHUB_TOKEN,
    ))
    .await
    .expect("fake GitHub starts");
    let forge = &mut world.settings.forge;
    forge.kind = ForgeKind::Github;
    forge.api_url = Some(fake.url().to_string());
    forge.owner = Some("acme".into());
    forge.repo = Some("gitops".into());
    forge.token = Some(Secret::new(GITHUB_TOKEN));
    forge.max_wait = rewind_config::HumanDuration::from_secs(2);
    configure(&mut world.settings);
    world.boot().await;
    (world, fake)
}
