//! GitHub webhooks: `pull_request`, `pull_request_review`, `issue_comment`
//! (commands on rollback pull requests) and `push` (to `git.branch`).
//!
//! The event name comes from the verified `X-GitHub-Event` header, the
//! sub-action from the body. Hooks configured as "form" send
//! `payload=<urlencoded JSON>`; the signature covers those raw bytes, so the
//! form is decoded only after verification. Events and actions rewind does
//! not act on (`ping`, `labeled`, comments without a command, ...) are
//! accepted and counted as ignored, so GitHub does not mark them failed.

use std::borrow::Cow;

use chrono::{DateTime, TimeZone, Utc};
use rewind_domain::{
    ChatCommand, CommentEvent, CommitId, Observation, PullRequestAction, PullRequestEvent,
    PushEvent, ReviewEvent, ReviewState,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::verify::{Verified, WebhookSource, body_delivery_key};
use crate::{IngestError, IngestSettings, Parsed, json};

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
    #[serde(default)]
    pushed_at: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct User {
    login: String,
}

#[derive(Debug, Deserialize)]
struct GitRef {
    #[serde(rename = "ref")]
    name: String,
    #[serde(default)]
    sha: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PullRequest {
    number: u64,
    head: GitRef,
    base: GitRef,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    #[serde(default)]
    merged_by: Option<User>,
    #[serde(default)]
    merged_at: Option<DateTime<Utc>>,
    #[serde(default)]
    closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct PullRequestPayload {
    action: String,
    pull_request: PullRequest,
    repository: Repository,
    #[serde(default)]
    sender: Option<User>,
}

#[derive(Debug, Deserialize)]
struct Review {
    id: u64,
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    commit_id: Option<String>,
    #[serde(default)]
    author_association: Option<String>,
    #[serde(default)]
    submitted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct ReviewPayload {
    action: String,
    review: Review,
    pull_request: PullRequest,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct Issue {
    number: u64,
    /// Present (an object) only when the issue is a pull request.
    #[serde(default)]
    pull_request: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    user: User,
    #[serde(default)]
    author_association: Option<String>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct CommentPayload {
    action: String,
    issue: Issue,
    comment: Comment,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct PushCommit {
    id: String,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct Pusher {
    name: String,
}

#[derive(Debug, Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    forced: bool,
    #[serde(default)]
    commits: Option<Vec<PushCommit>>,
    #[serde(default)]
    head_commit: Option<PushCommit>,
    #[serde(default)]
    pusher: Option<Pusher>,
    repository: Repository,
}

/// Parses a verified GitHub delivery into observations.
pub fn parse_github(
    verified: Verified<'_>,
    settings: &IngestSettings,
) -> Result<Parsed, IngestError> {
    verified.expect_source(WebhookSource::Github)?;
    let meta = verified
        .github
        .as_ref()
        .ok_or_else(|| IngestError::unauthorized("GitHub delivery headers were not verified"))?;
    let body = if meta.form {
        Cow::Owned(form_payload(verified.body())?)
    } else {
        Cow::Borrowed(verified.body())
    };
    let mut parsed = Parsed {
        observations: Vec::new(),
        ignored: 0,
        delivery_key: meta
            .delivery
            .clone()
            .unwrap_or_else(|| body_delivery_key(verified.body())),
        source: WebhookSource::Github.as_str(),
    };
    let observation = match meta.event.as_str() {
        "pull_request" => pull_request(decode(&body)?),
        "pull_request_review" => review(decode(&body)?),
        "issue_comment" => comment(decode(&body)?),
        "push" => push(decode(&body)?, settings),
        other => {
            tracing::debug!(
                github.event = other,
                "github event rewind does not use; ignored"
            );
            None
        }
    };
    match observation {
        Some(observation) => parsed.observations.push(observation),
        None => parsed.ignored = 1,
    }
    Ok(parsed)
}

/// The command of a comment: the first line that starts with `/rewind
/// merge` or `/rewind cancel` (a quoted `> /rewind merge` is not one).
pub fn chat_command(body: &str) -> Option<ChatCommand> {
    body.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next() != Some("/rewind") {
            return None;
        }
        match words.next() {
            Some("merge") => Some(ChatCommand::Merge),
            Some("cancel") => Some(ChatCommand::Cancel),
            _ => None,
        }
    })
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, IngestError> {
    json::decode(body)
}

/// The JSON inside a form-encoded delivery (`payload=<urlencoded JSON>`).
fn form_payload(body: &[u8]) -> Result<Vec<u8>, IngestError> {
    url::form_urlencoded::parse(body)
        .find(|(key, _)| key == "payload")
        .map(|(_, value)| value.into_owned().into_bytes())
        .ok_or_else(|| IngestError::malformed("payload", "form body has no `payload` field"))
}

fn pull_request(payload: PullRequestPayload) -> Option<Observation> {
    let pr = payload.pull_request;
    let merged = pr.merged == Some(true);
    let action = match payload.action.as_str() {
        "opened" => PullRequestAction::Opened,
        "reopened" => PullRequestAction::Reopened,
        "synchronize" => PullRequestAction::Synchronize,
        "closed" if merged => PullRequestAction::Merged,
        "closed" => PullRequestAction::Closed,
        _ => return None,
    };
    let sender = payload.sender.map(|u| u.login).unwrap_or_default();
    let actor = match (&action, pr.merged_by) {
        (PullRequestAction::Merged, Some(by)) => by.login,
        _ => sender,
    };
    let at = match action {
        PullRequestAction::Merged => pr.merged_at.or(pr.closed_at),
        PullRequestAction::Closed => pr.closed_at,
        _ => None,
    }
    .or(pr.updated_at)
    .unwrap_or_else(Utc::now);
    Some(Observation::PullRequest(PullRequestEvent {
        repository: payload.repository.full_name,
        number: pr.number,
        action,
        head_ref: pr.head.name,
        head_sha: commit(pr.head.sha.as_deref()),
        base_ref: pr.base.name,
        // For open pull requests this is GitHub's test merge, not a commit
        // on any branch; only a merge makes it real.
        merge_commit: if merged {
            commit(pr.merge_commit_sha.as_deref())
        } else {
            None
        },
        actor,
        at,
    }))
}

fn review(payload: ReviewPayload) -> Option<Observation> {
    let review = payload.review;
    let state = match payload.action.as_str() {
        "dismissed" => ReviewState::Dismissed,
        "submitted" => match review.state.as_deref()?.to_ascii_lowercase().as_str() {
            "approved" => ReviewState::Approved,
            "changes_requested" => ReviewState::ChangesRequested,
            "commented" => ReviewState::Commented,
            "dismissed" => ReviewState::Dismissed,
            _ => return None,
        },
        _ => return None,
    };
    Some(Observation::Review(ReviewEvent {
        repository: payload.repository.full_name,
        pr_number: payload.pull_request.number,
        review_id: review.id,
        reviewer: review.user.map(|u| u.login).unwrap_or_default(),
        author_association: review.author_association.unwrap_or_default(),
        state,
        commit: commit(review.commit_id.as_deref()),
        at: review
            .submitted_at
            .or(payload.pull_request.updated_at)
            .unwrap_or_else(Utc::now),
    }))
}

fn comment(payload: CommentPayload) -> Option<Observation> {
    if payload.action != "created" || payload.issue.pull_request.is_none() {
        return None;
    }
    let command = chat_command(payload.comment.body.as_deref().unwrap_or_default())?;
    Some(Observation::Comment(CommentEvent {
        repository: payload.repository.full_name,
        pr_number: payload.issue.number,
        comment_id: payload.comment.id,
        author: payload.comment.user.login,
        author_association: payload.comment.author_association.unwrap_or_default(),
        command,
        at: payload.comment.created_at.unwrap_or_else(Utc::now),
    }))
}

fn push(payload: PushPayload, settings: &IngestSettings) -> Option<Observation> {
    let branch = payload.git_ref.strip_prefix("refs/heads/")?;
    if branch != settings.git_branch {
        return None;
    }
    let at = payload
        .head_commit
        .as_ref()
        .and_then(|c| c.timestamp)
        .or_else(|| unix_or_rfc3339(payload.repository.pushed_at.as_ref()))
        .unwrap_or_else(Utc::now);
    Some(Observation::Push(PushEvent {
        repository: payload.repository.full_name,
        branch: branch.to_owned(),
        before: commit(payload.before.as_deref()),
        after: if payload.deleted {
            None
        } else {
            commit(payload.after.as_deref())
        },
        forced: payload.forced,
        // GitHub lists a push's commits oldest first.
        commits: payload
            .commits
            .unwrap_or_default()
            .iter()
            .filter_map(|c| commit(Some(&c.id)))
            .collect(),
        pusher: payload.pusher.map(|p| p.name).unwrap_or_default(),
        at,
    }))
}

/// A commit id, or `None` for an absent, malformed or all-zero (created or
/// deleted ref) one.
fn commit(sha: Option<&str>) -> Option<CommitId> {
    sha.and_then(|s| CommitId::new(s).ok())
        .filter(|c| c.as_str().bytes().any(|b| b != b'0'))
}

/// `repository.pushed_at` is unix seconds in push payloads and RFC 3339
/// elsewhere.
fn unix_or_rfc3339(value: Option<&serde_json::Value>) -> Option<DateTime<Utc>> {
    match value? {
        serde_json::Value::Number(n) => Utc.timestamp_opt(n.as_i64()?, 0).single(),
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        _ => None,
    }
}
