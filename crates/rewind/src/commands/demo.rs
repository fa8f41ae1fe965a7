//! `rewind demo`: the whole story on one machine, for real. It builds a
//! small GitOps repository (a kustomize app with a base and a prod overlay),
//! starts rewind on SQLite, tells it — over HTTP, as Argo CD would — that
//! v1.4.1 was deployed and stayed healthy, then that v1.4.2 was deployed and
//! degraded, fires an alert as Alertmanager would, and shows the rollback
//! rewind proposes. Then it approves it as a reviewer would, rewind merges
//! it, the demo plays Argo CD syncing the merge commit and Alertmanager
//! resolving the alert, and rewind verifies the rollback.
//!
//! The story is numbered steps on stdout; rewind's own logs go to
//! `rewind.log` in the demo's directory (named in step 2), so they never
//! interleave. Afterwards the demo keeps serving the web UI until Ctrl-C,
//! unless `--exit` is given or stdin is not a terminal (scripts, CI): then
//! it exits 0 right after the story, which takes a few seconds.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use git2::{Oid, Repository, Signature, build::TreeUpdateBuilder};
use rewind_config::{Secret, SecretUrl, Settings};
use rewind_ingest::samples::{HistoryEntry, alertmanager_notification, argocd_notification};
use serde_json::{Value, json};

use super::progress::Spinner;

