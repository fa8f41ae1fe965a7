//! Outside text made harmless where rewind writes it. Alert labels and
//! annotations, reasons, usernames, commit subjects and forge messages come
//! from people and systems rewind does not control; they end up in pull
//! request bodies and comments (Markdown that GitHub renders and notifies
//! from), commit messages and one-line fields. Every such place goes through
//! this module:
//!
//! - [`one_line`]: control characters, Unicode bidi overrides and invisible
//!   format characters removed, line breaks turned into spaces, bounded.
//! - [`markdown_text`]: [`one_line`], then escaped so GitHub renders it as
//!   the plain text it is: no link, image, HTML tag, `@mention`, `#123`
//!   reference, autolinked URL or emphasis can come out of it.
//! - [`code_span`]: [`one_line`] inside a code span whose backtick fence is
//!   longer than any backtick run in the text, so it cannot be closed early;
//!   nothing inside a code span is a link, a mention or HTML.
//! - [`reveal_hidden`]: multi-line text for a fenced block, hidden
//!   characters shown as `<U+202E>`.
//!
//! The zero-width space that breaks mentions and autolinks is written as
//! the entity `&#8203;` (as Renovate does): it renders invisibly, and a
//! reader of the raw text sees it is deliberate.

/// Breaks an `@mention`, a `#123` reference or an autolink without
/// changing what a reader sees.
pub const ZERO_WIDTH_SPACE_ENTITY: &str = "&#8203;";

/// Whether `c` is invisible or reorders text: controls (C0, C1, DEL),
/// bidi embeddings, overrides and isolates, zero-width characters, the
/// byte-order mark, interlinear annotations and tag characters. Such
/// characters make text read differently from what it says
/// ("Trojan Source"); rewind never copies them from outside text.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'                  // soft hyphen
            | '\u{061C}'                // Arabic letter mark
            | '\u{180E}'                // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}'   // bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}'   // word joiner, invisible operators, isolates
            | '\u{FEFF}'                // byte-order mark
            | '\u{FFF9}'..='\u{FFFB}'   // interlinear annotations
            | '\u{E0000}'..='\u{E007F}' // tag characters
        )
}

/// Whether `c` ends a line for a reader: it becomes a space in [`one_line`].
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\t' | '\u{000B}' | '\u{000C}' | '\u{0085}' | '\u{2028}' | '\u{2029}'
    )
}

/// `text` as one line of at most `max_chars` characters: line breaks and
/// tabs become spaces, runs of whitespace one space, hidden characters
/// ([`is_hidden`]) disappear, and a cut text ends with `…`.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut count = 0usize;
    let mut pending_space = false;
    for c in text.chars() {
        let c = if is_line_break(c) { ' ' } else { c };
        if c != ' ' && is_hidden(c) {
            continue;
        }
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        let needed = usize::from(pending_space) + 1;
        if count + needed > max_chars {
            if max_chars > 0 {
                // Room for the ellipsis: drop what does not fit.
                while count + 1 > max_chars {
                    if out.pop().is_none() {
                        break;
                    }
                    count -= 1;
                }
                out.push('…');
            }
            return out;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// `text` as inline Markdown that renders as exactly that text: one line
/// ([`one_line`] with `max_chars`), Markdown punctuation backslash-escaped,
/// `<`, `>` and `&` as entities, and a zero-width space after `@`, `#`,
/// `://` and `www` so GitHub neither notifies, nor links an issue, nor
/// autolinks a URL.
pub fn markdown_text(text: &str, max_chars: usize) -> String {
    let line = one_line(text, max_chars);
    let mut out = String::with_capacity(line.len() + 16);
    let chars: Vec<char> = line.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '@' | '#' => {
                out.push(c);
                out.push_str(ZERO_WIDTH_SPACE_ENTITY);
            }
            ':' if chars.get(i + 1) == Some(&'/') => {
                out.push(c);
                out.push_str(ZERO_WIDTH_SPACE_ENTITY);
            }
            '.' if i >= 3 && chars[i - 3..i].iter().all(|w| w.eq_ignore_ascii_case(&'w')) => {
                out.push_str(ZERO_WIDTH_SPACE_ENTITY);
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// `text` as a Markdown code span: one line ([`one_line`] with
/// `max_chars`), fenced by one backtick more than its longest backtick run
/// (padded with a space when it starts or ends with one), `|` shown as `¦`
/// so a table cell keeps its columns, and `<!--` broken so no span can
/// carry a hidden HTML comment. Empty text is a code span of one space.
pub fn code_span(text: &str, max_chars: usize) -> String {
    let line = one_line(text, max_chars)
        .replace('|', "¦")
        .replace("<!--", "<!- -");
    if line.is_empty() {
        return "` `".to_owned();
    }
    let ticks = "`".repeat(longest_run(&line, '`') + 1);
    let pad = if line.starts_with('`') || line.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{line}{pad}{ticks}")
}

/// Multi-line text (a diff shown in a fenced block) with every hidden
/// character except line ends and tabs made visible as `<U+202E>`: inside
/// a code block nothing renders, but a bidi override would still make the
/// code read differently from what it is.
pub fn reveal_hidden(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !matches!(c, '\n' | '\r' | '\t') && is_hidden(c) {
            out.push_str(&format!("<U+{:04X}>", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The longest run of `c` in `text`.
pub fn longest_run(text: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in text.chars() {
        if ch == c {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

#[cfg(test)]
mod tests;
