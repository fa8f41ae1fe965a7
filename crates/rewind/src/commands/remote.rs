//! Commands that talk to a running rewind over its HTTP API and print tables
//! (or JSON / YAML with `--output`). A 409 or 429 answer, and a 403 that is
//! a review refusal (self-approval), is a refusal: exit code 3.

use std::process::ExitCode;

use clap::Args;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use super::output::{Failure, Output, date, plain_table, short, short_hash, table, text as s};
use super::progress::Spinner;

/// How to reach the service.
#[derive(Debug, Args)]
pub struct Remote {
    /// Base URL of the rewind service.
    #[arg(long, env = "REWIND_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// API token (`[[api.tokens]]`).
    #[arg(long, env = "REWIND_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Debug, Args)]
pub struct AppsArgs {
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// App: `NAME@CLUSTER`, or `NAME` when one cluster runs it
    /// (`namespace/name` or `name`).
    app: String,
    /// The app's cluster (same as `NAME@CLUSTER`).
    #[arg(long)]
    cluster: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    /// App: `NAME@CLUSTER`, or `NAME` when one cluster runs it.
    app: String,
    /// The app's cluster (same as `NAME@CLUSTER`).
    #[arg(long, conflicts_with = "all_clusters")]
    cluster: Option<String>,
    /// Every cluster that runs the app, as a wave in `policy.cluster_order`:
    /// each later rollback is held until the one before is verified.
    #[arg(long)]
    all_clusters: bool,
    /// Roll back to this cluster revision.
    #[arg(long, conflicts_with = "to_commit")]
    to_revision: Option<i64>,
    /// Roll back to this commit.
    #[arg(long)]
    to_commit: Option<String>,
    /// Why: shown in the pull request and the audit log.
    #[arg(long, default_value = "requested from the command line")]
    reason: String,
    /// Show the proposal without pushing or recording anything.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, Args)]
pub struct RollbacksArgs {
    /// Only this app: `NAME@CLUSTER`, or `NAME` when one cluster runs it.
    #[arg(long)]
    app: Option<String>,
    /// The app's cluster (with `--app NAME`).
    #[arg(long, requires = "app")]
    cluster: Option<String>,
    #[arg(long)]
    state: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Rollback id.
    id: String,
    /// Merge without the required approvals (admin token only; audited).
    #[arg(long = "override", requires = "reason")]
    override_approvals: bool,
    /// Why the override: recorded in the audit log, the timeline and the PR.
    #[arg(long, requires = "override_approvals")]
    reason: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// Rollback id.
    id: String,
    #[command(flatten)]
    remote: Remote,
}

/// The app reference sent to the server: `NAME@CLUSTER` when `--cluster`
/// names the cluster, else the argument as given (the server resolves a
/// plain name, or answers 409 naming the clusters).
fn reference(app: &str, cluster: Option<&str>) -> anyhow::Result<String> {
    match cluster {
        None => Ok(app.to_owned()),
        Some(_) if app.contains('@') => Err(Failure::usage(format!(
            "{app} already names its cluster; drop --cluster or the @CLUSTER part"
        ))
        .into()),
        Some(cluster) => Ok(format!("{app}@{cluster}")),
    }
}

fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, NON_ALPHANUMERIC).to_string()
}

fn call(
    remote: &Remote,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let url = format!("{}{}", remote.server.trim_end_matches('/'), path);
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        let mut request = client.request(method, &url);
        if let Some(token) = &remote.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            Failure::error(
                "unreachable",
                format!("cannot reach rewind at {}: {e}", remote.server),
            )
        })?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(value);
        }
        Err(failure_of(status, &value).into())
    })
}

/// The failure an error answer (`{error, detail}`) stands for.
fn failure_of(status: reqwest::StatusCode, value: &Value) -> Failure {
    let error = value
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("error")
        .to_owned();
    let detail = value
        .get("detail")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string());
    let refused =
        matches!(status.as_u16(), 409 | 429) || (status.as_u16() == 403 && error != "forbidden");
    if refused {
        Failure::refused(error, detail)
    } else {
        Failure::error(
            error,
            format!(
                "{} {}: {detail}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
        )
    }
}

fn finish(output: Output, value: &Value, table: fn(&Value)) -> ExitCode {
    output.print(value, || table(value));
    ExitCode::SUCCESS
}