const ARGOCD_TOKEN: &str = "demo-argocd-token";
const ALERTMANAGER_TOKEN: &str = "demo-alertmanager-token";
const APP: &str = "checkout";
const APP_PATH: &str = "apps/checkout/overlays/prod";
const ALERT: &str = "CheckoutHighErrorRate";
const FINGERPRINT: &str = "c0ffee00d15ea5e5";
/// How long the app must stay healthy after the sync: short, so the story
/// ends in seconds.
const VERIFY_FOR_SECS: u64 = 2;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the demo's repository, database and log (default: a
    /// new temporary directory, kept so you can look around afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Address of the demo's web UI and API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Exit 0 after the story instead of serving the web UI (also when
    /// stdin is not a terminal).
    #[arg(long)]
    exit: bool,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.canonicalize()?
        }
        None => tempfile::Builder::new()
            .prefix("rewind-demo-")
            .tempdir()?
            .keep(),
    };
    let log = dir.join("rewind.log");
    crate::logging::init_to_file(&log)
        .with_context(|| format!("cannot write the log {}", log.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(demo(dir, log, args))
}

/// Prints the numbered steps of the story.
#[derive(Debug, Default)]
struct Story {
    step: u32,
}

impl Story {
    fn step(&mut self, text: impl AsRef<str>) {
        self.step += 1;
        println!("\n{:>2}. {}", self.step, text.as_ref());
    }

    fn detail(&self, text: impl AsRef<str>) {
        for line in text.as_ref().lines() {
            println!("    {line}");
        }
    }
}

async fn demo(dir: PathBuf, log: PathBuf, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let mut story = Story::default();
    println!("rewind demo in {}", dir.display());
    let remote = dir.join("gitops.git");
    if remote.exists() {
        bail!("{} exists: give --dir an empty directory", remote.display());
    }
    let (good, bad) = build_repository(&remote)?;
    story.step(format!(
        "GitOps repository {} with two commits:",
        remote.display()
    ));
    story.detail(format!(
        "{}  deploy(checkout/prod): v1.4.1\n{}  deploy(checkout/prod): v1.4.2 (and NEW_CHECKOUT_FLOW=true)",
        &good[..7],
        &bad[..7]
    ));

    let listener = rewind_server::service::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (try --listen 127.0.0.1:0)",
                args.listen
            )
        })?;
    let settings = demo_settings(&dir, &remote, listener.local_addr()?)?;
    let options = rewind_server::ServiceOptions {
        poll: Duration::from_millis(100),
        tick: Duration::from_millis(250),
        ..Default::default()
    };
    let spinner = Spinner::start("starting rewind: migrating the database, cloning the repository");
    let service = rewind_server::Service::start(settings, listener, options).await?;
    drop(spinner);
    let url = service.url();
    story.step(format!("rewind is serving at {url}"));
    story.detail(format!(
        "SQLite database {}\nlogs in {}",
        dir.join("rewind.db").display(),
        log.display()
    ));

    let demo = Demo {
        client: reqwest::Client::new(),
        url: url.clone(),
        repo_url: remote.display().to_string(),
    };
    let mut history = vec![HistoryEntry {
        id: 1,
        revision: good.clone(),
        deployed_at: Utc::now() - chrono::Duration::minutes(30),
    }];
    demo.argocd("on-deployed", &history, "Healthy").await?;
    story.step(format!(
        "Argo CD: cluster revision 1 ({}, v1.4.1) deployed, Healthy",
        &good[..7]
    ));
    demo.wait("/api/v1/apps", "revision 1 to become known good", |apps| {
        apps.pointer("/0/known_good/cluster_revision").is_some()
    })
    .await?;
    story.detail("rewind: revision 1 is known good");

    history.push(HistoryEntry {
        id: 2,
        revision: bad.clone(),
        deployed_at: Utc::now(),
    });
    demo.argocd("on-health-degraded", &history, "Degraded")
        .await?;
    story.step(format!(
        "Argo CD: cluster revision 2 ({}, v1.4.2) deployed, Degraded",
        &bad[..7]
    ));

    let alert_started = Utc::now();
    demo.alert("firing", alert_started).await?;
    story.step(format!(
        "Alertmanager: {ALERT} firing (critical) for app {APP}"
    ));

    let rollbacks = demo
        .wait(
            &format!("/api/v1/rollbacks?app={APP}"),
            "a proposed rollback",
            |list| {
                list.pointer("/0/timeline")
                    .and_then(Value::as_array)
                    .is_some_and(|t| t.iter().any(|e| e["event"] == "pushed"))
            },
        )
        .await?;
    let rollback = rollbacks[0].clone();
    let id = text(&rollback, "/id");
    story.step(format!(
        "rewind proposes rollback {id} ({})",
        text(&rollback, "/state")
    ));
    story.detail(proposal(&rollback));
    story.detail(format!("review it: {url}/ui/rollbacks/{id}"));

    let approved = demo
        .post(
            &format!("/api/v1/rollbacks/{id}/approve"),
            "unused",
            &json!({}),
        )
        .await?;
    story.step(format!(
        "A reviewer approves it (rewind approve {id}): {}",
        text(&approved, "/state")
    ));
    let merged = demo
        .wait(&format!("/api/v1/rollbacks/{id}"), "the merge", |r| {
            r["merge_commit"].is_string()
        })
        .await?;
    let merge_commit = text(&merged, "/merge_commit");
    story.step(format!(
        "rewind merges it: main is now at {} (a new commit restoring v1.4.1; nothing was force-pushed)",
        &merge_commit[..7.min(merge_commit.len())]
    ));

    history.push(HistoryEntry {
        id: 3,
        revision: merge_commit.clone(),
        deployed_at: Utc::now(),
    });
    demo.argocd("on-deployed", &history, "Healthy").await?;
    demo.wait(&format!("/api/v1/rollbacks/{id}"), "the sync", |r| {
        r["state"] == "synced" || r["state"] == "verified"
    })
    .await?;
    story.step(
        "Argo CD (simulated) syncs the merge commit as cluster revision 3: Healthy; the rollback is synced",
    );

    demo.alert("resolved", alert_started).await?;
    story.step(format!("Alertmanager: {ALERT} resolved"));
    let spinner = Spinner::start(format!(
        "verifying: the app must stay Healthy for {VERIFY_FOR_SECS}s with no firing alert"
    ));
    let verified = demo
        .wait(&format!("/api/v1/rollbacks/{id}"), "verification", |r| {
            matches!(r["state"].as_str(), Some("verified" | "failed"))
        })
        .await?;
    drop(spinner);
    let state = text(&verified, "/state");
    story.step(format!(
        "rewind verifies the rollback: {state} (Healthy for {VERIFY_FOR_SECS}s, no firing alert)"
    ));
    if state != "verified" {
        service.shutdown(Duration::from_secs(5)).await;
        bail!("the rollback ended {state}; see {}", log.display());
    }
    story.detail(format!("the whole story: {url}/ui/rollbacks/{id}"));

    if args.exit || !std::io::stdin().is_terminal() {
        service.shutdown(Duration::from_secs(5)).await;
        println!("\nDone. Everything is kept in {}.", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "\nServing the web UI at {url} until Ctrl-C. Try: rewind history {APP} --server {url}"
    );
    let cancel = service.cancel_token();
    tokio::spawn(async move {
        super::serve::shutdown_signal().await;
        cancel.cancel();
    });
    service.wait(Duration::from_secs(5)).await;
    Ok(ExitCode::SUCCESS)
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_owned()
}

