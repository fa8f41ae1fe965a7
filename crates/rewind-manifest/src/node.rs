//! The parsed form of one YAML or JSON document: a small tree of
//! [`Node`]s with string map keys, as Kubernetes sees it after its own
//! YAML → JSON conversion. Also the canonical byte encoding the config hash
//! is computed over, and the conversion to JSON for reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One YAML value. Maps are sorted by key, which makes the canonical form
/// independent of the order keys were written in.
#[derive(Debug, Clone)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(BTreeMap<String, Node>),
    /// A value with an explicit local tag (`!Ref x`). Core tags such as
    /// `!!str` are resolved by the parser and never appear here.
    Tagged(String, Box<Node>),
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Node::Null, Node::Null) => true,
            (Node::Bool(a), Node::Bool(b)) => a == b,
            (Node::Int(a), Node::Int(b)) => a == b,
            // Bitwise, so that `.nan` equals itself: a document must equal
            // its own copy or every diff would report it.
            (Node::Float(a), Node::Float(b)) => a.to_bits() == b.to_bits(),
            (Node::Str(a), Node::Str(b)) => a == b,
            (Node::Seq(a), Node::Seq(b)) => a == b,
            (Node::Map(a), Node::Map(b)) => a == b,
            (Node::Tagged(ta, a), Node::Tagged(tb, b)) => ta == tb && a == b,
            _ => false,
        }
    }
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(map) => map.get(key),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Map(map) => map.get_mut(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i128> {
        match self {
            Node::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> &[Node] {
        match self {
            Node::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Node>> {
        match self {
            Node::Map(map) => Some(map),
            _ => None,
        }
    }

    /// Follows a path of map keys.
    pub fn at(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    pub fn str_at(&self, keys: &[&str]) -> Option<&str> {
        self.at(keys).and_then(Node::as_str)
    }

    /// The map at `keys`, created (replacing any non-map) when missing.
    pub fn map_at_mut(&mut self, keys: &[&str]) -> &mut BTreeMap<String, Node> {
        let mut node = self;
        for key in keys {
            if !matches!(node, Node::Map(_)) {
                *node = Node::Map(BTreeMap::new());
            }
            let Node::Map(map) = node else {
                unreachable!("just made a map")
            };
            node = map
                .entry((*key).to_string())
                .or_insert_with(|| Node::Map(BTreeMap::new()));
        }
        if !matches!(node, Node::Map(_)) {
            *node = Node::Map(BTreeMap::new());
        }
        match node {
            Node::Map(map) => map,
            _ => unreachable!("just made a map"),
        }
    }

    /// The canonical encoding (see `docs/config-hash.md`): a self-delimiting
    /// byte string, equal for two nodes exactly when they are equal.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Node::Null => out.push(b'N'),
            Node::Bool(true) => out.push(b'T'),
            Node::Bool(false) => out.push(b'F'),
            Node::Int(i) => {
                out.push(b'I');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b';');
            }
            Node::Float(f) => {
                out.push(b'D');
                out.extend_from_slice(format!("{:016x}", f.to_bits()).as_bytes());
            }
            Node::Str(s) => encode_bytes(s.as_bytes(), out),
            Node::Seq(items) => {
                out.push(b'L');
                for item in items {
                    item.encode(out);
                }
                out.push(b'E');
            }
            Node::Map(map) => {
                // BTreeMap<String> iterates in byte order of the keys, the
                // order the encoding requires.
                out.push(b'M');
                for (key, value) in map {
                    encode_bytes(key.as_bytes(), out);
                    value.encode(out);
                }
                out.push(b'E');
            }
            Node::Tagged(tag, value) => {
                out.push(b'G');
                encode_bytes(tag.as_bytes(), out);
                value.encode(out);
            }
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => match i64::try_from(*i) {
                Ok(small) => Value::from(small),
                Err(_) => Value::String(i.to_string()),
            },
            Node::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(f.to_string())),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Map(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Node::Tagged(tag, value) => {
                let mut obj = serde_json::Map::new();
                obj.insert(tag.clone(), value.to_json());
                Value::Object(obj)
            }
        }
    }

    /// The inverse of [`Node::to_json`] for values it produced (local tags
    /// and integers beyond 64 bits do not survive the round trip).
    pub fn from_json(value: &serde_json::Value) -> Node {
        use serde_json::Value;
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Node::Int(i.into()),
                (None, Some(u), _) => Node::Int(u.into()),
                (None, None, Some(f)) => Node::Float(f),
                (None, None, None) => Node::Str(n.to_string()),
            },
            Value::String(s) => Node::Str(s.clone()),
            Value::Array(items) => Node::Seq(items.iter().map(Node::from_json).collect()),
            Value::Object(map) => Node::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// A short one-line rendering for human diffs: plain strings unquoted,
    /// everything else as compact JSON, cut at `max` characters.
    pub fn short(&self, max: usize) -> String {
        let text = match self {
            Node::Str(s) => s.clone(),
            other => other.to_json().to_string(),
        };
        shorten(&text, max)
    }
}

/// Cuts `text` to `max` characters on one line.
pub fn shorten(text: &str, max: usize) -> String {
    let one_line: String = text.replace('\n', "\\n");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `S<len>:<bytes>`: strings and raw file contents.
pub fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'S');
    let _ = write!(DigitSink(out), "{}", bytes.len());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Lets `write!` append decimal digits to a byte buffer without a String.
struct DigitSink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for DigitSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(node: &Node) -> Vec<u8> {
        let mut out = Vec::new();
        node.encode(&mut out);
        out
    }

    #[test]
    fn encoding_is_typed_and_self_delimiting() {
        let mut map = BTreeMap::new();
        map.insert("b".to_string(), Node::Int(-3));
        map.insert(
            "a".to_string(),
            Node::Seq(vec![Node::Str("x".into()), Node::Null]),
        );
        assert_eq!(enc(&Node::Map(map)), b"MS1:aLS1:xNES1:bI-3;E".to_vec());
        assert_ne!(enc(&Node::Str("1".into())), enc(&Node::Int(1)));
        assert_eq!(enc(&Node::Float(1.5)), b"D3ff8000000000000".to_vec());
    }
}
