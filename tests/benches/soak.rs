//! Soak: mixed traffic on loopback for `REWIND_SOAK_MINUTES` (default 2)
//! against the release `rewind serve` as a child process (SQLite, 2
//! workers, the strict fake GitHub in this process, the 2,000-app /
//! 20,000-commit repository from `rewind_tests::fleet_repo`, copied so
//! merges land in the copy).
//!
//! Loops, each bounded in rate:
//! - deploys: Argo CD `on-deployed` for 2,000 apps on 3 clusters
//!   (`/webhooks/argocd/{cluster}`), each app walking forward through its
//!   revisions in the generator's deploy log with its last 10 history
//!   entries, `REWIND_SOAK_DEPLOYS_PER_S` (default 20) per second;
//! - rollbacks: `REWIND_SOAK_ROLLBACK_APPS` (default 4) other apps, each
//!   in turn: a good deployment (known good after `policy.healthy_for`,
//!   1 s here), a commit pushed onto `main` restoring a degraded revision's
//!   overlay and base, deployed Degraded, a critical Alertmanager alert, the PR on the
//!   fake GitHub, an approval and (when the approval alone did not merge)
//!   a merge through the API with an approver token, Argo CD deploying the
//!   merge, the alert resolved, until `verified`; at most one cycle per app
//!   per `REWIND_SOAK_CYCLE_SECS` (default 20);
//! - reads: the rollback list and an app page through the API, 2 per
//!   second.
//!
//! Reported per minute: requests/s, p50/p99 per request kind, RssAnon,
//! open descriptors, WARN and ERROR lines in the child's log (with
//! examples at the end), and rollback cycles finished.
//!
//! `cargo build --release -p rewind && REWIND_SOAK_MINUTES=10 cargo bench
//! -p rewind-tests --bench soak` (the binary is
//! `$CARGO_TARGET_DIR/release/rewind`, or `REWIND_BIN`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::Utc;
use reqwest::StatusCode;
use rewind_forge::fake::{FakeGitHub, FakeOptions};
use rewind_ingest::samples::{HistoryEntry, alertmanager_notification, argocd_notification};
use rewind_tests::fleet_repo::{DeployLine, Fixture};
use rewind_tests::proc_stats::{MemStatus, Sampler, mib, open_fds};
use rewind_tests::replica::Replica;
use rewind_tests::{ALERTMANAGER_TOKEN, ARGOCD_TOKEN};
use serde_json::{Value, json};

const OWNER: &str = "acme";
const REPO: &str = "gitops";
const GITHUB_TOKEN: &str = "ghs_soaktoken";
const APPROVER: &str = "soak-approver-token";
const CLUSTERS: [&str; 3] = ["eu-1", "us-1", "ap-1"];
/// The fleet's app count (each on every cluster).
const FLEET: usize = 2000;
/// Argo CD sends the last ten history entries.
const HISTORY: usize = 10;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let minutes = env_u64("REWIND_SOAK_MINUTES", 2)?;
    let deploys_per_s = env_u64("REWIND_SOAK_DEPLOYS_PER_S", 20)?;
    let rollback_apps = env_u64("REWIND_SOAK_ROLLBACK_APPS", 4)? as usize;
    let cycle_every = Duration::from_secs(env_u64("REWIND_SOAK_CYCLE_SECS", 20)?);
    let binary = release_binary()?;
    let fixture = Fixture::ensure()?;
    let soak = Soak::start(&fixture, &binary).await?;
    let soak = Arc::new(soak);
    let end = Instant::now() + Duration::from_secs(minutes * 60);

    let plan = Plan::new(&fixture, rollback_apps)?;
    eprintln!(
        "soak: {minutes} min, {} apps × {} clusters at {deploys_per_s} deploys/s, {} rollback apps, rewind pid {}",
        plan.fleet.len(),
        CLUSTERS.len(),
        plan.cycles.len(),
        soak.replica.pid()
    );
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(deploy_loop(soak.clone(), plan.fleet, deploys_per_s, end));
    for cycle in plan.cycles {
        tasks.spawn(rollback_loop(soak.clone(), cycle, cycle_every, end));
    }
    tasks.spawn(read_loop(soak.clone(), end));
    let reporter = tokio::spawn(report_loop(soak.clone(), minutes));
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let rows = reporter.await??;
    summary(&soak, &rows);
    Ok(())
}

fn env_u64(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v:?} is not a count")),
        Err(_) => Ok(default),
    }
}

