//! Examples of each neutralisation, and properties over hostile strings:
//! whatever goes in, what comes out renders as inert text.

use proptest::prelude::*;

use super::*;

/// Why `markdown` is not inert text, or `None` when it is: every Markdown
/// character that could start markup is backslash-escaped, no raw `<`, no
/// live mention, reference or autolink, no hidden character, one line.
fn live_markup(markdown: &str) -> Option<String> {
    let chars: Vec<char> = markdown.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += 2;
            continue;
        }
        if is_hidden(c) || c == '\n' {
            return Some(format!("hidden or line break {c:?} at {i}"));
        }
        if matches!(c, '`' | '*' | '_' | '[' | ']' | '|' | '<' | '>' | '~') {
            return Some(format!("unescaped {c:?} at {i}"));
        }
        let rest: String = chars[i..].iter().collect();
        if (c == '@' || c == '#') && !rest[1..].starts_with(ZERO_WIDTH_SPACE_ENTITY) {
            return Some(format!("live {c:?} at {i}"));
        }
        if c == '&' {
            match [ZERO_WIDTH_SPACE_ENTITY, "&amp;", "&lt;", "&gt;"]
                .iter()
                .find(|e| rest.starts_with(*e))
            {
                Some(entity) => {
                    i += entity.len();
                    continue;
                }
                None => return Some(format!("raw entity at {i}")),
            }
        }
        i += 1;
    }
    let lower = markdown.to_ascii_lowercase();
    if lower.contains("://") || lower.contains("www.") {
        return Some("autolink".into());
    }
    None
}

#[test]
fn one_line_strips_what_hides_or_breaks_a_line() {
    assert_eq!(one_line("a\nb\r\n\tc", 100), "a b c");
    assert_eq!(one_line("  pad  ", 100), "pad");
    assert_eq!(
        one_line("ev\u{202E}il\u{2066}\u{200B}\0x\u{7}", 100),
        "evilx"
    );
    assert_eq!(one_line("line\u{2028}sep", 100), "line sep");
    assert_eq!(one_line("abcdef", 4), "abc…");
    assert_eq!(one_line("abc", 3), "abc");
    assert_eq!(one_line("abc", 0), "");
}

#[test]
fn markdown_text_renders_the_issue_example_inert() {
    let team = "@acme/everyone [click](https://evil.example/x) <img src=x onerror=alert(1)>";
    let text = markdown_text(team, 500);
    assert_eq!(
        text,
        "@&#8203;acme/everyone \\[click\\](https:&#8203;//evil.example/x) &lt;img src=x onerror=alert(1)&gt;"
    );
    assert_eq!(live_markup(&text), None);
    assert_eq!(
        markdown_text("see #12, www.x.io", 100),
        "see #&#8203;12, www&#8203;.x.io"
    );
    assert_eq!(
        markdown_text("![i](u) **b** `c`", 100),
        "!\\[i\\](u) \\*\\*b\\*\\* \\`c\\`"
    );
    assert_eq!(markdown_text("&#64;team", 100), "&amp;#&#8203;64;team");
}

#[test]
fn code_spans_survive_backticks_and_tables() {
    assert_eq!(code_span("plain", 100), "`plain`");
    assert_eq!(code_span("a`b", 100), "``a`b``");
    assert_eq!(code_span("`x`", 100), "`` `x` ``");
    assert_eq!(code_span("a|b\nc", 100), "`a¦b c`");
    assert_eq!(code_span("", 100), "` `");
    assert_eq!(code_span("\u{202E}", 100), "` `");
    assert_eq!(code_span("<!-- rewind", 100), "`<!- - rewind`");
}

#[test]
fn hidden_characters_in_blocks_are_shown() {
    assert_eq!(
        reveal_hidden("a\u{202E}b\r\n\tc\u{7}"),
        "a<U+202E>b\r\n\tc<U+0007>"
    );
}

/// Strings made of the pieces attacks are made of.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("@acme/everyone".to_owned()),
        Just("@".to_owned()),
        Just("[x](https://evil.example)".to_owned()),
        Just("![i](http://e/x.png)".to_owned()),
        Just("<img src=x onerror=alert(1)>".to_owned()),
        Just("<!-- rewind:rollback-id=x -->".to_owned()),
        Just("`".to_owned()),
        Just("\\".to_owned()),
        Just("#1".to_owned()),
        Just("www.evil.example".to_owned()),
        Just("&#64;".to_owned()),
        Just("\n\r\t".to_owned()),
        Just("\u{202E}\u{2066}\u{200B}\u{FEFF}\0".to_owned()),
        Just("|".to_owned()),
        "[a-z ]{0,5}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn markdown_text_is_always_inert(text in hostile(), max in 0usize..200) {
        let out = markdown_text(&text, max);
        prop_assert_eq!(live_markup(&out), None, "{:?} -> {:?}", text, out);
    }

    #[test]
    fn one_line_is_one_bounded_visible_line(text in hostile(), max in 0usize..200) {
        let out = one_line(&text, max);
        prop_assert!(out.chars().count() <= max);
        prop_assert!(!out.chars().any(|c| is_hidden(c) || is_line_break(c)), "{:?}", out);
    }

    #[test]
    fn code_spans_cannot_be_closed_early(text in hostile(), max in 0usize..200) {
        let out = code_span(&text, max);
        let fence = out.chars().take_while(|&c| c == '`').count();
        prop_assert!(fence >= 1);
        prop_assert!(out.ends_with(&"`".repeat(fence)));
        let inner = &out[fence..out.len() - fence];
        prop_assert!(longest_run(inner, '`') < fence, "{:?}", out);
        prop_assert!(!inner.contains('|') && !inner.contains("<!--"));
        prop_assert!(!out.chars().any(|c| is_hidden(c) || c == '\n'));
    }
}