/// The proposal in a few lines: from → to, why, the branch, the risks and
/// the changed fields.
fn proposal(rollback: &Value) -> String {
    let short = |p: &str| {
        let sha = text(rollback, p);
        sha.get(..7).unwrap_or(&sha).to_owned()
    };
    let mut out = format!(
        "from cluster revision 2 ({}) to 1 ({})\nwhy: {}\nbranch {} at {}\n",
        short("/from/commit"),
        short("/to/commit"),
        text(rollback, "/reason"),
        text(rollback, "/branch"),
        short("/commit"),
    );
    match rollback["risks"].as_array() {
        Some(risks) if !risks.is_empty() => {
            for risk in risks {
                out.push_str(&format!(
                    "risk {}: {}\n",
                    risk["code"].as_str().unwrap_or(""),
                    risk["detail"].as_str().unwrap_or("")
                ));
            }
        }
        _ => out.push_str("risks: none found\n"),
    }
    let table = rewind_forge::ChangeTable::from_semantic(&rollback["diff"]["semantic"]);
    out.push_str("changes (now → after rollback):\n");
    for image in &table.images {
        out.push_str(&format!(
            "  image {}: {} → {}\n",
            image.image,
            image.now.as_deref().unwrap_or("absent"),
            image.after.as_deref().unwrap_or("absent")
        ));
    }
    for object in &table.objects {
        for field in &object.fields {
            out.push_str(&format!(
                "  {} {}: {} → {}\n",
                object.object,
                field.field,
                field.now.as_deref().unwrap_or("absent"),
                field.after.as_deref().unwrap_or("absent")
            ));
        }
    }
    out
}

/// The demo's side of the conversation: it plays Argo CD, Alertmanager
/// and a reviewer, over HTTP.
struct Demo {
    client: reqwest::Client,
    url: String,
    repo_url: String,
}

impl Demo {
    async fn argocd(
        &self,
        event: &str,
        history: &[HistoryEntry],
        health: &str,
    ) -> anyhow::Result<()> {
        let body = argocd_notification(event, APP, &self.repo_url, APP_PATH, history, health);
        self.webhook("/webhooks/argocd", ARGOCD_TOKEN, &body).await
    }

    async fn alert(&self, status: &str, starts_at: DateTime<Utc>) -> anyhow::Result<()> {
        let body = alertmanager_notification(
            status,
            ALERT,
            APP,
            "critical",
            "checkout 5xx ratio above 5% since v1.4.2",
            starts_at,
            FINGERPRINT,
        );
        self.webhook("/webhooks/alertmanager", ALERTMANAGER_TOKEN, &body)
            .await
    }

