//! The fake's memory: pull requests, comments, reviews, statuses,
//! permissions, injected faults and the request log, and how GitHub renders
//! them as JSON.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::FakeOptions;

/// One request the fake received, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query.
    pub path: String,
    pub query: Option<String>,
    /// The raw request body (empty for none).
    pub body: String,
    /// The status the fake answered with.
    pub status: u16,
    /// When the request arrived.
    pub at: Instant,
}

impl RecordedRequest {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePullRequest {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub head_ref: String,
    pub base_ref: String,
    /// The head commit when the pull request was closed or merged; open
    /// pull requests read their head from the repository.
    pub closed_head_sha: Option<String>,
    pub open: bool,
    pub merged: bool,
    pub merge_commit_sha: Option<String>,
    pub labels: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub merged_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeComment {
    pub id: u64,
    pub pr: u64,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// Set by `PATCH /repos/{o}/{r}/issues/comments/{id}`.
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeReview {
    pub id: u64,
    pub pr: u64,
    pub user: String,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED` or `DISMISSED`.
    pub state: String,
    pub commit_id: Option<String>,
    pub submitted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeStatus {
    pub id: u64,
    pub sha: String,
    pub state: String,
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A misbehaviour for the next request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fault {
    Status(u16),
    SecondaryRateLimit {
        retry_after_secs: u64,
    },
    PrimaryRateLimit {
        reset_in_secs: u64,
    },
    Delay(Duration),
    /// Carry the request out, then hold the answer back this long: the
    /// client gives up, and the work is done anyway.
    LoseAnswer(Duration),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct QueuedFault {
    pub fault: Fault,
    /// Skips reads: applies to the next write.
    pub writes_only: bool,
}

#[derive(Debug)]
pub(crate) struct State {
    pub options: FakeOptions,
    pub base_url: String,
    pub tokens: HashSet<String>,
    pub pulls: BTreeMap<u64, FakePullRequest>,
    /// Pull requests and issues share GitHub's numbers.
    pub next_number: u64,
    pub next_id: u64,
    pub comments: Vec<FakeComment>,
    pub reviews: Vec<FakeReview>,
    pub statuses: Vec<FakeStatus>,
    pub permissions: HashMap<String, String>,
    pub unmergeable: HashSet<u64>,
    pub faults: VecDeque<QueuedFault>,
    pub requests: Vec<RecordedRequest>,
    pub write_latency: Duration,
    pub writes_in_flight: usize,
    pub max_writes_in_flight: usize,
    pub rate_limit_used: u64,
}

impl State {
    pub fn new(options: FakeOptions, base_url: String) -> Self {
        let mut permissions = HashMap::new();
        permissions.insert(options.owner.clone(), "admin".to_owned());
        let tokens = HashSet::from([options.token.clone()]);
        State {
            options,
            base_url,
            tokens,
            pulls: BTreeMap::new(),
            next_number: 1,
            next_id: 1000,
            comments: Vec::new(),
            reviews: Vec::new(),
            statuses: Vec::new(),
            permissions,
            unmergeable: HashSet::new(),
            faults: VecDeque::new(),
            requests: Vec::new(),
            write_latency: Duration::ZERO,
            writes_in_flight: 0,
            max_writes_in_flight: 0,
            rate_limit_used: 0,
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn repo_api(&self) -> String {
        format!(
            "{}/repos/{}/{}",
            self.base_url, self.options.owner, self.options.repo
        )
    }

    pub fn label_json(&self, name: &str) -> Value {
        let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let url = format!("{}/labels/{encoded}", self.repo_api());
        json!({
            "id": name.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
            "node_id": format!("LA_{name}"),
            "url": url,
            "name": name,
            "color": "ededed",
            "default": false,
            "description": null,
        })
    }

    /// GitHub's pull request object; `head_sha` and `mergeable` come from
    /// the repository.
    pub fn pull_json(
        &self,
        pr: &FakePullRequest,
        head_sha: &str,
        base_sha: &str,
        mergeable: Option<bool>,
    ) -> Value {
        let owner = &self.options.owner;
        let repo_api = self.repo_api();
        json!({
            "url": format!("{repo_api}/pulls/{}", pr.number),
            "id": 500_000 + pr.number,
            "node_id": format!("PR_{}", pr.number),
            "html_url": format!("{}/{owner}/{}/pull/{}", self.base_url, self.options.repo, pr.number),
            "issue_url": format!("{repo_api}/issues/{}", pr.number),
            "number": pr.number,
            "state": if pr.open { "open" } else { "closed" },
            "locked": false,
            "title": pr.title,
            "body": pr.body,
            "labels": pr.labels.iter().map(|l| self.label_json(l)).collect::<Vec<_>>(),
            "created_at": pr.created_at,
            "updated_at": pr.updated_at,
            "closed_at": pr.closed_at,
            "merged_at": pr.merged_at,
            "merge_commit_sha": pr.merge_commit_sha,
            "draft": false,
            "head": {
                "label": format!("{owner}:{}", pr.head_ref),
                "ref": pr.head_ref,
                "sha": head_sha,
            },
            "base": {
                "label": format!("{owner}:{}", pr.base_ref),
                "ref": pr.base_ref,
                "sha": base_sha,
            },
            "merged": pr.merged,
            "mergeable": mergeable,
            "mergeable_state": match mergeable {
                Some(true) => "clean",
                Some(false) => "dirty",
                None => "unknown",
            },
        })
    }

    pub fn user_json(&self, login: &str) -> Value {
        json!({
            "login": login,
            "id": login.bytes().fold(11u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 1_000_000_000,
            "type": "User",
            "site_admin": false,
        })
    }

    pub fn review_json(&self, review: &FakeReview) -> Value {
        json!({
            "id": review.id,
            "node_id": format!("PRR_{}", review.id),
            "user": self.user_json(&review.user),
            "body": "",
            "state": review.state,
            "commit_id": review.commit_id,
            "submitted_at": review.submitted_at,
            "html_url": format!("{}/{}/{}/pull/{}#pullrequestreview-{}", self.base_url, self.options.owner, self.options.repo, review.pr, review.id),
            "pull_request_url": format!("{}/pulls/{}", self.repo_api(), review.pr),
            "author_association": "COLLABORATOR",
        })
    }

    pub fn comment_json(&self, comment: &FakeComment) -> Value {
        json!({
            "id": comment.id,
            "node_id": format!("IC_{}", comment.id),
            "url": format!("{}/issues/comments/{}", self.repo_api(), comment.id),
            "html_url": format!("{}/{}/{}/pull/{}#issuecomment-{}", self.base_url, self.options.owner, self.options.repo, comment.pr, comment.id),
            "issue_url": format!("{}/issues/{}", self.repo_api(), comment.pr),
            "body": comment.body,
            "user": self.user_json(&self.options.owner),
            "created_at": comment.created_at,
            "updated_at": comment.updated_at.unwrap_or(comment.created_at),
            "author_association": "OWNER",
        })
    }

    pub fn status_json(&self, status: &FakeStatus) -> Value {
        json!({
            "id": status.id,
            "node_id": format!("SC_{}", status.id),
            "url": format!("{}/statuses/{}", self.repo_api(), status.sha),
            "state": status.state,
            "description": status.description,
            "target_url": status.target_url,
            "context": status.context,
            "created_at": status.created_at,
            "updated_at": status.created_at,
        })
    }
}
