//! rewind-probe against a real Prometheus scraping an exporter the test
//! controls, and HTTP smoke checks against a local server: every verdict
//! (pass, fail, unknown) and why.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use chrono::Utc;
use rewind_probe::{
    Check, CheckKind, HeaderValueSource, HttpCheck, LiveProbe, Probe, ProbeSettings, QueryCheck,
    Reading, Target, judge,
};
use rewind_tests::prometheus::{Exporter, Prometheus, available, free_port};

const RATIO: &str = r#"app_error_ratio{app="checkout"}"#;

fn query_check(query: &str, max: Option<f64>) -> Check {
    Check {
        name: "error-rate".into(),
        kind: CheckKind::Query(QueryCheck {
            query: query.into(),
            min: None,
            max,
            max_delta_from_known_good: None,
            min_evidence: None,
        }),
        apps: vec![],
    }
}

fn probe(url: &str, timeout: Duration) -> LiveProbe {
    LiveProbe::new(&ProbeSettings {
        prometheus_url: Some(url.to_string()),
        timeout,
    })
    .expect("probe")
}

async fn evaluate(probe: &LiveProbe, check: &Check) -> rewind_probe::Evaluation {
    let target = Target::new("shop/checkout", "prod-eu");
    judge(&check.kind, probe.read(check, &target, None).await, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_verdicts_against_a_real_prometheus() {
    if !available("promql_verdicts_against_a_real_prometheus") {
        return;
    }
    let exporter = Exporter::start().await;
    exporter.set(RATIO, 0.01);
    exporter.set(r#"app_requests{app="checkout"}"#, 500.0);
    let mut prometheus = Prometheus::start(&exporter).await;
    prometheus.wait_for(RATIO, 0.01).await;
    let probe = probe(&prometheus.url, Duration::from_secs(5));

    // Templated by app: the error ratio is within max.
    let check = query_check(r#"max(app_error_ratio{app="{{app}}"})"#, Some(0.05));
    let ok = evaluate(&probe, &check).await;
    assert_eq!((ok.pass, ok.value), (Some(true), Some(0.01)), "{ok:?}");
    let before = Utc::now();

    // The app gets worse: the next evaluation fails, naming value and bound.
    exporter.set(RATIO, 0.2);
    prometheus.wait_for(RATIO, 0.2).await;
    let bad = evaluate(&probe, &check).await;
    assert_eq!(bad.pass, Some(false), "{bad:?}");
    assert_eq!(bad.detail, "0.2 above max 0.05");

    // The same query read in the past (a baseline) sees the old value.
    let target = Target::new("shop/checkout", "prod-eu");
    assert_eq!(
        probe.read(&check, &target, Some(before)).await,
        Reading::Value(0.01)
    );

    // No series: unknown, never a pass.
    let empty = evaluate(
        &probe,
        &query_check(r#"app_error_ratio{app="nope"}"#, Some(1.0)),
    )
    .await;
    assert_eq!(empty.pass, None);
    assert!(empty.detail.contains("no series"), "{empty:?}");

    // NaN (0/0): unknown.
    let nan = evaluate(&probe, &query_check("vector(0) / vector(0)", Some(1.0))).await;
    assert_eq!(nan.pass, None, "{nan:?}");

    // Several series: unknown, with the advice to aggregate.
    exporter.set(r#"app_error_ratio{app="checkout",pod="b"}"#, 0.0);
    prometheus
        .wait_for(r#"count(app_error_ratio{app="checkout"})"#, 2.0)
        .await;
    let many = evaluate(
        &probe,
        &query_check(r#"app_error_ratio{app="checkout"}"#, Some(1.0)),
    )
    .await;
    assert_eq!(many.pass, None);
    assert!(many.detail.contains("2 series"), "{many:?}");

    // A query Prometheus refuses: unknown with Prometheus' reason.
    let broken = evaluate(&probe, &query_check("sum(rate(", Some(1.0))).await;
    assert_eq!(broken.pass, None);
    assert!(broken.detail.contains("Prometheus error"), "{broken:?}");

    // Too little evidence: unknown, even though the value passes.
    let mut guarded = query_check(r#"max(app_error_ratio{app="{{app}}"})"#, Some(1.0));
    if let CheckKind::Query(q) = &mut guarded.kind {
        q.min_evidence = Some(r#"app_requests{app="{{app}}"} >= 1000"#.into());
    }
    let thin = evaluate(&probe, &guarded).await;
    assert_eq!(thin.pass, None, "{thin:?}");
    assert!(thin.detail.contains("not enough evidence"), "{thin:?}");
    exporter.set(r#"app_requests{app="checkout"}"#, 5000.0);
    prometheus
        .wait_for(r#"app_requests{app="checkout"}"#, 5000.0)
        .await;
    assert_eq!(evaluate(&probe, &guarded).await.pass, Some(true));

    // Prometheus goes away: unknown, with the reason.
    prometheus.stop();
    let down = evaluate(&probe, &check).await;
    assert_eq!(down.pass, None, "{down:?}");
    assert!(down.detail.contains("Prometheus error"), "{down:?}");
}

#[tokio::test]
async fn a_prometheus_that_never_answers_is_unknown_after_the_timeout() {
    // Accepts connections and never answers: the timeout path.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let probe = probe(&url, Duration::from_millis(300));
    let started = std::time::Instant::now();
    let slow = evaluate(&probe, &query_check("up", Some(1.0))).await;
    assert_eq!(slow.pass, None, "{slow:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

fn smoke(url: String) -> HttpCheck {
    HttpCheck {
        method: "POST".into(),
        url,
        headers: vec![],
        body: Some(r#"{"smoke": true, "app": "{{app}}"}"#.into()),
        expect_status: 201,
        expect_body: Some("id".into()),
        expect_json_pointer: None,
    }
}

fn http_check(http: HttpCheck) -> Check {
    Check {
        name: "create-order".into(),
        kind: CheckKind::Http(http),
        apps: vec![],
    }
}

#[tokio::test]
async fn smoke_checks_call_the_core_path_with_secret_headers() {
    let app = axum::Router::new()
        .route(
            "/orders",
            post(|headers: HeaderMap, body: String| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let key = headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if auth != env!("CARGO_PKG_NAME") || key != "key-from-file" {
                    return (StatusCode::UNAUTHORIZED, "no".to_string());
                }
                if !body.contains(r#""app": "checkout""#) {
                    return (StatusCode::BAD_REQUEST, body);
                }
                (StatusCode::CREATED, r#"{"order": {"id": 42}}"#.to_string())
            }),
        )
        .route("/broken", get(|| async { (StatusCode::OK, "{}") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "key-from-file\n").unwrap();
    // The workspace forbids `unsafe`, so `set_var` is out: cargo sets
    // CARGO_PKG_NAME for every test process, and it stands in for a token.
    let var = "CARGO_PKG_NAME";

    let probe = LiveProbe::new(&ProbeSettings::default()).unwrap();
    let mut good = smoke(format!("{base}/orders?token=q"));
    good.headers = vec![
        ("Authorization".into(), HeaderValueSource::Env(var.into())),
        (
            "X-Api-Key".into(),
            HeaderValueSource::File(key_file.clone()),
        ),
        (
            "Accept".into(),
            HeaderValueSource::Plain("application/json".into()),
        ),
    ];
    good.expect_json_pointer = Some("/order/id".into());
    let ok = evaluate(&probe, &http_check(good.clone())).await;
    assert_eq!(ok.pass, Some(true), "{ok:?}");

    // Without the secret header: 401 is a failure naming the status, and
    // no detail ever shows a secret or the query string.
    let mut anonymous = good.clone();
    anonymous.headers.clear();
    let refused = evaluate(&probe, &http_check(anonymous)).await;
    assert_eq!(refused.pass, Some(false));
    assert!(
        refused.detail.contains("answered 401, expected 201"),
        "{refused:?}"
    );
    for e in [&ok, &refused] {
        assert!(!e.detail.contains(env!("CARGO_PKG_NAME")) && !e.detail.contains("key-from-file"));
        assert!(!e.detail.contains("token=q"), "{e:?}");
    }

    // A missing variable is unknown, naming the variable, not a value.
    let mut unset = good.clone();
    unset.headers = vec![(
        "Authorization".into(),
        HeaderValueSource::Env("REWIND_PROBE_TEST_UNSET".into()),
    )];
    let missing = evaluate(&probe, &http_check(unset)).await;
    assert_eq!(missing.pass, None);
    assert!(missing.detail.contains("REWIND_PROBE_TEST_UNSET"));

    // The body lacks what the check expects.
    let mut pointer = smoke(format!("{base}/broken"));
    pointer.method = "GET".into();
    pointer.body = None;
    pointer.expect_status = 200;
    pointer.expect_body = None;
    pointer.expect_json_pointer = Some("/order/id".into());
    let no_id = evaluate(&probe, &http_check(pointer)).await;
    assert_eq!(no_id.pass, Some(false));
    assert!(no_id.detail.contains("/order/id"), "{no_id:?}");

    // Nobody answers: the app's core path is down, a failure.
    let down = evaluate(
        &probe,
        &http_check(smoke(format!("http://127.0.0.1:{}/orders", free_port()))),
    )
    .await;
    assert_eq!(down.pass, Some(false), "{down:?}");
    assert!(down.detail.contains("cannot connect"), "{down:?}");
}
