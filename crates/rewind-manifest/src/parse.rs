//! Reading YAML and JSON files into [`Node`]s, safely: a size cap, a cap on
//! the number of nodes a file may expand to (alias bombs), the parser's own
//! nesting limit, and every failure returned as a message, never a panic.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

use crate::node::Node;

/// Files above this size are not parsed (they are still hashed by bytes).
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Nodes one file may expand to, aliases included. A billion-laughs file
/// stops here instead of exhausting memory.
pub const MAX_NODES: usize = 1_000_000;

/// Why a file could not be read as YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseFailure {
    TooLarge(usize),
    Binary,
    Invalid(String),
}

impl fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseFailure::TooLarge(size) => write!(
                f,
                "file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit; not parsed"
            ),
            ParseFailure::Binary => {
                f.write_str("file is binary (contains NUL bytes or is not UTF-8)")
            }
            ParseFailure::Invalid(message) => write!(f, "invalid YAML: {message}"),
        }
    }
}

/// Whether a path names a YAML or JSON file by its extension.
pub fn is_yaml_path(path: &str) -> bool {
    let lower = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    lower.ends_with(".yaml")
        || lower.ends_with(".yml")
        || lower.ends_with(".json")
        || lower == "kustomization"
}

/// Parses every document of a YAML (or JSON) file. Empty documents (a
/// trailing `---`, a file of comments) are dropped: they render nothing.
pub fn parse_documents(bytes: &[u8]) -> Result<Vec<Node>, ParseFailure> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ParseFailure::TooLarge(bytes.len()));
    }
    if bytes.contains(&0) {
        return Err(ParseFailure::Binary);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ParseFailure::Binary)?;
    if flow_depth(bytes) > MAX_FLOW_DEPTH {
        return Err(ParseFailure::Invalid(format!(
            "more than {MAX_FLOW_DEPTH} nested [ or {{ levels; not parsed"
        )));
    }
    let budget = Cell::new(MAX_NODES);
    let mut docs = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let node = NodeSeed { budget: &budget }
            .deserialize(document)
            .map_err(|e| ParseFailure::Invalid(bounded(&e.to_string())))?;
        if node != Node::Null {
            docs.push(node);
        }
    }
    Ok(docs)
}

/// Deepest run of unclosed `[`/`{` refused before the parser sees it. The
/// parser refuses nesting past 128 levels itself, but only after scanning
/// the file, and its scanner keeps a candidate key per open flow level
/// and revisits all of them at every token: 100,000 levels took over a
/// minute (debug build). Counting brackets anywhere (in quoted or block
/// scalars too) can only overcount, so the bound is far above any real
/// file and keeps the parser's worst case to milliseconds.
pub const MAX_FLOW_DEPTH: usize = 1_000;

/// The deepest run of `[`/`{` not yet closed, in one pass over the bytes.
fn flow_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for &b in bytes {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn bounded(message: &str) -> String {
    crate::node::shorten(message, 300)
}

/// Builds a [`Node`] while charging every value, aliased copies included,
/// against a shared budget.
#[derive(Clone, Copy)]
struct NodeSeed<'a> {
    budget: &'a Cell<usize>,
}

