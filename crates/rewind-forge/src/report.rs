//! The rollback report: the pull request's title and body, written so a
//! reviewer decides on one screen. Why (the alert or the person), what (app,
//! cluster, commits, revisions, images, config hash), the semantic diff, the
//! text diff collapsed, risks, the app's last deployments, how the rollback
//! will be verified, and the commands.
//!
//! Rendering is pure: the same report renders the same text, so the body is
//! snapshot-tested and re-rendered on every state change without churn.
//! Text from outside (alert names, labels and annotations, reasons,
//! usernames, timeline details, risk details) goes through
//! `rewind_domain::text`: escaped inline text or code spans, so it cannot
//! inject a link, an image, HTML, an `@mention`, a forged rewind marker or
//! hidden bidi characters.

use std::fmt::Write as _;
use std::time::Duration;

use rewind_domain::{Alert, Deployment, Rollback, RollbackId, RollbackState, Trigger};

/// The hidden marker that identifies rewind's pull requests.
pub const MARKER_PREFIX: &str = "<!-- rewind:rollback-id=";

/// GitHub rejects bodies over 65,536 characters; the text diff is cut to
/// keep the body well below.
const TEXT_DIFF_MAX_CHARS: usize = 40_000;
const SEMANTIC_DIFF_MAX_LINES: usize = 40;
const RECENT_DEPLOYMENTS_MAX: usize = 5;
const TIMELINE_MAX: usize = 15;
const TITLE_MAX_CHARS: usize = 200;

/// Which moment the body is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStage {
    /// The body the pull request is opened with.
    Opened,
    /// A later edit, after the rollback moved on (approved, merged, synced,
    /// verified, failed...): it starts with the current state.
    Update,
}

/// Everything the report shows, borrowed from the engine.
#[derive(Debug, Clone, Copy)]
pub struct RollbackReport<'a> {
    pub rollback: &'a Rollback,
    /// The alert that triggered the rollback, when one did.
    pub alert: Option<&'a Alert>,
    /// The app's recent deployments, newest first.
    pub recent_deployments: &'a [Deployment],
    /// `server.public_url`, for links back to rewind.
    pub public_url: &'a str,
    /// `policy.verify_for`.
    pub verify_for: Duration,
    pub stage: ReportStage,
}

/// `Roll back shop/checkout@prod to revision 11 (abcdef0)`, with the alert
/// name when an alert triggered it: the same name runs on several clusters.
pub fn render_title(rollback: &Rollback) -> String {
    let mut title = format!(
        "Roll back {} to revision {}{}",
        rollback.app_ref(),
        rollback.to.cluster_revision,
        rollback
            .to
            .commit
            .as_ref()
            .map(|c| format!(" ({})", c.short()))
            .unwrap_or_default()
    );
    // A title is plain text on GitHub (no links, images or mentions), so
    // one visible line is enough; backslash escapes would show.
    if let Trigger::Alert { alert_name, .. } = &rollback.trigger {
        let _ = write!(
            title,
            ": {}",
            rewind_domain::text::one_line(alert_name, 120)
        );
    }
    if title.chars().count() > TITLE_MAX_CHARS {
        title = title.chars().take(TITLE_MAX_CHARS - 1).collect();
        title.push('…');
    }
    title
}

/// The rollback a pull request body belongs to, read from its marker; `None`
/// for bodies rewind did not write.
pub fn rollback_id_from_body(body: &str) -> Option<RollbackId> {
    body.lines().find_map(|line| {
        line.trim()
            .strip_prefix(MARKER_PREFIX)?
            .strip_suffix("-->")?
            .trim()
            .parse()
            .ok()
    })
}

/// The pull request body (Markdown).
pub fn render_pull_request_body(report: &RollbackReport<'_>) -> String {
    let rollback = report.rollback;
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER_PREFIX}{} -->", rollback.id);
    let _ = writeln!(
        out,
        "### ⏪ Roll back {} on {} to revision {}\n",
        code(rollback.app.as_str()),
        code(rollback.to.cluster.as_str()),
        rollback.to.cluster_revision
    );
    if report.stage == ReportStage::Update {
        write_status(&mut out, report);
    }
    write_why(&mut out, report);
    write_what(&mut out, rollback);
    write_changes(&mut out, report);
    write_risks(&mut out, rollback);
    write_recent_deployments(&mut out, report);
    write_verification(&mut out, report);
    write_commands(&mut out, report);
    write_timeline(&mut out, rollback);
    out
}

