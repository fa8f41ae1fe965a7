//! Memory and cold start at fleet scale: the release `rewind serve` as a
//! child process (SQLite, 2 workers, the 2,000-app / 20,000-commit
//! repository over file://, a cold repository cache) receives one Argo CD
//! `on-deployed` per app for all 4,000 Argo CD apps, each carrying its last
//! 10 history entries from the generator's deploy log, and resolves every
//! entry (tree, config hash, images). The child's `/proc/PID/status` is read
//! every 50 ms throughout.
//!
//! Reported per configuration: anonymous memory before the first webhook,
//! its peak, after the last resolve job, after `REWIND_BENCH_IDLE_SECS`
//! (default 30) idle; `VmHWM`; the cold-resolve wall time from the first
//! webhook until no resolve job is queued or running (`/metrics`).
//! Configurations (`REWIND_BENCH_CONFIGS`, default `bounded,unbounded`):
//! `bounded` is the shipped defaults; `unbounded` is libgit2's default
//! object cache (256 MiB) with the resolve memo off, as before the bounds.
//!
//! Baseline, same run: reading the same entries' app trees with git2 in
//! this process (commit, tree, every blob of the app's overlay and base),
//! the least any resolve must read, one thread.
//!
//! `cargo build --release -p rewind && cargo bench -p rewind-tests --bench
//! fleet_memory` (the binary is `$CARGO_TARGET_DIR/release/rewind`, or
//! `REWIND_BIN`). The repository comes from `rewind_tests::fleet_repo`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use rewind_ingest::samples::{HistoryEntry, argocd_notification};
use rewind_tests::ARGOCD_TOKEN;
use rewind_tests::fleet_repo::{DeployLine, Fixture};
use rewind_tests::proc_stats::{MemStatus, Sample, Sampler, cpu_by_thread, mib, smaps_rollup};
use rewind_tests::replica::Replica;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let history = env_usize("REWIND_BENCH_HISTORY", 10)?;
    let idle = Duration::from_secs(env_usize("REWIND_BENCH_IDLE_SECS", 30)? as u64);
    let binary = release_binary()?;
    let fixture = Fixture::ensure()?;
    let deploys = fixture.last_deploys(history)?;
    let entries: usize = deploys.values().map(Vec::len).sum();
    eprintln!(
        "{} Argo CD apps, {entries} history entries; binary {}",
        deploys.len(),
        binary.display()
    );

    let configs =
        std::env::var("REWIND_BENCH_CONFIGS").unwrap_or_else(|_| "bounded,unbounded".to_string());
    let mut runs = Vec::new();
    for config in configs.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let extra = match config {
            "bounded" => "",
            "unbounded" => "object_cache_mib = 256\nresolve_cache_entries = 0\n",
            other => bail!("unknown configuration {other:?} (bounded, unbounded)"),
        };
        runs.push(run(&binary, &fixture, &deploys, config, extra, idle).await?);
    }
    // The baselines after rewind, so a failing run fails early.
    let started = Instant::now();
    let (read, distinct) = read_trees(&fixture.bare, &deploys)?;
    let baseline = started.elapsed();
    eprintln!(
        "baseline: read {entries} entries' app trees with git2 in {:.1} s ({read} blobs, {distinct} distinct overlay trees)",
        baseline.as_secs_f64()
    );

    let (cli, cli_bytes) = cat_file(&fixture.bare, &deploys)?;
    eprintln!(
        "baseline: git cat-file --batch read the same files in {:.1} s ({} MiB)",
        cli.as_secs_f64(),
        cli_bytes >> 20
    );

    report(&runs, entries, deploys.len(), baseline, cli, idle);
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

/// `REWIND_BIN`, else the release build in the target directory.
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

