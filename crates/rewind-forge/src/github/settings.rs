//! How to reach GitHub: the repository, credentials and time budgets. The
//! binary maps `rewind_config::ForgeSettings` onto [`GitHubSettings`].

use std::fmt;
use std::time::Duration;

/// GitHub's public API; GitHub Enterprise and tests set another one.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// How rewind authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum GitHubAuth {
    /// A personal access token or fine-grained token.
    Token(String),
    /// A GitHub App installation: rewind signs a JWT with the app's key and
    /// exchanges it for an installation token (octocrab caches and renews it).
    App {
        app_id: u64,
        private_key_pem: String,
        installation_id: u64,
    },
}

// Secrets never reach logs, also not through `{:?}`.
impl fmt::Debug for GitHubAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitHubAuth::Token(_) => f.write_str("Token(<redacted>)"),
            GitHubAuth::App {
                app_id,
                installation_id,
                ..
            } => f
                .debug_struct("App")
                .field("app_id", app_id)
                .field("private_key_pem", &"<redacted>")
                .field("installation_id", installation_id)
                .finish(),
        }
    }
}

/// `forge.merge_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MergeMethod {
    #[default]
    Merge,
    Squash,
    Rebase,
}

impl MergeMethod {
    /// The value of the merge API's `merge_method` field.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        }
    }
}

#[derive(Debug, Clone)]
pub struct GitHubSettings {
    /// `forge.api_url`, for example `https://api.github.com` or
    /// `https://ghe.example.com/api/v3`.
    pub api_url: String,
    pub owner: String,
    pub repo: String,
    pub auth: GitHubAuth,
    pub merge_method: MergeMethod,
    /// `git.branch`: where pull requests go when a [`crate::PullRequestSpec`]
    /// names no base.
    pub base_branch: String,
    /// Longest total time one call may spend waiting out rate limits, server
    /// errors and timeouts before it fails with the reason.
    pub max_wait: Duration,
    /// Longest time one HTTP request may take before it counts as failed and
    /// is retried.
    pub request_timeout: Duration,
    /// First backoff delay after a server error or timeout; it doubles up to
    /// 30 seconds.
    pub min_backoff: Duration,
}

impl GitHubSettings {
    /// Settings with the documented defaults: public GitHub, `merge`, branch
    /// `main`, 10 minutes budget, 30 s per request, 1 s first backoff.
    pub fn new(owner: impl Into<String>, repo: impl Into<String>, auth: GitHubAuth) -> Self {
        GitHubSettings {
            api_url: DEFAULT_API_URL.to_owned(),
            owner: owner.into(),
            repo: repo.into(),
            auth,
            merge_method: MergeMethod::Merge,
            base_branch: "main".to_owned(),
            max_wait: Duration::from_secs(600),
            request_timeout: Duration::from_secs(30),
            min_backoff: Duration::from_secs(1),
        }
    }
}
