//! The `github` forge: pull requests, merges, reviews, permissions and
//! commit statuses through GitHub's REST API with octocrab.
//!
//! Calls go through `transport`, which owns rate limits, retries, the time
//! budget and per-installation write serialization; this module knows what
//! each endpoint's answers mean.

mod settings;
mod transport;

pub use settings::{DEFAULT_API_URL, GitHubAuth, GitHubSettings, MergeMethod};

use async_trait::async_trait;
use http::StatusCode;
use octocrab::models::pulls::PullRequest;
use rewind_domain::{CommitId, PullRequestRef};
use serde::Deserialize;
use serde_json::json;

use crate::ForgeError;
use crate::forge::{Forge, PullRequestInfo, PullRequestSpec, PullRequestState, StatusState};
use transport::{Answer, Transport, Verb};

/// GitHub caps commit status descriptions at 140 characters.
const STATUS_DESCRIPTION_MAX: usize = 140;
/// Reviews are read 100 per page, at most this many pages.
const REVIEW_PAGES_MAX: u32 = 10;

/// A [`Forge`] on GitHub or GitHub Enterprise.
#[derive(Debug)]
pub struct GitHubForge {
    transport: Transport,
    owner: String,
    repo: String,
    merge_method: MergeMethod,
    base_branch: String,
}

