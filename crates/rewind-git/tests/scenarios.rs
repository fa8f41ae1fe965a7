//! Hand-built histories for the edge cases random histories rarely reach:
//! files and directories that must disappear, conflicting reverts and the
//! restore fallback, commits that are not there, secrets in URLs.

mod common;

use std::path::Path;

use common::{entries, git, git_raw, open_cache, request};
use rewind_domain::{CommitId, Strategy};
use rewind_git::{BuildOutcome, GitError, GitRepo, GitSettings};

/// A work repository whose commits are pushed to a bare remote.
struct Story {
    dir: tempfile::TempDir,
}

impl Story {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        git(
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", "remote.git"],
        );
        std::fs::create_dir(dir.path().join("work")).unwrap();
        git(&dir.path().join("work"), &["init", "-q", "-b", "main"]);
        Story { dir }
    }

    fn work(&self) -> std::path::PathBuf {
        self.dir.path().join("work")
    }

    fn remote(&self) -> std::path::PathBuf {
        self.dir.path().join("remote.git")
    }

    fn url(&self) -> String {
        format!("file://{}", self.remote().display())
    }

    /// Applies `files` (`None` deletes) and commits; returns the commit id.
    fn commit(&self, message: &str, files: &[(&str, Option<&str>)]) -> String {
        let wt = self.work();
        for (path, content) in files {
            let file = wt.join(path);
            match content {
                Some(text) => {
                    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                    std::fs::write(&file, text).unwrap();
                }
                None => std::fs::remove_file(&file).unwrap(),
            }
        }
        git(&wt, &["add", "-A"]);
        git(&wt, &["commit", "-q", "-m", message]);
        git(
            &wt,
            &[
                "push",
                "-q",
                &self.remote().display().to_string(),
                "HEAD:main",
            ],
        );
        git(&wt, &["rev-parse", "HEAD"])
    }

    fn cache(&self) -> (tempfile::TempDir, GitRepo) {
        let (dir, mut repo) = open_cache(&self.url(), "main");
        repo.fetch().unwrap();
        (dir, repo)
    }
}

const APP: &str = "apps/shop/overlays/prod";

/// The entry at exactly `path`: equal ids mean equal subtrees, empty
/// directories included.
fn ls(dir: &Path, rev: &str, path: &str) -> String {
    entries(dir, rev, &[path.to_string()])
}

#[test]
fn restore_removes_what_the_target_lacks_and_prunes_empty_directories() {
    let s = Story::new();
    let target = s.commit(
        "init",
        &[
            (
                &format!("{APP}/kustomization.yaml"),
                Some("resources: []\n"),
            ),
            (
                "apps/other/overlays/prod/kustomization.yaml",
                Some("x: 1\n"),
            ),
        ],
    );
    s.commit(
        "add extras",
        &[
            (
                &format!("{APP}/extra/deep/cm.yaml"),
                Some("kind: ConfigMap\n"),
            ),
            (
                &format!("{APP}/kustomization.yaml"),
                Some("resources: [extra/deep/cm.yaml]\n"),
            ),
            (
                "apps/other/overlays/prod/kustomization.yaml",
                Some("x: 2\n"),
            ),
        ],
    );
    let (_c, repo) = s.cache();
    let head = repo.head("main").unwrap().unwrap();
    let req = request("shop", APP, head.as_str(), &target, Strategy::Restore);
    let BuildOutcome::Commit(b) = repo.build_rollback_on(&head, &req).unwrap() else {
        panic!("expected a commit");
    };
    let cache = repo.path();
    assert_eq!(ls(cache, b.commit.as_str(), APP), ls(cache, &target, APP));
    assert_eq!(
        ls(cache, b.commit.as_str(), "apps/other"),
        ls(cache, head.as_str(), "apps/other")
    );
    assert_eq!(
        b.changed_paths,
        vec![
            format!("{APP}/extra/deep/cm.yaml"),
            format!("{APP}/kustomization.yaml")
        ]
    );
    assert!(b.shared_paths.is_empty());
}

#[test]
fn restore_of_an_app_created_after_the_target_removes_it() {
    let s = Story::new();
    let target = s.commit("init", &[("README.md", Some("hi\n"))]);
    s.commit(
        "new app",
        &[(
            &format!("{APP}/kustomization.yaml"),
            Some("resources: []\n"),
        )],
    );
    let (_c, repo) = s.cache();
    let head = repo.head("main").unwrap().unwrap();
    let req = request("shop", APP, head.as_str(), &target, Strategy::Restore);
    let BuildOutcome::Commit(b) = repo.build_rollback_on(&head, &req).unwrap() else {
        panic!("expected a commit");
    };
    // Not even an empty `apps/` tree is left behind: the same tree as the
    // target's, byte for byte.
    assert_eq!(
        git(
            repo.path(),
            &["rev-parse", &format!("{}^{{tree}}", b.commit)]
        ),
        git(repo.path(), &["rev-parse", &format!("{target}^{{tree}}")])
    );
}

