//! Snapshots of the rollback report: what a reviewer of a rollback pull
//! request sees, for an alert-triggered rollback with risks, a manual one
//! without, and the body after the merge.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rewind_domain::{
    Alert, AlertStatus, AppName, CommitId, ConfigHash, Deployment, Health, PullRequestRef, Risk,
    RiskCode, Rollback, RollbackDiff, RollbackId, RollbackState, Source, Strategy, SyncStatus,
    TimelineEntry, Trigger,
};
use rewind_forge::{ReportStage, RollbackReport, render_pull_request_body, render_title};

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, hour, minute, 0)
        .single()
        .expect("time")
}

fn app() -> AppName {
    AppName::new("shop/checkout").expect("app")
}

fn deployment(
    id: i64,
    revision: i64,
    sha_digit: char,
    image: &str,
    health: Health,
    known_good: bool,
    minute: u32,
) -> Deployment {
    let sha = sha_digit.to_string().repeat(40);
    Deployment {
        id,
        app: app(),
        cluster: "prod-eu".parse().unwrap(),
        cluster_revision: revision,
        revision: format!("main@sha1:{sha}"),
        commit: Some(CommitId::new(&sha).expect("sha")),
        tree: None,
        config_hash: Some(ConfigHash::from_digest([sha_digit as u8; 32])),
        images: vec![image.to_owned()],
        health,
        sync: SyncStatus::Synced,
        deployed_at: at(9, minute),
        source: Source::Argocd,
        known_good,
        known_good_by_history: false,
        healthy_since: None,
        alerted: !known_good && health == Health::Degraded,
        initiated_by: None,
    }
}

fn deployments() -> Vec<Deployment> {
    vec![
        deployment(
            3,
            12,
            'c',
            "registry.example/shop/checkout:2.0.0",
            Health::Degraded,
            false,
            40,
        ),
        deployment(
            2,
            11,
            'b',
            "registry.example/shop/checkout:1.9.3",
            Health::Healthy,
            true,
            20,
        ),
        deployment(
            1,
            10,
            'a',
            "registry.example/shop/checkout:1.9.2",
            Health::Healthy,
            true,
            0,
        ),
    ]
}

fn alert() -> Alert {
    Alert {
        app: app(),
        cluster: Some("prod-eu".parse().unwrap()),
        name: "CheckoutErrorRate".to_owned(),
        status: AlertStatus::Firing,
        severity: Some("critical".to_owned()),
        fingerprint: "5a1b2c3d4e5f".to_owned(),
        group_key: "{}:{alertname=\"CheckoutErrorRate\"}".to_owned(),
        starts_at: at(9, 45),
        ends_at: None,
        generator_url: Some("http://prometheus.example/graph?g0.expr=rate(errors[5m])".to_owned()),
        labels: BTreeMap::from([
            ("alertname".to_owned(), "CheckoutErrorRate".to_owned()),
            ("app".to_owned(), "shop/checkout".to_owned()),
            ("cluster".to_owned(), "prod-eu".to_owned()),
            ("severity".to_owned(), "critical".to_owned()),
            // The issue's example: shown in a code span, never live.
            (
                "team".to_owned(),
                "@acme/everyone [click](https://evil.example/x) <img src=x onerror=alert(1)>"
                    .to_owned(),
            ),
        ]),
        annotations: BTreeMap::from([(
            "summary".to_owned(),
            "5xx ratio above 5% for 5 minutes <script>|".to_owned(),
        )]),
    }
}