fn write_status(out: &mut String, report: &RollbackReport<'_>) {
    let rollback = report.rollback;
    let cluster = code(rollback.to.cluster.as_str());
    let line = match rollback.state {
        RollbackState::Proposed | RollbackState::PrOpen => {
            "**Open**: waiting for review.".to_owned()
        }
        RollbackState::Approved => "**Approved**: waiting to be merged.".to_owned(),
        RollbackState::Merged => format!("**Merged**: waiting for {cluster} to sync it."),
        RollbackState::Synced => format!(
            "**Synced**: checking that the app stays Healthy for {}.",
            human_duration(report.verify_for)
        ),
        RollbackState::Verified => {
            "**Verified**: the app is back on a healthy revision.".to_owned()
        }
        RollbackState::Failed => "**Failed**.".to_owned(),
        RollbackState::Cancelled => "**Cancelled**.".to_owned(),
        RollbackState::Superseded => "**Superseded** by a newer rollback.".to_owned(),
        RollbackState::Held => {
            "**Held**: waits for the rollback before it in the wave to be verified.".to_owned()
        }
    };
    let _ = write!(out, "> {line}");
    if let Some(last) = rollback.timeline.last() {
        let _ = write!(
            out,
            " Last: {} at {}: {}",
            inline(last.event.as_str()),
            time(&last.at),
            inline(&last.detail)
        );
    }
    out.push_str("\n\n");
}

fn write_why(out: &mut String, report: &RollbackReport<'_>) {
    let rollback = report.rollback;
    out.push_str("**Why.** ");
    match (&rollback.trigger, report.alert) {
        (_, Some(alert)) => {
            let _ = write!(out, "Alert **{}**", inline(&alert.name));
            if let Some(severity) = &alert.severity {
                let _ = write!(out, " ({})", code(severity));
            }
            let _ = write!(
                out,
                " {} since {}",
                match alert.status {
                    rewind_domain::AlertStatus::Firing => "firing",
                    rewind_domain::AlertStatus::Resolved => "resolved; it fired",
                },
                time(&alert.starts_at)
            );
            if let Some(summary) = alert.summary() {
                let _ = write!(out, ": {}", inline(summary));
            }
            out.push('\n');
            if !alert.labels.is_empty() {
                let labels: Vec<String> = alert
                    .labels
                    .iter()
                    .map(|(k, v)| code(&format!("{k}={v}")))
                    .collect();
                let _ = write!(out, "Labels: {}", labels.join(" "));
            }
            if let Some(url) = alert.generator_url.as_deref().and_then(http_url) {
                let _ = write!(out, " · [alert source]({})", link_target(&url));
            }
            out.push('\n');
        }
        (
            Trigger::Alert {
                alert_name,
                severity,
                ..
            },
            None,
        ) => {
            let _ = write!(out, "Alert **{}**", inline(alert_name));
            if let Some(severity) = severity {
                let _ = write!(out, " ({})", code(severity));
            }
            out.push('\n');
        }
        (Trigger::Manual { caller }, None) => {
            let _ = writeln!(out, "Requested by {}.", code(caller));
        }
        (Trigger::Drift { detail }, _) => {
            let _ = writeln!(
                out,
                "**Git catches up with the cluster.** {}. Until Git says the same, the next sync or image update brings the bad version back.",
                inline(detail)
            );
        }
    }
    if !rollback.reason.trim().is_empty() {
        let _ = writeln!(out, "Reason: {}", inline(&rollback.reason));
    }
    out.push('\n');
}

