//! GitHub deliveries, from GitHub's published examples (octokit/webhooks).

use rewind_domain::{ChatCommand, Observation, PullRequestAction, ReviewState};
use rewind_ingest::{Parsed, WebhookSource, chat_command, ingest};
use serde_json::json;

use crate::common::*;

fn parse(event: &str, body: &[u8]) -> Parsed {
    ingest(
        WebhookSource::Github,
        &github_headers(event, body),
        body,
        &settings(),
    )
    .unwrap()
}

fn one(parsed: Parsed) -> Observation {
    assert_eq!((parsed.accepted(), parsed.ignored), (1, 0));
    only(parsed.observations)
}

fn ignored(parsed: Parsed) {
    assert_eq!((parsed.accepted(), parsed.ignored), (0, 1));
}

#[test]
fn pull_request_opened() {
    let parsed = parse("pull_request", GH_PR_OPENED);
    assert_eq!(parsed.source, "github");
    assert_eq!(parsed.delivery_key, "f2da33dc-9a3b-11f0-9aea-a663f22a3216");
    let Observation::PullRequest(pr) = one(parsed) else {
        panic!()
    };
    assert_eq!(pr.repository, "Codertocat/Hello-World");
    assert_eq!(pr.number, 2);
    assert_eq!(pr.action, PullRequestAction::Opened);
    assert_eq!(pr.head_ref, "changes");
    assert_eq!(
        pr.head_sha.unwrap().as_str(),
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    );
    assert_eq!(pr.base_ref, "master");
    assert_eq!(pr.merge_commit, None);
    assert_eq!(pr.actor, "Codertocat");
    assert_eq!(pr.at, ts("2019-05-15T15:20:33Z"));
}

#[test]
fn pull_request_closed_and_merged() {
    let Observation::PullRequest(pr) = one(parse("pull_request", GH_PR_CLOSED)) else {
        panic!()
    };
    assert_eq!(pr.action, PullRequestAction::Closed);
    // The test-merge sha of an unmerged pull request is not recorded.
    assert_eq!(pr.merge_commit, None);
    assert_eq!(pr.at, ts("2019-05-15T15:21:18Z"));

    let body = edited(GH_PR_CLOSED, |v| {
        v["pull_request"]["merged"] = json!(true);
        v["pull_request"]["merged_at"] = json!("2019-05-15T15:21:17Z");
        v["pull_request"]["merged_by"] = json!({"login": "octocat", "id": 1});
    });
    let Observation::PullRequest(pr) = one(parse("pull_request", &body)) else {
        panic!()
    };
    assert_eq!(pr.action, PullRequestAction::Merged);
    assert_eq!(
        pr.merge_commit.unwrap().as_str(),
        "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
    );
    assert_eq!(pr.actor, "octocat");
    assert_eq!(pr.at, ts("2019-05-15T15:21:17Z"));

    for (action, expected) in [
        ("reopened", PullRequestAction::Reopened),
        ("synchronize", PullRequestAction::Synchronize),
    ] {
        let body = edited(GH_PR_OPENED, |v| v["action"] = json!(action));
        let Observation::PullRequest(pr) = one(parse("pull_request", &body)) else {
            panic!()
        };
        assert_eq!(pr.action, expected);
    }
    ignored(parse(
        "pull_request",
        &edited(GH_PR_OPENED, |v| v["action"] = json!("labeled")),
    ));
}