/// The git CLI reading the same files: one `git cat-file --batch` fed
/// `<commit>:<file>` for every blob of every entry's overlay and base
/// (listed first, untimed). Answers the time and the bytes read.
fn cat_file(
    bare: &Path,
    deploys: &BTreeMap<String, Vec<DeployLine>>,
) -> anyhow::Result<(Duration, u64)> {
    use std::io::{Read, Write};
    let repo = git2::Repository::open_bare(bare)?;
    let mut input = String::new();
    for line in deploys.values().flatten() {
        let tree = repo
            .find_commit(git2::Oid::from_str(&line.revision)?)?
            .tree()?;
        for dir in entry_dirs(&line.path) {
            let Ok(entry) = tree.get_path(Path::new(&dir)) else {
                continue;
            };
            repo.find_tree(entry.id())?
                .walk(git2::TreeWalkMode::PreOrder, |parent, e| {
                    if e.kind() == Some(git2::ObjectType::Blob) {
                        let name = e.name().unwrap_or_default();
                        input.push_str(&format!("{}:{dir}/{parent}{name}\n", line.revision));
                    }
                    git2::TreeWalkResult::Ok
                })?;
        }
    }
    let started = Instant::now();
    let mut child = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(["cat-file", "--batch"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .context("stdout")?
        .read_to_end(&mut out)?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    ensure!(child.wait()?.success(), "git cat-file failed");
    let elapsed = started.elapsed();
    ensure!(
        !out.windows(8).any(|w| w == b" missing"),
        "git cat-file reported a missing path"
    );
    Ok((elapsed, out.len() as u64))
}

/// The directories a resolve reads at least: the overlay and the app's
/// base.
fn entry_dirs(path: &str) -> Vec<String> {
    let mut dirs = vec![path.to_string()];
    if let Some(app) = path.split("/overlays/").next().filter(|a| *a != path) {
        dirs.push(format!("{app}/base"));
    }
    dirs
}

/// Every blob of each entry's overlay and app base, read with git2: the
/// blobs read and the distinct overlay trees among the entries.
fn read_trees(
    bare: &Path,
    deploys: &BTreeMap<String, Vec<DeployLine>>,
) -> anyhow::Result<(usize, usize)> {
    let repo = git2::Repository::open_bare(bare)?;
    let mut blobs = 0;
    let mut distinct = std::collections::HashSet::new();
    for line in deploys.values().flatten() {
        let tree = repo
            .find_commit(git2::Oid::from_str(&line.revision)?)?
            .tree()?;
        for dir in entry_dirs(&line.path) {
            let Ok(entry) = tree.get_path(Path::new(&dir)) else {
                continue;
            };
            if dir == line.path {
                distinct.insert(entry.id());
            }
            let sub = repo.find_tree(entry.id())?;
            let mut failed = None;
            sub.walk(git2::TreeWalkMode::PreOrder, |_, e| {
                if e.kind() == Some(git2::ObjectType::Blob) {
                    match repo.find_blob(e.id()) {
                        Ok(blob) => {
                            std::hint::black_box(blob.content());
                            blobs += 1;
                        }
                        Err(err) => failed = Some(err),
                    }
                }
                git2::TreeWalkResult::Ok
            })?;
            if let Some(err) = failed {
                return Err(err.into());
            }
        }
    }
    Ok((blobs, distinct.len()))
}

/// One configuration's figures.
struct Run {
    name: String,
    /// Spawn until serving (the first fetch, a full clone, included).
    startup: Duration,
    before: MemStatus,
    hwm_at_ready: u64,
    peak_anon_start: u64,
    peak_anon_resolve: u64,
    after: MemStatus,
    idle: MemStatus,
    resolve: Duration,
    send: Duration,
    resolved: u64,
    dead: u64,
    smaps_idle: BTreeMap<String, u64>,
    warnings: Vec<String>,
}

async fn run(
    binary: &Path,
    fixture: &Fixture,
    deploys: &BTreeMap<String, Vec<DeployLine>>,
    name: &str,
    extra: &str,
    idle: Duration,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let repo_url = format!("file://{}", fixture.bare.display());
    let config = dir.path().join("rewind.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://rewind.test\"\nshutdown_grace = \"2s\"\n\
             [database]\nurl = \"sqlite://{db}\"\n\
             [git]\nurl = \"{repo_url}\"\ncache_dir = \"{cache}\"\n{extra}\
             [forge]\nkind = \"local\"\n\
             [webhooks]\nargocd_token = \"{ARGOCD_TOKEN}\"\n",
            db = dir.path().join("rewind.db").display(),
            cache = dir.path().join("cache").display(),
        ),
    )?;
    let sampler = Sampler::start(Duration::from_millis(50));
    let spawned = sampler.now();
    let replica = Replica::start_watched(
        &binary.display().to_string(),
        name,
        &config,
        None,
        Duration::from_secs(600),
        |pid| sampler.watch(pid),
    )
    .map_err(|f| anyhow::anyhow!("rewind did not start ({:?}):\n{}", f.status, f.log))?;
    let ready = sampler.now();
    // Let the first fetch's buffers go back before "before the first
    // webhook" is read.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = replica.pid();
    let before = MemStatus::read(pid).context("child status")?;
    let first_webhook = sampler.now();
    eprintln!(
        "[{name}] serving after {:.1} s; RssAnon {} MiB, VmHWM {} MiB",
        (ready - spawned).as_secs_f64(),
        mib(before.rss_anon),
        mib(before.vm_hwm)
    );

    let client = reqwest::Client::new();
    let url = format!("{}/webhooks/argocd", replica.url);
    let cpu_before = cpu_by_thread(pid);
    let sent_at = Instant::now();
    let mut sends = futures::stream::iter(deploys.values())
        .map(|lines| {
            let (client, url, repo_url) = (&client, &url, &repo_url);
            async move {
                let last = lines.last().context("an app without deployments")?;
                // Argo CD's history: oldest first, one hour apart, ending now.
                let now = chrono::Utc::now();
                let history: Vec<HistoryEntry> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| HistoryEntry {
                        id: l.history_id,
                        revision: l.revision.clone(),
                        deployed_at: now - chrono::Duration::hours((lines.len() - i) as i64),
                    })
                    .collect();
                let body = argocd_notification(
                    "on-deployed",
                    &last.app,
                    repo_url,
                    &last.path,
                    &history,
                    "Healthy",
                );
                let response = client
                    .post(url)
                    .bearer_auth(ARGOCD_TOKEN)
                    .json(&body)
                    .send()
                    .await?;
                ensure!(
                    response.status() == reqwest::StatusCode::ACCEPTED,
                    "{}: {}",
                    last.app,
                    response.status()
                );
                anyhow::Ok(())
            }
        })
        .buffer_unordered(8);
    while let Some(result) = sends.next().await {
        result?;
    }
    let send = sent_at.elapsed();
    let (resolved, dead) = loop {
        let jobs = resolve_jobs(&client, &replica.url).await?;
        let open =
            jobs.get("queued").copied().unwrap_or(0) + jobs.get("running").copied().unwrap_or(0);
        if open == 0 {
            break (
                jobs.get("done").copied().unwrap_or(0),
                jobs.get("dead").copied().unwrap_or(0),
            );
        }
        ensure!(
            sent_at.elapsed() < Duration::from_secs(1800),
            "[{name}] resolve jobs still open after 30 min: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let resolve = sent_at.elapsed();
    let done_at = sampler.now();
    let after = MemStatus::read(pid).context("child status")?;
    eprintln!(
        "[{name}] {resolved} resolve jobs done ({dead} dead) {:.1} s after the first webhook; RssAnon {} MiB",
        resolve.as_secs_f64(),
        mib(after.rss_anon)
    );
    // Where the resolve's CPU went: the SQLite threads are the ledger's,
    // tokio's threads run Git (blocking pool) and everything else.
    let cpu_after = cpu_by_thread(pid);
    let used: Vec<String> = cpu_after
        .iter()
        .map(|(thread, secs)| {
            (
                thread,
                secs - cpu_before.get(thread).copied().unwrap_or(0.0),
            )
        })
        .filter(|(_, secs)| *secs >= 0.05)
        .map(|(thread, secs)| format!("{thread} {secs:.1} s"))
        .collect();
    eprintln!("[{name}] CPU while resolving: {}", used.join(", "));
    tokio::time::sleep(idle).await;
    let idle_status = MemStatus::read(pid).context("child status")?;
    let smaps_idle = smaps_rollup(pid);
    let peak = |samples: Vec<Sample>| samples.iter().map(|s| s.mem.rss_anon).max().unwrap_or(0);
    let warnings = replica
        .log_since(0)
        .into_iter()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    let result = Run {
        name: name.to_string(),
        startup: ready - spawned,
        before,
        hwm_at_ready: before.vm_hwm,
        peak_anon_start: peak(sampler.between(spawned, first_webhook)),
        peak_anon_resolve: peak(sampler.between(first_webhook, done_at)),
        after,
        idle: idle_status,
        resolve,
        send,
        resolved,
        dead,
        smaps_idle,
        warnings,
    };
    drop(replica);
    Ok(result)
}

/// `rewind_jobs{kind="resolve_deployment",state=…}` from `/metrics`.
async fn resolve_jobs(
    client: &reqwest::Client,
    base: &str,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let mut states = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("rewind_jobs{") else {
            continue;
        };
        if !rest.contains("kind=\"resolve_deployment\"") {
            continue;
        }
        let state = rest
            .split("state=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("?");
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        states.insert(state.to_string(), value as u64);
    }
    Ok(states)
}

fn report(
    runs: &[Run],
    entries: usize,
    apps: usize,
    baseline: Duration,
    cli: Duration,
    idle: Duration,
) {
    println!(
        "\nfleet memory: {apps} Argo CD apps, {entries} history entries, release `rewind serve`, SQLite, 2 workers"
    );
    println!(
        "baseline (git2 read of every entry's overlay and base, this process, one thread): {:.1} s",
        baseline.as_secs_f64()
    );
    println!(
        "baseline (git cat-file --batch, the same files by <commit>:<path>): {:.1} s",
        cli.as_secs_f64()
    );
    println!(
        "\n| configuration | startup | RssAnon before 1st webhook | peak RssAnon (start) | peak RssAnon (resolve) | VmHWM | RssAnon after resolve | RssAnon idle {} s | cold resolve | / git2 read | / cat-file |",
        idle.as_secs()
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in runs {
        println!(
            "| {} | {:.1} s | {} MiB | {} MiB | {} MiB | {} MiB | {} MiB | {} MiB | {:.1} s (sent in {:.1} s; {} done, {} dead) | {:.1}× | {:.1}× |",
            r.name,
            r.startup.as_secs_f64(),
            mib(r.before.rss_anon),
            mib(r.peak_anon_start),
            mib(r.peak_anon_resolve),
            mib(r.idle.vm_hwm),
            mib(r.after.rss_anon),
            mib(r.idle.rss_anon),
            r.resolve.as_secs_f64(),
            r.send.as_secs_f64(),
            r.resolved,
            r.dead,
            r.resolve.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
            r.resolve.as_secs_f64() / cli.as_secs_f64().max(1e-9),
        );
    }
    for r in runs {
        let field = |k: &str| r.smaps_idle.get(k).copied().unwrap_or(0);
        println!(
            "\n[{}] idle smaps_rollup: Rss {} MiB, Anonymous {} MiB, Private_Dirty {} MiB, file-backed RssFile {} MiB; VmHWM at ready {} MiB; threads {}",
            r.name,
            mib(field("Rss")),
            mib(field("Anonymous")),
            mib(field("Private_Dirty")),
            mib(r.idle.rss_file),
            mib(r.hwm_at_ready),
            r.idle.threads,
        );
        println!("[{}] WARN/ERROR lines: {}", r.name, r.warnings.len());
        for line in r.warnings.iter().take(5) {
            println!("  {line}");
        }
    }
}