impl GitHubForge {
    /// Builds the client; makes no request yet. Call it inside a Tokio
    /// runtime: octocrab starts its request worker there.
    pub fn new(settings: &GitHubSettings) -> Result<Self, ForgeError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ForgeError::Config(
                "the GitHub client must be created inside a Tokio runtime".to_owned(),
            ));
        }
        for (what, value) in [("owner", &settings.owner), ("repo", &settings.repo)] {
            if !is_safe_path_segment(value) {
                return Err(ForgeError::Config(format!(
                    "{what} {value:?} is not a GitHub {what} name"
                )));
            }
        }
        Ok(GitHubForge {
            transport: Transport::new(settings)?,
            owner: settings.owner.clone(),
            repo: settings.repo.clone(),
            merge_method: settings.merge_method,
            base_branch: settings.base_branch.clone(),
        })
    }

    fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", self.owner, self.repo)
    }

    async fn find_open_pull_request(
        &self,
        head_branch: &str,
    ) -> Result<Option<PullRequest>, ForgeError> {
        const OP: &str = "find the open pull request of a branch";
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("state", "open")
            .append_pair("head", &format!("{}:{head_branch}", self.owner))
            .append_pair("per_page", "100")
            .finish();
        let answer = self
            .transport
            .call(
                OP,
                Verb::Get,
                &self.repo_path(&format!("/pulls?{query}")),
                None,
            )
            .await?;
        let pulls: Vec<PullRequest> = expect_success(OP, answer)?.json(OP)?;
        Ok(pulls
            .into_iter()
            .find(|pr| pr.head.ref_field == head_branch))
    }

    async fn get_pull_request(&self, number: u64) -> Result<PullRequest, ForgeError> {
        const OP: &str = "read a pull request";
        let answer = self
            .transport
            .call(
                OP,
                Verb::Get,
                &self.repo_path(&format!("/pulls/{number}")),
                None,
            )
            .await?;
        expect_success(OP, answer)?.json(OP)
    }

    async fn ensure_labels(&self, pr: &PullRequest, labels: &[String]) -> Result<(), ForgeError> {
        const OP: &str = "label a pull request";
        let present: Vec<&str> = pr
            .labels
            .iter()
            .flatten()
            .map(|label| label.name.as_str())
            .collect();
        let missing: Vec<&String> = labels
            .iter()
            .filter(|label| !present.contains(&label.as_str()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let body = json!({ "labels": missing });
        let answer = self
            .transport
            .call(
                OP,
                Verb::Post,
                &self.repo_path(&format!("/issues/{}/labels", pr.number)),
                Some(&body),
            )
            .await?;
        expect_success(OP, answer).map(drop)
    }
}

#[async_trait]
impl Forge for GitHubForge {
    #[tracing::instrument(name = "github.open_pull_request", skip_all, fields(git.branch = %spec.head_branch))]
    async fn open_pull_request(
        &self,
        spec: &PullRequestSpec,
    ) -> Result<PullRequestRef, ForgeError> {
        const OP: &str = "open a pull request";
        // A retry after a crash finds the pull request the first run opened.
        let pr = match self.find_open_pull_request(&spec.head_branch).await? {
            Some(pr) => {
                tracing::info!(pr.number = pr.number, git.branch = %spec.head_branch, "reusing the open pull request");
                pr
            }
            None => {
                let body = json!({
                    "title": spec.title,
                    "head": spec.head_branch,
                    "base": if spec.base_branch.is_empty() { &self.base_branch } else { &spec.base_branch },
                    "body": spec.body,
                    "maintainer_can_modify": false,
                });
                let answer = self
                    .transport
                    .call(OP, Verb::Post, &self.repo_path("/pulls"), Some(&body))
                    .await?;
                if answer.status == StatusCode::UNPROCESSABLE_ENTITY
                    && answer.message().contains("already exists")
                {
                    // Opened meanwhile (or by a POST whose answer was lost).
                    self.find_open_pull_request(&spec.head_branch)
                        .await?
                        .ok_or_else(|| ForgeError::Rejected {
                            operation: OP,
                            status: 422,
                            message: format!(
                                "{}, but no open pull request has head {}",
                                answer.message(),
                                spec.head_branch
                            ),
                        })?
                } else {
                    let pr: PullRequest =
                        expect_status(OP, answer, StatusCode::CREATED)?.json(OP)?;
                    tracing::info!(pr.number = pr.number, git.branch = %spec.head_branch, "opened pull request");
                    pr
                }
            }
        };
        self.ensure_labels(&pr, &spec.labels).await?;
        Ok(reference(&pr))
    }

    #[tracing::instrument(name = "github.update_pull_request_body", skip_all, fields(pr.number = number))]
    async fn update_pull_request_body(&self, number: u64, body: &str) -> Result<(), ForgeError> {
        const OP: &str = "update a pull request's body";
        let answer = self
            .transport
            .call(
                OP,
                Verb::Patch,
                &self.repo_path(&format!("/pulls/{number}")),
                Some(&json!({ "body": body })),
            )
            .await?;
        expect_success(OP, answer).map(drop)
    }

    #[tracing::instrument(name = "github.comment", skip_all, fields(pr.number = number))]
    async fn comment(&self, number: u64, body: &str) -> Result<(), ForgeError> {
        const OP: &str = "comment on a pull request";
        let answer = self
            .transport
            .call(
                OP,
                Verb::Post,
                &self.repo_path(&format!("/issues/{number}/comments")),
                Some(&json!({ "body": body })),
            )
            .await?;
        expect_status(OP, answer, StatusCode::CREATED).map(drop)
    }

    #[tracing::instrument(name = "github.upsert_comment", skip_all, fields(pr.number = number))]
    async fn upsert_comment(
        &self,
        number: u64,
        existing: Option<u64>,
        body: &str,
    ) -> Result<u64, ForgeError> {
        #[derive(serde::Deserialize)]
        struct Created {
            id: u64,
        }
        if let Some(id) = existing {
            const OP: &str = "update a pull request comment";
            let answer = self
                .transport
                .call(
                    OP,
                    Verb::Patch,
                    &self.repo_path(&format!("/issues/comments/{id}")),
                    Some(&json!({ "body": body })),
                )
                .await?;
            match expect_status(OP, answer, StatusCode::OK) {
                Ok(_) => return Ok(id),
                // Deleted by a person: post it again below.
                Err(ForgeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        const OP: &str = "comment on a pull request";
        let answer = self
            .transport
            .call(
                OP,
                Verb::Post,
                &self.repo_path(&format!("/issues/{number}/comments")),
                Some(&json!({ "body": body })),
            )
            .await?;
        let created: Created = expect_status(OP, answer, StatusCode::CREATED)?.json(OP)?;
        Ok(created.id)
    }

    #[tracing::instrument(name = "github.merge", skip_all, fields(pr.number = number, commit.sha = %expected_head_sha))]
    async fn merge(
        &self,
        number: u64,
        expected_head_sha: &CommitId,
    ) -> Result<CommitId, ForgeError> {
        const OP: &str = "merge a pull request";
        // Merging twice returns the first merge: a retry after a crash, or a
        // person who merged by hand, is not an error.
        let before = self.get_pull_request(number).await?;
        if let Some(commit) = merged_commit(&before)? {
            return Ok(commit);
        }
        if matches!(before.state, Some(octocrab::models::IssueState::Closed)) {
            return Err(ForgeError::NotMergeable(format!(
                "pull request #{number} was closed without merging"
            )));
        }
        let body = json!({
            "sha": expected_head_sha.as_str(),
            "merge_method": self.merge_method.as_str(),
        });
        let answer = self
            .transport
            .call(
                OP,
                Verb::Put,
                &self.repo_path(&format!("/pulls/{number}/merge")),
                Some(&body),
            )
            .await?;
        match answer.status {
            StatusCode::OK => {
                let merge: octocrab::models::pulls::Merge = answer.json(OP)?;
                let sha = merge.sha.ok_or_else(|| ForgeError::InvalidResponse {
                    operation: OP,
                    detail: "merged without a merge commit sha".to_owned(),
                })?;
                let commit = parse_commit(OP, &sha)?;
                tracing::info!(pr.number = number, commit.sha = %commit, "merged pull request");
                Ok(commit)
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                // A merge that went through but whose answer was lost looks
                // like this on the retry.
                let after = self.get_pull_request(number).await?;
                match merged_commit(&after)? {
                    Some(commit) => Ok(commit),
                    None => Err(ForgeError::NotMergeable(answer.message())),
                }
            }
            StatusCode::CONFLICT => Err(ForgeError::HeadChanged(format!(
                "expected {expected_head_sha}: {}",
                answer.message()
            ))),
            _ => Err(unexpected(OP, answer)),
        }
    }

    #[tracing::instrument(name = "github.close_pull_request", skip_all, fields(pr.number = number))]
    async fn close_pull_request(&self, number: u64) -> Result<(), ForgeError> {
        const OP: &str = "close a pull request";
        let answer = self
            .transport
            .call(
                OP,
                Verb::Patch,
                &self.repo_path(&format!("/pulls/{number}")),
                Some(&json!({ "state": "closed" })),
            )
            .await?;
        expect_success(OP, answer).map(drop)
    }

    #[tracing::instrument(name = "github.pull_request", skip_all, fields(pr.number = number))]
    async fn pull_request(&self, number: u64) -> Result<PullRequestInfo, ForgeError> {
        const OP: &str = "read a pull request";
        let pr = self.get_pull_request(number).await?;
        let head_sha = parse_commit(OP, &pr.head.sha)?;
        Ok(PullRequestInfo {
            number: pr.number,
            url: reference(&pr).url,
            state: match pr.state {
                Some(octocrab::models::IssueState::Open) => PullRequestState::Open,
                _ => PullRequestState::Closed,
            },
            merged: pr.merged_at.is_some() || pr.merged == Some(true),
            merge_commit: merged_commit(&pr)?,
            head_ref: pr.head.ref_field.clone(),
            head_sha,
            base_ref: pr.base.ref_field.clone(),
            body: pr.body.clone(),
        })
    }

    #[tracing::instrument(name = "github.has_write_access", skip_all, fields(github.user = %user))]
    async fn has_write_access(&self, user: &str) -> Result<bool, ForgeError> {
        const OP: &str = "read a collaborator's permission";
        #[derive(Deserialize)]
        struct Permission {
            permission: String,
            #[serde(default)]
            role_name: Option<String>,
        }
        if !is_safe_path_segment(user) {
            // Not a GitHub login, so not a collaborator.
            return Ok(false);
        }
        let answer = self
            .transport
            .call(
                OP,
                Verb::Get,
                &self.repo_path(&format!("/collaborators/{user}/permission")),
                None,
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        let permission: Permission = expect_success(OP, answer)?.json(OP)?;
        let writes = |p: &str| matches!(p, "admin" | "maintain" | "write");
        Ok(writes(&permission.permission) || permission.role_name.as_deref().is_some_and(writes))
    }

    #[tracing::instrument(name = "github.approvals", skip_all, fields(pr.number = number))]
    async fn approvals(&self, number: u64) -> Result<Vec<String>, ForgeError> {
        const OP: &str = "list a pull request's reviews";
        #[derive(Deserialize)]
        struct Review {
            user: Option<User>,
            state: String,
        }
        #[derive(Deserialize)]
        struct User {
            login: String,
        }
        // Reviews come oldest first; a user's latest approving, dismissed or
        // changes-requested review decides (comments change nothing).
        let mut latest: std::collections::BTreeMap<String, String> = Default::default();
        for page in 1..=REVIEW_PAGES_MAX {
            let answer = self
                .transport
                .call(
                    OP,
                    Verb::Get,
                    &self.repo_path(&format!("/pulls/{number}/reviews?per_page=100&page={page}")),
                    None,
                )
                .await?;
            let reviews: Vec<Review> = expect_success(OP, answer)?.json(OP)?;
            let full_page = reviews.len() == 100;
            for review in reviews {
                let Some(user) = review.user else { continue };
                if matches!(
                    review.state.as_str(),
                    "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED"
                ) {
                    latest.insert(user.login, review.state);
                }
            }
            if !full_page {
                break;
            }
        }
        let mut approvers = Vec::new();
        for (user, state) in latest {
            if state == "APPROVED" && self.has_write_access(&user).await? {
                approvers.push(user);
            }
        }
        Ok(approvers)
    }

    #[tracing::instrument(name = "github.set_commit_status", skip_all, fields(commit.sha = %sha, status.context = context))]
    async fn set_commit_status(
        &self,
        sha: &CommitId,
        state: StatusState,
        context: &str,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<(), ForgeError> {
        const OP: &str = "set a commit status";
        let description: String = description.chars().take(STATUS_DESCRIPTION_MAX).collect();
        let mut body = json!({
            "state": state.as_str(),
            "context": context,
            "description": description,
        });
        if let Some(url) = target_url {
            body["target_url"] = json!(url);
        }
        let answer = self
            .transport
            .call(
                OP,
                Verb::Post,
                &self.repo_path(&format!("/statuses/{sha}")),
                Some(&body),
            )
            .await?;
        expect_status(OP, answer, StatusCode::CREATED).map(drop)
    }
}

fn reference(pr: &PullRequest) -> PullRequestRef {
    PullRequestRef {
        number: pr.number,
        url: pr
            .html_url
            .as_ref()
            .map(|url| url.to_string())
            .unwrap_or_else(|| pr.url.clone()),
    }
}

fn merged_commit(pr: &PullRequest) -> Result<Option<CommitId>, ForgeError> {
    let merged = pr.merged_at.is_some() || pr.merged == Some(true);
    match (merged, &pr.merge_commit_sha) {
        (true, Some(sha)) => parse_commit("read a merged pull request", sha).map(Some),
        (true, None) => Err(ForgeError::InvalidResponse {
            operation: "read a merged pull request",
            detail: format!(
                "pull request #{} is merged but has no merge commit",
                pr.number
            ),
        }),
        (false, _) => Ok(None),
    }
}

fn parse_commit(operation: &'static str, sha: &str) -> Result<CommitId, ForgeError> {
    CommitId::new(sha).map_err(|e| ForgeError::InvalidResponse {
        operation,
        detail: e.to_string(),
    })
}

fn expect_success(operation: &'static str, answer: Answer) -> Result<Answer, ForgeError> {
    if answer.is_success() {
        Ok(answer)
    } else {
        Err(unexpected(operation, answer))
    }
}

fn expect_status(
    operation: &'static str,
    answer: Answer,
    status: StatusCode,
) -> Result<Answer, ForgeError> {
    if answer.status == status {
        Ok(answer)
    } else {
        Err(unexpected(operation, answer))
    }
}

/// Maps an answer the endpoint does not expect to the error that names it.
fn unexpected(operation: &'static str, answer: Answer) -> ForgeError {
    let message = answer.message();
    match answer.status {
        StatusCode::NOT_FOUND => ForgeError::NotFound(format!("{operation}: {message}")),
        status if status.is_success() => ForgeError::InvalidResponse {
            operation,
            detail: format!("HTTP {}: {message}", status.as_u16()),
        },
        status => ForgeError::Rejected {
            operation,
            status: status.as_u16(),
            message,
        },
    }
}

/// GitHub owner, repository and user names: letters, digits, `-`, `_`, `.`.
fn is_safe_path_segment(value: &str) -> bool {
    !value.is_empty()
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