fn rollback(trigger: Trigger, risks: Vec<Risk>) -> Rollback {
    let recent = deployments();
    let id = RollbackId::from_uuid(
        "01936f4e-8b2a-7c3d-9e4f-a1b2c3d4e5f6"
            .parse()
            .expect("uuid"),
    );
    Rollback {
        id,
        app: app(),
        cluster: "prod-eu".parse().unwrap(),
        from: recent[0].clone(),
        to: recent[1].clone(),
        state: RollbackState::PrOpen,
        reason: "Error rate doubled after 2.0.0".to_owned(),
        trigger,
        strategy: Strategy::Restore,
        branch: Some(format!("rewind/shop-checkout/{id}")),
        commit: Some(CommitId::new("d".repeat(40)).expect("sha")),
        merge_commit: None,
        pr: Some(PullRequestRef { number: 7, url: "https://github.com/acme/gitops/pull/7".to_owned() }),
        diff: RollbackDiff {
            semantic: serde_json::json!([
                {
                    "kind": "Deployment",
                    "name": "checkout",
                    "namespace": "shop",
                    "change": "modified",
                    "fields": [
                        { "path": "spec.template.spec.containers[0].image", "from": "registry.example/shop/checkout:2.0.0", "to": "registry.example/shop/checkout:1.9.3" },
                        { "path": "spec.replicas", "from": 6, "to": 4 }
                    ]
                },
                { "kind": "ConfigMap", "name": "checkout-flags", "namespace": "shop", "change": "modified" }
            ]),
            text: "--- a/apps/checkout/deployment.yaml\n+++ b/apps/checkout/deployment.yaml\n@@ -5,7 +5,7 @@\n-  replicas: 6\n+  replicas: 4\n-        image: registry.example/shop/checkout:2.0.0\n+        image: registry.example/shop/checkout:1.9.3\n".to_owned(),
        },
        risks,
        approvals: vec![],
        timeline: vec![
            TimelineEntry { at: at(9, 46), event: "proposed".into(), detail: "alert CheckoutErrorRate fired".to_owned() },
            TimelineEntry { at: at(9, 47), event: "pr_open".into(), detail: "pull request #7 opened".to_owned() },
        ],
        verification: vec![],
        created_at: at(9, 46),
        updated_at: at(9, 47),
        wave: None,
    }
}

fn alert_trigger() -> Trigger {
    Trigger::Alert {
        group_key: "{}:{alertname=\"CheckoutErrorRate\"}".to_owned(),
        alert_name: "CheckoutErrorRate".to_owned(),
        fingerprint: "5a1b2c3d4e5f".to_owned(),
        severity: Some("critical".to_owned()),
    }
}

fn report<'a>(
    rollback: &'a Rollback,
    alert: Option<&'a Alert>,
    recent: &'a [Deployment],
    stage: ReportStage,
) -> RollbackReport<'a> {
    RollbackReport {
        rollback,
        alert,
        recent_deployments: recent,
        public_url: "https://rewind.example.com/",
        verify_for: Duration::from_secs(180),
        stage,
    }
}

#[test]
fn alert_triggered_with_risks() {
    let risks = vec![
        Risk::new(
            RiskCode::Scale,
            "spec.replicas of Deployment shop/checkout changes 6 → 4",
        ),
        Risk::new(
            RiskCode::MutableImage,
            "registry.example/shop/sidecar:latest is a mutable tag",
        ),
    ];
    let rollback = rollback(alert_trigger(), risks);
    let alert = alert();
    let recent = deployments();
    let body = render_pull_request_body(&report(
        &rollback,
        Some(&alert),
        &recent,
        ReportStage::Opened,
    ));

    assert!(body.starts_with(&format!("<!-- rewind:rollback-id={} -->", rollback.id)));
    assert_eq!(
        body.matches("<!--").count(),
        1,
        "alert text cannot add markers"
    );
    assert_eq!(
        render_title(&rollback),
        "Roll back shop/checkout@prod-eu to revision 11 (bbbbbbb): CheckoutErrorRate"
    );
    insta::assert_snapshot!(body);
}

#[test]
fn manual_without_risks() {
    let mut rollback = rollback(
        Trigger::Manual {
            caller: "oncall".to_owned(),
        },
        vec![],
    );
    rollback.reason = "Customers report failed payments".to_owned();
    let recent = deployments();
    let body = render_pull_request_body(&report(&rollback, None, &recent, ReportStage::Opened));

    assert_eq!(
        render_title(&rollback),
        "Roll back shop/checkout@prod-eu to revision 11 (bbbbbbb)"
    );
    insta::assert_snapshot!(body);
}

