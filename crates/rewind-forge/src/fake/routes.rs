//! The fake's endpoints, answering as GitHub's REST API does, including its
//! refusals: 422 for a missing head branch or a second open pull request
//! with the same head, 409 when the head moved, 405 when not mergeable.

// Handlers answer refusals with ready responses; their size is no concern
// in a test server.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::Utc;
use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::gate::{Shared, github_error, lock};
use super::git;
use super::state::{FakeComment, FakePullRequest, FakeStatus, State as FakeState};

type Answer = Result<Response, Response>;

pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/app/installations/{id}/access_tokens", post(access_token))
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(list_pulls).post(create_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}",
            get(get_pull).patch(update_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}/merge",
            put(merge_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}/reviews",
            get(list_reviews),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            get(list_comments).post(create_comment),
        )
        .route(
            "/repos/{owner}/{repo}/issues/comments/{id}",
            get(get_comment).patch(update_comment),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/labels",
            post(add_labels),
        )
        .route(
            "/repos/{owner}/{repo}/collaborators/{user}/permission",
            get(permission),
        )
        .route("/repos/{owner}/{repo}/statuses/{sha}", post(create_status))
        .route(
            "/repos/{owner}/{repo}/commits/{reference}/statuses",
            get(list_statuses),
        )
        .fallback(|| async { github_error(404, "Not Found") })
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            super::gate::gate,
        ))
        .with_state(shared)
}

fn json_answer(status: StatusCode, value: Value) -> Response {
    (status, axum::Json(value)).into_response()
}

fn both(answer: Answer) -> Response {
    answer.unwrap_or_else(|e| e)
}

/// Strict parsing: malformed JSON is GitHub's 400, unknown or mistyped
/// fields its 422.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            github_error(422, &format!("Invalid request.\n\n{e}"))
        } else {
            github_error(400, "Problems parsing JSON")
        }
    })
}

fn validation_failed(errors: Value) -> Response {
    json_answer(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "message": "Validation Failed",
            "errors": errors,
            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
            "status": "422",
        }),
    )
}

fn check_repo(state: &FakeState, owner: &str, repo: &str) -> Result<(), Response> {
    if owner == state.options.owner && repo == state.options.repo {
        Ok(())
    } else {
        Err(github_error(404, "Not Found"))
    }
}

fn repository(state: &FakeState) -> Result<git2::Repository, Response> {
    git::open(&state.options.bare_repo_path).map_err(|e| {
        github_error(
            500,
            &format!("fake: cannot open the bare repository: {}", e.message()),
        )
    })
}

/// The pull request as JSON, with its head read from the repository while
/// it is open.
fn render_pull(state: &FakeState, repo: &git2::Repository, pr: &FakePullRequest) -> Value {
    let base_sha = git::branch_tip(repo, &pr.base_ref)
        .map(|o| o.to_string())
        .unwrap_or_default();
    let head_tip = git::branch_tip(repo, &pr.head_ref);
    let head_sha = match (&pr.closed_head_sha, head_tip) {
        (Some(sha), _) => sha.clone(),
        (None, Some(tip)) => tip.to_string(),
        (None, None) => String::new(),
    };
    let mergeable = if !pr.open || state.unmergeable.contains(&pr.number) {
        Some(false)
    } else {
        match (git::branch_tip(repo, &pr.base_ref), head_tip) {
            (Some(base), Some(head)) => git::conflicts(repo, base, head).ok().map(|c| !c),
            _ => Some(false),
        }
    };
    let mergeable = if pr.merged { None } else { mergeable };
    state.pull_json(pr, &head_sha, &base_sha, mergeable)
}

