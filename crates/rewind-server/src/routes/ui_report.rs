//! The rollback report as HTML, for the web UI's rollback page: the same
//! model as the pull request body (`rewind_forge::ChangeTable` for the
//! changes, `rewind_forge::ReviewStatus` for the review), so a reviewer sees
//! the same table, risks, approvals, verification and timeline in both
//! places. maud escapes every piece of text; the page neutralises bidi
//! controls once for the whole page (`ui::page`).

use std::time::Duration;

use maud::{Markup, html};
use rewind_domain::{CheckResult, Rollback};
use rewind_forge::{ChangeTable, ObjectChangeKind, ReviewStatus};

/// What the report needs besides the rollback: the policy it is reviewed
/// and verified under.
#[derive(Debug, Clone, Copy)]
pub struct ReportPolicy {
    /// `policy.required_approvals`.
    pub required_approvals: u32,
    /// `policy.allow_self_approval`.
    pub allow_self_approval: bool,
    /// `policy.verify_for`.
    pub verify_for: Duration,
}

/// Changes, risks, review, verification, text diff (folded) and timeline;
/// `actions` (the review buttons) go at the end of the Review section.
pub fn rollback_report(r: &Rollback, policy: ReportPolicy, actions: Option<Markup>) -> Markup {
    let table = ChangeTable::from_semantic(&r.diff.semantic);
    let review = ReviewStatus::of(r, policy.required_approvals, policy.allow_self_approval);
    html! {
        section aria-labelledby="changes" {
            h2 id="changes" { "Changes " small { "(now → after rollback)" } }
            (change_table(&table))
            @if !table.files.is_empty() {
                p { "Files: "
                    @for (i, f) in table.files.iter().enumerate() {
                        @if i > 0 { ", " }
                        code { (f.path) } " (" (f.status) ")"
                    }
                }
            }
            @if !r.diff.text.trim().is_empty() {
                details {
                    summary { "Text diff (" (r.diff.text.lines().count()) " lines)" }
                    pre { (r.diff.text) }
                }
            }
        }
        section aria-labelledby="risks" {
            h2 id="risks" { "Risks" }
            @if r.risks.is_empty() { p { "None found." } }
            ul { @for risk in &r.risks { li { span class="risk" { (risk.code.as_str()) } " " (risk.detail) } } }
        }
        (review_section(r, &review, actions))
        section aria-labelledby="verification" {
            h2 id="verification" { "Verification" }
            p { "After the merge, rewind waits for " code { (r.to.cluster.as_str()) }
                " to sync the merge commit, then checks that " code { (r.app.as_str()) }
                " stays Healthy for " (human_duration(policy.verify_for))
                " with no firing alert. Otherwise the rollback is marked failed." }
            (verification(&r.verification))
        }
        section aria-labelledby="timeline" {
            h2 id="timeline" { "Timeline" }
            table {
                thead { tr { th scope="col" { "at" } th scope="col" { "event" } th scope="col" { "detail" } } }
                tbody {
                    @for e in &r.timeline {
                        tr { td { (e.at.format("%Y-%m-%d %H:%M:%S")) } td { code { (e.event) } } td { (e.detail) } }
                    }
                }
            }
        }
    }
}