fn release_binary() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("REWIND_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
            .join("release/rewind"),
    };
    ensure!(
        path.exists(),
        "{} missing: run `cargo build --release -p rewind` first (or set REWIND_BIN)",
        path.display()
    );
    Ok(path)
}

/// What the loops send.
struct Plan {
    /// The fleet: app name, path, revisions in deploy order.
    fleet: Vec<(String, String, Vec<String>)>,
    cycles: Vec<Cycle>,
}

/// One rollback app: its good revision and the degraded ones to come, each
/// differing from the good one in the app's overlay or base.
#[derive(Clone)]
struct Cycle {
    app: String,
    path: String,
    good: String,
    bad: Vec<String>,
}

impl Plan {
    fn new(fixture: &Fixture, rollback_apps: usize) -> anyhow::Result<Plan> {
        // One Argo CD app per generated app (its prod-eu overlay), deployed
        // under its plain name on every soak cluster.
        let deploys: BTreeMap<String, Vec<DeployLine>> = fixture.last_deploys(usize::MAX)?;
        let mut apps: Vec<(String, String, Vec<String>)> = deploys
            .into_iter()
            .filter_map(|(app, lines)| {
                let name = app.strip_suffix("-prod-eu")?.to_string();
                let path = lines.first()?.path.clone();
                let revisions = lines.into_iter().map(|l| l.revision).collect();
                Some((name, path, revisions))
            })
            .collect();
        let repo = git2::Repository::open_bare(&fixture.bare)?;
        let inputs =
            |commit: &str, path: &str| -> anyhow::Result<(Option<git2::Oid>, Option<git2::Oid>)> {
                let tree = repo.find_commit(git2::Oid::from_str(commit)?)?.tree()?;
                let base = path.split("/overlays/").next().unwrap_or(path).to_string() + "/base";
                let id = |p: &str| tree.get_path(Path::new(p)).ok().map(|e| e.id());
                Ok((id(path), id(&base)))
            };
        // The apps with the most revisions roll back, so each has enough
        // degraded revisions for the whole run.
        apps.sort_by_key(|(_, _, revisions)| std::cmp::Reverse(revisions.len()));
        let mut cycles = Vec::new();
        for (app, path, revisions) in apps.drain(..rollback_apps.min(apps.len())) {
            let good = revisions[0].clone();
            let good_inputs = inputs(&good, &path)?;
            let mut bad = Vec::new();
            for revision in &revisions[1..] {
                if inputs(revision, &path)? != good_inputs && !bad.contains(revision) {
                    bad.push(revision.clone());
                }
            }
            cycles.push(Cycle {
                app,
                path,
                good,
                bad,
            });
        }
        apps.truncate(FLEET);
        Ok(Plan {
            fleet: apps,
            cycles,
        })
    }
}

/// rewind, the fake GitHub, and what was measured.
struct Soak {
    _dir: tempfile::TempDir,
    /// The bare remote rewind fetches from and merges into.
    remote: PathBuf,
    _fake: FakeGitHub,
    replica: Replica,
    repo_url: String,
    client: reqwest::Client,
    sampler: Sampler,
    /// (request kind, latency, status) since the last report.
    requests: Mutex<Vec<(&'static str, Duration, StatusCode)>>,
    /// Rollback cycles: (app, outcome) since the last report.
    cycles: Mutex<Vec<(String, Result<Duration, String>)>>,
}

impl Soak {
    async fn start(fixture: &Fixture, binary: &Path) -> anyhow::Result<Soak> {
        let dir = tempfile::tempdir()?;
        let remote = dir.path().join("gitops.git");
        let status = std::process::Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(&fixture.bare)
            .arg(&remote)
            .status()?;
        ensure!(status.success(), "git clone --bare: {status}");
        let fake = FakeGitHub::start(FakeOptions::new(OWNER, REPO, remote.clone(), GITHUB_TOKEN))
            .await
            .context("fake GitHub starts")?;
        let repo_url = format!("file://{}", remote.display());
        let config = dir.path().join("rewind.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://rewind.test\"\nshutdown_grace = \"2s\"\n\
                 [database]\nurl = \"sqlite://{db}\"\n\
                 [git]\nurl = \"{repo_url}\"\ncache_dir = \"{cache}\"\n\
                 [forge]\nkind = \"github\"\napi_url = \"{github}\"\nowner = \"{OWNER}\"\nrepo = \"{REPO}\"\n\
                 token = \"{GITHUB_TOKEN}\"\nmax_wait = \"10s\"\n\
                 [webhooks]\nargocd_token = \"{ARGOCD_TOKEN}\"\nalertmanager_token = \"{ALERTMANAGER_TOKEN}\"\n\
                 [api]\ntokens = [{{ name = \"soak-approver\", token = \"{APPROVER}\", role = \"approver\" }}]\n\
                 [policy]\nhealthy_for = \"1s\"\nverify_for = \"2s\"\nmax_rollbacks_per_hour = 1000\n",
                db = dir.path().join("rewind.db").display(),
                cache = dir.path().join("cache").display(),
                github = fake.url(),
            ),
        )?;
        let sampler = Sampler::start(Duration::from_secs(1));
        let replica = Replica::start_watched(
            &binary.display().to_string(),
            "soak",
            &config,
            None,
            Duration::from_secs(600),
            |pid| sampler.watch(pid),
        )
        .map_err(|f| anyhow::anyhow!("rewind did not start ({:?}):\n{}", f.status, f.log))?;
        Ok(Soak {
            _dir: dir,
            remote,
            _fake: fake,
            replica,
            repo_url,
            client: reqwest::Client::new(),
            sampler,
            requests: Mutex::default(),
            cycles: Mutex::default(),
        })
    }

