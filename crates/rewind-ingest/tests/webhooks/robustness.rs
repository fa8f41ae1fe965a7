//! Hostile bodies: every parser answers `Ok` or a named `Malformed` error for
//! any bytes, and never panics, even once authenticated.

use http::HeaderMap;
use proptest::prelude::*;
use rewind_ingest::{IngestError, Parsed, WebhookSource, ingest};

use crate::common::*;

const GITHUB_EVENTS: [&str; 4] = [
    "pull_request",
    "pull_request_review",
    "issue_comment",
    "push",
];

/// Authenticated headers for `body`, so the parser is what gets exercised.
fn signed(source: WebhookSource, body: &[u8], github_event: &str) -> HeaderMap {
    match source {
        WebhookSource::Argocd => bearer(ARGOCD_TOKEN),
        WebhookSource::Alertmanager => bearer(ALERTMANAGER_TOKEN),
        WebhookSource::Flux => flux_headers(body),
        WebhookSource::Github => github_headers(github_event, body),
        WebhookSource::Flagger => bearer(FLAGGER_TOKEN),
        WebhookSource::ArgoRollouts => bearer(ROLLOUTS_TOKEN),
    }
}

fn run(source: WebhookSource, body: &[u8], github_event: &str) -> Result<Parsed, IngestError> {
    ingest(
        source,
        &signed(source, body, github_event),
        body,
        &settings(),
    )
}

fn ok_or_named(result: &Result<Parsed, IngestError>) -> bool {
    match result {
        Ok(_) => true,
        Err(IngestError::Malformed { field, detail }) => !field.is_empty() && !detail.is_empty(),
        Err(_) => false,
    }
}

fn fixtures() -> Vec<(WebhookSource, &'static [u8], &'static str)> {
    vec![
        (WebhookSource::Argocd, ARGOCD_ON_DEPLOYED, ""),
        (WebhookSource::Flux, FLUX_REAL, ""),
        (WebhookSource::Flux, FLUX_DOCS, ""),
        (WebhookSource::Alertmanager, AM_GROUPED, ""),
        (WebhookSource::Alertmanager, AM_RESOLVED, ""),
        (WebhookSource::Github, GH_PR_CLOSED, "pull_request"),
        (WebhookSource::Github, GH_REVIEW, "pull_request_review"),
        (WebhookSource::Github, GH_COMMENT, "issue_comment"),
        (WebhookSource::Github, GH_PUSH_NEW_BRANCH, "push"),
        (WebhookSource::Flagger, FLAGGER_FAILED, ""),
        (WebhookSource::Flagger, FLAGGER_HALT, ""),
        (WebhookSource::ArgoRollouts, ROLLOUT_ABORTED, ""),
        (WebhookSource::ArgoRollouts, ROLLOUT_ABORTED_WITH_RUNS, ""),
    ]
}

fn source_strategy() -> impl Strategy<Value = WebhookSource> {
    prop_oneof![
        Just(WebhookSource::Argocd),
        Just(WebhookSource::Flux),
        Just(WebhookSource::Alertmanager),
        Just(WebhookSource::Github),
        Just(WebhookSource::Flagger),
        Just(WebhookSource::ArgoRollouts),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Overwrite(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes that matter to JSON more often than uniform bytes would.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]\",:0-9.eE tfn\\\xff\xc3".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Overwrite(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for m in mutations {
        if out.is_empty() {
            break;
        }
        match *m {
            Mutation::Overwrite(i, b) => {
                let i = i % out.len();
                out[i] = b;
            }
            Mutation::Insert(i, b) => {
                let i = i % (out.len() + 1);
                out.insert(i, b);
            }
            Mutation::Delete(i) => {
                let i = i % out.len();
                out.remove(i);
            }
            Mutation::Truncate(i) => out.truncate(i % out.len()),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_are_ok_or_named_errors(
        source in source_strategy(),
        event in prop::sample::select(GITHUB_EVENTS.to_vec()),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let result = run(source, &body, event);
        prop_assert!(ok_or_named(&result), "{source}: {result:?}");
    }

    #[test]
    fn json_shaped_noise_is_ok_or_named_errors(
        source in source_strategy(),
        event in prop::sample::select(GITHUB_EVENTS.to_vec()),
        body in "[\\[\\]{}\",:0-9a-z\\-. ]{0,200}",
    ) {
        let result = run(source, body.as_bytes(), event);
        prop_assert!(ok_or_named(&result), "{source}: {result:?}");
    }

    #[test]
    fn mutated_fixtures_are_ok_or_named_errors(
        index in 0..13usize,
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let (source, fixture, event) = fixtures()[index];
        let body = mutate(fixture, &mutations);
        let result = run(source, &body, event);
        prop_assert!(ok_or_named(&result), "{source}: {result:?}");
    }
}

#[test]
fn every_fixture_parses_unmutated() {
    for (source, fixture, event) in fixtures() {
        let parsed = run(source, fixture, event).unwrap();
        assert!(parsed.accepted() + parsed.ignored > 0, "{source}");
    }
}

#[test]
fn deep_nesting_never_overflows_the_stack() {
    for source in [
        WebhookSource::Argocd,
        WebhookSource::Flux,
        WebhookSource::Alertmanager,
        WebhookSource::Github,
        WebhookSource::Flagger,
        WebhookSource::ArgoRollouts,
    ] {
        for depth in [200, 100_000] {
            let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let nested = [
                format!(r#"{{"app":{{"metadata":{{"name":"x"}},"status":{{"x":{arrays}}}}}}}"#),
                format!(r#"{{"version":"4","alerts":[],"extra":{arrays}}}"#),
                format!(r#"{{"involvedObject":{{}},"metadata":{{}},"x":{arrays}}}"#),
                format!(r#"{{"action":"opened","x":{arrays}}}"#),
                format!(r#"{{"name":"c","namespace":"n","phase":"Failed","x":{arrays}}}"#),
                format!(r#"{{"event":"on-rollout-aborted","rollout":{{"x":{arrays}}}}}"#),
            ];
            // Nesting where a typed field is expected is refused; inside
            // fields rewind ignores, serde_json skips it without recursing.
            let result = run(source, arrays.as_bytes(), "pull_request");
            assert!(
                matches!(result, Err(IngestError::Malformed { .. })),
                "{source} depth {depth}: {result:?}"
            );
            for body in nested {
                let result = run(source, body.as_bytes(), "pull_request");
                assert!(ok_or_named(&result), "{source} depth {depth}: {result:?}");
            }
        }
    }
}

#[test]
fn invalid_utf8_and_huge_numbers_are_named() {
    let mut body =
        br#"{"version":"4","groupKey":"g","alerts":[{"status":"firing","labels":{"app":"x"#
            .to_vec();
    body.extend_from_slice(b"\xff\xfe");
    body.extend_from_slice(br#""},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"f"}]}"#);
    let err = run(WebhookSource::Alertmanager, &body, "").unwrap_err();
    assert!(
        matches!(&err, IngestError::Malformed { field, .. } if field == "alerts[0].labels.app"),
        "{err:?}"
    );

    let body = br#"{"action":"opened","number":1e999999,"pull_request":{"number":340282366920938463463374607431768211456}}"#;
    let err = run(WebhookSource::Github, body, "pull_request").unwrap_err();
    assert!(
        matches!(&err, IngestError::Malformed { field, .. } if field == "pull_request.number"),
        "{err:?}"
    );
}
