//! The fleet-scale benches' repository: 2,000 apps, 20,000 commits,
//! generated once by `tools/gen-gitops-repo` into `$REWIND_BENCH_DIR`
//! (default `/tmp/rewind-bench`; about 50 s) and reused, with the
//! generator's summary and its Argo CD deploy log (every app on two
//! clusters: 4,000 Argo CD apps).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};
use serde::Deserialize;

pub const APPS: usize = 2000;
pub const COMMITS: usize = 20000;

/// The generated repository, its summary and its Argo CD deploy log.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub bare: PathBuf,
    pub summary: PathBuf,
    pub deploy_log: PathBuf,
}

/// The generator's summary: its apps and the kind of each commit.
#[derive(Debug, Deserialize)]
pub struct Summary {
    pub apps: Vec<SummaryApp>,
    pub events: Vec<SummaryEvent>,
}

#[derive(Debug, Deserialize)]
pub struct SummaryApp {
    pub name: String,
    pub base: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SummaryEvent {
    pub commit: String,
    pub kind: String,
}

/// One line of the deploy log: Argo CD app `<app>-<cluster>` deployed
/// `revision` as its history entry `history_id`.
#[derive(Deserialize, Clone, Debug)]
pub struct DeployLine {
    pub app: String,
    pub history_id: i64,
    pub revision: String,
    pub path: String,
}

impl Fixture {
    /// The repository, generated first when missing.
    pub fn ensure() -> anyhow::Result<Fixture> {
        let dir = std::env::var_os("REWIND_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/rewind-bench"));
        let name = format!("alert-pr-{APPS}");
        let fixture = Fixture {
            bare: dir.join(format!("{name}.git")),
            summary: dir.join(format!("{name}.summary.json")),
            deploy_log: dir.join(format!("{name}.deploy.jsonl")),
        };
        if fixture.bare.join("HEAD").exists() && fixture.deploy_log.exists() {
            return Ok(fixture);
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let partial = dir.join(format!("{name}.partial"));
        if partial.exists() {
            std::fs::remove_dir_all(&partial)?;
        }
        let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/gen-gitops-repo");
        eprintln!(
            "generating {} ({APPS} apps, {COMMITS} commits; about a minute)",
            fixture.bare.display()
        );
        let status = Command::new(&tool)
            .arg(&partial)
            .args([
                "--apps",
                &APPS.to_string(),
                "--commits",
                &COMMITS.to_string(),
            ])
            .args(["--seed", "1", "--bare", "--summary"])
            .arg(&fixture.summary)
            .arg("--deploy-log")
            .arg(&fixture.deploy_log)
            .status()
            .with_context(|| format!("run {}", tool.display()))?;
        ensure!(status.success(), "{} failed: {status}", tool.display());
        if fixture.bare.exists() {
            std::fs::remove_dir_all(&fixture.bare)?;
        }
        std::fs::rename(&partial, &fixture.bare)?;
        Ok(fixture)
    }

    pub fn summary(&self) -> anyhow::Result<Summary> {
        serde_json::from_reader(std::io::BufReader::new(
            std::fs::File::open(&self.summary)
                .with_context(|| format!("open {}", self.summary.display()))?,
        ))
        .with_context(|| format!("parse {}", self.summary.display()))
    }

    /// The last `n` deploy-log lines of every Argo CD app, oldest first,
    /// by app.
    pub fn last_deploys(&self, n: usize) -> anyhow::Result<BTreeMap<String, Vec<DeployLine>>> {
        let file = std::fs::File::open(&self.deploy_log)
            .with_context(|| format!("open {}", self.deploy_log.display()))?;
        let mut last: BTreeMap<String, Vec<DeployLine>> = BTreeMap::new();
        for line in std::io::BufReader::new(file).lines() {
            let line: DeployLine = serde_json::from_str(&line?).context("deploy log line")?;
            let entry = last.entry(line.app.clone()).or_default();
            entry.push(line);
            if entry.len() > n {
                entry.remove(0);
            }
        }
        Ok(last)
    }
}
