//! What every page shares: the frame (header, sign-out, style), the
//! response with its CSRF cookie, links and the neutralising of outside
//! text (bidi controls shown, not obeyed).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use rewind_domain::{AppRef, Rollback};

use crate::error::ApiError;
use crate::session::UiUser;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24}\
header{background:#1b1f24;color:#fff;padding:10px 24px}header a{color:#fff;text-decoration:none;font-weight:600}\
main{padding:16px 24px;max-width:1200px}table{border-collapse:collapse;width:100%;margin:8px 0 20px}\
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}\
th{background:#f4f6f8}code,pre{font:12px/1.4 ui-monospace,monospace}pre{background:#f6f8fa;padding:8px;overflow:auto}\
.Healthy,.verified,.pass{color:#1a7f37}.Degraded,.failed,.fail{color:#cf222e}\
.Progressing,.proposed,.pr_open,.approved,.merged,.synced,.held{color:#9a6700}\
.risk{background:#fff8c5;padding:2px 6px;border-radius:4px}form{display:inline}button{margin-right:6px}\
form.filters{display:block;margin:8px 0 12px}form.filters label{margin-right:10px}\
nav.pages{margin:8px 0 16px}nav.pages a{margin-right:12px}\
svg.timeline{width:100%;height:auto;max-width:1000px;border:1px solid #e3e6ea;background:#fff}\
ol.timeline-text{columns:2;font-size:13px}.notice{background:#ddf4ff;padding:8px;border-radius:4px}";

/// Bidi controls (embeddings, overrides, isolates, marks) that can make
/// text read differently from what it is.
const BIDI_CONTROLS: &[char] = &[
    '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

/// Replaces every bidi control with its visible name (`[U+202E]`).
pub fn neutralise_bidi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if BIDI_CONTROLS.contains(&c) {
            out.push_str(&format!("[U+{:04X}]", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// A whole page. Everything shown passes through here, so bidi controls
/// are neutralised once, for every piece of outside text.
pub(super) fn page(title: &str, user: &UiUser, body: Markup) -> Markup {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · rewind" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a href="/" { "rewind" } " — GitOps rollbacks as reviewed commits"
                    @if let Some(caller) = &user.caller {
                        @if user.session.is_some() {
                            span style="float:right" {
                                (caller.name) " (" (caller.role.as_str()) ") "
                                form method="post" action="/ui/logout" {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    button { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    PreEscaped(neutralise_bidi(&markup.into_string()))
}

/// `markup` as a response, with the CSRF cookie when one was minted.
pub(super) fn respond(user: &UiUser, status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    if let Some(cookie) = &user.set_cookie
        && let Ok(value) = HeaderValue::from_str(cookie)
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// An error as a page of the UI (a person reads it, not a program): the
/// status of the API's answer, its detail, and the conflicting rollback
/// when there is one.
pub(super) fn error_page(user: &UiUser, title: &str, error: ApiError) -> Response {
    let existing = error
        .rollback
        .as_ref()
        .and_then(|r| r.get("id"))
        .and_then(|id| id.as_str())
        .map(str::to_owned);
    let markup = page(
        title,
        user,
        html! {
            p class="failed" role="alert" { (error.detail) }
            @if let Some(id) = existing { p { a href={ "/ui/rollbacks/" (id) } { "the open rollback" } } }
            p { a href="/" { "back to the apps" } }
        },
    );
    respond(user, error.status, markup)
}

/// A hidden CSRF field, for every form.
pub(super) fn csrf_field(user: &UiUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf); }
}

pub(super) fn short(sha: Option<&rewind_domain::CommitId>) -> String {
    sha.map_or("-".into(), |c| c.short().to_string())
}

/// The first characters of a config hash after `sha256:`.
pub(super) fn short_hash(hash: Option<&rewind_domain::ConfigHash>) -> String {
    hash.map_or("-".to_string(), |h| {
        let text = h.as_str();
        text.get(7..19).unwrap_or(text).to_string()
    })
}

/// Percent-encodes one path or query part; `@` stays readable elsewhere.
pub(super) fn encode_part(part: &str) -> String {
    const PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');
    percent_encoding::utf8_percent_encode(part, PART).to_string()
}

pub(super) fn app_link(app: &AppRef) -> String {
    // `/` in `namespace/name` must be encoded.
    format!(
        "/ui/apps/{}@{}",
        encode_part(app.name.as_str()),
        encode_part(app.cluster.as_str())
    )
}

pub(super) fn time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The rollback with its outside text (reason, risk and timeline details,
/// approvers, the diff) shown as what it is: bidi overrides and invisible
/// characters made visible as `<U+202E>`, so the page cannot read
/// differently from what it says. maud escapes the HTML.
pub(super) fn shown(mut r: Rollback) -> Rollback {
    use rewind_domain::text::reveal_hidden;
    r.reason = reveal_hidden(&r.reason);
    r.diff.text = reveal_hidden(&r.diff.text);
    for risk in &mut r.risks {
        risk.detail = reveal_hidden(&risk.detail);
    }
    for entry in &mut r.timeline {
        // Events are typed (rewind's own words); only details carry outside text.
        if let rewind_domain::TimelineEvent::Other(name) = &entry.event {
            entry.event = rewind_domain::TimelineEvent::Other(reveal_hidden(name));
        }
        entry.detail = reveal_hidden(&entry.detail);
    }
    for approval in &mut r.approvals {
        approval.by = reveal_hidden(&approval.by);
    }
    r
}

/// A table of rollbacks (the overview's and an app's).
pub(super) fn rollback_rows(rollbacks: &[Rollback]) -> Markup {
    html! {
        table {
            tr { th { "rollback" } th { "app" } th { "state" } th { "from → to" } th { "risks" } th { "created" } }
            @for r in rollbacks {
                tr {
                    td { a href={ "/ui/rollbacks/" (r.id) } { code { (r.id.to_string()[..8]) } } }
                    td { a href=(app_link(&r.app_ref())) { (r.app_ref()) } }
                    td class=(r.state.as_str()) { (r.state.as_str()) }
                    td { (r.from.cluster_revision) " → " (r.to.cluster_revision) }
                    td { @for risk in &r.risks { span class="risk" { (risk.code.as_str()) } " " } }
                    td { (time(&r.created_at)) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_are_shown_not_obeyed() {
        assert_eq!(
            neutralise_bidi("invoice\u{202E}fdp.exe\u{202C} ok \u{2067}x\u{2069}"),
            "invoice[U+202E]fdp.exe[U+202C] ok [U+2067]x[U+2069]"
        );
        assert_eq!(
            neutralise_bidi("plain: ünïcode, 日本"),
            "plain: ünïcode, 日本"
        );
    }
}
