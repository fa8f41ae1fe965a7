//! Commands that talk to a running rewind over its HTTP API and print tables
//! (or JSON with `--output json`).

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Table,
    Json,
}

/// How to reach the service.
#[derive(Debug, Args)]
pub struct Remote {
    /// Base URL of the rewind service.
    #[arg(long, env = "REWIND_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// API token (`[[api.tokens]]`).
    #[arg(long, env = "REWIND_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
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

/// A response the contract defines as a refusal: exit code 3.
struct Refused(String);

/// The app reference sent to the server: `NAME@CLUSTER` when `--cluster`
/// names the cluster, else the argument as given (the server resolves a
/// plain name, or answers 409 naming the clusters).
fn reference(app: &str, cluster: Option<&str>) -> anyhow::Result<String> {
    match cluster {
        None => Ok(app.to_owned()),
        Some(_) if app.contains('@') => {
            bail!("{app} already names its cluster; drop --cluster or the @CLUSTER part")
        }
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
) -> anyhow::Result<Result<Value, Refused>> {
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
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach rewind at {}", remote.server))?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(Ok(value));
        }
        let reason = value
            .get("detail")
            .or_else(|| value.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        if status.as_u16() == 409 || status.as_u16() == 429 {
            return Ok(Err(Refused(reason)));
        }
        bail!(
            "{} {}: {reason}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
    })
}

fn finish(remote: &Remote, result: Result<Value, Refused>, table: fn(&Value)) -> ExitCode {
    match result {
        Ok(value) => {
            match remote.output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                ),
                Output::Table => table(&value),
            }
            ExitCode::SUCCESS
        }
        Err(Refused(reason)) => {
            eprintln!("refused: {reason}");
            ExitCode::from(3)
        }
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("-")
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

fn apps_table(value: &Value) {
    println!(
        "{:<32} {:<14} {:<10} {:<12} {:<10} DRIFT",
        "APP", "CLUSTER", "CURRENT", "HEALTH", "KNOWN-GOOD"
    );
    for app in value.as_array().into_iter().flatten() {
        let rev = |p: &str| {
            app.pointer(p)
                .and_then(Value::as_i64)
                .map_or("-".to_string(), |n| n.to_string())
        };
        println!(
            "{:<32} {:<14} {:<10} {:<12} {:<10} {}",
            s(app, "/name"),
            s(app, "/cluster"),
            rev("/current/cluster_revision"),
            s(app, "/current/health"),
            rev("/known_good/cluster_revision"),
            s(app, "/drift/detail"),
        );
    }
}

fn history_table(value: &Value) {
    println!(
        "{:<8} {:<9} {:<12} {:<11} {:<26} IMAGES",
        "REV", "COMMIT", "HEALTH", "KNOWN-GOOD", "DEPLOYED"
    );
    for d in value.as_array().into_iter().flatten() {
        let images: Vec<&str> = d
            .get("images")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "{:<8} {:<9} {:<12} {:<11} {:<26} {}",
            d.get("cluster_revision")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            short(s(d, "/commit")),
            s(d, "/health"),
            d.get("known_good")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            s(d, "/deployed_at"),
            images.join(",")
        );
    }
}

fn rollback_table(r: &Value) {
    println!("rollback  {}", s(r, "/id"));
    println!("app       {}@{}", s(r, "/app"), s(r, "/cluster"));
    println!("state     {}", s(r, "/state"));
    println!(
        "from      {} (cluster revision {})",
        short(s(r, "/from/commit")),
        r.pointer("/from/cluster_revision").unwrap_or(&Value::Null)
    );
    println!(
        "to        {} (cluster revision {})",
        short(s(r, "/to/commit")),
        r.pointer("/to/cluster_revision").unwrap_or(&Value::Null)
    );
    println!("reason    {}", s(r, "/reason"));
    println!("branch    {}", s(r, "/branch"));
    if let Some(url) = r.pointer("/pr/url").and_then(Value::as_str) {
        println!("pr        {url}");
    }
    let risks = r.get("risks").and_then(Value::as_array);
    match risks {
        Some(risks) if !risks.is_empty() => {
            println!("risks");
            for risk in risks {
                println!("  {:<14} {}", s(risk, "/code"), s(risk, "/detail"));
            }
        }
        _ => println!("risks     none"),
    }
    if let Some(text) = r.pointer("/diff/text").and_then(Value::as_str)
        && !text.is_empty()
    {
        println!("\n{text}");
    }
    verification_table(r);
    println!("timeline");
    for entry in r
        .get("timeline")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "  {}  {:<16} {}",
            s(entry, "/at"),
            s(entry, "/event"),
            s(entry, "/detail")
        );
    }
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
    println!("verification");
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
        println!(
            "  {}  {:<16} {:<7} {} → {}  {}",
            s(e, "/at"),
            s(e, "/check"),
            verdict,
            number("baseline"),
            number("value"),
            s(e, "/detail")
        );
    }
}

