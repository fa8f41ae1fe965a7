//! Test support: the git CLI as referee, and GitOps repositories from
//! `shared/tools/gen-gitops-repo`, generated once per test binary.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use rewind_domain::{AppName, CommitId, RollbackId, Strategy};
use rewind_git::{GitRepo, GitSettings, RollbackRequest};
use serde::Deserialize;

/// Runs the git CLI in `dir` and returns stdout; panics with stderr on
/// failure (tests only).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_raw(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

pub fn git_raw(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.com")
        .env("GIT_COMMITTER_NAME", "tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("git runs")
}

#[derive(Debug, Clone, Deserialize)]
pub struct Summary {
    pub head: String,
    pub clusters: Vec<String>,
    pub bases: Vec<String>,
    pub apps: Vec<SummaryApp>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SummaryApp {
    pub name: String,
    pub paths: BTreeMap<String, String>,
    pub base: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub commit: String,
    pub app: Option<String>,
    pub cluster: Option<String>,
    pub kind: String,
    pub base: Option<String>,
}

/// A generated repository: a bare remote and what the generator says of it.
#[derive(Debug)]
pub struct Generated {
    pub remote: PathBuf,
    pub summary: Summary,
    /// Every commit of `main`, oldest first.
    pub commits: Vec<String>,
}

impl Generated {
    pub fn url(&self) -> String {
        format!("file://{}", self.remote.display())
    }

    /// The paths the app of `overlay` reads, by the generator's layout:
    /// the overlay, its app's base, and the shared base it includes.
    pub fn inputs(&self, app: &SummaryApp, cluster: &str) -> Vec<String> {
        let mut inputs = vec![
            app.paths[cluster].clone(),
            format!("apps/{}/base", app.name),
        ];
        if let Some(base) = &app.base {
            inputs.push(base.clone());
        }
        inputs
    }
}

fn tools_dir() -> PathBuf {
    // The copy the workspace carries (tests/tools), else the shared one.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for dir in manifest.ancestors() {
        for candidate in [
            dir.join("tests/tools/gen-gitops-repo"),
            dir.join("shared/tools/gen-gitops-repo"),
        ] {
            if candidate.exists() {
                return candidate;
            }
        }
    }
    PathBuf::from("/work/shared/tools/gen-gitops-repo")
}

/// Runs the generator into `out` (bare) and loads its summary.
pub fn generate(out: &Path, apps: u32, commits: u32, seed: u64) -> Generated {
    let summary_path = out.with_extension("summary.json");
    let status = Command::new("python3")
        .arg(tools_dir())
        .arg(out)
        .args(["--apps", &apps.to_string()])
        .args(["--commits", &commits.to_string()])
        .args(["--seed", &seed.to_string()])
        .arg("--bare")
        .arg("--summary")
        .arg(&summary_path)
        .status()
        .expect("gen-gitops-repo runs");
    assert!(status.success(), "gen-gitops-repo failed");
    let summary: Summary = serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    let commits = git(out, &["rev-list", "--reverse", "--first-parent", "main"])
        .lines()
        .map(String::from)
        .collect();
    Generated {
        remote: out.to_path_buf(),
        summary,
        commits,
    }
}

/// A handful of repositories, generated once per test binary, never
/// written to by tests (tests that push clone them first).
pub fn corpus() -> &'static [Generated] {
    static CORPUS: OnceLock<(tempfile::TempDir, Vec<Generated>)> = OnceLock::new();
    let (_, repos) = CORPUS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let repos = [(1u64, 24u32, 240u32), (2, 40, 400), (3, 16, 300)]
            .into_iter()
            .map(|(seed, apps, commits)| {
                generate(
                    &dir.path().join(format!("seed-{seed}.git")),
                    apps,
                    commits,
                    seed,
                )
            })
            .collect();
        (dir, repos)
    });
    repos
}

/// A cache over `remote` in a fresh directory.
pub fn open_cache(url: &str, branch: &str) -> (tempfile::TempDir, GitRepo) {
    let cache = tempfile::tempdir().unwrap();
    let mut settings = GitSettings::new(url, branch, cache.path());
    settings.author_name = "rewind-bot".into();
    settings.author_email = "rewind@example.com".into();
    let repo = GitRepo::open(settings).unwrap();
    (cache, repo)
}

/// A writable copy of a generated remote.
pub fn clone_bare(from: &Path, to: &Path) {
    let out = git_raw(
        Path::new("/"),
        &[
            "clone",
            "--bare",
            "-q",
            &from.display().to_string(),
            &to.display().to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn request(
    app: &str,
    app_path: &str,
    from: &str,
    to: &str,
    strategy: Strategy,
) -> RollbackRequest {
    RollbackRequest {
        rollback_id: RollbackId::generate(),
        app: AppName::new(app).unwrap(),
        cluster: rewind_domain::ClusterName::default(),
        app_path: app_path.to_string(),
        from: CommitId::new(from).unwrap(),
        to: CommitId::new(to).unwrap(),
        to_cluster_revision: Some(7),
        reason: "referee".into(),
        strategy,
        allow_restore_fallback: false,
        target_config_hash: None,
    }
}

/// `git ls-tree <rev> -- <paths>`: the entries at exactly those paths.
pub fn entries(dir: &Path, rev: &str, paths: &[String]) -> String {
    let mut args = vec!["ls-tree", rev, "--"];
    args.extend(paths.iter().map(String::as_str));
    git(dir, &args)
}

/// A small deterministic generator for picking cases (no extra crates).
#[derive(Debug)]
pub struct Pick(u64);

impl Pick {
    pub fn new(seed: u64) -> Self {
        Pick(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// How many referee cases to run: `REWIND_REFEREE_CASES`, or `default`.
pub fn case_count(default: usize) -> usize {
    std::env::var("REWIND_REFEREE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