fn write_what(out: &mut String, rollback: &Rollback) {
    let (from, to) = (&rollback.from, &rollback.to);
    out.push_str("**What.**\n\n| | now (from) | rollback target (to) |\n| --- | --- | --- |\n");
    let _ = writeln!(
        out,
        "| cluster revision | {} | {} |",
        from.cluster_revision, to.cluster_revision
    );
    let commit = |d: &Deployment| {
        d.commit
            .as_ref()
            .map(|c| code(c.short()))
            .unwrap_or_else(|| inline(&d.revision))
    };
    let _ = writeln!(out, "| commit | {} | {} |", commit(from), commit(to));
    let hash = |d: &Deployment| {
        d.config_hash
            .as_ref()
            .map(|h| code(&h.as_str()[..h.as_str().len().min(19)]))
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let _ = writeln!(out, "| config hash | {} | {} |", hash(from), hash(to));
    let images = |d: &Deployment| {
        if d.images.is_empty() {
            "none found".to_owned()
        } else {
            d.images
                .iter()
                .map(|i| code(i))
                .collect::<Vec<_>>()
                .join("<br>")
        }
    };
    let _ = writeln!(out, "| images | {} | {} |", images(from), images(to));
    let health = |d: &Deployment| {
        if d.known_good_by_history {
            format!("{}, known good by history", d.health)
        } else if d.known_good {
            format!("{}, known good", d.health)
        } else {
            d.health.to_string()
        }
    };
    let _ = writeln!(out, "| health | {} | {} |", health(from), health(to));
    let _ = writeln!(
        out,
        "| deployed | {} | {} |\n",
        time(&from.deployed_at),
        time(&to.deployed_at)
    );
    if to.known_good_by_history {
        let _ = writeln!(
            out,
            "**The target is known good by history only** (`policy.trust_history`): rewind never saw cluster revision {} healthy. The cluster's history shows it ran until {} before the next deployment, with no alert recorded. Check that this is what you want before merging.\n",
            to.cluster_revision,
            time(&to.deployed_at)
        );
    }
    let _ = write!(out, "Strategy {}", code(rollback.strategy.as_str()));
    if let Some(commit) = &rollback.commit {
        let _ = write!(out, ", rollback commit {}", code(commit.short()));
    }
    if let Some(branch) = &rollback.branch {
        let _ = write!(out, " on {}", code(branch));
    }
    out.push_str(".\n\n");
}

fn write_changes(out: &mut String, report: &RollbackReport<'_>) {
    let diff = &report.rollback.diff;
    out.push_str("**Changes.**\n\n");
    let mut lines = Vec::new();
    semantic_lines(&diff.semantic, 0, &mut lines);
    if lines.is_empty() {
        out.push_str("No object-level changes.\n");
    } else {
        let total = lines.len();
        for line in lines.iter().take(SEMANTIC_DIFF_MAX_LINES) {
            out.push_str(line);
            out.push('\n');
        }
        if total > SEMANTIC_DIFF_MAX_LINES {
            let _ = writeln!(out, "- … {} more", total - SEMANTIC_DIFF_MAX_LINES);
        }
    }
    out.push('\n');
    if diff.text.trim().is_empty() {
        return;
    }
    let revealed = rewind_domain::text::reveal_hidden(&diff.text);
    let (text, cut) = cut_at_line(&revealed, TEXT_DIFF_MAX_CHARS);
    let fence = "`".repeat(rewind_domain::text::longest_run(text, '`').max(2) + 1);
    let _ = writeln!(
        out,
        "<details><summary>Text diff ({} lines)</summary>\n\n{fence}diff\n{}\n{fence}\n",
        diff.text.lines().count(),
        text.trim_end_matches('\n')
    );
    if cut {
        let _ = writeln!(
            out,
            "Cut here: the full diff is on the [rollback]({}).\n",
            rollback_link(report)
        );
    }
    out.push_str("</details>\n\n");
}

fn write_risks(out: &mut String, rollback: &Rollback) {
    if rollback.risks.is_empty() {
        out.push_str("**Risks.** None found.\n\n");
        return;
    }
    out.push_str("**Risks.**\n\n");
    for risk in &rollback.risks {
        let _ = writeln!(
            out,
            "- ⚠️ {}: {}",
            code(risk.code.as_str()),
            inline(&risk.detail)
        );
    }
    out.push('\n');
}

fn write_recent_deployments(out: &mut String, report: &RollbackReport<'_>) {
    if report.recent_deployments.is_empty() {
        return;
    }
    let rollback = report.rollback;
    let _ = writeln!(
        out,
        "**Last deployments of {}.**\n\n| revision | commit | deployed | health | |\n| --- | --- | --- | --- | --- |",
        code(rollback.app.as_str())
    );
    for d in report
        .recent_deployments
        .iter()
        .take(RECENT_DEPLOYMENTS_MAX)
    {
        let mut notes = Vec::new();
        if d.id == rollback.from.id {
            notes.push("current");
        }
        if d.id == rollback.to.id {
            notes.push("target");
        }
        if d.known_good {
            notes.push("known good");
        }
        if d.alerted {
            notes.push("alerted");
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            d.cluster_revision,
            d.commit
                .as_ref()
                .map(|c| code(c.short()))
                .unwrap_or_else(|| inline(&d.revision)),
            time(&d.deployed_at),
            d.health,
            notes.join(", ")
        );
    }
    out.push('\n');
}

fn write_verification(out: &mut String, report: &RollbackReport<'_>) {
    let rollback = report.rollback;
    let _ = writeln!(
        out,
        "**Verification.** After the merge, rewind waits for {} to sync the merge commit, then checks that {} stays Healthy for {} with no firing alert. Otherwise the rollback is marked failed.\n",
        code(rollback.to.cluster.as_str()),
        code(rollback.app.as_str()),
        human_duration(report.verify_for)
    );
    write_check_results(out, rollback);
}

/// The one verification comment rewind keeps up to date on a rollback's
/// pull request: the state, then the latest evaluation of each check with
/// before → after. Edited in place on every evaluation and state change.
pub fn render_verification_comment(rollback: &Rollback) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!-- rewind-verification {} -->\n**rewind verification** of {}: {}, {} evaluation(s).\n",
        rollback.id,
        code(rollback.app.as_str()),
        code(rollback.state.as_str()),
        rollback.verification.len()
    );
    if rollback.verification.is_empty() {
        out.push_str("No check has been evaluated yet.\n");
    }
    write_check_results(&mut out, rollback);
    if let Some(last) = rollback.timeline.last() {
        let _ = writeln!(out, "Last: {}", inline(&last.detail));
    }
    out
}