    async fn webhook(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<()> {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        if response.status().as_u16() != 202 {
            bail!(
                "POST {path}: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path}: {status} {value}");
        }
        Ok(value)
    }

    /// Polls `path` until `done` holds (at most 60 s): the story's steps
    /// run as rewind's background jobs.
    async fn wait(
        &self,
        path: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let value: Value = self
                .client
                .get(format!("{}{path}", self.url))
                .send()
                .await?
                .json()
                .await?;
            if done(&value) {
                return Ok(value);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("timed out waiting for {what} on {path}: {value}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn demo_settings(dir: &Path, remote: &Path, listen: SocketAddr) -> anyhow::Result<Settings> {
    let mut settings = Settings::defaults()?;
    settings.server.listen = listen;
    settings.server.public_url = format!("http://{listen}");
    settings.database.url = SecretUrl::new(format!("sqlite://{}", dir.join("rewind.db").display()));
    settings.git.url = SecretUrl::new(remote.display().to_string());
    settings.git.cache_dir = dir.join("repos");
    settings.webhooks.argocd_token = Some(Secret::new(ARGOCD_TOKEN));
    settings.webhooks.alertmanager_token = Some(Secret::new(ALERTMANAGER_TOKEN));
    // The demo compresses time: healthy once reported is known good.
    settings.policy.healthy_for = rewind_config::HumanDuration::from_secs(0);
    settings.policy.verify_for = rewind_config::HumanDuration::from_secs(VERIFY_FOR_SECS);
    Ok(settings)
}

/// The demo's GitOps repository: commit 1 runs v1.4.1, commit 2 v1.4.2
/// with a new feature flag. Written straight into a bare repository.
fn build_repository(path: &Path) -> anyhow::Result<(String, String)> {
    let repo = Repository::init_bare(path)?;
    let base_kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n  - service.yaml\n";
    let deployment = |flag: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\n  labels:\n    app: checkout\nspec:\n  replicas: 3\n  revisionHistoryLimit: 10\n  selector:\n    matchLabels:\n      app: checkout\n  template:\n    metadata:\n      labels:\n        app: checkout\n    spec:\n      containers:\n        - name: api\n          image: registry.example.com/shop/checkout:v1.4.0\n          env:\n            - name: NEW_CHECKOUT_FLOW\n              value: \"{flag}\"\n          ports:\n            - containerPort: 8080\n"
        )
    };
    let service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: checkout\nspec:\n  selector:\n    app: checkout\n  ports:\n    - port: 80\n      targetPort: 8080\n";
    let overlay = |tag: &str| {
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: shop\nresources:\n  - ../../base\nimages:\n  - name: registry.example.com/shop/checkout\n    newTag: {tag}\n"
        )
    };
    let good = commit(
        &repo,
        None,
        &[
            ("README.md", "# shop GitOps\n".to_string()),
            (
                "apps/checkout/base/kustomization.yaml",
                base_kustomization.to_string(),
            ),
            ("apps/checkout/base/deployment.yaml", deployment("false")),
            ("apps/checkout/base/service.yaml", service.to_string()),
            (
                "apps/checkout/overlays/prod/kustomization.yaml",
                overlay("v1.4.1"),
            ),
        ],
        "deploy(checkout/prod): v1.4.1",
    )?;
    let bad = commit(
        &repo,
        Some(good),
        &[
            ("apps/checkout/base/deployment.yaml", deployment("true")),
            (
                "apps/checkout/overlays/prod/kustomization.yaml",
                overlay("v1.4.2"),
            ),
        ],
        "deploy(checkout/prod): v1.4.2",
    )?;
    repo.set_head("refs/heads/main")?;
    Ok((good.to_string(), bad.to_string()))
}

fn commit(
    repo: &Repository,
    parent: Option<Oid>,
    files: &[(&str, String)],
    message: &str,
) -> anyhow::Result<Oid> {
    let signature = Signature::now("Dev Eloper", "dev@example.com")?;
    let parent = parent.map(|id| repo.find_commit(id)).transpose()?;
    let base = match &parent {
        Some(p) => p.tree()?,
        None => repo.find_tree(repo.treebuilder(None)?.write()?)?,
    };
    let mut update = TreeUpdateBuilder::new();
    for (path, content) in files {
        update.upsert(*path, repo.blob(content.as_bytes())?, git2::FileMode::Blob);
    }
    let tree = repo.find_tree(update.create_updated(repo, &base)?)?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    Ok(repo.commit(
        Some("refs/heads/main"),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )?)
}