fn change_table(table: &ChangeTable) -> Markup {
    let value = |v: &Option<String>| match v {
        Some(v) => html! { code { (v) } },
        None => html! { em { "absent" } },
    };
    html! {
        @if table.is_empty() {
            p { "No object-level changes." }
        } @else {
            table class="changes" {
                thead { tr { th scope="col" { "object" } th scope="col" { "field" } th scope="col" { "now" } th scope="col" { "after rollback" } } }
                @if !table.images.is_empty() {
                    tbody {
                        @for (i, image) in table.images.iter().enumerate() {
                            tr {
                                @if i == 0 { th scope="rowgroup" rowspan=(table.images.len()) { "images" } }
                                td { code { (image.image) } } td { (value(&image.now)) } td { (value(&image.after)) }
                            }
                        }
                    }
                }
                @for object in &table.objects {
                    tbody {
                        @if object.fields.is_empty() {
                            tr {
                                th scope="rowgroup" { (object.object) }
                                td { "whole object" @if let Some(source) = &object.source { ", from " code { (source) } } }
                                @match object.kind {
                                    ObjectChangeKind::Added => { td { em { "absent" } } td { em { "added" } } }
                                    ObjectChangeKind::Removed => { td { em { "present" } } td { em { "removed" } } }
                                    ObjectChangeKind::Modified => { td {} td {} }
                                }
                            }
                        }
                        @let rows = object.fields.len() + usize::from(object.more > 0);
                        @for (i, field) in object.fields.iter().enumerate() {
                            tr {
                                @if i == 0 { th scope="rowgroup" rowspan=(rows) { (object.object) } }
                                td { code { (field.field) } } td { (value(&field.now)) } td { (value(&field.after)) }
                            }
                        }
                        @if object.more > 0 && !object.fields.is_empty() {
                            tr { td colspan="3" { "… " (object.more) " more fields (in the text diff)" } }
                        }
                    }
                }
            }
        }
    }
}

fn review_section(r: &Rollback, review: &ReviewStatus, actions: Option<Markup>) -> Markup {
    html! {
        section aria-labelledby="review" {
            h2 id="review" { "Review" }
            p {
                (review.counted) " of " (review.required) " required approval" @if review.required != 1 { "s" } "."
                @if let Some(requester) = &review.excluded_requester {
                    " Requested by " code { (requester) } ", whose own approval does not count."
                }
                @if r.state.is_reviewable() {
                    @match review.missing() {
                        0 => { " Enough approvals: rewind merges it." }
                        n => { " " (n) " more needed before rewind merges." }
                    }
                }
            }
            @if review.approvals.is_empty() {
                p { "No approvals yet." }
            } @else {
                ul class="approvals-given" {
                    @for (a, counts) in &review.approvals {
                        li { code { (a.by) } " via " (a.via) " at " (a.at.format("%Y-%m-%d %H:%M:%S"))
                            @if !counts { " (does not count: requested it)" } }
                    }
                }
            }
            @if let Some(wave) = &r.wave {
                p { "Part of a wave across clusters: step " (wave.index + 1) " of group " code { (wave.group) }
                    @if let Some(after) = wave.after {
                        ", after rollback " a href={ "/ui/rollbacks/" (after) } { code { (after.to_string()) } }
                    }
                    "." }
            }
            @if let Some(actions) = actions { (actions) }
        }
    }
}

/// The checks' evaluations: verdict, before → after, and why.
fn verification(results: &[CheckResult]) -> Markup {
    let number = |v: Option<f64>| v.map_or("–".to_string(), |v| v.to_string());
    html! {
        @if results.is_empty() { p { "no check evaluated yet" } }
        @if !results.is_empty() {
            table {
                thead { tr { th scope="col" { "at" } th scope="col" { "check" } th scope="col" { "verdict" } th scope="col" { "before → after" } th scope="col" { "detail" } } }
                tbody {
                    @for e in results {
                        @let verdict = match e.pass { Some(true) => "pass", Some(false) => "fail", None => "unknown" };
                        tr {
                            td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                            td { (e.check) }
                            td class=(verdict) { (verdict) }
                            td { (number(e.baseline)) " → " (number(e.value)) }
                            td { (e.detail) }
                        }
                    }
                }
            }
        }
    }
}

fn human_duration(d: Duration) -> String {
    match d.as_secs() {
        0 => format!("{}ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_change_table_escapes_and_groups() {
        let table = ChangeTable::from_semantic(&serde_json::json!({
            "changed": [{"kind": "Deployment", "namespace": "shop", "name": "<b>x</b>",
                "fields": [{"path": "spec.replicas", "old": 6, "new": 4},
                           {"path": "spec.template.spec.containers[a].image", "old": "r:2", "new": "r:1"}],
                "more": 1}]
        }));
        let html = change_table(&table).into_string();
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"), "{html}");
        assert!(html.contains("rowspan=\"3\""), "{html}");
        let image = html.find("containers[a].image").expect("image row");
        assert!(image < html.find("spec.replicas").expect("replicas row"));
    }
}