#[test]
fn nothing_to_change_is_already_on_target() {
    let s = Story::new();
    let target = s.commit("init", &[(&format!("{APP}/k.yaml"), Some("a: 1\n"))]);
    s.commit("elsewhere", &[("README.md", Some("x\n"))]);
    let (_c, repo) = s.cache();
    let head = repo.head("main").unwrap().unwrap();
    for strategy in [Strategy::Restore, Strategy::Revert] {
        let req = request("shop", APP, head.as_str(), &target, strategy);
        assert_eq!(
            repo.build_rollback_on(&head, &req).unwrap(),
            BuildOutcome::AlreadyOnTarget
        );
    }
}

/// C1 touches the app and `docs/notes.txt`; C2 (not the app's) edits the
/// same line of the notes. Reverting C1 alone conflicts, as with git.
fn conflicting_story() -> (Story, String, String) {
    let s = Story::new();
    let target = s.commit(
        "init",
        &[
            (&format!("{APP}/k.yaml"), Some("tag: v1\n")),
            ("docs/notes.txt", Some("line one\n")),
        ],
    );
    let c1 = s.commit(
        "deploy v2",
        &[
            (&format!("{APP}/k.yaml"), Some("tag: v2\n")),
            ("docs/notes.txt", Some("line two\n")),
        ],
    );
    s.commit("notes", &[("docs/notes.txt", Some("line three\n"))]);
    (s, target, c1)
}

