//! Check templates: `{{app}}`, `{{namespace}}`, `{{cluster}}`, `{{ref}}`.
//!
//! Values are escaped for where they land, so an app name cannot change the
//! meaning of a query or a URL: inside PromQL strings `\` and `"` are
//! escaped; in URLs everything but unreserved characters is percent-encoded.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::Target;

/// Characters left as they are in URL values (RFC 3986 unreserved).
const URL_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// For PromQL: values become safe inside a double-quoted label matcher.
pub fn promql(text: &str, target: &Target) -> String {
    render(text, target, |v| {
        v.replace('\\', "\\\\").replace('"', "\\\"")
    })
}

/// For URLs: values are percent-encoded.
pub fn url(text: &str, target: &Target) -> String {
    render(text, target, |v| {
        utf8_percent_encode(v, URL_VALUE).to_string()
    })
}

/// For bodies: values as they are.
pub fn plain(text: &str, target: &Target) -> String {
    render(text, target, str::to_string)
}

fn render(text: &str, target: &Target, escape: impl Fn(&str) -> String) -> String {
    // One pass over the text: a value that itself contains `{{app}}` is not
    // expanded again.
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let value = match after[..end].trim() {
            "app" => Some(&target.app),
            "namespace" => Some(&target.namespace),
            "cluster" => Some(&target.cluster),
            "ref" => Some(&target.reference),
            _ => None,
        };
        match value {
            Some(value) => out.push_str(&escape(value)),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        let t = Target::new("shop/checkout", "prod-eu");
        assert_eq!(
            promql(
                r#"x{app="{{app}}",ns="{{ namespace }}",c="{{cluster}}",r="{{ref}}"}"#,
                &t
            ),
            r#"x{app="checkout",ns="shop",c="prod-eu",r="shop/checkout@prod-eu"}"#
        );
    }

    #[test]
    fn unknown_placeholders_and_unclosed_braces_stay() {
        let t = Target::new("checkout", "");
        assert_eq!(plain("{{other}} {{app", &t), "{{other}} {{app");
    }

    #[test]
    fn values_cannot_break_out_of_their_place() {
        let t = Target::new(r#"evil"} or up{x="\"#, "c/../d");
        assert_eq!(
            promql(r#"up{app="{{app}}"}"#, &t),
            r#"up{app="evil\"} or up{x=\"\\"}"#
        );
        assert_eq!(
            url(
                "http://h/{{cluster}}?a={{app}}",
                &Target::new("a&b=c", "c/../d")
            ),
            "http://h/c%2F..%2Fd?a=a%26b%3Dc"
        );
    }
}