fn apps_table(value: &Value) {
    let mut t = table(&[
        "APP",
        "CLUSTER",
        "CURRENT",
        "HEALTH",
        "CONFIG",
        "KNOWN-GOOD",
        "DRIFT",
    ]);
    for app in value.as_array().into_iter().flatten() {
        let rev = |p: &str| {
            app.pointer(p)
                .and_then(Value::as_i64)
                .map_or("-".to_string(), |n| n.to_string())
        };
        t.add_row([
            s(app, "/name").to_owned(),
            s(app, "/cluster").to_owned(),
            rev("/current/cluster_revision"),
            s(app, "/current/health").to_owned(),
            short_hash(s(app, "/current/config_hash")).to_owned(),
            rev("/known_good/cluster_revision"),
            s(app, "/drift/detail").to_owned(),
        ]);
    }
    println!("{t}");
}

/// As `argocd app history`: ID, date, revision, then health, the config
/// hash (short) and the images.
fn history_table(value: &Value) {
    let mut t = table(&["ID", "DATE", "REVISION", "HEALTH", "CONFIG", "IMAGES"]);
    for d in value.as_array().into_iter().flatten() {
        let images: Vec<&str> = d
            .get("images")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut health = s(d, "/health").to_owned();
        if d.get("known_good").and_then(Value::as_bool) == Some(true) {
            health.push_str(" (known good)");
        }
        t.add_row([
            d.get("cluster_revision")
                .and_then(Value::as_i64)
                .map_or("-".to_string(), |n| n.to_string()),
            date(s(d, "/deployed_at")),
            match d.get("commit").and_then(Value::as_str) {
                Some(commit) => short(commit).to_owned(),
                None => s(d, "/revision").to_owned(),
            },
            health,
            short_hash(s(d, "/config_hash")).to_owned(),
            images.join("\n"),
        ]);
    }
    println!("{t}");
}

fn rollback_table(r: &Value) {
    let mut t = plain_table();
    let rev = |p: &str| r.pointer(p).map_or("-".to_string(), Value::to_string);
    t.add_row(["rollback".to_owned(), s(r, "/id").to_owned()]);
    t.add_row([
        "app".to_owned(),
        format!("{}@{}", s(r, "/app"), s(r, "/cluster")),
    ]);
    t.add_row(["state".to_owned(), s(r, "/state").to_owned()]);
    t.add_row([
        "from".to_owned(),
        format!(
            "{} (cluster revision {}, config {})",
            short(s(r, "/from/commit")),
            rev("/from/cluster_revision"),
            short_hash(s(r, "/from/config_hash"))
        ),
    ]);
    t.add_row([
        "to".to_owned(),
        format!(
            "{} (cluster revision {}, config {})",
            short(s(r, "/to/commit")),
            rev("/to/cluster_revision"),
            short_hash(s(r, "/to/config_hash"))
        ),
    ]);
    t.add_row(["reason".to_owned(), s(r, "/reason").to_owned()]);
    t.add_row(["branch".to_owned(), s(r, "/branch").to_owned()]);
    if let Some(url) = r.pointer("/pr/url").and_then(Value::as_str) {
        t.add_row(["pr".to_owned(), url.to_owned()]);
    }
    let approvals: Vec<String> = r
        .get("approvals")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| format!("{} via {}", s(a, "/by"), s(a, "/via")))
        .collect();
    t.add_row([
        "approvals".to_owned(),
        if approvals.is_empty() {
            "none yet".to_owned()
        } else {
            approvals.join(", ")
        },
    ]);
    println!("{t}");
    let risks = r
        .get("risks")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty());
    match risks {
        Some(risks) => {
            let mut t = table(&["RISK", "DETAIL"]);
            for risk in risks {
                t.add_row([s(risk, "/code"), s(risk, "/detail")]);
            }
            println!("\n{t}");
        }
        None => println!("\nrisks: none found"),
    }
    if let Some(text) = r.pointer("/diff/text").and_then(Value::as_str)
        && !text.is_empty()
    {
        println!("\n{text}");
    }
    verification_table(r);
    let mut t = table(&["AT", "EVENT", "DETAIL"]);
    for entry in r
        .get("timeline")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        t.add_row([
            date(s(entry, "/at")),
            s(entry, "/event").to_owned(),
            s(entry, "/detail").to_owned(),
        ]);
    }
    println!("\n{t}");
}

