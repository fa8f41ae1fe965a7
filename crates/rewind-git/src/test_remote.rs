//! Test fixture shared by the unit tests that need a real remote: a bare
//! repository and a work tree with one commit on `main`, driven by the git
//! CLI (the referee, not the code under test).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `git` in `dir` with a fixed identity; panics with git's stderr on
/// failure. Returns trimmed stdout.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `remote.git` (bare) and `work` (one commit `a` on `main`, not pushed)
/// inside `dir`.
pub(crate) struct TestRemote {
    pub remote: PathBuf,
    pub work: PathBuf,
}

impl TestRemote {
    pub(crate) fn new(dir: &Path) -> TestRemote {
        git(dir, &["init", "-q", "--bare", "-b", "main", "remote.git"]);
        git(dir, &["init", "-q", "-b", "main", "work"]);
        let work = dir.join("work");
        std::fs::write(work.join("a.txt"), "a\n").unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", "a"]);
        TestRemote {
            remote: dir.join("remote.git"),
            work,
        }
    }
}
