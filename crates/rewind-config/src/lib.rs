//! rewind's configuration, read as the contract says: built-in defaults
//! (`config/default.toml`, compiled in), then the file given by `--config`,
//! then `REWIND__SECTION__KEY` environment variables.
//!
//! # Layout
//!
//! - [`settings`]: the sections and keys, as serde structs.
//! - [`secret`]: `Secret` and `SecretUrl`, redacted wherever shown.
//! - [`duration`]: `"90s"`-style durations.
//! - [`verify`]: `[verify]`, `[[verify.checks]]`, `[[notify]]` and their
//!   validation.
//!
//! Unknown keys and bad values are errors that name the key and where it
//! came from (the file or the environment variable); loading never panics.

#![forbid(unsafe_code)]

pub mod duration;
pub mod secret;
pub mod settings;
pub mod verify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use duration::HumanDuration;
pub use secret::{REDACTED, Secret, SecretUrl, redact_url};
pub use settings::*;
pub use verify::{
    CheckSettings, HeaderSettings, HttpCheckSettings, NoWorseThan, NotifyEvent, NotifyKind,
    NotifySettings, VerifySettings,
};

/// The commented default configuration, as shipped in `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Prefix of environment variables that override keys.
pub const ENV_PREFIX: &str = "REWIND";

/// Why a configuration could not be loaded. Every variant names where the
/// problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("unknown key `{key}` in {origin}")]
    UnknownKey { key: String, origin: String },
    #[error("invalid value for `{key}` in {origin}: {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
}

/// Loads the configuration from the defaults, `file` and the process
/// environment.
pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
    load_from(file, std::env::vars())
}

/// Like [`load`], with the environment given explicitly (for tests).
pub fn load_from(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let all: Vec<(String, String)> = env.into_iter().collect();
    let env_tokens: Vec<(String, String)> = all
        .iter()
        .filter(|(key, _)| key.starts_with(TOKEN_ENV_PREFIX))
        .cloned()
        .collect();
    let env: HashMap<String, String> = all
        .into_iter()
        .filter(|(key, _)| key.starts_with(&format!("{ENV_PREFIX}__")))
        .collect();
    let origins = Origins {
        file: file.map(Path::to_path_buf),
        env: env.keys().cloned().collect(),
    };

    let mut builder = config::Config::builder().add_source(config::File::from_str(
        DEFAULT_TOML,
        config::FileFormat::Toml,
    ));
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        // Parse once ourselves: toml's errors carry line and column, the
        // config crate's do not.
        if let Err(e) = text.parse::<toml::Table>() {
            return Err(ConfigError::Syntax {
                path: path.to_path_buf(),
                message: describe_syntax_error(&text, &e),
            });
        }
        builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
    }
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("alerts.severities")
            .source(Some(env.into_iter().collect())),
    );
    let merged = builder.build().map_err(|e| ConfigError::Invalid {
        key: "(configuration)".into(),
        origin: origins.describe(""),
        message: e.to_string(),
    })?;

    let mut unknown = Vec::new();
    let mut note_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let deserializer = serde_ignored::Deserializer::new(merged, &mut note_unknown);
    let settings: Settings = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::Invalid {
            origin: origins.describe(&key),
            message: scrub_secret_value(&key, &e.into_inner().to_string()),
            key,
        }
    })?;
    let mut settings = settings;
    drop_empty_secrets(&mut settings);
    add_token_sources(&mut settings, &env_tokens)?;
    if let Some(key) = unknown.into_iter().next() {
        return Err(ConfigError::UnknownKey {
            origin: origins.describe(&key),
            key,
        });
    }
    validate(&settings).map_err(|(key, message)| ConfigError::Invalid {
        origin: origins.describe(key),
        key: key.to_string(),
        message,
    })?;
    Ok(settings)
}

/// serde's "invalid type: string \"...\", expected ..." quotes the value:
/// for a key that holds a credential the value is replaced.
fn scrub_secret_value(key: &str, message: &str) -> String {
    let key = key.to_ascii_lowercase();
    let secret = ["token", "secret", "password", "key", "url"]
        .iter()
        .any(|word| key.contains(word));
    if !secret {
        return message.to_string();
    }
    match message.split_once(", expected") {
        Some((_, expected)) => format!("invalid value {REDACTED}, expected{expected}"),
        None => format!("invalid value {REDACTED}"),
    }
}

/// Where a TOML syntax error is and what it is, without the source line:
/// toml's own message quotes that line, and it may be `password = "..."`
/// with the secret in it. Line and column are 1-based; the key is the
/// table and key the broken line assigns, when it has one.
fn describe_syntax_error(text: &str, error: &toml::de::Error) -> String {
    let what = error
        .message()
        .lines()
        .next()
        .unwrap_or("invalid TOML")
        .trim();
    let Some(span) = error.span() else {
        return what.to_string();
    };
    let offset = span.start.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let key = broken_key(text, line);
    match key {
        Some(key) => format!("line {line}, column {column}, key `{key}`: {what}"),
        None => format!("line {line}, column {column}: {what}"),
    }
}