    /// Sends one request, timing it under `kind`.
    async fn send(
        &self,
        kind: &'static str,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let started = Instant::now();
        let response = request.send().await.with_context(|| kind.to_string())?;
        let status = response.status();
        let body = response.bytes().await?;
        let elapsed = started.elapsed();
        self.requests
            .lock()
            .expect("requests")
            .push((kind, elapsed, status));
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    async fn argocd(
        &self,
        kind: &'static str,
        cluster: &str,
        app: &str,
        path: &str,
        history: &[HistoryEntry],
        health: &str,
    ) -> anyhow::Result<StatusCode> {
        let body = argocd_notification("on-deployed", app, &self.repo_url, path, history, health);
        let request = self
            .client
            .post(format!("{}/webhooks/argocd/{cluster}", self.replica.url))
            .bearer_auth(ARGOCD_TOKEN)
            .json(&body);
        Ok(self.send(kind, request).await?.0)
    }

    async fn alert(
        &self,
        app: &str,
        status: &str,
        started: chrono::DateTime<Utc>,
    ) -> anyhow::Result<StatusCode> {
        let body = alertmanager_notification(
            status,
            "SoakHighErrorRate",
            app,
            "critical",
            "5xx ratio above 5%",
            started,
            &format!("soak-{app}-{}", started.timestamp_millis()),
        );
        let request = self
            .client
            .post(format!("{}/webhooks/alertmanager", self.replica.url))
            .bearer_auth(ALERTMANAGER_TOKEN)
            .json(&body);
        Ok(self.send("alert", request).await?.0)
    }

    async fn api_get(&self, kind: &'static str, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let request = self
            .client
            .get(format!("{}{path}", self.replica.url))
            .bearer_auth(APPROVER);
        self.send(kind, request).await
    }

    async fn api_post(
        &self,
        kind: &'static str,
        path: &str,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let request = self
            .client
            .post(format!("{}{path}", self.replica.url))
            .bearer_auth(APPROVER)
            .json(&json!({}));
        self.send(kind, request).await
    }
}

/// A history of one Argo CD app as the soak sends it.
fn entry(id: i64, revision: &str) -> HistoryEntry {
    HistoryEntry {
        id,
        revision: revision.to_string(),
        deployed_at: Utc::now(),
    }
}

fn push(history: &mut Vec<HistoryEntry>, e: HistoryEntry) {
    history.push(e);
    if history.len() > HISTORY {
        history.remove(0);
    }
}

async fn deploy_loop(
    soak: Arc<Soak>,
    fleet: Vec<(String, String, Vec<String>)>,
    per_second: u64,
    end: Instant,
) -> anyhow::Result<()> {
    // Per (app, cluster): the next revision index and the history sent.
    let mut state: HashMap<(usize, usize), (usize, Vec<HistoryEntry>)> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: usize = 0;
    while Instant::now() < end {
        tick.tick().await;
        let (app, cluster) = (n % fleet.len(), (n / fleet.len()) % CLUSTERS.len());
        n += 1;
        let (name, path, revisions) = &fleet[app];
        let (next, history) = state.entry((app, cluster)).or_default();
        // Forward through the app's revisions; at the end, the last one is
        // reported again (a health report, nothing new).
        if *next < revisions.len() {
            push(history, entry(*next as i64 + 1, &revisions[*next]));
            *next += 1;
        }
        let status = soak
            .argocd("deploy", CLUSTERS[cluster], name, path, history, "Healthy")
            .await?;
        ensure!(status == StatusCode::ACCEPTED, "deploy {name}: {status}");
    }
    Ok(())
}

async fn read_loop(soak: Arc<Soak>, end: Instant) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        n += 1;
        if n.is_multiple_of(2) {
            soak.api_get("list rollbacks", "/api/v1/rollbacks?limit=50")
                .await?;
        } else {
            soak.api_get("app", "/api/v1/apps?limit=50").await?;
        }
    }
    Ok(())
}