/// The latest evaluation of each verification check, kept up to date as
/// the checks run: verdict, before → after, and why.
fn write_check_results(out: &mut String, rollback: &Rollback) {
    let mut latest: Vec<&rewind_domain::CheckResult> = Vec::new();
    for result in &rollback.verification {
        match latest.iter_mut().find(|r| r.check == result.check) {
            Some(slot) => *slot = result,
            None => latest.push(result),
        }
    }
    if latest.is_empty() {
        return;
    }
    let number = |v: Option<f64>| v.map_or("–".to_string(), |v| v.to_string());
    out.push_str("| check | verdict | before → after | detail |\n| --- | --- | --- | --- |\n");
    for r in latest {
        let verdict = match r.pass {
            Some(true) => "✅ pass",
            Some(false) => "❌ fail",
            None => "❔ unknown",
        };
        let _ = writeln!(
            out,
            "| {} | {verdict} | {} → {} | {} |",
            code(&r.check),
            number(r.baseline),
            number(r.value),
            inline(&r.detail)
        );
    }
    out.push('\n');
}

fn write_commands(out: &mut String, report: &RollbackReport<'_>) {
    if !report.rollback.state.is_reviewable() {
        return;
    }
    let _ = writeln!(
        out,
        "**Commands.** Approving reviews count towards the required approvals. Users with write access can comment `/rewind merge` to merge, or `/rewind cancel` to close it. [Rollback in rewind]({}).\n",
        rollback_link(report)
    );
}

fn write_timeline(out: &mut String, rollback: &Rollback) {
    if rollback.timeline.is_empty() {
        return;
    }
    out.push_str("<details><summary>Timeline</summary>\n\n");
    let skip = rollback.timeline.len().saturating_sub(TIMELINE_MAX);
    if skip > 0 {
        let _ = writeln!(out, "- … {skip} earlier");
    }
    for entry in rollback.timeline.iter().skip(skip) {
        let _ = writeln!(
            out,
            "- {} {}: {}",
            time(&entry.at),
            code(entry.event.as_str()),
            inline(&entry.detail)
        );
    }
    out.push_str("\n</details>\n");
}