#[test]
fn reviews() {
    let Observation::Review(r) = one(parse("pull_request_review", GH_REVIEW)) else {
        panic!()
    };
    assert_eq!(r.repository, "Codertocat/Hello-World");
    assert_eq!(r.pr_number, 2);
    assert_eq!(r.review_id, 237895671);
    assert_eq!(r.reviewer, "Codertocat");
    assert_eq!(r.author_association, "OWNER");
    assert_eq!(r.state, ReviewState::Commented);
    assert_eq!(
        r.commit.unwrap().as_str(),
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    );
    assert_eq!(r.at, ts("2019-05-15T15:20:38Z"));

    for (state, expected) in [
        ("approved", ReviewState::Approved),
        ("APPROVED", ReviewState::Approved),
        ("changes_requested", ReviewState::ChangesRequested),
    ] {
        let body = edited(GH_REVIEW, |v| v["review"]["state"] = json!(state));
        let Observation::Review(r) = one(parse("pull_request_review", &body)) else {
            panic!()
        };
        assert_eq!(r.state, expected, "{state}");
    }
    let body = edited(GH_REVIEW, |v| {
        v["action"] = json!("dismissed");
        v["review"]["state"] = json!("dismissed");
    });
    let Observation::Review(r) = one(parse("pull_request_review", &body)) else {
        panic!()
    };
    assert_eq!(r.state, ReviewState::Dismissed);
    ignored(parse(
        "pull_request_review",
        &edited(GH_REVIEW, |v| v["action"] = json!("edited")),
    ));
    ignored(parse(
        "pull_request_review",
        &edited(GH_REVIEW, |v| v["review"]["state"] = json!("pending")),
    ));
}

#[test]
fn comments_with_commands_on_pull_requests() {
    // The published example is a comment on a plain issue: ignored.
    ignored(parse("issue_comment", GH_COMMENT));

    let on_pr = |body: &str| {
        edited(GH_COMMENT, |v| {
            v["issue"]["pull_request"] =
                json!({"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"});
            v["comment"]["body"] = json!(body);
        })
    };
    let Observation::Comment(c) = one(parse("issue_comment", &on_pr("/rewind merge"))) else {
        panic!()
    };
    assert_eq!(c.repository, "Codertocat/Hello-World");
    assert_eq!(c.pr_number, 1);
    assert_eq!(c.comment_id, 492700400);
    assert_eq!(c.author, "Codertocat");
    assert_eq!(c.author_association, "OWNER");
    assert_eq!(c.command, ChatCommand::Merge);
    assert_eq!(c.at, ts("2019-05-15T15:20:21Z"));

    let Observation::Comment(c) = one(parse(
        "issue_comment",
        &on_pr("Looks wrong.\r\n/rewind cancel please\n"),
    )) else {
        panic!()
    };
    assert_eq!(c.command, ChatCommand::Cancel);
    ignored(parse("issue_comment", &on_pr("You are totally right!")));
    ignored(parse(
        "issue_comment",
        &on_pr("> /rewind merge\nquoted, not a command"),
    ));
    let edited_comment = edited(&on_pr("/rewind merge"), |v| v["action"] = json!("edited"));
    ignored(parse("issue_comment", &edited_comment));
}

#[test]
fn chat_command_grammar() {
    assert_eq!(chat_command("/rewind merge"), Some(ChatCommand::Merge));
    assert_eq!(
        chat_command("  /rewind   cancel  "),
        Some(ChatCommand::Cancel)
    );
    assert_eq!(
        chat_command("hi\n/rewind merge now"),
        Some(ChatCommand::Merge)
    );
    assert_eq!(
        chat_command("/rewind cancel\n/rewind merge"),
        Some(ChatCommand::Cancel)
    );
    for none in [
        "",
        "/rewind",
        "/rewind merged",
        "/rewinder merge",
        "please /rewind merge",
        "`/rewind merge`",
    ] {
        assert_eq!(chat_command(none), None, "{none:?}");
    }
}

