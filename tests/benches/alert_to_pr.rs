//! From a firing alert delivered to rewind until the pull request reaches
//! the forge, on a 2,000-app / 20,000-commit GitOps repository, against a
//! shell script doing the same steps with the git CLI and curl
//! (`alert_to_pr_cli.sh`), for the same apps in the same run.
//!
//! rewind runs as in production: real workers and clock, SQLite ledger,
//! repository cache over file://, the strict fake GitHub on loopback (it
//! answers at once). Each app first reports (Argo CD webhooks) a healthy
//! revision, which the clock makes known good, then a degraded newer one
//! whose app inputs differ; then one critical alert per app, one at a time.
//! Latency is from sending the alert until the fake receives
//! `POST /repos/{owner}/{repo}/pulls` (its request log stamps arrivals).
//! Where the time goes: span durations of the real path (a tracing layer),
//! and a pass that calls the engine's Git and manifest pieces directly.
//!
//! `cargo bench -p rewind-tests --bench alert_to_pr`. The repository is
//! generated once into `$REWIND_BENCH_DIR` (default `/tmp/rewind-bench`)
//! with `tests/tools/gen-gitops-repo` (about 50 s) and reused.
//! `REWIND_BENCH_ALERTS` (default 100) apps are rolled back and measured,
//! after `REWIND_BENCH_FINISHED` (default 100) others were rolled back,
//! cancelled and their branches deleted by retention (a service with
//! history behind it);
//! `REWIND_BENCH_KNOWN_APPS` (default all 4,000 Argo CD apps of the
//! repository, 2,000 apps × 2 clusters) are registered with rewind first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::Utc;
use futures::StreamExt;
use rewind_config::{ForgeKind, HumanDuration, Secret, SecretUrl, Settings};
use rewind_domain::{AppName, AppRef, ClusterName, CommitId, RollbackId, RollbackState, Strategy};
use rewind_forge::fake::{FakeGitHub, FakeOptions};
use rewind_git::RollbackRequest;
use rewind_ingest::samples::{HistoryEntry, alertmanager_notification, argocd_notification};
use rewind_ledger::Ledger;
use rewind_ledger::testing::TestDatabase;
use rewind_server::{Service, ServiceOptions};
use rewind_tests::fleet_repo::{APPS, COMMITS, DeployLine, Fixture};
use rewind_tests::{ALERTMANAGER_TOKEN, ARGOCD_TOKEN};
use tracing_subscriber::layer::SubscriberExt;

const OWNER: &str = "acme";
const REPO: &str = "gitops";
const TOKEN: &str = "ghs_benchtoken";
/// Longest wait for one PR; far above any real latency, so a stuck
/// rollback fails the run with its state instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let spans = SpanTimes::install()?;
    let alerts = env_usize("REWIND_BENCH_ALERTS", 100)?;
    let finished = env_usize("REWIND_BENCH_FINISHED", 100)?;
    let fixture = Fixture::ensure()?;
    let (cases, known) = fixture.cases(alerts + finished)?;
    let known = known.min(env_usize("REWIND_BENCH_KNOWN_APPS", usize::MAX)?);
    let mut bench = Bench::start(&fixture, &cases, known).await?;
    bench.register(known).await?;
    bench.finish_some(finished).await?;

    let pulls = format!("/repos/{OWNER}/{REPO}/pulls");
    let mut rewind = Vec::new();
    let mut cli = Vec::new();
    spans.reset();
    for (i, case) in bench.cases.clone().iter().enumerate() {
        // Alternate who goes first, so neither always finds the caches the
        // other just warmed.
        if i % 2 == 0 {
            rewind.push(bench.alert_to_pr(case, &pulls).await?);
            cli.push(bench.script(case, &pulls).await?);
        } else {
            cli.push(bench.script(case, &pulls).await?);
            rewind.push(bench.alert_to_pr(case, &pulls).await?);
        }
    }
    let span_report = spans.take();
    let same_trees = bench.compare_trees()?;
    let phases = bench.phases(20.min(bench.cases.len())).await?;
    report(&bench, &rewind, &cli, &span_report, &phases, same_trees);
    bench.finish().await;
    Ok(())
}

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a count")),
        Err(_) => Ok(default),
    }
}

