//! The GitHub forge against the strict fake GitHub on loopback, backed by a
//! real bare repository: pull requests, merges, refusals, rate limits,
//! retries, the time budget, write serialization, permissions, reviews,
//! statuses and GitHub App authentication.

mod common;

use std::time::Duration;

use common::{BRANCH, Setup, commit_id, read_file, spec};
use rewind_forge::fake::FakeApp;
use rewind_forge::{
    Forge, ForgeError, GitHubAuth, GitHubForge, MergeMethod, PullRequestState, StatusState,
};

fn forge(setup: &Setup) -> GitHubForge {
    GitHubForge::new(&setup.settings()).expect("forge")
}

fn count(setup: &Setup, method: &str, path: &str, status: u16) -> usize {
    setup
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path == path && r.status == status)
        .count()
}

#[tokio::test]
async fn opens_a_labelled_pull_request_once() {
    let setup = Setup::new().await;
    let forge = forge(&setup);

    let first = forge.open_pull_request(&spec()).await.expect("open");
    let again = forge.open_pull_request(&spec()).await.expect("open again");

    assert_eq!(first, again);
    assert_eq!(first.number, 1);
    assert!(first.url.ends_with("/acme/gitops/pull/1"), "{}", first.url);
    let pulls = setup.fake.pull_requests();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].labels, ["rewind", "rollback"]);
    assert_eq!(pulls[0].head_ref, BRANCH);
    assert_eq!(pulls[0].base_ref, "main");
    assert_eq!(pulls[0].body.as_deref(), Some(spec().body.as_str()));
    // The second call found the pull request and did not try to create or
    // label it again.
    assert_eq!(count(&setup, "POST", "/repos/acme/gitops/pulls", 201), 1);
    assert_eq!(
        setup
            .fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        2
    );
}

#[tokio::test]
async fn two_opens_at_once_share_one_pull_request() {
    let setup = Setup::new().await;
    setup.fake.set_write_latency(Duration::from_millis(100));
    let (a, b) = (forge(&setup), forge(&setup));

    let spec = spec();
    let (first, second) = tokio::join!(a.open_pull_request(&spec), b.open_pull_request(&spec));

    assert_eq!(first.expect("first"), second.expect("second"));
    assert_eq!(setup.fake.pull_requests().len(), 1);
    assert_eq!(count(&setup, "POST", "/repos/acme/gitops/pulls", 201), 1);
}

fn quick_timeout(setup: &Setup) -> GitHubForge {
    let mut settings = setup.settings();
    settings.request_timeout = Duration::from_millis(300);
    GitHubForge::new(&settings).expect("forge")
}

fn statuses_of(setup: &Setup, method: &str, path: &str) -> Vec<u16> {
    setup
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .map(|r| r.status)
        .collect()
}

#[tokio::test]
async fn an_open_whose_answer_was_lost_reuses_the_pull_request() {
    let setup = Setup::new().await;
    let forge = quick_timeout(&setup);
    setup.fake.lose_next_write_answer(Duration::from_secs(3));

    let pr = forge.open_pull_request(&spec()).await.expect("open");

    assert_eq!(pr.number, 1);
    assert_eq!(setup.fake.pull_requests().len(), 1);
    assert_eq!(setup.fake.pull_requests()[0].labels, ["rewind", "rollback"]);
    // Created, answer lost; the retry hears "already exists" and reuses it.
    assert_eq!(
        statuses_of(&setup, "POST", "/repos/acme/gitops/pulls"),
        [201, 422]
    );
}

#[tokio::test]
async fn a_merge_whose_answer_was_lost_returns_the_merge_commit() {
    let setup = Setup::new().await;
    let forge = quick_timeout(&setup);
    let pr = forge.open_pull_request(&spec()).await.expect("open");
    setup.fake.lose_next_write_answer(Duration::from_secs(3));

    let merged = forge
        .merge(pr.number, &commit_id(setup.head))
        .await
        .expect("merge");

    assert_eq!(merged.as_str(), setup.tip("main").to_string());
    let repo = setup.repo();
    let merge = repo.find_commit(setup.tip("main")).expect("merge commit");
    assert_eq!(
        merge.parent_ids().collect::<Vec<_>>(),
        [setup.base, setup.head],
        "merged once"
    );
    assert_eq!(
        statuses_of(&setup, "PUT", "/repos/acme/gitops/pulls/1/merge"),
        [200, 405]
    );
}