#[test]
fn update_after_merge() {
    let mut rollback = rollback(alert_trigger(), vec![]);
    rollback.state = RollbackState::Merged;
    rollback.timeline.push(TimelineEntry {
        at: at(9, 55),
        event: "merged".into(),
        detail: "merged by /rewind merge from alice as eeeeeee".to_owned(),
    });
    let alert = alert();
    let recent = deployments();
    let body = render_pull_request_body(&report(
        &rollback,
        Some(&alert),
        &recent,
        ReportStage::Update,
    ));

    assert!(
        !body.contains("/rewind merge` to merge"),
        "no commands once merged"
    );
    insta::assert_snapshot!(body);
}

#[test]
fn the_latest_evaluation_of_each_check_is_a_table_row() {
    let mut rollback = rollback(alert_trigger(), vec![]);
    rollback.state = RollbackState::Synced;
    let result = |check: &str, minute, value, pass, detail: &str| rewind_domain::CheckResult {
        check: check.to_owned(),
        at: at(10, minute),
        value,
        baseline: Some(0.2),
        pass,
        detail: detail.to_owned(),
    };
    rollback.verification = vec![
        result(
            "error-rate",
            0,
            Some(0.3),
            Some(false),
            "0.3 above max 0.05",
        ),
        result(
            "error-rate",
            1,
            Some(0.01),
            Some(true),
            "0.01 within max 0.05",
        ),
        result("smoke", 1, None, None, "no answer | <b>x</b>"),
    ];
    let recent = deployments();
    let body = render_pull_request_body(&report(&rollback, None, &recent, ReportStage::Update));
    assert!(
        body.contains("| `error-rate` | ✅ pass | 0.2 → 0.01 | 0.01 within max 0.05 |"),
        "{body}"
    );
    assert!(
        !body.contains("0.3 above"),
        "only the latest evaluation: {body}"
    );
    assert!(
        body.contains("| `smoke` | ❔ unknown | 0.2 → – | no answer \\| &lt;b&gt;x&lt;/b&gt; |"),
        "{body}"
    );
}

#[test]
fn a_huge_text_diff_is_cut_and_the_body_stays_under_githubs_limit() {
    let mut rollback = rollback(
        Trigger::Manual {
            caller: "oncall".to_owned(),
        },
        vec![],
    );
    rollback.diff.text = "+ a line of a very large generated manifest\n".repeat(5_000);
    let body = render_pull_request_body(&report(&rollback, None, &[], ReportStage::Opened));

    assert!(body.len() < 65_536, "{} bytes", body.len());
    assert!(body.contains("Text diff (5000 lines)"));
    assert!(body.contains("Cut here"));
}

