//! `rewind demo`: the whole story on one machine, for real. It builds a
//! small GitOps repository (a kustomize app with a base and a prod overlay),
//! starts rewind on SQLite, tells it — over HTTP, as Argo CD would — that
//! v1.4.1 was deployed and stayed healthy, then that v1.4.2 was deployed and
//! degraded, fires an alert as Alertmanager would, and prints the rollback
//! rewind proposes: the commit on its branch, the diff, the risks, and the
//! link to review it in the web UI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Args;
use git2::{Oid, Repository, Signature, build::TreeUpdateBuilder};
use rewind_config::{Secret, SecretUrl, Settings};
use rewind_ingest::samples::{HistoryEntry, alertmanager_notification, argocd_notification};
use serde_json::Value;

const ARGOCD_TOKEN: &str = "demo-argocd-token";
const ALERTMANAGER_TOKEN: &str = "demo-alertmanager-token";
const APP: &str = "checkout";
const APP_PATH: &str = "apps/checkout/overlays/prod";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the demo's repository and database (default: a new
    /// temporary directory, kept so you can look around afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Address of the demo's web UI and API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Exit after printing the proposal instead of serving the web UI.
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(demo(dir, args))
}

async fn demo(dir: PathBuf, args: DemoArgs) -> anyhow::Result<ExitCode> {
    println!("rewind demo in {}\n", dir.display());
    let remote = dir.join("gitops.git");
    if remote.exists() {
        bail!("{} exists: give --dir an empty directory", remote.display());
    }
    let (good, bad) = build_repository(&remote)?;
    println!(
        "1. GitOps repository {} with two commits:",
        remote.display()
    );
    println!("   {}  deploy(checkout/prod): v1.4.1", &good[..7]);
    println!("   {}  deploy(checkout/prod): v1.4.2", &bad[..7]);

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
        poll: Duration::from_millis(200),
        tick: Duration::from_millis(500),
        ..Default::default()
    };
    let service = rewind_server::Service::start(settings, listener, options).await?;
    let url = service.url();
    println!(
        "\n2. rewind is serving at {url} (SQLite at {})",
        dir.join("rewind.db").display()
    );

    let client = reqwest::Client::new();
    let repo_url = remote.display().to_string();
    let deployed = Utc::now() - chrono::Duration::minutes(30);
    let first = HistoryEntry {
        id: 1,
        revision: good.clone(),
        deployed_at: deployed,
    };
    let body = argocd_notification(
        "on-deployed",
        APP,
        &repo_url,
        APP_PATH,
        std::slice::from_ref(&first),
        "Healthy",
    );
    post(
        &client,
        &format!("{url}/webhooks/argocd"),
        ARGOCD_TOKEN,
        &body,
    )
    .await?;
    println!(
        "\n3. Argo CD: cluster revision 1 ({}) deployed, Healthy",
        &good[..7]
    );
    wait_for(&client, &format!("{url}/api/v1/apps"), |apps| {
        apps.pointer("/0/known_good/cluster_revision").is_some()
    })
    .await
    .context("revision 1 never became known good")?;
    println!("   rewind: revision 1 is known good");

    let second = HistoryEntry {
        id: 2,
        revision: bad.clone(),
        deployed_at: Utc::now(),
    };
    let body = argocd_notification(
        "on-health-degraded",
        APP,
        &repo_url,
        APP_PATH,
        &[first, second],
        "Degraded",
    );
    post(
        &client,
        &format!("{url}/webhooks/argocd"),
        ARGOCD_TOKEN,
        &body,
    )
    .await?;
    println!(
        "4. Argo CD: cluster revision 2 ({}) deployed, Degraded",
        &bad[..7]
    );

    let alert = alertmanager_notification(
        "firing",
        "CheckoutHighErrorRate",
        APP,
        "critical",
        "checkout 5xx ratio above 5% since v1.4.2",
        Utc::now(),
        "c0ffee00d15ea5e5",
    );
    post(
        &client,
        &format!("{url}/webhooks/alertmanager"),
        ALERTMANAGER_TOKEN,
        &alert,
    )
    .await?;
    println!("5. Alertmanager: CheckoutHighErrorRate firing (critical) for app checkout");

    let rollbacks = wait_for(
        &client,
        &format!("{url}/api/v1/rollbacks?app={APP}"),
        |list| {
            list.pointer("/0/timeline")
                .and_then(Value::as_array)
                .is_some_and(|t| t.iter().any(|e| e["event"] == "pushed"))
        },
    )
    .await
    .context("rewind proposed no rollback")?;
    let rollback = &rollbacks[0];
    print_proposal(rollback, &url);

    if args.exit {
        service.shutdown(Duration::from_secs(5)).await;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "\nServing until Ctrl-C. Try: rewind approve {} --server {url}",
        rollback["id"].as_str().unwrap_or("")
    );
    let cancel = service.cancel_token();
    tokio::spawn(async move {
        super::serve::shutdown_signal().await;
        cancel.cancel();
    });
    service.wait(Duration::from_secs(5)).await;
    Ok(ExitCode::SUCCESS)
}

fn print_proposal(rollback: &Value, url: &str) {
    let s = |p: &str| {
        rollback
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_string()
    };
    println!(
        "\n6. rewind proposes rollback {} ({})",
        s("/id"),
        s("/state")
    );
    println!(
        "   from cluster revision 2 ({}) to 1 ({})",
        &s("/from/commit")[..7.min(s("/from/commit").len())],
        &s("/to/commit")[..7.min(s("/to/commit").len())]
    );
    println!("   why: {}", s("/reason"));
    println!("   branch {} at {}", s("/branch"), s("/commit"));
    match rollback["risks"].as_array() {
        Some(risks) if !risks.is_empty() => {
            for risk in risks {
                println!(
                    "   risk {}: {}",
                    risk["code"].as_str().unwrap_or(""),
                    risk["detail"].as_str().unwrap_or("")
                );
            }
        }
        _ => println!("   risks: none found"),
    }
    println!("\n{}", s("/diff/text"));
    println!("Review it: {url}/ui/rollbacks/{}", s("/id"));
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
    settings.policy.verify_for = rewind_config::HumanDuration::from_secs(30);
    Ok(settings)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
) -> anyhow::Result<()> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    if response.status().as_u16() != 202 {
        bail!(
            "POST {url}: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// Polls `url` until `done` holds (at most 60 s): the demo's steps run
/// as background jobs.
async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let value: Value = client.get(url).send().await?.json().await?;
        if done(&value) {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting on {url}: {value}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