async fn access_token(State(shared): State<Shared>, Path(id): Path<u64>) -> Response {
    let mut state = lock(&shared);
    let installation = state.options.app.as_ref().map(|app| app.installation_id);
    if installation != Some(id) {
        return github_error(404, "Not Found");
    }
    let token = format!("ghs_fake{}", state.next_id());
    state.tokens.insert(token.clone());
    json_answer(
        StatusCode::CREATED,
        json!({
            "token": token,
            "expires_at": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "permissions": { "contents": "write", "pull_requests": "write", "statuses": "write", "issues": "write" },
            "repository_selection": "selected",
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePull {
    title: String,
    head: String,
    base: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    maintainer_can_modify: Option<bool>,
    #[serde(default)]
    draft: Option<bool>,
}

async fn create_pull(
    State(shared): State<Shared>,
    Path((owner, repo_name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    both((|| {
        let mut state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        let request: CreatePull = parse(&body)?;
        let _ = (request.maintainer_can_modify, request.draft);
        let head = request
            .head
            .strip_prefix(&format!("{}:", state.options.owner))
            .unwrap_or(&request.head)
            .to_owned();
        let repo = repository(&state)?;
        let Some(head_tip) = git::branch_tip(&repo, &head) else {
            return Err(validation_failed(
                json!([{ "resource": "PullRequest", "field": "head", "code": "invalid" }]),
            ));
        };
        let Some(base_tip) = git::branch_tip(&repo, &request.base) else {
            return Err(validation_failed(
                json!([{ "resource": "PullRequest", "field": "base", "code": "invalid" }]),
            ));
        };
        if request.title.trim().is_empty() {
            return Err(validation_failed(
                json!([{ "resource": "PullRequest", "field": "title", "code": "missing_field" }]),
            ));
        }
        if state
            .pulls
            .values()
            .any(|pr| pr.open && pr.head_ref == head && pr.base_ref == request.base)
        {
            return Err(validation_failed(json!([{
                "resource": "PullRequest",
                "code": "custom",
                "message": format!("A pull request already exists for {}:{head}.", state.options.owner),
            }])));
        }
        if !git::has_new_commits(&repo, base_tip, head_tip) {
            return Err(validation_failed(json!([{
                "resource": "PullRequest",
                "code": "custom",
                "message": format!("No commits between {} and {head}", request.base),
            }])));
        }
        let number = state.next_number;
        state.next_number += 1;
        let now = Utc::now();
        let pr = FakePullRequest {
            number,
            title: request.title,
            body: request.body,
            head_ref: head,
            base_ref: request.base,
            closed_head_sha: None,
            open: true,
            merged: false,
            merge_commit_sha: None,
            labels: Vec::new(),
            created_at: now,
            updated_at: now,
            closed_at: None,
            merged_at: None,
        };
        let rendered = render_pull(&state, &repo, &pr);
        state.pulls.insert(number, pr);
        Ok(json_answer(StatusCode::CREATED, rendered))
    })())
}

async fn list_pulls(
    State(shared): State<Shared>,
    Path((owner, repo_name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    both((|| {
        let state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        let repo = repository(&state)?;
        let wanted_state = query.get("state").map(String::as_str).unwrap_or("open");
        let head = query.get("head").map(|h| match h.split_once(':') {
            Some((user, branch)) => (Some(user.to_owned()), branch.to_owned()),
            None => (None, h.clone()),
        });
        let per_page: usize = query
            .get("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(30)
            .clamp(1, 100);
        let page: usize = query
            .get("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .max(1);
        let pulls: Vec<Value> = state
            .pulls
            .values()
            .rev()
            .filter(|pr| match wanted_state {
                "open" => pr.open,
                "closed" => !pr.open,
                _ => true,
            })
            .filter(|pr| match &head {
                Some((user, branch)) => {
                    user.as_deref().is_none_or(|u| u == state.options.owner)
                        && &pr.head_ref == branch
                }
                None => true,
            })
            .filter(|pr| query.get("base").is_none_or(|b| b == &pr.base_ref))
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|pr| render_pull(&state, &repo, pr))
            .collect();
        Ok(json_answer(StatusCode::OK, Value::Array(pulls)))
    })())
}

async fn get_pull(
    State(shared): State<Shared>,
    Path((owner, repo_name, number)): Path<(String, String, u64)>,
) -> Response {
    both((|| {
        let state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        let repo = repository(&state)?;
        let pr = state
            .pulls
            .get(&number)
            .ok_or_else(|| github_error(404, "Not Found"))?;
        Ok(json_answer(StatusCode::OK, render_pull(&state, &repo, pr)))
    })())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePull {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    base: Option<String>,
}

async fn update_pull(
    State(shared): State<Shared>,
    Path((owner, repo_name, number)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    both((|| {
        let mut state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        let update: UpdatePull = parse(&body)?;
        let repo = repository(&state)?;
        if let Some(base) = &update.base
            && git::branch_tip(&repo, base).is_none()
        {
            return Err(validation_failed(
                json!([{ "resource": "PullRequest", "field": "base", "code": "invalid" }]),
            ));
        }
        let head_tip = {
            let pr = state
                .pulls
                .get(&number)
                .ok_or_else(|| github_error(404, "Not Found"))?;
            git::branch_tip(&repo, &pr.head_ref).map(|o| o.to_string())
        };
        let now = Utc::now();
        let Some(pr) = state.pulls.get_mut(&number) else {
            return Err(github_error(404, "Not Found"));
        };
        match update.state.as_deref() {
            None => {}
            Some("closed") if !pr.merged && pr.open => {
                pr.open = false;
                pr.closed_at = Some(now);
                pr.closed_head_sha = head_tip;
            }
            // Closing a closed or merged pull request changes nothing.
            Some("closed") => {}
            Some("open") if !pr.merged => {
                pr.open = true;
                pr.closed_at = None;
                pr.closed_head_sha = None;
            }
            Some(other) => {
                return Err(validation_failed(
                    json!([{ "resource": "PullRequest", "field": "state", "code": "invalid", "value": other }]),
                ));
            }
        }
        if let Some(title) = update.title {
            pr.title = title;
        }
        if let Some(body) = update.body {
            pr.body = Some(body);
        }
        if let Some(base) = update.base {
            pr.base_ref = base;
        }
        pr.updated_at = now;
        let pr = pr.clone();
        Ok(json_answer(StatusCode::OK, render_pull(&state, &repo, &pr)))
    })())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergePull {
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    merge_method: Option<String>,
    #[serde(default)]
    commit_title: Option<String>,
    #[serde(default)]
    commit_message: Option<String>,
}

async fn merge_pull(
    State(shared): State<Shared>,
    Path((owner, repo_name, number)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    both((|| {
        let mut state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        let request: MergePull = if body.is_empty() {
            MergePull {
                sha: None,
                merge_method: None,
                commit_title: None,
                commit_message: None,
            }
        } else {
            parse(&body)?
        };
        let method = request.merge_method.as_deref().unwrap_or("merge");
        if !matches!(method, "merge" | "squash" | "rebase") {
            return Err(validation_failed(
                json!([{ "resource": "PullRequest", "field": "merge_method", "code": "invalid" }]),
            ));
        }
        let repo = repository(&state)?;
        let pr = state
            .pulls
            .get(&number)
            .cloned()
            .ok_or_else(|| github_error(404, "Not Found"))?;
        if !pr.open {
            return Err(github_error(405, "Pull Request is not mergeable"));
        }
        let Some(head_tip) = git::branch_tip(&repo, &pr.head_ref) else {
            return Err(github_error(
                405,
                "Pull Request is not mergeable: the head branch is gone",
            ));
        };
        if let Some(sha) = &request.sha
            && !sha.eq_ignore_ascii_case(&head_tip.to_string())
        {
            return Err(github_error(
                409,
                "Head branch was modified. Review and try the merge again.",
            ));
        }
        if state.unmergeable.contains(&number) {
            return Err(github_error(405, "Pull Request is not mergeable"));
        }
        let merged = git::merge(
            &repo,
            &git::MergeRequest {
                base_branch: &pr.base_ref,
                head_branch: &pr.head_ref,
                method,
                number,
                title: &pr.title,
                owner: &state.options.owner,
                commit_title: request.commit_title.as_deref(),
                commit_message: request.commit_message.as_deref(),
            },
        );
        let sha = match merged {
            Ok(oid) => oid.to_string(),
            Err(git::MergeRefusal::NotMergeable(why)) => {
                return Err(github_error(
                    405,
                    &format!("Pull Request is not mergeable: {why}"),
                ));
            }
            Err(git::MergeRefusal::Broken(why)) => {
                return Err(github_error(500, &format!("fake: merge failed: {why}")));
            }
        };
        let now = Utc::now();
        if let Some(pr) = state.pulls.get_mut(&number) {
            pr.open = false;
            pr.merged = true;
            pr.merge_commit_sha = Some(sha.clone());
            pr.closed_head_sha = Some(head_tip.to_string());
            pr.merged_at = Some(now);
            pr.closed_at = Some(now);
            pr.updated_at = now;
        }
        Ok(json_answer(
            StatusCode::OK,
            json!({ "sha": sha, "merged": true, "message": "Pull Request successfully merged" }),
        ))
    })())
}

async fn list_reviews(
    State(shared): State<Shared>,
    Path((owner, repo_name, number)): Path<(String, String, u64)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    both((|| {
        let state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        if !state.pulls.contains_key(&number) {
            return Err(github_error(404, "Not Found"));
        }
        let per_page: usize = query
            .get("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(30)
            .clamp(1, 100);
        let page: usize = query
            .get("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .max(1);
        let reviews: Vec<Value> = state
            .reviews
            .iter()
            .filter(|r| r.pr == number)
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|r| state.review_json(r))
            .collect();
        Ok(json_answer(StatusCode::OK, Value::Array(reviews)))
    })())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateComment {
    body: String,
}

async fn create_comment(
    State(shared): State<Shared>,
    Path((owner, repo_name, number)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    both((|| {
        let mut state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        let request: CreateComment = parse(&body)?;
        if !state.pulls.contains_key(&number) {
            return Err(github_error(404, "Not Found"));
        }
        let comment = FakeComment {
            id: state.next_id(),
            pr: number,
            body: request.body,
            created_at: Utc::now(),
            updated_at: None,
        };
        let rendered = state.comment_json(&comment);
        state.comments.push(comment);
        Ok(json_answer(StatusCode::CREATED, rendered))
    })())
}

/// `PATCH /repos/{o}/{r}/issues/comments/{id}`: replaces the body; 404 for
/// an id the repository does not have, 422 for an empty body, as GitHub
/// answers.
async fn update_comment(
    State(shared): State<Shared>,
    Path((owner, repo_name, id)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    both((|| {
        let mut state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        let request: CreateComment = parse(&body)?;
        if request.body.trim().is_empty() {
            return Err(validation_failed(
                json!([{ "resource": "IssueComment", "field": "body", "code": "missing_field" }]),
            ));
        }
        let Some(comment) = state.comments.iter_mut().find(|c| c.id == id) else {
            return Err(github_error(404, "Not Found"));
        };
        comment.body = request.body;
        comment.updated_at = Some(Utc::now());
        let comment = comment.clone();
        Ok(json_answer(StatusCode::OK, state.comment_json(&comment)))
    })())
}

async fn get_comment(
    State(shared): State<Shared>,
    Path((owner, repo_name, id)): Path<(String, String, u64)>,
) -> Response {
    both((|| {
        let state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        let Some(comment) = state.comments.iter().find(|c| c.id == id) else {
            return Err(github_error(404, "Not Found"));
        };
        Ok(json_answer(StatusCode::OK, state.comment_json(comment)))
    })())
}

async fn list_comments(
    State(shared): State<Shared>,
    Path((owner, repo_name, number)): Path<(String, String, u64)>,
) -> Response {
    both((|| {
        let state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        if !state.pulls.contains_key(&number) {
            return Err(github_error(404, "Not Found"));
        }
        let comments: Vec<Value> = state
            .comments
            .iter()
            .filter(|c| c.pr == number)
            .map(|c| state.comment_json(c))
            .collect();
        Ok(json_answer(StatusCode::OK, Value::Array(comments)))
    })())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddLabels {
    labels: Vec<String>,
}

async fn add_labels(
    State(shared): State<Shared>,
    Path((owner, repo_name, number)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    both((|| {
        let mut state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        let request: AddLabels = parse(&body)?;
        if request.labels.iter().any(|l| l.trim().is_empty()) {
            return Err(validation_failed(
                json!([{ "resource": "Label", "field": "name", "code": "missing_field" }]),
            ));
        }
        let Some(pr) = state.pulls.get_mut(&number) else {
            return Err(github_error(404, "Not Found"));
        };
        for label in request.labels {
            if !pr.labels.contains(&label) {
                pr.labels.push(label);
            }
        }
        let labels = pr.labels.clone();
        let rendered: Vec<Value> = labels.iter().map(|l| state.label_json(l)).collect();
        Ok(json_answer(StatusCode::OK, Value::Array(rendered)))
    })())
}

async fn permission(
    State(shared): State<Shared>,
    Path((owner, repo_name, user)): Path<(String, String, String)>,
) -> Response {
    both((|| {
        let state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        let role = state
            .permissions
            .get(&user)
            .cloned()
            .unwrap_or_else(|| "none".to_owned());
        // `permission` is GitHub's legacy field: maintain reads as write,
        // triage as read.
        let legacy = match role.as_str() {
            "admin" => "admin",
            "maintain" | "write" => "write",
            "triage" | "read" => "read",
            _ => "none",
        };
        Ok(json_answer(
            StatusCode::OK,
            json!({ "permission": legacy, "role_name": role, "user": state.user_json(&user) }),
        ))
    })())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateStatus {
    state: String,
    #[serde(default)]
    target_url: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    context: Option<String>,
}

async fn create_status(
    State(shared): State<Shared>,
    Path((owner, repo_name, sha)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    both((|| {
        let mut state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        let request: CreateStatus = parse(&body)?;
        if !matches!(
            request.state.as_str(),
            "pending" | "success" | "failure" | "error"
        ) {
            return Err(validation_failed(
                json!([{ "resource": "Status", "field": "state", "code": "invalid" }]),
            ));
        }
        if request
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 140)
        {
            return Err(validation_failed(
                json!([{ "resource": "Status", "field": "description", "code": "custom", "message": "description is too long (maximum is 140 characters)" }]),
            ));
        }
        let repo = repository(&state)?;
        if !git::commit_exists(&repo, &sha) {
            return Err(github_error(
                422,
                &format!("No commit found for SHA: {sha}"),
            ));
        }
        let status = FakeStatus {
            id: state.next_id(),
            sha: sha.to_ascii_lowercase(),
            state: request.state,
            context: request.context.unwrap_or_else(|| "default".to_owned()),
            description: request.description,
            target_url: request.target_url,
            created_at: Utc::now(),
        };
        let rendered = state.status_json(&status);
        state.statuses.push(status);
        Ok(json_answer(StatusCode::CREATED, rendered))
    })())
}

async fn list_statuses(
    State(shared): State<Shared>,
    Path((owner, repo_name, reference)): Path<(String, String, String)>,
) -> Response {
    both((|| {
        let state = lock(&shared);
        check_repo(&state, &owner, &repo_name)?;
        let repo = repository(&state)?;
        let sha = git::branch_tip(&repo, &reference)
            .map(|o| o.to_string())
            .unwrap_or_else(|| reference.to_ascii_lowercase());
        let statuses: Vec<Value> = state
            .statuses
            .iter()
            .rev()
            .filter(|s| s.sha == sha)
            .map(|s| state.status_json(s))
            .collect();
        Ok(json_answer(StatusCode::OK, Value::Array(statuses)))
    })())
}