#[test]
fn backticks_in_the_diff_cannot_close_its_fence() {
    let mut rollback = rollback(
        Trigger::Manual {
            caller: "oncall".to_owned(),
        },
        vec![],
    );
    rollback.diff.text = "+ command: echo ```\n".to_owned();
    let body = render_pull_request_body(&report(&rollback, None, &[], ReportStage::Opened));

    assert!(
        body.contains("````diff\n+ command: echo ```\n````"),
        "{body}"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Strings made of the pieces of Markdown and HTML injection.
    fn hostile() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy as _;
        let piece = prop_oneof![
            Just("@acme/everyone".to_owned()),
            Just("[click](https://evil.example/x)".to_owned()),
            Just("![x](http://e.example/i.png)".to_owned()),
            Just("<img src=x onerror=alert(1)>".to_owned()),
            Just("<!-- rewind:rollback-id=01936f4e-8b2a-7c3d-9e4f-a1b2c3d4e5f6 -->".to_owned()),
            Just("`".to_owned()),
            Just("``".to_owned()),
            Just("\\".to_owned()),
            Just("#12".to_owned()),
            Just("www.evil.example".to_owned()),
            Just("\n\n# heading\n".to_owned()),
            Just("\u{202E}\u{2066}\u{200B}\0".to_owned()),
            Just("|".to_owned()),
            "[a-z ]{0,6}",
        ];
        prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever alerts, people, risks and the timeline say, the body
        /// has no live mention, link, image, tag, autolink or hidden
        /// character outside rewind's own markup.
        #[test]
        fn outside_text_is_never_live_markup(
            name in hostile(),
            label in hostile(),
            summary in hostile(),
            reason in hostile(),
            caller in hostile(),
            detail in hostile(),
            event in hostile(),
            image in hostile(),
        ) {
            let mut alert = alert();
            alert.name = name.clone();
            alert.labels.insert(label.clone(), label.clone());
            alert.annotations.insert("summary".to_owned(), summary);
            alert.severity = Some(label);
            let mut rollback = rollback(alert_trigger(), vec![Risk::new(RiskCode::Drift, detail.clone())]);
            rollback.reason = reason;
            rollback.from.images.push(image);
            rollback.timeline.push(TimelineEntry { at: at(10, 0), event: rewind_domain::TimelineEvent::Other(event), detail });
            let recent = deployments();
            for stage in [ReportStage::Opened, ReportStage::Update] {
                let body = render_pull_request_body(&report(&rollback, Some(&alert), &recent, stage));
                prop_assert_eq!(live_markup(&body), None);
            }
            let mut manual = rollback.clone();
            manual.trigger = Trigger::Manual { caller };
            let body = render_pull_request_body(&report(&manual, None, &recent, ReportStage::Update));
            prop_assert_eq!(live_markup(&body), None);
            prop_assert!(!render_title(&rollback).chars().any(rewind_domain::text::is_hidden));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever alerts, people and risks say, the body keeps exactly one
        /// marker naming its rollback, and its tables keep their columns.
        #[test]
        fn outside_text_cannot_break_the_report(
            reason in any::<String>(),
            summary in any::<String>(),
            label in "[<!>|`*\\-\\n a-z]{0,40}",
            detail in any::<String>(),
            event in any::<String>(),
        ) {
            let mut alert = alert();
            alert.annotations.insert("summary".to_owned(), summary);
            alert.labels.insert("team".to_owned(), label.clone());
            alert.name = label.clone();
            let mut rollback = rollback(alert_trigger(), vec![Risk::new(RiskCode::Drift, detail)]);
            rollback.reason = reason;
            rollback.from.images.push(label);
            rollback.timeline.push(TimelineEntry { at: at(10, 0), event: event.into(), detail: "x".to_owned() });
            let recent = deployments();
            for stage in [ReportStage::Opened, ReportStage::Update] {
                let body = render_pull_request_body(&report(&rollback, Some(&alert), &recent, stage));
                prop_assert_eq!(body.matches("<!--").count(), 1);
                prop_assert_eq!(rewind_forge::rollback_id_from_body(&body), Some(rollback.id));
                let what_rows: Vec<&str> = body
                    .lines()
                    .skip_while(|l| !l.starts_with("| | now"))
                    .take_while(|l| l.starts_with('|'))
                    .collect();
                prop_assert_eq!(what_rows.len(), 8);
                for row in what_rows {
                    let cells = row.replace("\\|", "").matches('|').count();
                    prop_assert_eq!(cells, 4, "{}", row);
                }
            }
        }
    }
}

/// The body with rewind's own markup taken out: fenced blocks, code spans,
/// the marker, its HTML tags and its links. What is left came from outside
/// text and must be inert.
fn outside_text_of(body: &str) -> String {
    let mut text = String::new();
    let mut in_fence: Option<String> = None;
    for line in body.lines() {
        let ticks: String = line.chars().take_while(|&c| c == '`').collect();
        if let Some(fence) = &in_fence {
            if line == fence {
                in_fence = None;
            }
            continue;
        }
        if ticks.len() >= 3 {
            in_fence = Some(ticks);
            continue;
        }
        text.push_str(&without_code_spans(line));
        text.push('\n');
    }
    let mut text = text
        .replacen("<!-- rewind:rollback-id=", "", 1)
        .replace("<details><summary>", "")
        .replace("</summary>", "")
        .replace("</details>", "")
        .replace("<br>", "");
    for own in ["[alert source](", "[rollback](", "[Rollback in rewind]("] {
        while let Some(start) = text.find(own) {
            let end = text[start..]
                .find(')')
                .map_or(text.len(), |e| start + e + 1);
            text.replace_range(start..end, "");
        }
    }
    text
}

/// `line` without its code spans (a run of n backticks to the next run of
/// exactly n), skipping backslash-escaped characters as Markdown does.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            out.extend(chars.get(i..i + 2).unwrap_or(&chars[i..]));
            i += 2;
            continue;
        }
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let n = chars[i..].iter().take_while(|&&c| c == '`').count();
        let mut j = i + n;
        let mut closed = None;
        while j < chars.len() {
            let run = chars[j..].iter().take_while(|&&c| c == '`').count();
            if run == n {
                closed = Some(j + n);
                break;
            }
            j += run.max(1);
        }
        match closed {
            Some(end) => i = end,
            None => {
                out.extend(&chars[i..i + n]);
                i += n;
            }
        }
    }
    out
}