#[tokio::test]
async fn a_missing_head_branch_is_refused_with_githubs_reason() {
    let setup = Setup::new().await;
    let mut spec = spec();
    spec.head_branch = "rewind/nope/1".to_owned();

    let error = forge(&setup).open_pull_request(&spec).await.unwrap_err();

    assert!(
        matches!(error, ForgeError::Rejected { status: 422, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("Validation Failed"), "{error}");
    assert!(setup.fake.pull_requests().is_empty());
}

#[tokio::test]
async fn body_updates_comments_and_close_reach_github() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    let pr = forge.open_pull_request(&spec()).await.expect("open");

    forge
        .update_pull_request_body(pr.number, "new body")
        .await
        .expect("edit");
    forge
        .comment(pr.number, "Merged by rewind.")
        .await
        .expect("comment");
    forge.close_pull_request(pr.number).await.expect("close");

    let stored = setup.fake.pull_request(pr.number).expect("pr");
    assert_eq!(stored.body.as_deref(), Some("new body"));
    assert!(!stored.open);
    assert_eq!(setup.fake.comments(pr.number)[0].body, "Merged by rewind.");
    let info = forge.pull_request(pr.number).await.expect("read");
    assert_eq!(info.state, PullRequestState::Closed);
    assert!(!info.merged);
    assert_eq!(info.head_sha, commit_id(setup.head));
}

#[tokio::test]
async fn merge_really_merges_and_is_idempotent() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    let pr = forge.open_pull_request(&spec()).await.expect("open");

    let merge = forge
        .merge(pr.number, &commit_id(setup.head))
        .await
        .expect("merge");
    let again = forge
        .merge(pr.number, &commit_id(setup.head))
        .await
        .expect("merge again");

    assert_eq!(merge, again);
    let repo = setup.repo();
    let tip = setup.tip("main");
    assert_eq!(tip.to_string(), merge.as_str());
    let commit = repo.find_commit(tip).expect("merge commit");
    assert_eq!(
        commit.parent_ids().collect::<Vec<_>>(),
        [setup.base, setup.head]
    );
    assert!(repo.graph_descendant_of(tip, setup.head).expect("graph"));
    assert_eq!(
        read_file(&setup.repo_path, "main", "app.yaml"),
        "image: shop/checkout:1.0\nreplicas: 2\n"
    );
    assert_eq!(
        count(&setup, "PUT", "/repos/acme/gitops/pulls/1/merge", 200),
        1
    );
    assert_eq!(
        setup
            .fake
            .requests()
            .iter()
            .filter(|r| r.method == "PUT")
            .count(),
        1
    );
    let info = forge.pull_request(pr.number).await.expect("read");
    assert!(info.merged);
    assert_eq!(info.merge_commit, Some(merge));
}

#[tokio::test]
async fn squash_and_rebase_merge_with_one_parent() {
    for method in [MergeMethod::Squash, MergeMethod::Rebase] {
        let setup = Setup::new().await;
        let mut settings = setup.settings();
        settings.merge_method = method;
        let forge = GitHubForge::new(&settings).expect("forge");
        let pr = forge.open_pull_request(&spec()).await.expect("open");

        let merged = forge
            .merge(pr.number, &commit_id(setup.head))
            .await
            .expect("merge");

        let repo = setup.repo();
        let commit = repo.find_commit(setup.tip("main")).expect("tip");
        assert_eq!(commit.id().to_string(), merged.as_str(), "{method:?}");
        assert_eq!(
            commit.parent_ids().collect::<Vec<_>>(),
            [setup.base],
            "{method:?}"
        );
        let head_tree = repo.find_commit(setup.head).expect("head").tree_id();
        assert_eq!(commit.tree_id(), head_tree, "{method:?}");
        let body = setup
            .fake
            .requests()
            .into_iter()
            .find(|r| r.method == "PUT")
            .and_then(|r| r.json());
        assert_eq!(body.expect("merge body")["merge_method"], method.as_str());
    }
}