/// Cycles of one rollback app until the end (each bounded in time).
async fn rollback_loop(
    soak: Arc<Soak>,
    cycle: Cycle,
    every: Duration,
    end: Instant,
) -> anyhow::Result<()> {
    let cluster = CLUSTERS[0];
    let mut history = Vec::new();
    let mut id = 1i64;
    push(&mut history, entry(id, &cycle.good));
    let status = soak
        .argocd(
            "deploy (rollback app)",
            cluster,
            &cycle.app,
            &cycle.path,
            &history,
            "Healthy",
        )
        .await?;
    ensure!(status == StatusCode::ACCEPTED, "good deploy: {status}");
    for bad in cycle.bad.iter().cycle() {
        if Instant::now() + every > end {
            break;
        }
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            Duration::from_secs(120),
            one_cycle(&soak, &cycle, cluster, bad, &mut history, &mut id),
        )
        .await
        .map_err(|_| "timed out after 120 s".to_string())
        .and_then(|r| r.map_err(|e| format!("{e:#}")));
        soak.cycles
            .lock()
            .expect("cycles")
            .push((cycle.app.clone(), outcome.map(|()| started.elapsed())));
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
    Ok(())
}

/// Known good, degraded, alert, PR, approve (and merge), sync, verified.
async fn one_cycle(
    soak: &Soak,
    cycle: &Cycle,
    cluster: &str,
    bad: &str,
    history: &mut Vec<HistoryEntry>,
    id: &mut i64,
) -> anyhow::Result<()> {
    let app_ref = format!("{}@{cluster}", cycle.app);
    poll(soak, "app", &format!("/api/v1/apps/{app_ref}"), |app| {
        app["known_good"]["commit"].is_string()
    })
    .await
    .context("known good")?;
    // A developer pushes the degraded configuration onto `main`, and Argo
    // CD deploys it: what the rollback undoes is Git's head, as in
    // production (a deployment of an old commit while `main` already says
    // the good configuration is refused "already on target").
    let remote = soak.remote.clone();
    let (path, bad_revision) = (cycle.path.clone(), bad.to_string());
    let bad =
        tokio::task::spawn_blocking(move || push_degraded(&remote, &path, &bad_revision)).await??;
    *id += 1;
    push(history, entry(*id, &bad));
    let status = soak
        .argocd(
            "deploy (rollback app)",
            cluster,
            &cycle.app,
            &cycle.path,
            history,
            "Degraded",
        )
        .await?;
    ensure!(status == StatusCode::ACCEPTED, "bad deploy: {status}");
    let fired = Utc::now();
    ensure!(soak.alert(&cycle.app, "firing", fired).await? == StatusCode::ACCEPTED);
    let open = poll(
        soak,
        "list rollbacks",
        &format!("/api/v1/rollbacks?app={}", cycle.app),
        |list| {
            list.as_array()
                .and_then(|l| l.first())
                .is_some_and(|r| r["state"] == "pr_open")
        },
    )
    .await
    .context("PR opened")?;
    let rollback = open[0]["id"].as_str().context("rollback id")?.to_string();
    let (status, body) = soak
        .api_post("approve", &format!("/api/v1/rollbacks/{rollback}/approve"))
        .await?;
    ensure!(status == StatusCode::OK, "approve: {status} {body}");
    let merged = match poll_for(
        soak,
        &format!("/api/v1/rollbacks/{rollback}"),
        Duration::from_secs(10),
        |r| r["merge_commit"].is_string(),
    )
    .await
    {
        Ok(merged) => merged,
        Err(_) => {
            let (status, body) = soak
                .api_post("merge", &format!("/api/v1/rollbacks/{rollback}/merge"))
                .await?;
            ensure!(status.is_success(), "merge: {status} {body}");
            poll(
                soak,
                "rollback",
                &format!("/api/v1/rollbacks/{rollback}"),
                |r| r["merge_commit"].is_string(),
            )
            .await
            .context("merged")?
        }
    };
    let merge_commit = merged["merge_commit"]
        .as_str()
        .context("merge commit")?
        .to_string();
    *id += 1;
    push(history, entry(*id, &merge_commit));
    let status = soak
        .argocd(
            "deploy (rollback app)",
            cluster,
            &cycle.app,
            &cycle.path,
            history,
            "Healthy",
        )
        .await?;
    ensure!(status == StatusCode::ACCEPTED, "merge deploy: {status}");
    ensure!(soak.alert(&cycle.app, "resolved", fired).await? == StatusCode::ACCEPTED);
    poll(
        soak,
        "rollback",
        &format!("/api/v1/rollbacks/{rollback}"),
        |r| r["state"] == "verified",
    )
    .await
    .context("verified")?;
    Ok(())
}