/// Why the outside text of a body is live markup, if it is.
fn live_markup(body: &str) -> Option<String> {
    if let Some(c) = body
        .chars()
        .find(|&c| c != '\n' && rewind_domain::text::is_hidden(c))
    {
        return Some(format!("hidden character {c:?}"));
    }
    let text = outside_text_of(body);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += 2;
            continue;
        }
        let rest: String = chars[i + 1..].iter().collect();
        if c == '&'
            && let Some(entity) = ["#8203;", "amp;", "lt;", "gt;"]
                .iter()
                .find(|e| rest.starts_with(*e))
        {
            i += 1 + entity.len();
            continue;
        }
        match c {
            '@' | '#' if chars.get(i + 1).is_some_and(|n| n.is_alphanumeric()) => {
                return Some(format!("live {c} in {:?}", &text));
            }
            '<' => return Some(format!("a tag in {text:?}")),
            '[' | '`' => return Some(format!("unescaped {c} in {text:?}")),
            '!' if rest.starts_with('[') => return Some(format!("an image in {text:?}")),
            _ => {}
        }
        i += 1;
    }
    let lower = text.to_lowercase();
    (lower.contains("://") || lower.contains("www.")).then(|| format!("an autolink in {text:?}"))
}

#[test]
fn the_issues_hostile_label_is_inert() {
    let hostile = "@acme/everyone [click](https://evil.example/x) <img src=x onerror=alert(1)>";
    let mut alert = alert();
    alert.labels.insert("team".to_owned(), hostile.to_owned());
    alert
        .annotations
        .insert("summary".to_owned(), hostile.to_owned());
    alert.name = format!("Checkout {hostile}");
    let mut rollback = rollback(alert_trigger(), vec![Risk::new(RiskCode::Crd, hostile)]);
    rollback.reason = format!("{hostile}\u{202E}txt.exe");
    let recent = deployments();
    let body = render_pull_request_body(&report(
        &rollback,
        Some(&alert),
        &recent,
        ReportStage::Opened,
    ));
    assert_eq!(live_markup(&body), None);
    assert!(
        body.contains("Reason: @&#8203;acme/everyone \\[click\\](https:&#8203;//evil.example/x) &lt;img src=x onerror=alert(1)&gt;txt.exe"),
        "{body}"
    );
    assert!(body.contains(
        "`team=@acme/everyone [click](https://evil.example/x) <img src=x onerror=alert(1)>`"
    ));
    // The checker itself sees what the old report let through.
    assert!(live_markup(&format!("{body}\nReason: {hostile}")).is_some());
}

#[test]
fn bodies_rewind_did_not_write_have_no_rollback_id() {
    assert_eq!(
        rewind_forge::rollback_id_from_body("Fixes #3\n<!-- a comment -->"),
        None
    );
    assert_eq!(
        rewind_forge::rollback_id_from_body("<!-- rewind:rollback-id=nope -->"),
        None
    );
}
