//! The bodies: Slack-compatible incoming-webhook JSON with blocks, and the
//! JSON webhook body with its HMAC signature.
//!
//! Outside text goes into code spans with backticks removed and `&`, `<`,
//! `>` escaped as Slack asks, so `<!channel>`, `<https://x|click>`, `@here`
//! (Mattermost) and `*bold*` all show as typed and do nothing.

use hmac::{Hmac, Mac};

use crate::Notification;

/// Longest outside text shown; the rest is cut with "…".
const MAX_TEXT: usize = 500;

/// Outside text as inert code: no backticks to close the span, Slack's
/// three control characters escaped, control characters dropped.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_TEXT) + 8);
    for (i, c) in text.chars().enumerate() {
        if i == MAX_TEXT {
            out.push('…');
            break;
        }
        match c {
            '`' => out.push('\''),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    format!("`{out}`")
}

fn headline(n: &Notification) -> String {
    let cluster = if n.cluster.is_empty() {
        String::new()
    } else {
        format!(" on {}", inert(&n.cluster))
    };
    format!("rewind: rollback of {}{cluster} {}", inert(&n.app), n.event)
}

/// Slack (and Mattermost) incoming-webhook body: `text` for clients
/// without blocks, and blocks with the facts.
pub fn slack(n: &Notification) -> Vec<u8> {
    let head = headline(n);
    let mut facts = vec![format!("*reason* {}", inert(&n.reason))];
    if let Some(state) = &n.state {
        facts.push(format!("*state* {}", inert(state)));
    }
    if let Some(id) = &n.rollback {
        facts.push(format!("*rollback* {}", inert(id)));
    }
    let mut blocks = vec![
        serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": head}}),
        serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": facts.join("\n")}}),
    ];
    // Only rewind's own link becomes a link: it comes from server.public_url.
    if let Some(url) = &n.url
        && (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(['<', '>', '|'])
    {
        blocks.push(serde_json::json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!("<{url}|open in rewind>")}]
        }));
    }
    let body = serde_json::json!({"text": head, "blocks": blocks});
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The JSON webhook body: the notification as it is (receivers escape).
pub fn webhook(n: &Notification) -> Vec<u8> {
    serde_json::to_vec(n).unwrap_or_default()
}

/// `sha256=<hex HMAC-SHA256 of body>`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm is unreachable in practice.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(reason: &str) -> Notification {
        Notification {
            event: "failed".into(),
            app: "shop/checkout".into(),
            cluster: "prod-eu".into(),
            rollback: Some("0190".into()),
            state: Some("failed".into()),
            reason: reason.into(),
            url: Some("http://rewind.example/ui/rollbacks/0190".into()),
        }
    }

    #[test]
    fn outside_text_cannot_mention_link_or_format() {
        let body: serde_json::Value = serde_json::from_slice(&slack(&note(
            "boom <!channel> <https://evil.example|click> `x` @here *bold*\nline",
        )))
        .unwrap();
        let facts = body["blocks"][1]["text"]["text"].as_str().unwrap();
        assert_eq!(
            facts,
            "*reason* `boom &lt;!channel&gt; &lt;https://evil.example|click&gt; 'x' @here *bold* line`\n*state* `failed`\n*rollback* `0190`"
        );
        assert_eq!(
            body["text"],
            "rewind: rollback of `shop/checkout` on `prod-eu` failed"
        );
        assert_eq!(
            body["blocks"][2]["elements"][0]["text"],
            "<http://rewind.example/ui/rollbacks/0190|open in rewind>"
        );
    }

    #[test]
    fn long_text_is_cut() {
        let shown = inert(&"a".repeat(2000));
        assert!(shown.chars().count() < 510, "{}", shown.len());
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_exact_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let body = webhook(&note("r"));
        let parsed: Notification = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed, note("r"));
    }
}
