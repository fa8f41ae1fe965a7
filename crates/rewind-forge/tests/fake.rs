//! The fake GitHub itself is strict where GitHub is: these talk to it with
//! raw HTTP/1.1 so nothing smooths over a mistake.

mod common;

use common::{BRANCH, Setup, TOKEN};
use std::io::{Read, Write};

struct Answer {
    status: u16,
    head: String,
    body: String,
}

async fn raw(setup: &Setup, method: &str, path: &str, headers: &[&str], body: &str) -> Answer {
    let address = setup.fake.url().trim_start_matches("http://").to_owned();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    // Blocking std I/O off the runtime: the workspace's tokio has no io-util.
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).expect("connect");
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
    })
    .await
    .expect("raw request");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    Answer {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

fn auth() -> String {
    format!("Authorization: token {TOKEN}")
}

const UA: &str = "User-Agent: test";

#[tokio::test]
async fn requests_need_a_user_agent_and_the_token() {
    let setup = Setup::new().await;
    let path = "/repos/acme/gitops/pulls";

    assert_eq!(raw(&setup, "GET", path, &[&auth()], "").await.status, 403);
    assert_eq!(raw(&setup, "GET", path, &[UA], "").await.status, 401);
    assert_eq!(
        raw(&setup, "GET", path, &[UA, "Authorization: token nope"], "")
            .await
            .status,
        401
    );
    let ok = raw(&setup, "GET", path, &[UA, &auth()], "").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body.trim(), "[]");
}

#[tokio::test]
async fn every_answer_carries_rate_limit_headers() {
    let setup = Setup::new().await;
    for (path, status) in [
        ("/repos/acme/gitops/pulls", 200),
        ("/repos/acme/gitops/pulls/9", 404),
        ("/repos/other/repo/pulls", 404),
    ] {
        let answer = raw(&setup, "GET", path, &[UA, &auth()], "").await;
        assert_eq!(answer.status, status, "{path}");
        for header in [
            "x-ratelimit-limit:",
            "x-ratelimit-remaining:",
            "x-ratelimit-reset:",
            "x-ratelimit-used:",
        ] {
            assert!(answer.head.contains(header), "{path} lacks {header}");
        }
    }
}

#[tokio::test]
async fn creating_a_pull_request_is_validated_like_github() {
    let setup = Setup::new().await;
    let post = |body: String| {
        let setup = &setup;
        async move {
            raw(
                setup,
                "POST",
                "/repos/acme/gitops/pulls",
                &[UA, &auth(), "Content-Type: application/json"],
                &body,
            )
            .await
        }
    };

    // Labels are not a field of this endpoint: a client sending them is wrong.
    let with_labels = post(format!(
        r#"{{"title":"t","head":"{BRANCH}","base":"main","labels":["rewind"]}}"#
    ))
    .await;
    assert_eq!(with_labels.status, 422, "{}", with_labels.body);
    assert_eq!(post("{not json".to_owned()).await.status, 400);
    let no_branch = post(r#"{"title":"t","head":"missing","base":"main"}"#.to_owned()).await;
    assert_eq!(no_branch.status, 422);
    assert!(
        no_branch.body.contains(r#""field":"head""#),
        "{}",
        no_branch.body
    );
    let nothing_new = post(r#"{"title":"t","head":"main","base":"main"}"#.to_owned()).await;
    assert!(
        nothing_new
            .body
            .contains("No commits between main and main"),
        "{}",
        nothing_new.body
    );

    let created = post(format!(
        r#"{{"title":"t","head":"acme:{BRANCH}","base":"main"}}"#
    ))
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let duplicate = post(format!(
        r#"{{"title":"t","head":"{BRANCH}","base":"main"}}"#
    ))
    .await;
    assert_eq!(duplicate.status, 422);
    assert!(
        duplicate
            .body
            .contains("A pull request already exists for acme:rewind/shop-checkout/0190b1c2."),
        "{}",
        duplicate.body
    );
    assert_eq!(setup.fake.pull_requests().len(), 1);
}

#[tokio::test]
async fn an_empty_base_in_the_spec_uses_the_configured_branch() {
    use rewind_forge::Forge;
    let setup = Setup::new().await;
    let forge = rewind_forge::GitHubForge::new(&setup.settings()).expect("forge");
    let mut spec = common::spec();
    spec.base_branch = String::new();

    forge.open_pull_request(&spec).await.expect("open");

    assert_eq!(setup.fake.pull_requests()[0].base_ref, "main");
}