impl NodeSeed<'_> {
    fn charge<E: de::Error>(&self) -> Result<(), E> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(E::custom(format!(
                "document expands to more than {MAX_NODES} values (alias bomb?)"
            ))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        self.charge()?;
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        self.charge()?;
        Ok(Node::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        self.charge()?;
        Ok(Node::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        self.charge()?;
        Ok(Node::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        self.charge()?;
        i128::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        self.charge()?;
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        self.charge()?;
        Ok(Node::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        self.charge()?;
        Ok(Node::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        self.charge()?;
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        self.charge()?;
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        self.charge()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Node, A::Error> {
        self.charge()?;
        let mut map = BTreeMap::new();
        while let Some(key) = access.next_key_seed(self)? {
            let key = key_string(key).map_err(de::Error::custom)?;
            let value = access.next_value_seed(self)?;
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key {:?}",
                    crate::node::shorten(&key, 80)
                )));
            }
            map.insert(key, value);
        }
        Ok(Node::Map(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        self.charge()?;
        let (tag, contents) = data.variant::<String>()?;
        let value = contents.newtype_variant_seed(self)?;
        Ok(Node::Tagged(tag, Box::new(value)))
    }
}

/// Map keys become strings, as in Kubernetes' YAML → JSON conversion
/// (`80: x` and `"80": x` are the same key).
fn key_string(key: Node) -> Result<String, String> {
    match key {
        Node::Str(s) => Ok(s),
        Node::Int(i) => Ok(i.to_string()),
        Node::Bool(b) => Ok(b.to_string()),
        Node::Null => Ok("null".to_string()),
        Node::Float(f) => Ok(f.to_string()),
        Node::Tagged(_, inner) => key_string(*inner),
        Node::Seq(_) | Node::Map(_) => {
            Err("complex (sequence or mapping) keys are not supported".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_files_split_and_empty_documents_drop() {
        let docs =
            parse_documents(b"---\na: 1\n---\n# only a comment\n---\nb: [x, 'y']\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].get("a"), Some(&Node::Int(1)));
        assert_eq!(docs[1].get("b").unwrap().as_seq()[1], Node::Str("y".into()));
    }

    #[test]
    fn scalars_resolve_like_yaml_1_2() {
        let docs =
            parse_documents(b"a: yes\nb: true\nc: '1'\nd: 1.5\ne: ~\nf: 0x10\ng: 007\n").unwrap();
        let d = &docs[0];
        assert_eq!(d.get("a"), Some(&Node::Str("yes".into())));
        assert_eq!(d.get("b"), Some(&Node::Bool(true)));
        assert_eq!(d.get("c"), Some(&Node::Str("1".into())));
        assert_eq!(d.get("d"), Some(&Node::Float(1.5)));
        assert_eq!(d.get("e"), Some(&Node::Null));
        assert_eq!(d.get("f"), Some(&Node::Int(16)));
        assert_eq!(d.get("g"), Some(&Node::Str("007".into())));
    }

    #[test]
    fn billion_laughs_is_refused_quickly() {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let mut prev = 'a';
        for name in ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'] {
            text.push_str(&format!(
                "{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
            prev = name;
        }
        let err = parse_documents(text.as_bytes()).unwrap_err();
        assert!(matches!(err, ParseFailure::Invalid(_)), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = "[".repeat(100_000);
        assert!(matches!(
            parse_documents(text.as_bytes()),
            Err(ParseFailure::Invalid(_))
        ));
        // Closed, so only the parser's own scan would notice: refused
        // before it (this once took over a minute).
        let text = format!("a: {}x{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(
            matches!(parse_documents(text.as_bytes()), Err(ParseFailure::Invalid(m)) if m.contains("nested [ or { levels"))
        );
        // Brackets in scalars count too, but real files stay far below.
        let text = format!("a: '{}'\nb: [1, [2, {{c: 3}}]]\n", "[".repeat(200));
        assert!(parse_documents(text.as_bytes()).is_ok());
        let text = format!("{}1{}", "- ".repeat(5_000), "");
        assert!(parse_documents(text.as_bytes()).is_err());
    }

    #[test]
    fn duplicate_keys_binary_and_huge_files_are_named_failures() {
        assert!(
            matches!(parse_documents(b"a: 1\na: 2\n"), Err(ParseFailure::Invalid(m)) if m.contains("duplicate key"))
        );
        assert_eq!(parse_documents(b"a: \x00\x01"), Err(ParseFailure::Binary));
        assert_eq!(
            parse_documents(&[0xff, 0xfe, b'a']),
            Err(ParseFailure::Binary)
        );
        let big = vec![b'#'; MAX_FILE_BYTES + 1];
        assert_eq!(
            parse_documents(&big),
            Err(ParseFailure::TooLarge(MAX_FILE_BYTES + 1))
        );
    }
}