/// Commits onto `main` of `remote` the app's overlay and base as they are
/// at `bad`; answers the new commit. The ref moves only if `main` did not
/// (a rewind merge in between fails this cycle, not the merge).
fn push_degraded(remote: &Path, path: &str, bad: &str) -> anyhow::Result<String> {
    // One at a time from this process; a rewind merge moving `main` (or
    // holding its lock) in between is retried a few times.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut last = None;
    for _ in 0..10 {
        match try_push_degraded(remote, path, bad) {
            Ok(id) => return Ok(id),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Err(last.expect("at least one attempt"))
}

fn try_push_degraded(remote: &Path, path: &str, bad: &str) -> anyhow::Result<String> {
    let repo = git2::Repository::open_bare(remote)?;
    let head = repo.find_reference("refs/heads/main")?.peel_to_commit()?;
    let bad_tree = repo.find_commit(git2::Oid::from_str(bad)?)?.tree()?;
    let base = format!("{}/base", path.split("/overlays/").next().unwrap_or(path));
    let mut update = git2::build::TreeUpdateBuilder::new();
    for dir in [path, base.as_str()] {
        match bad_tree.get_path(Path::new(dir)) {
            Ok(entry) => update.upsert(dir, entry.id(), git2::FileMode::Tree),
            Err(_) => update.remove(dir),
        };
    }
    let tree = repo.find_tree(update.create_updated(&repo, &head.tree()?)?)?;
    let who = git2::Signature::now("Soak Developer", "dev@example.com")?;
    let id = repo.commit(None, &who, &who, "soak: degrade", &tree, &[&head])?;
    repo.reference_matching("refs/heads/main", id, true, head.id(), "soak: degrade")?;
    Ok(id.to_string())
}

/// GETs `path` every 250 ms until `done` (within the cycle's timeout).
async fn poll(
    soak: &Soak,
    kind: &'static str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    loop {
        let (status, body) = soak.api_get(kind, path).await?;
        if status == StatusCode::OK && done(&body) {
            return Ok(body);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn poll_for(
    soak: &Soak,
    path: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    tokio::time::timeout(within, poll(soak, "rollback", path, done))
        .await
        .context("not yet")?
}

/// One minute's figures.
struct Row {
    minute: u64,
    requests: usize,
    /// kind → (count, p50, p99, non-2xx)
    kinds: BTreeMap<&'static str, (usize, Duration, Duration, usize)>,
    mem: MemStatus,
    fds: usize,
    warn: usize,
    error: usize,
    cycles_ok: usize,
    cycles_failed: Vec<String>,
}

async fn report_loop(soak: Arc<Soak>, minutes: u64) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut log_from = soak.replica.log_len();
    let mut warn_examples = 0;
    for minute in 1..=minutes {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let requests = std::mem::take(&mut *soak.requests.lock().expect("requests"));
        let cycles = std::mem::take(&mut *soak.cycles.lock().expect("cycles"));
        let mut by_kind: BTreeMap<&'static str, Vec<(Duration, StatusCode)>> = BTreeMap::new();
        for (kind, latency, status) in &requests {
            by_kind.entry(kind).or_default().push((*latency, *status));
        }
        let kinds = by_kind
            .into_iter()
            .map(|(kind, mut samples)| {
                samples.sort();
                let q = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize].0;
                let bad = samples.iter().filter(|(_, s)| !s.is_success()).count();
                (kind, (samples.len(), q(0.5), q(0.99), bad))
            })
            .collect();
        let lines = soak.replica.log_since(log_from);
        log_from += lines.len();
        let warn: Vec<&String> = lines.iter().filter(|l| l.contains(" WARN ")).collect();
        let error: Vec<&String> = lines.iter().filter(|l| l.contains(" ERROR ")).collect();
        for line in warn
            .iter()
            .chain(error.iter())
            .take(3usize.saturating_sub(warn_examples))
        {
            eprintln!("  child log: {line}");
            warn_examples += 1;
        }
        let pid = soak.replica.pid();
        let row = Row {
            minute,
            requests: requests.len(),
            kinds,
            mem: MemStatus::read(pid).unwrap_or_default(),
            fds: open_fds(pid),
            warn: warn.len(),
            error: error.len(),
            cycles_ok: cycles.iter().filter(|(_, r)| r.is_ok()).count(),
            cycles_failed: cycles
                .iter()
                .filter_map(|(app, r)| r.as_ref().err().map(|e| format!("{app}: {e}")))
                .collect(),
        };
        print_row(&row);
        rows.push(row);
    }
    Ok(rows)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn print_row(row: &Row) {
    let kinds: Vec<String> = row
        .kinds
        .iter()
        .map(|(kind, (n, p50, p99, bad))| {
            format!(
                "{kind} {n} ({}/{} ms{})",
                ms(*p50),
                ms(*p99),
                if *bad > 0 {
                    format!(", {bad} non-2xx")
                } else {
                    String::new()
                }
            )
        })
        .collect();
    eprintln!(
        "minute {}: {:.1} req/s, RssAnon {} MiB, fds {}, WARN {}, ERROR {}, cycles {} ok {} failed; {}",
        row.minute,
        row.requests as f64 / 60.0,
        mib(row.mem.rss_anon),
        row.fds,
        row.warn,
        row.error,
        row.cycles_ok,
        row.cycles_failed.len(),
        kinds.join("; ")
    );
    for failure in &row.cycles_failed {
        eprintln!("  cycle failed: {failure}");
    }
}

fn summary(soak: &Soak, rows: &[Row]) {
    let p = |row: &Row, kind: &str| {
        row.kinds
            .get(kind)
            .map(|(n, p50, p99, _)| format!("{n}: {} / {}", ms(*p50), ms(*p99)))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "\n| minute | req/s | deploy n: p50 / p99 ms | alert | approve | API reads (list rollbacks) | RssAnon MiB | VmHWM MiB | fds | cycles verified | WARN | ERROR |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!(
            "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {}{} | {} | {} |",
            row.minute,
            row.requests as f64 / 60.0,
            p(row, "deploy"),
            p(row, "alert"),
            p(row, "approve"),
            p(row, "list rollbacks"),
            mib(row.mem.rss_anon),
            mib(row.mem.vm_hwm),
            row.fds,
            row.cycles_ok,
            if row.cycles_failed.is_empty() {
                String::new()
            } else {
                format!(" ({} failed)", row.cycles_failed.len())
            },
            row.warn,
            row.error,
        );
    }
    // Least-squares slope of RssAnon over the minutes after warm-up (the
    // first two).
    let warm: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.minute > 2)
        .map(|r| (r.minute as f64, r.mem.rss_anon as f64 / 1024.0))
        .collect();
    if warm.len() >= 2 {
        let n = warm.len() as f64;
        let (sx, sy) = warm
            .iter()
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        let (mx, my) = (sx / n, sy / n);
        let num: f64 = warm.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
        let den: f64 = warm.iter().map(|(x, _)| (x - mx).powi(2)).sum();
        println!(
            "\nRssAnon slope after warm-up (minutes 3..{}): {:+.2} MiB/min (mean {:.1} MiB)",
            rows.len(),
            num / den,
            my
        );
    }
    let peak = soak
        .sampler
        .samples()
        .iter()
        .map(|s| s.mem.rss_anon)
        .max()
        .unwrap_or(0);
    println!("peak RssAnon (1 s samples): {} MiB", mib(peak));
    let log = soak.replica.log_since(0);
    let flagged: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    println!("WARN/ERROR lines in the child's log: {}", flagged.len());
    for line in flagged.iter().take(10) {
        println!("  {line}");
    }
}
