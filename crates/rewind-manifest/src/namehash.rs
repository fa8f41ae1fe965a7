//! kustomize's content-hash name suffix for generated ConfigMaps and
//! Secrets (`configMapGenerator`/`secretGenerator` without
//! `disableNameSuffixHash`), reproduced byte for byte so rendered names
//! match what `kubectl kustomize` writes and a data change shows up as the
//! rename the cluster sees.
//!
//! The algorithm (kubernetes-sigs/kustomize `api/hasher/hasher.go`): the
//! JSON encoding of `{"kind", "name", "data"[, "binaryData"]}` for a
//! ConfigMap or `{"kind", "name", "type", "data"[, "stringData"]}` for a
//! Secret, keys sorted, as Go's `encoding/json` writes it; SHA-256; the
//! first ten hex digits with `0 1 3 a e` replaced by `g h k m t` (so no
//! word or number is spelled). Two quirks of kustomize v5 are kept:
//! `name` is always `""` (its lookup path `metadata/name` is read as one
//! key and finds nothing), and a missing `data` map encodes as `""`.
//! `tests/kustomize_referee.rs` checks it against real kustomize.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::node::Node;

/// The ten-character suffix kustomize appends (after a `-`) to a
/// generated object with this kind and body.
pub fn suffix(kind: &str, body: &Node) -> String {
    let mut fields: BTreeMap<&str, Encoded> = BTreeMap::new();
    fields.insert("kind", Encoded::Str(kind.to_string()));
    fields.insert("name", Encoded::Str(String::new()));
    fields.insert("data", map_or_empty(body.get("data")));
    let optional = if kind == "Secret" {
        fields.insert(
            "type",
            Encoded::Str(body.get("type").map(scalar).unwrap_or_default()),
        );
        "stringData"
    } else {
        "binaryData"
    };
    if let Some(Node::Map(map)) = body.get(optional) {
        fields.insert(optional, Encoded::Map(string_map(map)));
    }
    let mut json = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        go_string(key, &mut json);
        json.push(':');
        match value {
            Encoded::Str(s) => go_string(s, &mut json),
            Encoded::Map(map) => {
                json.push('{');
                for (j, (k, v)) in map.iter().enumerate() {
                    if j > 0 {
                        json.push(',');
                    }
                    go_string(k, &mut json);
                    json.push(':');
                    go_string(v, &mut json);
                }
                json.push('}');
            }
        }
    }
    json.push('}');
    encode(&Sha256::digest(json.as_bytes()))
}

enum Encoded {
    Str(String),
    Map(BTreeMap<String, String>),
}

fn map_or_empty(node: Option<&Node>) -> Encoded {
    match node {
        Some(Node::Map(map)) => Encoded::Map(string_map(map)),
        Some(other) => Encoded::Str(scalar(other)),
        None => Encoded::Str(String::new()),
    }
}

fn string_map(map: &BTreeMap<String, Node>) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), scalar(v))).collect()
}

/// Generated data values are strings; anything else is shown as kustomize
/// would read the YAML scalar back.
fn scalar(node: &Node) -> String {
    match node {
        Node::Str(s) => s.clone(),
        Node::Null => String::new(),
        other => other.short(usize::MAX),
    }
}

/// The first ten hex digits of the digest, with kustomize's substitutions.
fn encode(digest: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect()
}

/// A JSON string as Go's `encoding/json` writes it: HTML-safe (`<`, `>`,
/// `&` escaped), U+2028/U+2029 escaped, `\b \f \n \r \t` short, other
/// control characters as `\u00XX` with lowercase hex.
fn go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Standard base64 with padding, as Kubernetes stores Secret data and
/// ConfigMap `binaryData`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_documents;

    fn yaml(text: &str) -> Node {
        parse_documents(text.as_bytes()).unwrap().remove(0)
    }

    /// Suffixes written by `kubectl kustomize` (kustomize v5.8.1).
    #[test]
    fn suffixes_match_kustomize() {
        assert_eq!(
            suffix("ConfigMap", &yaml("kind: ConfigMap\n")),
            "6ct58987ht"
        );
        assert_eq!(suffix("ConfigMap", &yaml("data: {A: q}\n")), "6964mk5h4b");
        assert_eq!(
            suffix(
                "ConfigMap",
                &yaml("data: {A: q, B: d, C: ' spaced', D: '<x&y>'}\n")
            ),
            "29t66c796d"
        );
        assert_eq!(
            suffix("Secret", &yaml("type: Opaque\ndata: {pw: aHVudGVyMg==}\n")),
            "9b766bfc5b"
        );
        assert_eq!(
            suffix(
                "Secret",
                &yaml("type: kubernetes.io/basic-auth\ndata: {pw: aHVudGVyMg==}\n")
            ),
            "7d89mck4g8"
        );
        let files = yaml(
            "binaryData: {bin.dat: //4AYmlu}\ndata:\n  k: \"line1\\n\\tline2 <&> \\x01 \\L é\\n\"\n  t.txt: \"line1\\n\\tline2 <&> \\x01 \\L é\\n\"\n",
        );
        assert_eq!(suffix("ConfigMap", &files), "tk2mdc8tkb");
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"h"), "aA==");
        assert_eq!(base64(b"hu"), "aHU=");
        assert_eq!(base64(b"hunter2"), "aHVudGVyMg==");
        assert_eq!(base64(&[0xff, 0xfe, 0, b'b', b'i', b'n']), "//4AYmlu");
    }
}