/// `table.key` for the `key = ...` on `line` (1-based), from the last
/// `[table]` header above it; `None` when the line assigns no bare key.
fn broken_key(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let current = lines.get(line.checked_sub(1)?)?;
    let (key, _) = current.split_once('=')?;
    let key = key.trim();
    let bare = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if !bare(key) {
        return None;
    }
    let table = lines[..line - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        let name = l.strip_prefix("[[").or_else(|| l.strip_prefix('['))?;
        let name = name.split(']').next()?.trim();
        bare(name).then_some(name)
    });
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_string(),
    })
}

/// Prefix of environment variables that each add one API token:
/// `REWIND_API_TOKEN_<NAME>="<role>:<token>"`, named `<name>` (lowercase).
pub const TOKEN_ENV_PREFIX: &str = "REWIND_API_TOKEN_";

/// Adds the tokens of `api.tokens_file` and of `REWIND_API_TOKEN_<NAME>`
/// variables to `api.tokens`, so one list (validated once) is what the
/// server checks. Errors name the file or variable, never a token.
fn add_token_sources(s: &mut Settings, env: &[(String, String)]) -> Result<(), ConfigError> {
    if let Some(path) = s.api.tokens_file.clone() {
        let origin = format!("api.tokens_file {}", path.display());
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let file: TokensFile = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            key: "api.tokens_file".into(),
            origin: origin.clone(),
            // toml's message quotes the offending line, which may hold a
            // token: only its first line (what and where) is kept.
            message: e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_string(),
        })?;
        s.api.tokens.extend(file.tokens);
    }
    let mut env: Vec<&(String, String)> = env.iter().collect();
    env.sort();
    for (var, value) in env {
        if value.is_empty() {
            continue;
        }
        let name = var[TOKEN_ENV_PREFIX.len()..].to_lowercase();
        let invalid = |message: &str| ConfigError::Invalid {
            key: var.clone(),
            origin: format!("environment variable {var}"),
            message: message.to_string(),
        };
        let (role, token) = value
            .split_once(':')
            .ok_or_else(|| invalid("expected \"<role>:<token>\""))?;
        let role = Role::parse(role)
            .ok_or_else(|| invalid("the role must be viewer, operator, approver or admin"))?;
        if name.is_empty() {
            return Err(invalid("the variable needs a name after REWIND_API_TOKEN_"));
        }
        s.api.tokens.push(ApiToken {
            name,
            token: Secret::new(token),
            role,
        });
    }
    Ok(())
}

/// Where keys came from, to name the culprit in errors.
struct Origins {
    file: Option<PathBuf>,
    env: Vec<String>,
}

impl Origins {
    fn describe(&self, key: &str) -> String {
        let section_key: Vec<&str> = key
            .split('.')
            .filter(|part| !part.chars().all(|c| c.is_ascii_digit()))
            .collect();
        let var = format!("{ENV_PREFIX}__{}", section_key.join("__").to_uppercase());
        if !key.is_empty() && self.env.iter().any(|v| v.eq_ignore_ascii_case(&var)) {
            return format!("environment variable {var}");
        }
        match &self.file {
            Some(path) => format!("config file {}", path.display()),
            None => "the built-in defaults".to_string(),
        }
    }
}

/// An empty secret (`REWIND__WEBHOOKS__ARGOCD_TOKEN=` from a compose file)
/// means "not set": it must never authenticate an empty credential.
fn drop_empty_secrets(s: &mut Settings) {
    for secret in [
        &mut s.webhooks.argocd_token,
        &mut s.webhooks.alertmanager_token,
        &mut s.webhooks.flux_hmac_key,
        &mut s.webhooks.flagger_token,
        &mut s.webhooks.rollouts_token,
        &mut s.forge.webhook_secret,
        &mut s.forge.token,
        &mut s.git.token,
    ] {
        if secret.as_ref().is_some_and(|v| v.expose().is_empty()) {
            *secret = None;
        }
    }
    for target in &mut s.notify {
        if target
            .secret
            .as_ref()
            .is_some_and(|v| v.expose().is_empty())
        {
            target.secret = None;
        }
    }
}