#[tokio::test]
async fn not_mergeable_is_a_distinct_error() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    let pr = forge.open_pull_request(&spec()).await.expect("open");
    setup.fake.set_mergeable(pr.number, false);

    let error = forge
        .merge(pr.number, &commit_id(setup.head))
        .await
        .unwrap_err();

    assert!(matches!(error, ForgeError::NotMergeable(_)), "{error}");
    assert_eq!(setup.tip("main"), setup.base);
}

#[tokio::test]
async fn a_conflicting_base_makes_the_pull_request_not_mergeable() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    let pr = forge.open_pull_request(&spec()).await.expect("open");
    let moved = setup.push(
        "main",
        "app.yaml",
        "image: shop/checkout:3.0\nreplicas: 5\n",
    );

    let error = forge
        .merge(pr.number, &commit_id(setup.head))
        .await
        .unwrap_err();

    assert!(matches!(error, ForgeError::NotMergeable(_)), "{error}");
    assert_eq!(setup.tip("main"), moved);
}

#[tokio::test]
async fn a_moved_head_is_head_changed() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    let pr = forge.open_pull_request(&spec()).await.expect("open");
    setup.push(BRANCH, "notes.txt", "someone pushed\n");

    let error = forge
        .merge(pr.number, &commit_id(setup.head))
        .await
        .unwrap_err();

    assert!(matches!(error, ForgeError::HeadChanged(_)), "{error}");
    assert_eq!(
        count(&setup, "PUT", "/repos/acme/gitops/pulls/1/merge", 409),
        1
    );
    assert_eq!(setup.tip("main"), setup.base);
}

#[tokio::test]
async fn a_secondary_rate_limit_is_waited_out() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    let pr = forge.open_pull_request(&spec()).await.expect("open");
    setup.fake.clear_requests();
    setup.fake.secondary_rate_limit_next(1);

    forge.comment(pr.number, "hello").await.expect("comment");

    let requests = setup.fake.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!((requests[0].status, requests[1].status), (403, 201));
    let waited = requests[1].at.duration_since(requests[0].at);
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    assert_eq!(setup.fake.comments(pr.number).len(), 1);
}

#[tokio::test]
async fn an_exhausted_primary_rate_limit_is_waited_out_until_reset() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    let pr = forge.open_pull_request(&spec()).await.expect("open");
    setup.fake.clear_requests();
    setup.fake.primary_rate_limit_next(1);

    forge.pull_request(pr.number).await.expect("read");

    let requests = setup.fake.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!((requests[0].status, requests[1].status), (403, 200));
    let waited = requests[1].at.duration_since(requests[0].at);
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
}

#[tokio::test]
async fn server_errors_are_retried_until_they_pass() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    let pr = forge.open_pull_request(&spec()).await.expect("open");
    setup.fake.clear_requests();
    setup.fake.fail_next(2, 502);

    forge.comment(pr.number, "hello").await.expect("comment");

    let statuses: Vec<u16> = setup.fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [502, 502, 201]);
    assert_eq!(setup.fake.comments(pr.number).len(), 1);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let setup = Setup::new().await;
    let mut settings = setup.settings();
    settings.request_timeout = Duration::from_millis(200);
    let forge = GitHubForge::new(&settings).expect("forge");
    let pr = forge.open_pull_request(&spec()).await.expect("open");
    setup.fake.clear_requests();
    setup.fake.delay_next(Duration::from_secs(3));

    let info = forge.pull_request(pr.number).await.expect("read");

    assert_eq!(info.number, pr.number);
    let gets: Vec<_> = setup
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert!(gets.len() >= 2, "{gets:?}");
    assert_eq!(gets.last().map(|r| r.status), Some(200));
}