#[test]
fn pushes_to_the_gitops_branch() {
    let Observation::Push(p) = one(parse("push", GH_PUSH_NEW_BRANCH)) else {
        panic!()
    };
    assert_eq!(p.repository, "Codertocat/Hello-World");
    assert_eq!(p.branch, "master");
    assert_eq!(
        p.before, None,
        "all-zero before means the branch was created"
    );
    assert_eq!(
        p.after.unwrap().as_str(),
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    );
    assert!(!p.forced);
    let commits: Vec<&str> = p.commits.iter().map(|c| c.as_str()).collect();
    assert_eq!(commits, ["6113728f27ae82c7b1a177c8d03f9e96e0adf246"]);
    assert_eq!(p.pusher, "Codertocat");
    assert_eq!(p.at, ts("2019-05-15T15:19:25Z"));

    // The published push example deletes a tag: not the branch.
    ignored(parse("push", GH_PUSH_TAG_DELETE));
    ignored(parse(
        "push",
        &edited(GH_PUSH_NEW_BRANCH, |v| {
            v["ref"] = json!("refs/heads/feature")
        }),
    ));

    // A deleted branch has no `after`; `pushed_at` (unix seconds) dates it.
    let body = edited(GH_PUSH_TAG_DELETE, |v| {
        v["ref"] = json!("refs/heads/master")
    });
    let Observation::Push(p) = one(parse("push", &body)) else {
        panic!()
    };
    assert_eq!(p.after, None);
    assert_eq!(
        p.before.unwrap().as_str(),
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    );
    assert!(p.commits.is_empty());
    assert_eq!(p.at, ts("2019-05-15T15:20:57Z"));

    // Commits keep the payload's order (oldest first); a force push says so.
    let body = edited(GH_PUSH_NEW_BRANCH, |v| {
        v["forced"] = json!(true);
        v["before"] = json!("1111111111111111111111111111111111111111");
        let first = v["commits"][0].clone();
        let mut second = first.clone();
        second["id"] = json!("2222222222222222222222222222222222222222");
        v["commits"] = json!([second, first]);
    });
    let Observation::Push(p) = one(parse("push", &body)) else {
        panic!()
    };
    assert!(p.forced);
    assert_eq!(
        p.before.unwrap().as_str(),
        "1111111111111111111111111111111111111111"
    );
    let commits: Vec<&str> = p.commits.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        commits,
        [
            "2222222222222222222222222222222222222222",
            "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
        ]
    );
}

#[test]
fn other_events_are_accepted_and_ignored() {
    ignored(parse(
        "ping",
        br#"{"zen":"Keep it logically awesome.","hook_id":1}"#,
    ));
    ignored(parse("status", GH_STATUS));
}

#[test]
fn form_encoded_deliveries_parse_like_json_ones() {
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", std::str::from_utf8(GH_PR_OPENED).unwrap())
        .finish();
    let mut h = github_headers("pull_request", encoded.as_bytes());
    h.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    let form = ingest(WebhookSource::Github, &h, encoded.as_bytes(), &settings()).unwrap();
    let json = parse("pull_request", GH_PR_OPENED);
    assert_eq!(form.observations, json.observations);

    // A form without `payload` names it.
    let mut h = github_headers("pull_request", b"other=1");
    h.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    assert_eq!(
        malformed_field(ingest(WebhookSource::Github, &h, b"other=1", &settings())),
        "payload"
    );
}

#[test]
fn without_a_delivery_id_the_body_hash_is_the_key() {
    let mut h = github_headers("pull_request", GH_PR_OPENED);
    h.remove("x-github-delivery");
    let parsed = ingest(WebhookSource::Github, &h, GH_PR_OPENED, &settings()).unwrap();
    assert_eq!(
        parsed.delivery_key,
        rewind_ingest::body_delivery_key(GH_PR_OPENED)
    );
}

#[test]
fn malformed_payloads_name_the_field() {
    let run = |event: &str, body: Vec<u8>| {
        ingest(
            WebhookSource::Github,
            &github_headers(event, &body),
            &body,
            &settings(),
        )
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "pull_request",
            edited(GH_PR_OPENED, |v| v["pull_request"]["number"] = json!("two")),
            "pull_request.number",
        ),
        (
            "pull_request",
            edited(GH_PR_OPENED, |v| v["pull_request"]["number"] = json!(-2)),
            "pull_request.number",
        ),
        (
            "pull_request_review",
            edited(GH_REVIEW, |v| v["review"]["id"] = json!(null)),
            "review.id",
        ),
        (
            "issue_comment",
            edited(GH_COMMENT, |v| v["comment"]["user"] = json!("Codertocat")),
            "comment.user",
        ),
        (
            "push",
            edited(GH_PUSH_NEW_BRANCH, |v| v["commits"][0]["id"] = json!(1)),
            "commits[0].id",
        ),
        ("push", b"{\"ref\":".to_vec(), "ref"),
    ];
    for (event, body, field) in cases {
        assert_eq!(malformed_field(run(event, body)), field, "{event}");
    }
}