/// Checks that need more than a type: URLs, required combinations.
fn validate(s: &Settings) -> Result<(), (&'static str, String)> {
    url::Url::parse(&s.server.public_url)
        .map_err(|e| ("server.public_url", format!("not a URL: {e}")))?;
    if s.server.max_body_bytes == 0 {
        return Err(("server.max_body_bytes", "must be positive".into()));
    }
    let db = s.database.url.expose();
    if !(db.starts_with("sqlite:")
        || db.starts_with("postgres://")
        || db.starts_with("postgresql://"))
    {
        return Err((
            "database.url",
            format!(
                "{} is neither `sqlite://...` nor `postgres://...`",
                s.database.url.redacted()
            ),
        ));
    }
    if s.database.job_lease.get() < std::time::Duration::from_secs(1) {
        return Err(("database.job_lease", "must be at least 1s".into()));
    }
    if s.database.max_connections == 0 {
        return Err(("database.max_connections", "must be positive".into()));
    }
    if s.git.object_cache_mib == 0 {
        // 0 would not mean "off" to libgit2 but "evict everything at once";
        // say so rather than guess.
        return Err(("git.object_cache_mib", "must be at least 1".into()));
    }
    if s.git.url.expose().trim().is_empty() {
        return Err(("git.url", "must not be empty".into()));
    }
    let branch = &s.git.branch;
    if branch.is_empty()
        || branch.starts_with('-')
        || branch.contains("..")
        || branch
            .chars()
            .any(|c| c.is_whitespace() || "~^:?*[\\".contains(c))
    {
        return Err((
            "git.branch",
            format!("{branch:?} is not a valid branch name"),
        ));
    }
    if s.forge.kind == ForgeKind::Github {
        if s.forge.owner.as_deref().unwrap_or("").is_empty() {
            return Err((
                "forge.owner",
                "required when forge.kind = \"github\"".into(),
            ));
        }
        if s.forge.repo.as_deref().unwrap_or("").is_empty() {
            return Err(("forge.repo", "required when forge.kind = \"github\"".into()));
        }
        let app_auth = s.forge.app_id.is_some()
            && s.forge.private_key_path.is_some()
            && s.forge.installation_id.is_some();
        if s.forge.token.is_none() && !app_auth {
            return Err((
                "forge.token",
                "github needs a token, or app_id + private_key_path + installation_id".into(),
            ));
        }
        if let Some(api) = &s.forge.api_url {
            url::Url::parse(api).map_err(|e| ("forge.api_url", format!("not a URL: {e}")))?;
        }
    }
    let mut names = std::collections::HashSet::new();
    let mut tokens = std::collections::HashSet::new();
    for token in &s.api.tokens {
        if token.name.is_empty() || token.token.expose().len() < 8 {
            return Err((
                "api.tokens",
                format!(
                    "token {:?} needs a name and a token of at least 8 characters",
                    token.name
                ),
            ));
        }
        if !names.insert(token.name.as_str()) || !tokens.insert(token.token.expose()) {
            return Err((
                "api.tokens",
                format!(
                    "token {:?} is listed twice (names and tokens must be unique)",
                    token.name
                ),
            ));
        }
    }
    if s.policy.max_rollbacks_per_hour == 0 {
        return Err((
            "policy.max_rollbacks_per_hour",
            "must be at least 1 (0 would refuse every rollback)".into(),
        ));
    }
    verify::validate_verify(&s.verify)?;
    verify::validate_notify(&s.notify)?;
    for app in &s.apps {
        if app.name.is_empty() {
            return Err(("apps", "every [[apps]] entry needs a name".into()));
        }
        if app.path.starts_with('/') || app.path.split('/').any(|c| c == "..") {
            return Err((
                "apps",
                format!(
                    "app {:?}: path {:?} must be relative to the repository root",
                    app.name, app.path
                ),
            ));
        }
        if !app.cluster.is_empty() && !valid_cluster_name(&app.cluster) {
            return Err((
                "apps",
                format!(
                    "app {:?}: cluster {:?} must not contain `@`, whitespace or control characters",
                    app.name, app.cluster
                ),
            ));
        }
        if app.name.contains('@') {
            return Err((
                "apps",
                format!(
                    "app {:?}: `@` separates name and cluster; set `cluster` instead",
                    app.name
                ),
            ));
        }
    }
    for (i, cluster) in s.clusters.iter().enumerate() {
        if !valid_cluster_name(&cluster.name) {
            return Err((
                "clusters",
                format!(
                    "cluster {:?} must be non-empty, without `@`, whitespace or control characters",
                    cluster.name
                ),
            ));
        }
        if cluster.server.trim().is_empty() {
            return Err((
                "clusters",
                format!("cluster {:?} needs a server URL", cluster.name),
            ));
        }
        let same = |other: &ClusterEntry| {
            other
                .server
                .trim_end_matches('/')
                .eq_ignore_ascii_case(cluster.server.trim_end_matches('/'))
        };
        if let Some(other) = s.clusters[..i].iter().find(|o| same(o)) {
            return Err((
                "clusters",
                format!(
                    "clusters {:?} and {:?} have the same server {:?}",
                    other.name, cluster.name, cluster.server
                ),
            ));
        }
    }
    Ok(())
}

/// The rule of `rewind_domain::ClusterName` (this crate does not depend on
/// the domain): non-empty, at most 253 bytes, no `@`, whitespace or control
/// characters.
fn valid_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name
            .chars()
            .any(|c| c == '@' || c.is_whitespace() || c.is_control())
}

impl Settings {
    /// The effective configuration as TOML, secrets redacted: what
    /// `rewind config show` prints.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Built-in defaults only.
    pub fn defaults() -> Result<Settings, ConfigError> {
        load_from(None, std::iter::empty())
    }
}

#[cfg(test)]
mod tests;