#[tokio::test]
async fn after_the_budget_the_call_fails_with_the_reason() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    let pr = forge.open_pull_request(&spec()).await.expect("open");
    let mut settings = setup.settings();
    settings.max_wait = Duration::from_millis(300);
    let impatient = GitHubForge::new(&settings).expect("forge");
    setup.fake.clear_requests();
    setup.fake.fail_next(10_000, 503);

    let error = impatient.comment(pr.number, "hello").await.unwrap_err();

    assert!(matches!(error, ForgeError::GaveUp { .. }), "{error}");
    assert!(error.is_transient());
    let message = error.to_string();
    assert!(message.contains("HTTP 503"), "{message}");
    assert!(message.contains("comment on a pull request"), "{message}");
    assert!(
        setup.fake.requests().len() >= 2,
        "it retried before giving up"
    );
    assert!(setup.fake.comments(pr.number).is_empty());
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_budget_fails_at_once_with_the_reason() {
    let setup = Setup::new().await;
    let mut settings = setup.settings();
    settings.max_wait = Duration::from_secs(5);
    let forge = GitHubForge::new(&settings).expect("forge");
    setup.fake.secondary_rate_limit_next(3600);

    let error = forge.pull_request(1).await.unwrap_err();

    assert!(
        matches!(error, ForgeError::GaveUp { attempts: 1, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("secondary rate limit"),
        "{error}"
    );
    assert_eq!(setup.fake.requests().len(), 1);
}

#[tokio::test]
async fn writes_for_one_installation_never_overlap() {
    let setup = Setup::new().await;
    let (a, b) = (forge(&setup), forge(&setup));
    let pr = a.open_pull_request(&spec()).await.expect("open");
    setup.fake.set_write_latency(Duration::from_millis(50));

    let calls = (0..6).map(|i| {
        let forge = if i % 2 == 0 { &a } else { &b };
        async move { forge.comment(pr.number, &format!("comment {i}")).await }
    });
    let results = futures::future::join_all(calls).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(setup.fake.comments(pr.number).len(), 6);
    assert_eq!(setup.fake.max_concurrent_writes(), 1);
}

#[tokio::test]
async fn reads_do_not_wait_for_writes() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    let pr = forge.open_pull_request(&spec()).await.expect("open");
    setup.fake.set_write_latency(Duration::from_millis(500));
    setup.fake.clear_requests();

    let write = async {
        let result = forge.comment(pr.number, "slow write").await;
        (result, std::time::Instant::now())
    };
    let read = async {
        // Starts while the write is in flight.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let result = forge.pull_request(pr.number).await;
        (result, std::time::Instant::now())
    };
    let ((written, write_done), (read, read_done)) = tokio::join!(write, read);

    written.expect("write");
    read.expect("read");
    assert!(read_done < write_done, "the read waited for the write");
}

#[tokio::test]
async fn write_access_follows_the_collaborator_permission() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    setup.fake.set_permission("alice", "write");
    setup.fake.set_permission("carol", "maintain");
    setup.fake.set_permission("bob", "read");
    setup.fake.set_permission("tom", "triage");

    for (user, expected) in [
        ("acme", true),
        ("alice", true),
        ("carol", true),
        ("bob", false),
        ("tom", false),
        ("stranger", false),
        ("../../etc", false),
    ] {
        assert_eq!(
            forge.has_write_access(user).await.expect(user),
            expected,
            "{user}"
        );
    }
    assert!(
        setup.fake.requests().iter().all(|r| !r.path.contains("..")),
        "a name that is not a login is never sent"
    );
}

#[tokio::test]
async fn approvals_count_writers_latest_reviews_only() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    let pr = forge.open_pull_request(&spec()).await.expect("open");
    for user in ["alice", "carol", "dave", "erin"] {
        setup.fake.set_permission(user, "write");
    }
    setup.fake.set_permission("bob", "read");
    setup.fake.add_review(pr.number, "alice", "APPROVED");
    setup.fake.add_review(pr.number, "bob", "APPROVED");
    let carols = setup.fake.add_review(pr.number, "carol", "APPROVED");
    setup.fake.dismiss_review(carols);
    setup.fake.add_review(pr.number, "dave", "APPROVED");
    setup
        .fake
        .add_review(pr.number, "dave", "CHANGES_REQUESTED");
    setup.fake.add_review(pr.number, "erin", "APPROVED");
    setup.fake.add_review(pr.number, "erin", "COMMENTED");

    let approvers = forge.approvals(pr.number).await.expect("approvals");

    assert_eq!(approvers, ["alice", "erin"]);
}

