//! A strict fake of GitHub's REST API for tests (feature `fake`): real HTTP
//! on a loopback listener, backed by a real bare Git repository, so a merge
//! really moves the base branch. It refuses what GitHub refuses (unknown
//! fields, missing branches, duplicate pull requests, stale heads, bad
//! credentials), adds `x-ratelimit-*` headers to every answer, and injects
//! the failures real GitHub produces: server errors, secondary and primary
//! rate limits, slow answers.
//!
//! ```no_run
//! # async fn demo(bare: std::path::PathBuf) -> std::io::Result<()> {
//! use rewind_forge::fake::{FakeGitHub, FakeOptions};
//! let fake = FakeGitHub::start(FakeOptions::new("acme", "gitops", bare, "t0ken")).await?;
//! fake.fail_next(2, 502);
//! // point `GitHubSettings::api_url` at `fake.url()`
//! # Ok(()) }
//! ```

mod gate;
mod git;
mod routes;
mod state;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;

pub use state::{FakeComment, FakePullRequest, FakeReview, FakeStatus, RecordedRequest};

use gate::{Shared, lock};
use state::{Fault, QueuedFault, State};

/// A GitHub App the fake knows.
#[derive(Debug, Clone)]
pub struct FakeApp {
    pub app_id: u64,
    pub installation_id: u64,
    /// The app's RSA public key (PEM): JWTs presented to the token exchange
    /// are verified with it.
    pub public_key_pem: String,
}

#[derive(Debug, Clone)]
pub struct FakeOptions {
    pub owner: String,
    pub repo: String,
    /// The bare repository pull requests are opened on and merged into.
    pub bare_repo_path: PathBuf,
    /// The token requests must carry (`Authorization: Bearer|token <t>`).
    pub token: String,
    pub app: Option<FakeApp>,
}

impl FakeOptions {
    pub fn new(
        owner: impl Into<String>,
        repo: impl Into<String>,
        bare_repo_path: impl Into<PathBuf>,
        token: impl Into<String>,
    ) -> Self {
        FakeOptions {
            owner: owner.into(),
            repo: repo.into(),
            bare_repo_path: bare_repo_path.into(),
            token: token.into(),
            app: None,
        }
    }
}