#[test]
fn conflicting_revert_is_reported_like_git_revert() {
    let (s, target, c1) = conflicting_story();
    let (_c, repo) = s.cache();
    let head = repo.head("main").unwrap().unwrap();
    let req = request("shop", APP, head.as_str(), &target, Strategy::Revert);
    let err = repo.build_rollback_on(&head, &req).unwrap_err();
    match &err {
        GitError::RevertConflict { commit, paths } => {
            assert_eq!(commit.as_str(), c1);
            assert_eq!(paths, &vec!["docs/notes.txt".to_string()]);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert!(err.to_string().contains("docs/notes.txt"));
    // The referee agrees.
    let wt = s.work();
    let out = git_raw(&wt, &["revert", "--no-edit", &c1]);
    assert!(!out.status.success());
    assert!(git(&wt, &["diff", "--name-only", "--diff-filter=U"]).contains("docs/notes.txt"));
    git(&wt, &["revert", "--abort"]);
}

#[test]
fn conflicting_revert_falls_back_to_restore_when_allowed() {
    let (s, target, _c1) = conflicting_story();
    let (_c, repo) = s.cache();
    let head = repo.head("main").unwrap().unwrap();
    let mut req = request("shop", APP, head.as_str(), &target, Strategy::Revert);
    req.allow_restore_fallback = true;
    let BuildOutcome::Commit(b) = repo.build_rollback_on(&head, &req).unwrap() else {
        panic!("expected a commit");
    };
    assert_eq!(b.strategy_used, Strategy::Restore);
    assert_eq!(b.revert_conflicts, vec!["docs/notes.txt".to_string()]);
    let inputs = vec![APP.to_string()];
    assert_eq!(
        entries(repo.path(), b.commit.as_str(), &inputs),
        entries(repo.path(), &target, &inputs)
    );
    // The notes are the head's: restore touches the app's inputs only.
    assert_eq!(
        git(
            repo.path(),
            &["show", &format!("{}:docs/notes.txt", b.commit)]
        ),
        "line three"
    );
    let body = git(
        repo.path(),
        &["log", "-1", "--format=%B", b.commit.as_str()],
    );
    assert!(body.contains("conflicted in docs/notes.txt"), "{body}");
}

#[test]
fn revert_needs_the_target_in_the_history() {
    let s = Story::new();
    s.commit("init", &[(&format!("{APP}/k.yaml"), Some("a: 1\n"))]);
    let wt = s.work();
    git(&wt, &["checkout", "-q", "-b", "side"]);
    std::fs::write(wt.join(APP).join("k.yaml"), "a: side\n").unwrap();
    git(&wt, &["commit", "-q", "-am", "side"]);
    git(
        &wt,
        &["push", "-q", &s.remote().display().to_string(), "side"],
    );
    let side = git(&wt, &["rev-parse", "HEAD"]);
    git(&wt, &["checkout", "-q", "main"]);
    s.commit("main", &[(&format!("{APP}/k.yaml"), Some("a: 2\n"))]);
    let (_c, repo) = open_cache(&s.url(), "main");
    let mut repo = repo;
    let head = repo.fetch().unwrap();
    // The side branch is not fetched (only main and rewind/*): fetch it
    // through a throw-away ref of the test's own.
    git(
        repo.path(),
        &["fetch", "-q", &s.url(), "side:refs/test/side"],
    );
    let mut req = request("shop", APP, head.as_str(), &side, Strategy::Revert);
    let err = repo.build_rollback_on(&head, &req).unwrap_err();
    assert!(matches!(err, GitError::NotAncestor { .. }), "{err}");
    req.allow_restore_fallback = true;
    let BuildOutcome::Commit(b) = repo.build_rollback_on(&head, &req).unwrap() else {
        panic!("expected a commit");
    };
    assert_eq!(b.strategy_used, Strategy::Restore);
    assert_eq!(
        git(
            repo.path(),
            &["show", &format!("{}:{APP}/k.yaml", b.commit)]
        ),
        "a: side"
    );
}

#[test]
fn unknown_commits_and_bad_paths_are_errors_not_panics() {
    let s = Story::new();
    let target = s.commit("init", &[(&format!("{APP}/k.yaml"), Some("a: 1\n"))]);
    let (_c, repo) = s.cache();
    let head = repo.head("main").unwrap().unwrap();
    let missing = CommitId::new("0123456789abcdef0123456789abcdef01234567").unwrap();
    let req = request(
        "shop",
        APP,
        head.as_str(),
        missing.as_str(),
        Strategy::Restore,
    );
    let err = repo.build_rollback_on(&head, &req).unwrap_err();
    assert!(
        matches!(&err, GitError::CommitNotFound(c) if c == &missing),
        "{err}"
    );
    assert!(!repo.commit_exists(&missing).unwrap());
    assert!(repo.commit_exists(&head).unwrap());
    // A tree id is not a commit.
    let tree = CommitId::new(git(
        repo.path(),
        &["rev-parse", &format!("{head}^{{tree}}")],
    ))
    .unwrap();
    assert!(!repo.commit_exists(&tree).unwrap());
    for bad in ["", "/", "../etc", "apps/../../x", "apps/.git/x"] {
        let req = request("shop", bad, head.as_str(), &target, Strategy::Restore);
        let err = repo.build_rollback_on(&head, &req).unwrap_err();
        assert!(
            matches!(err, GitError::InvalidPath { .. }),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(repo.head("no-such-branch").unwrap(), None);
    assert!(repo.head("bad..name").is_err());
}

#[test]
fn commits_touching_follows_first_parent_history() {
    let s = Story::new();
    let t = s.commit(
        "init",
        &[
            (&format!("{APP}/k.yaml"), Some("a: 1\n")),
            ("README.md", Some("r\n")),
        ],
    );
    let c1 = s.commit("app", &[(&format!("{APP}/k.yaml"), Some("a: 2\n"))]);
    s.commit("readme", &[("README.md", Some("r2\n"))]);
    let c3 = s.commit("app again", &[(&format!("{APP}/new.yaml"), Some("b: 1\n"))]);
    let (_c, repo) = s.cache();
    let head = repo.head("main").unwrap().unwrap();
    let got = repo
        .commits_touching(&[APP.to_string()], &CommitId::new(&t).unwrap(), &head)
        .unwrap();
    assert_eq!(
        got,
        vec![CommitId::new(&c3).unwrap(), CommitId::new(&c1).unwrap()]
    );
    assert!(
        repo.is_ancestor(&CommitId::new(&t).unwrap(), &head)
            .unwrap()
    );
    assert!(
        !repo
            .is_ancestor(&head, &CommitId::new(&t).unwrap())
            .unwrap()
    );
}

#[test]
fn fetch_errors_never_show_credentials() {
    let cache = tempfile::tempdir().unwrap();
    // Port 1 on loopback: refused at once, no traffic leaves the machine.
    let mut settings = GitSettings::new(
        "https://bot:hunter2-password@127.0.0.1:1/acme/gitops.git",
        "main",
        cache.path(),
    );
    settings.token = Some("ghp_token_value_123".into());
    let mut repo = GitRepo::open(settings).unwrap();
    let err = repo.fetch().unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, GitError::Fetch { .. }), "{shown}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("ghp_token"),
        "{shown}"
    );
    assert!(
        shown.contains("https://***@127.0.0.1:1/acme/gitops.git"),
        "{shown}"
    );
    // Nothing secret was written into the cache either.
    let config = std::fs::read_to_string(repo.path().join("config")).unwrap();
    assert!(
        !config.contains("hunter2") && !config.contains("127.0.0.1"),
        "{config}"
    );
}

#[test]
fn missing_remote_and_branch_are_named() {
    let cache = tempfile::tempdir().unwrap();
    let mut repo = GitRepo::open(GitSettings::new(
        "file:///nonexistent/gitops.git",
        "main",
        cache.path(),
    ))
    .unwrap();
    let err = repo.fetch().unwrap_err().to_string();
    assert!(err.contains("file:///nonexistent/gitops.git"), "{err}");

    let s = Story::new();
    s.commit("init", &[("README.md", Some("x\n"))]);
    let (_c, mut repo) = open_cache(&s.url(), "production");
    let err = repo.fetch().unwrap_err();
    assert!(
        matches!(&err, GitError::BranchNotFound { branch, .. } if branch == "production"),
        "{err}"
    );
}

impl Story {
    /// Creates symbolic links (`path` → `target`), then commits.
    fn commit_links(&self, message: &str, links: &[(&str, &str)]) -> String {
        for (path, target) in links {
            let file = self.work().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, &file).unwrap();
        }
        self.commit(message, &[])
    }
}

/// The target has `passwd.yaml -> /etc/passwd` and a link inside the
/// repository; head has neither. Both strategies bring back the inner
/// link and never the outer one.
#[test]
fn a_symlink_pointing_outside_the_repository_is_never_restored() {
    let s = Story::new();
    s.commit(
        "init",
        &[
            (
                &format!("{APP}/kustomization.yaml"),
                Some("resources: []\n"),
            ),
            ("shared/x.yaml", Some("kind: ConfigMap\n")),
        ],
    );
    let target = s.commit_links(
        "links",
        &[
            (&format!("{APP}/passwd.yaml"), "/etc/passwd"),
            (&format!("{APP}/up.yaml"), "../../../../../outside.yaml"),
            (&format!("{APP}/shared.yaml"), "../../../../shared/x.yaml"),
        ],
    );
    s.commit(
        "drop links",
        &[
            (&format!("{APP}/passwd.yaml"), None),
            (&format!("{APP}/up.yaml"), None),
            (&format!("{APP}/shared.yaml"), None),
            (
                &format!("{APP}/kustomization.yaml"),
                Some("resources: [x]\n"),
            ),
        ],
    );
    let (_c, repo) = s.cache();
    let head = repo.head("main").unwrap().unwrap();
    for strategy in [Strategy::Restore, Strategy::Revert] {
        let req = request("shop", APP, head.as_str(), &target, strategy);
        let BuildOutcome::Commit(b) = repo.build_rollback_on(&head, &req).unwrap() else {
            panic!("expected a commit");
        };
        let rev = b.commit.as_str();
        assert_eq!(ls(repo.path(), rev, &format!("{APP}/passwd.yaml")), "");
        assert_eq!(ls(repo.path(), rev, &format!("{APP}/up.yaml")), "");
        assert!(
            ls(repo.path(), rev, &format!("{APP}/shared.yaml")).starts_with("120000 "),
            "{strategy:?}: the link inside the repository is restored"
        );
        assert_eq!(
            b.dropped_links,
            [format!("{APP}/passwd.yaml"), format!("{APP}/up.yaml")],
            "{strategy:?}"
        );
        assert!(!b.changed_paths.contains(&format!("{APP}/passwd.yaml")));
        let message = git(repo.path(), &["log", "-1", "--format=%B", rev]);
        assert!(
            message.contains(&format!("Not restored: {APP}/passwd.yaml, {APP}/up.yaml")),
            "{message}"
        );
    }
}

/// The commit being rolled away from references a path outside the
/// repository: the rollback to a clean target is built all the same.
#[test]
fn a_broken_current_commit_does_not_block_restoring_a_clean_target() {
    let s = Story::new();
    let target = s.commit(
        "init",
        &[
            (
                &format!("{APP}/kustomization.yaml"),
                Some("resources: [cm.yaml]\n"),
            ),
            (
                &format!("{APP}/cm.yaml"),
                Some("kind: ConfigMap\nmetadata: {name: a}\n"),
            ),
        ],
    );
    s.commit(
        "broken",
        &[(
            &format!("{APP}/kustomization.yaml"),
            Some("resources: [cm.yaml, ../../../../../../etc]\n"),
        )],
    );
    let (_c, repo) = s.cache();
    let head = repo.head("main").unwrap().unwrap();
    let req = request("shop", APP, head.as_str(), &target, Strategy::Restore);
    let BuildOutcome::Commit(b) = repo.build_rollback_on(&head, &req).unwrap() else {
        panic!("expected a commit");
    };
    assert_eq!(
        ls(repo.path(), b.commit.as_str(), APP),
        ls(repo.path(), &target, APP)
    );
    assert!(b.config_hash.is_some(), "the clean target has a hash");
}