#[tokio::test]
async fn commit_statuses_are_set_on_real_commits() {
    let setup = Setup::new().await;
    let forge = forge(&setup);
    let long = "x".repeat(300);

    forge
        .set_commit_status(
            &commit_id(setup.head),
            StatusState::Failure,
            rewind_forge::HOLD_STATUS_CONTEXT,
            &long,
            Some("http://rewind.example/api/v1/rollbacks/1"),
        )
        .await
        .expect("status");
    let unknown = commit_id(git2::Oid::from_str(&"ab".repeat(20)).expect("oid"));
    let error = forge
        .set_commit_status(&unknown, StatusState::Success, "rewind/hold", "ok", None)
        .await
        .unwrap_err();

    let statuses = setup.fake.statuses();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].sha, setup.head.to_string());
    assert_eq!(statuses[0].state, "failure");
    assert_eq!(statuses[0].context, "rewind/hold");
    assert_eq!(statuses[0].description.as_deref().map(str::len), Some(140));
    assert_eq!(
        statuses[0].target_url.as_deref(),
        Some("http://rewind.example/api/v1/rollbacks/1")
    );
    assert!(
        matches!(error, ForgeError::Rejected { status: 422, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_without_retries() {
    let setup = Setup::new().await;
    let mut settings = setup.settings();
    settings.auth = GitHubAuth::Token("wrong".to_owned());
    let forge = GitHubForge::new(&settings).expect("forge");

    let error = forge.pull_request(1).await.unwrap_err();

    assert!(matches!(error, ForgeError::Unauthorized(_)), "{error}");
    assert_eq!(setup.fake.requests().len(), 1);
    assert_eq!(setup.fake.requests()[0].status, 401);
}

const APP_ID: u64 = 4242;
const INSTALLATION_ID: u64 = 77;

fn app_setup(options: &mut rewind_forge::fake::FakeOptions) {
    options.app = Some(FakeApp {
        app_id: APP_ID,
        installation_id: INSTALLATION_ID,
        public_key_pem: include_str!("data/app-public-key.pem").to_owned(),
    });
}

#[tokio::test]
async fn a_github_app_exchanges_its_jwt_for_an_installation_token() {
    let setup = Setup::with_options(app_setup).await;
    let mut settings = setup.settings();
    settings.auth = GitHubAuth::App {
        app_id: APP_ID,
        private_key_pem: include_str!("data/app-private-key.pem").to_owned(),
        installation_id: INSTALLATION_ID,
    };
    let forge = GitHubForge::new(&settings).expect("forge");

    let pr = forge
        .open_pull_request(&spec())
        .await
        .expect("open as the app");
    forge
        .comment(pr.number, "as the app")
        .await
        .expect("comment");

    assert_eq!(
        setup.fake.issued_installation_tokens(),
        1,
        "the token is cached"
    );
    let exchange = "/app/installations/77/access_tokens";
    assert_eq!(count(&setup, "POST", exchange, 201), 1);
    assert_eq!(setup.fake.pull_requests().len(), 1);
}

#[tokio::test]
async fn a_github_app_with_the_wrong_id_is_unauthorized() {
    let setup = Setup::with_options(app_setup).await;
    let mut settings = setup.settings();
    settings.auth = GitHubAuth::App {
        app_id: APP_ID + 1,
        private_key_pem: include_str!("data/app-private-key.pem").to_owned(),
        installation_id: INSTALLATION_ID,
    };
    let forge = GitHubForge::new(&settings).expect("forge");

    let error = forge.pull_request(1).await.unwrap_err();

    assert!(matches!(error, ForgeError::Unauthorized(_)), "{error}");
    assert!(setup.fake.pull_requests().is_empty());
}

#[tokio::test]
async fn a_bad_private_key_is_a_settings_error() {
    let setup = Setup::new().await;
    let mut settings = setup.settings();
    settings.auth = GitHubAuth::App {
        app_id: APP_ID,
        private_key_pem: "not a key".to_owned(),
        installation_id: INSTALLATION_ID,
    };
    let error = GitHubForge::new(&settings).unwrap_err();
    assert!(matches!(error, ForgeError::Config(_)), "{error}");
    assert!(
        !format!("{settings:?}").contains("not a key"),
        "secrets stay out of Debug"
    );
}

#[test]
fn outside_a_runtime_the_forge_is_refused_not_a_panic() {
    let settings =
        rewind_forge::GitHubSettings::new("acme", "gitops", GitHubAuth::Token("t".to_owned()));
    let error = GitHubForge::new(&settings).unwrap_err();
    assert!(matches!(error, ForgeError::Config(_)), "{error}");
}