/// Renders the semantic diff whatever its exact JSON shape: objects become
/// `key: value` bullets, lists become bullets, nesting becomes indentation.
fn semantic_lines(value: &serde_json::Value, depth: usize, lines: &mut Vec<String>) {
    use serde_json::Value;
    let indent = "  ".repeat(depth);
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(_) | Value::Array(_) => {
                        let before = lines.len();
                        semantic_lines(item, depth, lines);
                        // The first line of a nested item starts its bullet.
                        if let Some(first) = lines.get_mut(before) {
                            *first = format!(
                                "{indent}- {}",
                                first.trim_start().trim_start_matches("- ")
                            );
                        }
                    }
                    scalar => lines.push(format!("{indent}- {}", scalar_text(scalar))),
                }
            }
        }
        Value::Object(map) => {
            // Scalars of an object share one line; nested values follow.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by_key(|(key, _)| key_rank(key));
            let scalars: Vec<String> = entries
                .iter()
                .filter(|(_, v)| !v.is_object() && !v.is_array())
                .map(|(k, v)| format!("{}: {}", inline(k), scalar_text(v)))
                .collect();
            if !scalars.is_empty() {
                lines.push(format!("{indent}- {}", scalars.join(", ")));
            }
            for (key, nested) in entries
                .iter()
                .filter(|(_, v)| v.is_object() || v.is_array())
            {
                if nested.as_array().is_some_and(Vec::is_empty)
                    || nested.as_object().is_some_and(serde_json::Map::is_empty)
                {
                    continue;
                }
                let child = if scalars.is_empty() { depth } else { depth + 1 };
                lines.push(format!("{}- {}:", "  ".repeat(child), inline(key)));
                semantic_lines(nested, child + 1, lines);
            }
        }
        scalar => lines.push(format!("{indent}- {}", scalar_text(scalar))),
    }
}

/// Where a key goes on its line: what an object is first, then what
/// changed, then the rest in name order.
fn key_rank(key: &str) -> (usize, String) {
    const FIRST: [&str; 12] = [
        "kind",
        "namespace",
        "name",
        "change",
        "op",
        "action",
        "type",
        "path",
        "field",
        "from",
        "to",
        "file",
    ];
    let rank = FIRST.iter().position(|k| *k == key).unwrap_or(FIRST.len());
    (rank, key.to_owned())
}

fn scalar_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => code(s),
        other => code(&other.to_string()),
    }
}

fn rollback_link(report: &RollbackReport<'_>) -> String {
    link_target(&format!(
        "{}/api/v1/rollbacks/{}",
        report.public_url.trim_end_matches('/'),
        report.rollback.id
    ))
}

fn time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{}ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Outside text on one line, rendered as exactly that text: no link,
/// image, tag, mention, issue reference or autolink can come out of it
/// (`rewind_domain::text::markdown_text`).
fn inline(text: &str) -> String {
    rewind_domain::text::markdown_text(text, 500)
}

/// A code span that survives backticks in the text, keeps table columns
/// and cannot carry a rewind marker (`rewind_domain::text::code_span`).
fn code(text: &str) -> String {
    rewind_domain::text::code_span(text, 200)
}

/// The URL as its parser writes it back (percent-encoded, no whitespace or
/// line breaks), when it is http or https.
fn http_url(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.as_str().to_owned())
}

/// A URL safe inside `(...)` of a Markdown link.
fn link_target(url: &str) -> String {
    url.replace(' ', "%20")
        .replace('(', "%28")
        .replace(')', "%29")
        .replace('<', "%3C")
        .replace('>', "%3E")
}

/// At most `max` bytes of `text`, cut at a line end; whether it was cut.
fn cut_at_line(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').map(|i| i + 1).unwrap_or(end);
    (&text[..end], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_text_cannot_forge_a_marker_or_break_a_table() {
        let text = inline("<!-- rewind:rollback-id=x --> | a\nb");
        assert!(!text.contains("<!--"));
        assert!(!text.contains('\n'));
        assert!(text.contains("\\|"));
    }

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("plain"), "`plain`");
    }

    #[test]
    fn long_text_is_cut_at_a_line() {
        let text = "aaa\nbbb\nccc\n";
        assert_eq!(cut_at_line(text, 6), ("aaa\n", true));
        assert_eq!(cut_at_line(text, 100), (text, false));
    }
}