/// One app to roll back: from `current` (the repository head's
/// configuration) to `good`, the deployment before it.
#[derive(Clone, Debug)]
struct Case {
    /// The Argo CD application (`<app>-<cluster>`).
    app: String,
    path: String,
    /// What the script restores: overlay, app base, shared base.
    inputs: Vec<String>,
    good: DeployLine,
    current: DeployLine,
    /// The generator's kind of the change being rolled back.
    kind: String,
    /// Whether the rollback changes files outside the app's own path (its
    /// base, a shared base): then rewind looks for other apps reading them.
    outside: bool,
}

/// The bench's choice of apps to roll back.
trait Cases {
    fn cases(&self, n: usize) -> anyhow::Result<(Vec<Case>, usize)>;
}

impl Cases for Fixture {
    /// `n` apps to roll back, spread over the repository, and how many Argo
    /// CD apps the repository has in all. Each app's last change must
    /// change its configuration (not only formatting), so the rollback has
    /// something to do.
    fn cases(&self, n: usize) -> anyhow::Result<(Vec<Case>, usize)> {
        let summary = self.summary()?;
        let kinds: HashMap<&str, &str> = summary
            .events
            .iter()
            .map(|e| (e.commit.as_str(), e.kind.as_str()))
            .collect();
        let bases: HashMap<&str, Option<&str>> = summary
            .apps
            .iter()
            .map(|a| (a.name.as_str(), a.base.as_deref()))
            .collect();
        let last_two = self.last_deploys(2)?;
        let known = last_two.len();
        let repo = git2::Repository::open_bare(&self.bare)?;
        let entry = |commit: &str, path: &str| -> anyhow::Result<Option<git2::Oid>> {
            let tree = repo.find_commit(git2::Oid::from_str(commit)?)?.tree()?;
            Ok(tree.get_path(Path::new(path)).ok().map(|e| e.id()))
        };
        let mut seen = HashSet::new();
        let mut candidates = Vec::new();
        for (app, lines) in &last_two {
            let [good, current] = lines.as_slice() else {
                continue;
            };
            let kind = kinds.get(current.revision.as_str()).copied().unwrap_or("");
            let name = current
                .path
                .strip_prefix("apps/")
                .and_then(|p| p.split('/').next())
                .with_context(|| format!("{app}: unexpected path {}", current.path))?;
            // One cluster per app, so every rollback touches other files.
            if kind == "format" || !seen.insert(name.to_string()) {
                continue;
            }
            let mut inputs = vec![current.path.clone(), format!("apps/{name}/base")];
            if let Some(Some(base)) = bases.get(name) {
                inputs.push(base.to_string());
            }
            let mut outside = false;
            for input in &inputs[1..] {
                outside |= entry(&good.revision, input)? != entry(&current.revision, input)?;
            }
            candidates.push(Case {
                outside,
                app: app.clone(),
                path: current.path.clone(),
                inputs,
                good: good.clone(),
                current: current.clone(),
                kind: kind.to_string(),
            });
        }
        ensure!(
            candidates.len() >= n,
            "only {} apps qualify, {n} asked",
            candidates.len()
        );
        let stride = candidates.len() / n;
        Ok((
            candidates.into_iter().step_by(stride).take(n).collect(),
            known,
        ))
    }
}

/// The running rewind, fake GitHub, the bare remote and the script's clone.
struct Bench {
    _dir: tempfile::TempDir,
    remote: PathBuf,
    worktree: PathBuf,
    db: Option<TestDatabase>,
    fake: FakeGitHub,
    service: Option<Service>,
    client: reqwest::Client,
    fixture_deploy_log: PathBuf,
    cases: Vec<Case>,
    /// Measured alerts: rewind's rollback branch per app.
    branches: HashMap<String, String>,
    /// Rollbacks finished (and their branches deleted) before measuring.
    behind: usize,
    setup: Duration,
}

/// One measured rollback.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Until the create-PR request arrived at the forge.
    to_pr: Duration,
    /// rewind: until the webhook's 202. The script: unused.
    ack: Duration,
    /// rewind: until the first forge request (the lookup of an open PR
    /// for the branch). The script: until it exited.
    other: Duration,
}

