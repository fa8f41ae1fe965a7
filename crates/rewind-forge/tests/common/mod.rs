//! Shared test setup: a real bare repository with a `main` branch and a
//! rollback branch one commit ahead, a fake GitHub serving it on loopback,
//! and forge settings pointing at the fake with small time budgets.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::{Oid, Repository, Signature};
use rewind_domain::CommitId;
use rewind_forge::fake::{FakeGitHub, FakeOptions};
use rewind_forge::{GitHubAuth, GitHubSettings, PullRequestSpec};

pub const OWNER: &str = "acme";
pub const REPO: &str = "gitops";
pub const TOKEN: &str = "t0ken-for-tests";
pub const BRANCH: &str = "rewind/shop-checkout/0190b1c2";

pub struct Setup {
    pub _dir: tempfile::TempDir,
    pub repo_path: PathBuf,
    pub fake: FakeGitHub,
    /// Tip of `main` before anything is merged.
    pub base: Oid,
    /// Tip of [`BRANCH`].
    pub head: Oid,
}

impl Setup {
    pub async fn new() -> Setup {
        Self::with_options(|_| {}).await
    }

    pub async fn with_options(adjust: impl FnOnce(&mut FakeOptions)) -> Setup {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let repo_path = dir.path().join("gitops.git");
        let repo = Repository::init_bare(&repo_path).expect("init bare repo");
        let base = commit_file(
            &repo,
            "main",
            None,
            "app.yaml",
            "image: shop/checkout:1.0\nreplicas: 2\n",
            "Deploy checkout 1.0",
        );
        let bad = commit_file(
            &repo,
            "main",
            Some(base),
            "app.yaml",
            "image: shop/checkout:2.0\nreplicas: 2\n",
            "Deploy checkout 2.0",
        );
        let head = commit_file(
            &repo,
            BRANCH,
            Some(bad),
            "app.yaml",
            "image: shop/checkout:1.0\nreplicas: 2\n",
            "Roll back checkout to 1.0",
        );
        let mut options = FakeOptions::new(OWNER, REPO, &repo_path, TOKEN);
        adjust(&mut options);
        let fake = FakeGitHub::start(options).await.expect("start fake GitHub");
        Setup {
            _dir: dir,
            repo_path,
            fake,
            base: bad,
            head,
        }
    }

    pub fn settings(&self) -> GitHubSettings {
        let mut settings = GitHubSettings::new(OWNER, REPO, GitHubAuth::Token(TOKEN.to_owned()));
        settings.api_url = self.fake.url().to_owned();
        settings.max_wait = Duration::from_secs(20);
        settings.request_timeout = Duration::from_secs(5);
        settings.min_backoff = Duration::from_millis(10);
        settings
    }

    pub fn repo(&self) -> Repository {
        Repository::open_bare(&self.repo_path).expect("open bare repo")
    }

    pub fn tip(&self, branch: &str) -> Oid {
        self.repo()
            .find_reference(&format!("refs/heads/{branch}"))
            .and_then(|r| r.peel_to_commit())
            .map(|c| c.id())
            .expect("branch tip")
    }

    /// Adds a commit to `branch` in the bare repository (someone pushing).
    pub fn push(&self, branch: &str, file: &str, content: &str) -> Oid {
        let repo = self.repo();
        let parent = self.tip(branch);
        commit_file(
            &repo,
            branch,
            Some(parent),
            file,
            content,
            "Someone else's change",
        )
    }
}

pub fn spec() -> PullRequestSpec {
    PullRequestSpec {
        head_branch: BRANCH.to_owned(),
        base_branch: "main".to_owned(),
        title: "Roll back shop/checkout to revision 11 (abcdef0)".to_owned(),
        body: "<!-- rewind:rollback-id=0190b1c2 -->\nthe report".to_owned(),
        labels: vec!["rewind".to_owned(), "rollback".to_owned()],
    }
}

pub fn commit_id(oid: Oid) -> CommitId {
    CommitId::new(oid.to_string()).expect("oid is a commit id")
}

/// Commits `path = content` on top of `parent`'s tree and points `branch`
/// at the new commit.
pub fn commit_file(
    repo: &Repository,
    branch: &str,
    parent: Option<Oid>,
    path: &str,
    content: &str,
    message: &str,
) -> Oid {
    let sig = Signature::now("Test", "test@example.com").expect("signature");
    let parent = parent.map(|p| repo.find_commit(p).expect("parent commit"));
    let mut builder = repo
        .treebuilder(parent.as_ref().map(|p| p.tree().expect("tree")).as_ref())
        .expect("tree builder");
    let blob = repo.blob(content.as_bytes()).expect("blob");
    builder.insert(path, blob, 0o100644).expect("insert");
    let tree = repo
        .find_tree(builder.write().expect("write tree"))
        .expect("tree");
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let oid = repo
        .commit(None, &sig, &sig, message, &tree, &parents)
        .expect("commit");
    repo.reference(&format!("refs/heads/{branch}"), oid, true, "test")
        .expect("update branch");
    oid
}

pub fn read_file(repo_path: &Path, branch: &str, file: &str) -> String {
    let repo = Repository::open_bare(repo_path).expect("open");
    let tree = repo
        .find_reference(&format!("refs/heads/{branch}"))
        .and_then(|r| r.peel_to_tree())
        .expect("tree");
    let entry = tree.get_name(file).expect("file in tree");
    let blob = repo.find_blob(entry.id()).expect("blob");
    String::from_utf8_lossy(blob.content()).into_owned()
}