/// A running fake; stops when dropped.
#[derive(Debug)]
pub struct FakeGitHub {
    url: String,
    shared: Shared,
    server: JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeGitHub {
    /// Binds a loopback port first, then serves on it: the URL works as soon
    /// as this returns. Fails if the bare repository cannot be opened.
    pub async fn start(options: FakeOptions) -> std::io::Result<FakeGitHub> {
        git::open(&options.bare_repo_path).map_err(|e| {
            std::io::Error::other(format!(
                "fake GitHub: cannot open bare repository {}: {}",
                options.bare_repo_path.display(),
                e.message()
            ))
        })?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared: Shared = Arc::new(Mutex::new(State::new(options, url.clone())));
        let app = routes::router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(error = %error, "fake GitHub stopped");
            }
        });
        Ok(FakeGitHub {
            url,
            shared,
            server,
        })
    }

    /// The API base URL (`forge.api_url`), without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops every fault still queued: GitHub is healthy again.
    pub fn clear_faults(&self) {
        lock(&self.shared).faults.clear();
    }

    /// The next `n` requests fail with `status` (for example 502). Faults
    /// apply to any request, the App token exchange included.
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut state = lock(&self.shared);
        let fault = QueuedFault {
            fault: Fault::Status(status),
            writes_only: false,
        };
        state.faults.extend(std::iter::repeat_n(fault, n));
    }

    /// The next request gets a secondary rate limit: 403 with `retry-after`.
    pub fn secondary_rate_limit_next(&self, retry_after_secs: u64) {
        self.push_fault(
            Fault::SecondaryRateLimit {
                retry_after_secs,
                status: 403,
            },
            false,
        );
    }

    /// The next request gets a secondary rate limit as GitHub also sends
    /// it: 429 Too Many Requests with `retry-after`.
    pub fn too_many_requests_next(&self, retry_after_secs: u64) {
        self.push_fault(
            Fault::SecondaryRateLimit {
                retry_after_secs,
                status: 429,
            },
            false,
        );
    }

    /// The next request finds the primary rate limit exhausted: 403 with
    /// `x-ratelimit-remaining: 0` and a reset `reset_in_secs` from now.
    pub fn primary_rate_limit_next(&self, reset_in_secs: u64) {
        self.push_fault(
            Fault::PrimaryRateLimit {
                reset_in_secs,
                status: 403,
            },
            false,
        );
    }

    /// The primary rate limit exhausted, answered 429 (as GitHub may):
    /// `x-ratelimit-remaining: 0` and `x-ratelimit-reset`, no `retry-after`.
    pub fn primary_rate_limit_429_next(&self, reset_in_secs: u64) {
        self.push_fault(
            Fault::PrimaryRateLimit {
                reset_in_secs,
                status: 429,
            },
            false,
        );
    }

    /// The next request is handled only after `delay`; a client that gives
    /// up first finds it not carried out (see
    /// [`FakeGitHub::lose_next_write_answer`] for the opposite).
    pub fn delay_next(&self, delay: Duration) {
        self.push_fault(Fault::Delay(delay), false);
    }

    /// The next write (not read) is carried out, but its answer is held back
    /// for `hold`: set it longer than the client's request timeout to lose
    /// the answer, as when a connection drops after GitHub acted.
    pub fn lose_next_write_answer(&self, hold: Duration) {
        self.push_fault(Fault::LoseAnswer(hold), true);
    }

    fn push_fault(&self, fault: Fault, writes_only: bool) {
        lock(&self.shared)
            .faults
            .push_back(QueuedFault { fault, writes_only });
    }

    /// Every write takes at least `latency`, so overlapping writes show in
    /// [`FakeGitHub::max_concurrent_writes`].
    pub fn set_write_latency(&self, latency: Duration) {
        lock(&self.shared).write_latency = latency;
    }

    /// The most writes that were ever being handled at the same time.
    pub fn max_concurrent_writes(&self) -> usize {
        lock(&self.shared).max_writes_in_flight
    }

    /// `permission` is a role: `admin`, `maintain`, `write`, `triage`,
    /// `read` or `none`. The owner is `admin` from the start.
    pub fn set_permission(&self, user: &str, permission: &str) {
        lock(&self.shared)
            .permissions
            .insert(user.to_owned(), permission.to_owned());
    }

    /// Test toggle: the pull request is refused as not mergeable (405), as
    /// when required checks fail.
    pub fn set_mergeable(&self, number: u64, mergeable: bool) {
        let mut state = lock(&self.shared);
        if mergeable {
            state.unmergeable.remove(&number);
        } else {
            state.unmergeable.insert(number);
        }
    }

    /// Records a submitted review (`APPROVED`, `CHANGES_REQUESTED`,
    /// `COMMENTED`) and returns its id.
    pub fn add_review(&self, number: u64, user: &str, state: &str) -> u64 {
        let mut guard = lock(&self.shared);
        let id = guard.next_id();
        let repo = git::open(&guard.options.bare_repo_path).ok();
        let commit_id = guard
            .pulls
            .get(&number)
            .and_then(|pr| git::branch_tip(repo.as_ref()?, &pr.head_ref).map(|o| o.to_string()));
        guard.reviews.push(FakeReview {
            id,
            pr: number,
            user: user.to_owned(),
            state: state.to_owned(),
            commit_id,
            submitted_at: Utc::now(),
        });
        id
    }

    /// Dismisses a review: its state becomes `DISMISSED`, as on GitHub.
    pub fn dismiss_review(&self, review_id: u64) {
        let mut state = lock(&self.shared);
        if let Some(review) = state.reviews.iter_mut().find(|r| r.id == review_id) {
            review.state = "DISMISSED".to_owned();
        }
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared).requests.clear();
    }

    pub fn pull_requests(&self) -> Vec<FakePullRequest> {
        lock(&self.shared).pulls.values().cloned().collect()
    }

    pub fn pull_request(&self, number: u64) -> Option<FakePullRequest> {
        lock(&self.shared).pulls.get(&number).cloned()
    }

    pub fn comments(&self, number: u64) -> Vec<FakeComment> {
        lock(&self.shared)
            .comments
            .iter()
            .filter(|c| c.pr == number)
            .cloned()
            .collect()
    }

    /// Commit statuses in the order they were set.
    pub fn statuses(&self) -> Vec<FakeStatus> {
        lock(&self.shared).statuses.clone()
    }

    /// How many installation tokens the App token exchange issued.
    pub fn issued_installation_tokens(&self) -> usize {
        // The configured token is always valid; the rest were issued.
        lock(&self.shared).tokens.len().saturating_sub(1)
    }
}