/// Each verification evaluation: check, verdict, before → after, detail.
fn verification_table(r: &Value) {
    let Some(results) = r
        .get("verification")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
    else {
        return;
    };
    let mut t = table(&["AT", "CHECK", "VERDICT", "BEFORE → AFTER", "DETAIL"]);
    for e in results {
        let verdict = match e.get("pass").and_then(Value::as_bool) {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "unknown",
        };
        let number = |key: &str| {
            e.get(key)
                .and_then(Value::as_f64)
                .map_or("-".to_string(), |v| v.to_string())
        };
        t.add_row([
            date(s(e, "/at")),
            s(e, "/check").to_owned(),
            verdict.to_owned(),
            format!("{} → {}", number("baseline"), number("value")),
            s(e, "/detail").to_owned(),
        ]);
    }
    println!("\n{t}");
}

fn rollbacks_table(value: &Value) {
    let mut t = table(&["ID", "APP", "STATE", "FROM", "TO", "CREATED"]);
    for r in value.as_array().into_iter().flatten() {
        t.add_row([
            s(r, "/id").to_owned(),
            format!("{}@{}", s(r, "/app"), s(r, "/cluster")),
            s(r, "/state").to_owned(),
            short(s(r, "/from/commit")).to_owned(),
            short(s(r, "/to/commit")).to_owned(),
            date(s(r, "/created_at")),
        ]);
    }
    println!("{t}");
}

pub fn apps(args: AppsArgs, output: Output) -> anyhow::Result<ExitCode> {
    let value = call(&args.remote, reqwest::Method::GET, "/api/v1/apps", None)?;
    Ok(finish(output, &value, apps_table))
}

pub fn history(args: HistoryArgs, output: Output) -> anyhow::Result<ExitCode> {
    let path = format!(
        "/api/v1/apps/{}/history?limit={}",
        encode(&reference(&args.app, args.cluster.as_deref())?),
        args.limit
    );
    let value = call(&args.remote, reqwest::Method::GET, &path, None)?;
    Ok(finish(output, &value, history_table))
}

pub fn undo(args: UndoArgs, output: Output) -> anyhow::Result<ExitCode> {
    let mut body = json!({"reason": args.reason, "dry_run": args.dry_run});
    if args.all_clusters {
        body["all_clusters"] = json!(true);
    }
    if let Some(n) = args.to_revision {
        body["to_revision"] = json!(n);
    }
    if let Some(sha) = &args.to_commit {
        body["to_commit"] = json!(sha);
    }
    let app = reference(&args.app, args.cluster.as_deref())?;
    let path = format!("/api/v1/apps/{}/rollbacks", encode(&app));
    // The answer comes once the rollback commit is built (and, for a wave,
    // every cluster's): seconds on a large repository.
    let spinner = Spinner::start(if args.dry_run {
        format!("computing the rollback of {app}")
    } else {
        format!("proposing the rollback of {app}: building its commit")
    });
    let value = call(&args.remote, reqwest::Method::POST, &path, Some(body))?;
    drop(spinner);
    Ok(finish(output, &value, rollback_table))
}

pub fn rollbacks(args: RollbacksArgs, output: Output) -> anyhow::Result<ExitCode> {
    let mut query = Vec::new();
    if let Some(app) = &args.app {
        let app = reference(app, args.cluster.as_deref())?;
        query.push(format!("app={}", encode(&app)));
    }
    if let Some(state) = &args.state {
        query.push(format!("state={}", encode(state)));
    }
    let path = format!("/api/v1/rollbacks?{}", query.join("&"));
    let value = call(&args.remote, reqwest::Method::GET, &path, None)?;
    Ok(finish(output, &value, rollbacks_table))
}

pub fn show(args: IdArgs, output: Output) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/rollbacks/{}", encode(&args.id));
    let value = call(&args.remote, reqwest::Method::GET, &path, None)?;
    Ok(finish(output, &value, rollback_table))
}

/// `rewind merge ID [--override --reason TEXT]`.
pub fn merge(args: MergeArgs, output: Output) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/rollbacks/{}/merge", encode(&args.id));
    let body = if args.override_approvals {
        json!({"override": true, "reason": args.reason})
    } else {
        json!({})
    };
    let value = call(&args.remote, reqwest::Method::POST, &path, Some(body))?;
    Ok(finish(output, &value, rollback_table))
}