impl Bench {
    async fn start(fixture: &Fixture, cases: &[Case], known: usize) -> anyhow::Result<Bench> {
        let started = Instant::now();
        let dir = tempfile::tempdir()?;
        let remote = dir.path().join("gitops.git");
        let worktree = dir.path().join("work");
        // A hard-linked copy: pushes land in the copy, the cached
        // repository stays pristine.
        git(
            None,
            &[
                "clone",
                "-q",
                "--bare",
                &fixture.bare.display().to_string(),
                &remote.display().to_string(),
            ],
        )?;
        git(
            None,
            &[
                "clone",
                "-q",
                &remote.display().to_string(),
                &worktree.display().to_string(),
            ],
        )?;
        git(
            Some(&worktree),
            &["config", "user.name", "On-call Engineer"],
        )?;
        git(
            Some(&worktree),
            &["config", "user.email", "oncall@example.com"],
        )?;

        let fake = FakeGitHub::start(FakeOptions::new(OWNER, REPO, remote.clone(), TOKEN))
            .await
            .context("fake GitHub starts")?;
        let db = TestDatabase::sqlite();
        let mut settings = Settings::defaults().context("default settings")?;
        settings.server.listen = "127.0.0.1:0".parse()?;
        settings.database.url = SecretUrl::new(db.url());
        settings.git.url = SecretUrl::new(remote.display().to_string());
        settings.git.cache_dir = dir.path().join("cache");
        settings.webhooks.argocd_token = Some(Secret::new(ARGOCD_TOKEN));
        settings.webhooks.alertmanager_token = Some(Secret::new(ALERTMANAGER_TOKEN));
        // Known good as soon as the clock sees it healthy.
        settings.policy.healthy_for = HumanDuration::from_secs(0);
        // Finished rollbacks' branches go at the next retention pass.
        settings.retention.branches = HumanDuration::from_secs(1);
        let forge = &mut settings.forge;
        forge.kind = ForgeKind::Github;
        forge.api_url = Some(fake.url().to_string());
        forge.owner = Some(OWNER.into());
        forge.repo = Some(REPO.into());
        forge.token = Some(Secret::new(TOKEN));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let service = Service::start(
            settings,
            listener,
            ServiceOptions {
                workers: 2,
                poll: Duration::from_millis(50),
                // Production's clock rate; the bench runs the clock itself
                // where it must (known-good promotion).
                tick: ServiceOptions::default().tick,
                manual: false,
            },
        )
        .await
        .context("rewind starts")?;
        eprintln!(
            "{} alerts, {known} Argo CD apps known to rewind; copies ready in {:.1} s",
            cases.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(Bench {
            _dir: dir,
            remote,
            worktree,
            db: Some(db),
            fake,
            service: Some(service),
            client: reqwest::Client::new(),
            fixture_deploy_log: fixture.deploy_log.clone(),
            cases: cases.to_vec(),
            branches: HashMap::new(),
            behind: 0,
            setup: started.elapsed(),
        })
    }

    fn service(&self) -> &Service {
        self.service.as_ref().expect("service runs until finish")
    }

    fn ledger(&self) -> &Arc<dyn Ledger> {
        self.service().engine.ledger()
    }

    /// Argo CD reports every known app (its last deployment, Healthy), and
    /// for the measured ones first the good revision, then the newer one,
    /// Degraded. The clock makes the good ones known good in between.
    async fn register(&mut self, known: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        let measured: HashMap<&str, &Case> =
            self.cases.iter().map(|c| (c.app.as_str(), c)).collect();
        let mut last: BTreeMap<String, DeployLine> = BTreeMap::new();
        let file = std::fs::File::open(&self.fixture_deploy_log)?;
        for line in std::io::BufReader::new(file).lines() {
            let line: DeployLine = serde_json::from_str(&line?)?;
            last.insert(line.app.clone(), line);
        }
        let others: Vec<DeployLine> = last
            .into_values()
            .filter(|l| !measured.contains_key(l.app.as_str()))
            .take(known.saturating_sub(self.cases.len()))
            .collect();
        let t_good = Utc::now() - chrono::Duration::hours(2);
        let t_bad = Utc::now() - chrono::Duration::hours(1);
        let entry = |line: &DeployLine, at| HistoryEntry {
            id: line.history_id,
            revision: line.revision.clone(),
            deployed_at: at,
        };

        let first: Vec<(String, i64, serde_json::Value)> = self
            .cases
            .iter()
            .map(|c| (&c.good, vec![entry(&c.good, t_good)], "Healthy"))
            .chain(
                others
                    .iter()
                    .map(|l| (l, vec![entry(l, t_good)], "Healthy")),
            )
            .map(|(line, history, health)| {
                (
                    line.app.clone(),
                    line.history_id,
                    self.argocd(line, &history, health),
                )
            })
            .collect();
        self.deploy_all(&first).await?;
        self.service().engine.tick(Utc::now()).await?;
        for case in &self.cases {
            let app = in_cluster(&case.app)?;
            let current = self.ledger().current_deployment(&app).await?;
            ensure!(
                current.as_ref().is_some_and(|d| d.known_good),
                "{}: revision {} did not become known good: {current:?}",
                case.app,
                case.good.history_id
            );
        }
        let second: Vec<(String, i64, serde_json::Value)> = self
            .cases
            .iter()
            .map(|c| {
                let history = vec![entry(&c.good, t_good), entry(&c.current, t_bad)];
                (
                    c.app.clone(),
                    c.current.history_id,
                    self.argocd(&c.current, &history, "Degraded"),
                )
            })
            .collect();
        self.deploy_all(&second).await?;
        eprintln!(
            "registered {} apps ({} deploy events) in {:.1} s",
            first.len(),
            first.len() + second.len(),
            started.elapsed().as_secs_f64()
        );
        self.setup += started.elapsed();
        Ok(())
    }

    fn argocd(
        &self,
        line: &DeployLine,
        history: &[HistoryEntry],
        health: &str,
    ) -> serde_json::Value {
        argocd_notification(
            "on-deployed",
            &line.app,
            &self.remote.display().to_string(),
            &line.path,
            history,
            health,
        )
    }

    /// Delivers the events (a few at a time, as Argo CD's notifications
    /// controller does), then waits until rewind resolved each one.
    async fn deploy_all(&self, events: &[(String, i64, serde_json::Value)]) -> anyhow::Result<()> {
        let url = format!("{}/webhooks/argocd", self.service().url());
        let client = &self.client;
        let mut sends = futures::stream::iter(events)
            .map(|(app, _, body)| {
                let url = &url;
                async move {
                    let response = client
                        .post(url)
                        .bearer_auth(ARGOCD_TOKEN)
                        .json(body)
                        .send()
                        .await?;
                    ensure!(
                        response.status() == reqwest::StatusCode::ACCEPTED,
                        "Argo CD event for {app}: {}",
                        response.status()
                    );
                    Ok(())
                }
            })
            .buffer_unordered(8);
        while let Some(result) = sends.next().await {
            result?;
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        for (app, revision, _) in events {
            let name = in_cluster(app)?;
            loop {
                let current = self.ledger().current_deployment(&name).await?;
                if current
                    .as_ref()
                    .is_some_and(|d| d.cluster_revision == *revision && d.config_hash.is_some())
                {
                    break;
                }
                ensure!(
                    Instant::now() < deadline,
                    "{app}: revision {revision} not resolved: {current:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// The history a service in production has behind it: the first `n`
    /// cases are rolled back (alert → PR) and cancelled, and retention
    /// deletes their branches; the rest are the measured cases.
    async fn finish_some(&mut self, n: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        let pulls = format!("/repos/{OWNER}/{REPO}/pulls");
        let behind: Vec<Case> = self.cases.drain(..n.min(self.cases.len())).collect();
        for case in &behind {
            self.alert_to_pr(case, &pulls).await?;
            let app = in_cluster(&case.app)?;
            let open = self
                .ledger()
                .open_rollback(&app)
                .await?
                .with_context(|| format!("{}: no open rollback", case.app))?;
            self.service()
                .engine
                .cancel(open.id, "bench", "api")
                .await?;
        }
        // Retention keeps a finished rollback's branch one second here.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let report = self.service().engine.apply_retention(Utc::now()).await?;
        eprintln!(
            "{} rollbacks finished behind the measured ones, {} branches deleted by retention, in {:.1} s",
            behind.len(),
            report.branches_deleted.len(),
            started.elapsed().as_secs_f64()
        );
        self.behind = behind.len();
        self.setup += started.elapsed();
        Ok(())
    }

    /// One critical alert for the case's app; answers when the PR request
    /// reached the forge, after checking it is this app's rollback branch.
    async fn alert_to_pr(&mut self, case: &Case, pulls: &str) -> anyhow::Result<Sample> {
        let body = alertmanager_notification(
            "firing",
            "HighErrorRate",
            &case.app,
            "critical",
            "5xx ratio above 5%",
            Utc::now(),
            &format!("fp-{}", case.app),
        );
        let url = format!("{}/webhooks/alertmanager", self.service().url());
        self.fake.clear_requests();
        let sent = Instant::now();
        let response = self
            .client
            .post(&url)
            .bearer_auth(ALERTMANAGER_TOKEN)
            .json(&body)
            .send()
            .await?;
        let ack = sent.elapsed();
        ensure!(
            response.status() == reqwest::StatusCode::ACCEPTED,
            "alert for {}: {}",
            case.app,
            response.status()
        );
        let (first, create) = loop {
            let requests = self.fake.requests();
            if let Some(create) = requests
                .iter()
                .find(|r| r.method == "POST" && r.path == pulls)
            {
                break (requests[0].at, create.clone());
            }
            if sent.elapsed() > PATIENCE {
                let open = self.ledger().open_rollback(&in_cluster(&case.app)?).await?;
                bail!(
                    "{}: no pull request after {PATIENCE:?}; open rollback: {open:#?}",
                    case.app
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let head = create
            .json()
            .and_then(|v| v["head"].as_str().map(str::to_owned))
            .unwrap_or_default();
        // Let the step finish (labels, ledger), so the next alert starts
        // from a quiet service.
        let app = in_cluster(&case.app)?;
        loop {
            let open = self.ledger().open_rollback(&app).await?;
            if let Some(rollback) = &open
                && rollback.state == RollbackState::PrOpen
            {
                ensure!(
                    rollback.branch.as_deref() == Some(head.as_str()),
                    "{}: the PR's head {head} is not the rollback's branch {:?}",
                    case.app,
                    rollback.branch
                );
                break;
            }
            ensure!(
                sent.elapsed() < PATIENCE,
                "{}: rollback not pr_open: {open:#?}",
                case.app
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.branches.insert(case.app.clone(), head);
        Ok(Sample {
            to_pr: create.at.duration_since(sent),
            ack,
            other: first.duration_since(sent),
        })
    }

    /// The baseline script for the same app and target.
    async fn script(&self, case: &Case, pulls: &str) -> anyhow::Result<Sample> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/alert_to_pr_cli.sh");
        let branch = format!("cli/{}", case.app);
        self.fake.clear_requests();
        let sent = Instant::now();
        let output = tokio::process::Command::new("bash")
            .arg(&script)
            .arg(&self.worktree)
            .arg(&branch)
            .arg(&case.good.revision)
            .arg(self.fake.url())
            .args([OWNER, REPO])
            .arg(format!("Roll back {}", case.app))
            .args(&case.inputs)
            .env("GITHUB_TOKEN", TOKEN)
            .output()
            .await?;
        let exited = sent.elapsed();
        ensure!(
            output.status.success(),
            "{} failed for {}: {}\n{}",
            script.display(),
            case.app,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let requests = self.fake.requests();
        let create = requests
            .iter()
            .find(|r| r.method == "POST" && r.path == pulls && r.status == 201)
            .with_context(|| format!("the script opened no PR for {}", case.app))?;
        Ok(Sample {
            to_pr: create.at.duration_since(sent),
            ack: Duration::ZERO,
            other: exited,
        })
    }

    /// How many rewind branches have exactly the tree the script committed:
    /// both did the same work.
    fn compare_trees(&self) -> anyhow::Result<usize> {
        let repo = git2::Repository::open_bare(&self.remote)?;
        let tree = |branch: &str| -> anyhow::Result<git2::Oid> {
            Ok(repo
                .find_branch(branch, git2::BranchType::Local)?
                .get()
                .peel_to_tree()?
                .id())
        };
        let mut same = 0;
        for case in &self.cases {
            let ours = tree(&self.branches[&case.app])?;
            let theirs = tree(&format!("cli/{}", case.app))?;
            if ours == theirs {
                same += 1;
            } else {
                let (a, b) = (repo.find_tree(ours)?, repo.find_tree(theirs)?);
                let diff = repo.diff_tree_to_tree(Some(&b), Some(&a), None)?;
                let paths: Vec<String> = diff
                    .deltas()
                    .filter_map(|d| d.new_file().path().map(|p| p.display().to_string()))
                    .take(5)
                    .collect();
                eprintln!(
                    "{}: rewind's tree differs from the script's in {paths:?}",
                    case.app
                );
            }
        }
        Ok(same)
    }

    /// The proposal's pieces, called directly on the service's repository
    /// cache for `n` apps (after the measured run): what each costs.
    async fn phases(&self, n: usize) -> anyhow::Result<Vec<(&'static str, Vec<Duration>)>> {
        let engine = &self.service().engine;
        let git = engine.git();
        let mut times: Vec<(&'static str, Vec<Duration>)> = [
            "fetch (no change)",
            "head snapshot: config hash + images",
            "ledger: app paths (other apps)",
            "build_rollback_on (commit on the fetched head)",
            "semantic diff",
            "rollback risks, change within the app's path",
            "rollback risks, change also outside (warm inputs cache)",
            "push_rollback (push)",
        ]
        .into_iter()
        .map(|name| (name, Vec::new()))
        .collect();
        // One cache across the apps, as the engine keeps one across
        // proposals: the first call fills it (the p99), the others reuse it.
        let inputs = Arc::new(Mutex::new(rewind_manifest::InputsCache::new()));
        // Half with changes outside the app's path, half without.
        let picked = self
            .cases
            .iter()
            .filter(|c| c.outside)
            .take(n / 2)
            .chain(self.cases.iter().filter(|c| !c.outside).take(n / 2));
        for case in picked {
            let app = AppName::new(&case.app)?;
            let path = case.path.clone();
            let t = Instant::now();
            let head = git.fetch().await?;
            times[0].1.push(t.elapsed());

            let t = Instant::now();
            let (h, p) = (head.clone(), path.clone());
            git.with_repo(move |repo| {
                let tree = repo.tree(&h)?;
                let hash = rewind_manifest::config_hash(&tree, &p);
                let images = rewind_manifest::images(&tree, &p);
                Ok((hash.is_ok(), images.is_ok()))
            })
            .await?;
            times[1].1.push(t.elapsed());

            let t = Instant::now();
            let others: Vec<(String, String)> = self
                .ledger()
                .app_paths()
                .await?
                .into_iter()
                .filter(|(other, _)| other.name != app)
                .map(|(name, path)| (name.to_string(), path))
                .collect();
            times[2].1.push(t.elapsed());

            let id = RollbackId::generate();
            let t = Instant::now();
            let built = git
                .build_rollback_on(
                    &head,
                    RollbackRequest {
                        rollback_id: id,
                        app: app.clone(),
                        cluster: ClusterName::in_cluster(),
                        app_path: path.clone(),
                        from: CommitId::new(&case.current.revision)?,
                        to: CommitId::new(&case.good.revision)?,
                        to_cluster_revision: Some(case.good.history_id),
                        reason: "phase timing".into(),
                        strategy: Strategy::Restore,
                        allow_restore_fallback: true,
                        target_config_hash: None,
                    },
                )
                .await?;
            times[3].1.push(t.elapsed());
            let rewind_git::BuildOutcome::Commit(built) = built else {
                bail!("{}: already on target", case.app);
            };

            let (from, to, p) = (built.parent.clone(), built.commit.clone(), path.clone());
            let inputs = Arc::clone(&inputs);
            let (diff, risks) = git
                .with_repo(move |repo| {
                    let mut inputs = inputs.lock().expect("inputs cache");
                    let (from, to) = (repo.tree(&from)?, repo.tree(&to)?);
                    let t = Instant::now();
                    let _ = rewind_manifest::semantic_diff(&from, &to, &p);
                    let diff = t.elapsed();
                    let t = Instant::now();
                    let _ = rewind_manifest::rollback_risks_cached(
                        &from,
                        &to,
                        &p,
                        &others,
                        &mut inputs,
                    );
                    Ok((diff, t.elapsed()))
                })
                .await?;
            times[4].1.push(diff);
            times[if case.outside { 6 } else { 5 }].1.push(risks);

            let t = Instant::now();
            git.push_rollback(&app, &id, &built.commit).await?;
            times[7].1.push(t.elapsed());
        }
        Ok(times)
    }

    async fn finish(mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown(Duration::from_secs(2)).await;
        }
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }
}

fn git(dir: Option<&Path>, args: &[&str]) -> anyhow::Result<()> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.args(args).output().context("run git")?;
    ensure!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn report(
    bench: &Bench,
    rewind: &[Sample],
    cli: &[Sample],
    spans: &BTreeMap<&'static str, Vec<Duration>>,
    phases: &[(&'static str, Vec<Duration>)],
    same_trees: usize,
) {
    let n = rewind.len();
    let column = |samples: &[Sample], pick: fn(&Sample) -> Duration| -> Vec<Duration> {
        samples.iter().map(pick).collect()
    };
    let (r, c) = (column(rewind, |s| s.to_pr), column(cli, |s| s.to_pr));
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &bench.cases {
        *kinds.entry(case.kind.as_str()).or_default() += 1;
    }
    println!(
        "\nalert → create-PR request at the forge: {n} apps ({kinds:?}), {APPS} apps / {COMMITS} commits, {} finished rollbacks behind, setup {:.1} s",
        bench.behind,
        bench.setup.as_secs_f64()
    );
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>10}",
        "", "p50", "p90", "p99", "max"
    );
    let row = |name: &str, samples: &[Duration]| {
        println!(
            "{name:<34} {:>10} {:>10} {:>10} {:>10}",
            ms(quantile(samples, 0.5)),
            ms(quantile(samples, 0.9)),
            ms(quantile(samples, 0.99)),
            ms(quantile(samples, 1.0)),
        );
    };
    row("rewind: alert → PR request", &r);
    row("  webhook 202", &column(rewind, |s| s.ack));
    row("  first forge request", &column(rewind, |s| s.other));
    for (label, outside) in [
        ("  rollback within the app's path", false),
        ("  rollback also outside it", true),
    ] {
        let picked: Vec<Duration> = rewind
            .iter()
            .zip(&bench.cases)
            .filter(|(_, case)| case.outside == outside)
            .map(|(s, _)| s.to_pr)
            .collect();
        if !picked.is_empty() {
            row(&format!("{label} ({})", picked.len()), &picked);
        }
    }
    row("git CLI + curl script → PR request", &c);
    row("  script exit", &column(cli, |s| s.other));
    let ratio = |q| quantile(&c, q).as_secs_f64() / quantile(&r, q).as_secs_f64();
    println!(
        "script / rewind: p50 {:.1}×, p99 {:.1}×; identical trees {same_trees}/{n}",
        ratio(0.5),
        ratio(0.99)
    );
    println!("\nspans on rewind's path (per alert: count, mean each, p50 of per-span times)");
    for (name, times) in spans {
        let total: Duration = times.iter().sum();
        println!(
            "  {name:<28} {:>5.2}× {:>10} {:>10}",
            times.len() as f64 / n as f64,
            ms(total / times.len().max(1) as u32),
            ms(quantile(times, 0.5)),
        );
    }
    println!(
        "\nproposal pieces called directly ({} apps): p50, p99",
        phases.first().map_or(0, |p| p.1.len())
    );
    for (name, times) in phases {
        println!(
            "  {name:<58} {:>10} {:>10}",
            ms(quantile(times, 0.5)),
            ms(quantile(times, 0.99))
        );
    }
}

/// Durations of rewind's instrumented spans (creation to close), by name.
#[derive(Clone, Default)]
struct SpanTimes(Arc<Mutex<BTreeMap<&'static str, Vec<Duration>>>>);

struct Opened(Instant);

impl SpanTimes {
    fn install() -> anyhow::Result<SpanTimes> {
        use tracing::Level;
        use tracing_subscriber::Layer;
        let times = SpanTimes::default();
        let targets = tracing_subscriber::filter::Targets::new()
            .with_target("rewind_engine", Level::INFO)
            .with_target("rewind_git", Level::INFO)
            .with_target("rewind_forge", Level::INFO)
            .with_target("rewind_server", Level::INFO);
        let subscriber = tracing_subscriber::registry().with(times.clone().with_filter(targets));
        tracing::subscriber::set_global_default(subscriber)?;
        Ok(times)
    }

    fn reset(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn take(&self) -> BTreeMap<&'static str, Vec<Duration>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<S> tracing_subscriber::Layer<S> for SpanTimes
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        _attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Opened(Instant::now()));
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(elapsed) = span.extensions().get::<Opened>().map(|o| o.0.elapsed()) else {
            return;
        };
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(span.name())
            .or_default()
            .push(elapsed);
    }
}

/// The bench's apps come from one Argo CD (`in-cluster`).
fn in_cluster(name: &str) -> anyhow::Result<AppRef> {
    Ok(AppRef::new(AppName::new(name)?, ClusterName::in_cluster()))
}