fn rollbacks_table(value: &Value) {
    println!(
        "{:<38} {:<36} {:<10} {:<9} {:<9} CREATED",
        "ID", "APP", "STATE", "FROM", "TO"
    );
    for r in value.as_array().into_iter().flatten() {
        println!(
            "{:<38} {:<36} {:<10} {:<9} {:<9} {}",
            s(r, "/id"),
            format!("{}@{}", s(r, "/app"), s(r, "/cluster")),
            s(r, "/state"),
            short(s(r, "/from/commit")),
            short(s(r, "/to/commit")),
            s(r, "/created_at")
        );
    }
}

pub fn apps(args: AppsArgs) -> anyhow::Result<ExitCode> {
    let result = call(&args.remote, reqwest::Method::GET, "/api/v1/apps", None)?;
    Ok(finish(&args.remote, result, apps_table))
}

pub fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let path = format!(
        "/api/v1/apps/{}/history?limit={}",
        encode(&reference(&args.app, args.cluster.as_deref())?),
        args.limit
    );
    let result = call(&args.remote, reqwest::Method::GET, &path, None)?;
    Ok(finish(&args.remote, result, history_table))
}

pub fn undo(args: UndoArgs) -> anyhow::Result<ExitCode> {
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
    let result = call(&args.remote, reqwest::Method::POST, &path, Some(body))?;
    Ok(finish(&args.remote, result, rollback_table))
}

pub fn rollbacks(args: RollbacksArgs) -> anyhow::Result<ExitCode> {
    let mut query = Vec::new();
    if let Some(app) = &args.app {
        let app = reference(app, args.cluster.as_deref())?;
        query.push(format!("app={}", encode(&app)));
    }
    if let Some(state) = &args.state {
        query.push(format!("state={}", encode(state)));
    }
    let path = format!("/api/v1/rollbacks?{}", query.join("&"));
    let result = call(&args.remote, reqwest::Method::GET, &path, None)?;
    Ok(finish(&args.remote, result, rollbacks_table))
}

pub fn show(args: IdArgs) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/rollbacks/{}", encode(&args.id));
    let result = call(&args.remote, reqwest::Method::GET, &path, None)?;
    Ok(finish(&args.remote, result, rollback_table))
}

/// `rewind merge ID [--override --reason TEXT]`.
pub fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/rollbacks/{}/merge", encode(&args.id));
    let body = if args.override_approvals {
        json!({"override": true, "reason": args.reason})
    } else {
        json!({})
    };
    let result = call(&args.remote, reqwest::Method::POST, &path, Some(body))?;
    Ok(finish(&args.remote, result, rollback_table))
}

pub fn act(args: IdArgs, action: &str) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/rollbacks/{}/{action}", encode(&args.id));
    let result = call(&args.remote, reqwest::Method::POST, &path, Some(json!({})))?;
    Ok(finish(&args.remote, result, rollback_table))
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
    println!(
        "{:<28} {:<16} {:<26} {:<8} {:<44} TRACE",
        "AT", "ACTOR", "ACTION", "VIA", "SUBJECT"
    );
    for e in value.as_array().into_iter().flatten() {
        println!(
            "{:<28} {:<16} {:<26} {:<8} {:<44} {}",
            s(e, "/at"),
            s(e, "/actor"),
            s(e, "/action"),
            s(e, "/via"),
            s(e, "/subject"),
            s(e, "/trace_id")
        );
    }
}

/// `rewind audit`: the audit log, newest first.
pub fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
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
    let result = call(&args.remote, reqwest::Method::GET, &path, None)?;
    Ok(finish(&args.remote, result, audit_table))
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
    println!(
        "{:<24} {:<9} {:<9} {:<28} CREATED-BY",
        "NAME", "ROLE", "SOURCE", "CREATED"
    );
    for t in value.as_array().into_iter().flatten() {
        println!(
            "{:<24} {:<9} {:<9} {:<28} {}",
            s(t, "/name"),
            s(t, "/role"),
            s(t, "/source"),
            s(t, "/created_at"),
            s(t, "/created_by")
        );
    }
}

pub fn token(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create(args) => {
            let body = json!({"name": args.name, "role": args.role});
            let result = call(
                &args.remote,
                reqwest::Method::POST,
                "/api/v1/tokens",
                Some(body),
            )?;
            Ok(finish(&args.remote, result, created_token))
        }
        TokenCommand::List(args) => {
            let result = call(&args.remote, reqwest::Method::GET, "/api/v1/tokens", None)?;
            Ok(finish(&args.remote, result, tokens_table))
        }
        TokenCommand::Revoke(args) => {
            let path = format!("/api/v1/tokens/{}", encode(&args.name));
            let result = call(&args.remote, reqwest::Method::DELETE, &path, None)?;
            Ok(finish(&args.remote, result, |_| {}))
        }
    }
}