pub fn act(args: IdArgs, action: &str, output: Output) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/rollbacks/{}/{action}", encode(&args.id));
    let value = call(&args.remote, reqwest::Method::POST, &path, Some(json!({})))?;
    Ok(finish(output, &value, rollback_table))
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries about this app.
    #[arg(long)]
    app: Option<String>,
    /// Only entries by this actor (a token name, `system`, a webhook source).
    #[arg(long)]
    actor: Option<String>,
    /// Only entries since this RFC 3339 time or this long ago (`2h`, `7d`).
    #[arg(long)]
    since: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: u32,
    #[command(flatten)]
    remote: Remote,
}

fn audit_table(value: &Value) {
    let mut t = table(&["AT", "ACTOR", "ACTION", "VIA", "SUBJECT", "TRACE"]);
    for e in value.as_array().into_iter().flatten() {
        t.add_row([
            date(s(e, "/at")),
            s(e, "/actor").to_owned(),
            s(e, "/action").to_owned(),
            s(e, "/via").to_owned(),
            s(e, "/subject").to_owned(),
            s(e, "/trace_id").to_owned(),
        ]);
    }
    println!("{t}");
}

/// `rewind audit`: the audit log, newest first.
pub fn audit(args: AuditArgs, output: Output) -> anyhow::Result<ExitCode> {
    let mut query = vec![format!("limit={}", args.limit)];
    for (key, value) in [
        ("app", &args.app),
        ("actor", &args.actor),
        ("since", &args.since),
    ] {
        if let Some(value) = value {
            query.push(format!("{key}={}", encode(value)));
        }
    }
    let path = format!("/api/v1/audit?{}", query.join("&"));
    let value = call(&args.remote, reqwest::Method::GET, &path, None)?;
    Ok(finish(output, &value, audit_table))
}

/// `rewind token ...`: API tokens stored (hashed) in rewind's database.
///
/// These go through the API rather than to the database: the CLI then
/// needs no database credentials, the admin role is checked in one place,
/// and every change is audited under the token that made it.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it, once (only its digest is stored).
    Create(TokenCreateArgs),
    /// List tokens (configured and stored), without secrets.
    List(TokenListArgs),
    /// Delete a stored token; its web UI sessions end with it.
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// Name the token appears under in the audit log.
    #[arg(long)]
    name: String,
    /// viewer, operator, approver or admin.
    #[arg(long)]
    role: String,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, Args)]
pub struct TokenListArgs {
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// Token name.
    name: String,
    #[command(flatten)]
    remote: Remote,
}

fn created_token(value: &Value) {
    // The token alone on stdout, so `TOKEN=$(rewind token create ...)`
    // works; the reminder goes to stderr.
    println!("{}", s(value, "/token"));
    eprintln!(
        "token {:?} ({}) created; it is shown only this once",
        s(value, "/name"),
        s(value, "/role")
    );
}

fn tokens_table(value: &Value) {
    let mut t = table(&["NAME", "ROLE", "SOURCE", "CREATED", "CREATED-BY"]);
    for e in value.as_array().into_iter().flatten() {
        t.add_row([
            s(e, "/name").to_owned(),
            s(e, "/role").to_owned(),
            s(e, "/source").to_owned(),
            date(s(e, "/created_at")),
            s(e, "/created_by").to_owned(),
        ]);
    }
    println!("{t}");
}

pub fn token(command: TokenCommand, output: Output) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create(args) => {
            let body = json!({"name": args.name, "role": args.role});
            let value = call(
                &args.remote,
                reqwest::Method::POST,
                "/api/v1/tokens",
                Some(body),
            )?;
            Ok(finish(output, &value, created_token))
        }
        TokenCommand::List(args) => {
            let value = call(&args.remote, reqwest::Method::GET, "/api/v1/tokens", None)?;
            Ok(finish(output, &value, tokens_table))
        }
        TokenCommand::Revoke(args) => {
            let path = format!("/api/v1/tokens/{}", encode(&args.name));
            let value = call(&args.remote, reqwest::Method::DELETE, &path, None)?;
            Ok(finish(output, &value, |_| {}))
        }
    }
}
