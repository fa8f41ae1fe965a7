//! `docs/configuration.md` documents exactly the keys of
//! `config/default.toml`: every key there (set, or shown commented out as
//! an example) has a row here, and every row names a key that exists.

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `section.key` for every key of default.toml. A key belongs to the last
/// table header above it; commented-out keys (`# token = "..."`) and
/// commented headers (`# [[api.tokens]]`) count, as they document keys
/// that are unset by default. A commented header owns the commented keys
/// below it until a blank line, a real line, or a sentence of prose (a
/// comment starting with a capital letter); `# #` lines (notes inside an
/// example) change nothing.
fn default_toml_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut commented_header: Option<String> = None;
    let mut active_header: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            commented_header = None;
            continue;
        }
        let Some(comment) = line.strip_prefix('#') else {
            commented_header = None;
            if let Some(header) = table_header(line) {
                active_header = Some(header);
            } else if let (Some(key), Some(table)) = (assigned_key(line), &active_header) {
                keys.insert(format!("{table}.{key}"));
            }
            continue;
        };
        let body = comment.strip_prefix(' ').unwrap_or(comment);
        if body.trim().is_empty() || body.starts_with('#') {
            continue;
        }
        if let Some(header) = table_header(body) {
            commented_header = Some(header);
        } else if let Some(key) = assigned_key(body) {
            if let Some(table) = commented_header.as_ref().or(active_header.as_ref()) {
                keys.insert(format!("{table}.{key}"));
            }
        } else if body.starts_with(|c: char| c.is_ascii_uppercase()) {
            commented_header = None;
        }
    }
    keys
}

/// `[a.b]` or `[[a.b]]`, possibly followed by a comment.
fn table_header(line: &str) -> Option<String> {
    let rest = line.strip_prefix('[')?;
    let rest = rest.strip_prefix('[').unwrap_or(rest);
    let end = rest.find(']')?;
    let name = &rest[..end];
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    valid.then(|| name.to_string())
}

/// `key = value`, where key is a bare TOML key in snake case: prose in
/// comments (`# "never": people merge.`) does not match.
fn assigned_key(line: &str) -> Option<&str> {
    let (key, _) = line.split_once(" = ")?;
    let key = key.trim_end();
    let bare = !key.is_empty()
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    bare.then_some(key)
}

/// The first cell of every table row that is a backticked dotted key;
/// `apps[].name` is the key `apps.name`.
fn documented_keys(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(key, _)| key.replace("[]", ""))
        .filter(|key| key.contains('.') && !key.contains(' '))
        .collect()
}

#[test]
fn the_reference_documents_exactly_the_keys_of_default_toml() {
    let defaults = std::fs::read_to_string(root().join("config/default.toml")).unwrap();
    let reference = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let in_defaults = default_toml_keys(&defaults);
    let documented = documented_keys(&reference);
    assert!(
        in_defaults.len() > 30,
        "the parser found too few keys: {in_defaults:?}"
    );
    let undocumented: Vec<_> = in_defaults.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "keys in config/default.toml missing from docs/configuration.md: {undocumented:?}"
    );
    let unknown: Vec<_> = documented.difference(&in_defaults).collect();
    assert!(
        unknown.is_empty(),
        "keys in docs/configuration.md that config/default.toml does not have: {unknown:?}"
    );
}

#[test]
fn the_key_parser_reads_set_commented_and_array_table_keys() {
    let keys = default_toml_keys(
        "# A comment with = in it\n[server]\nlisten = \"x\"\n# \"never\": people merge.\n\
         # token = \"...\"   # a commented key\n[api]\ntokens = []\n# [[api.tokens]]\n# name = \"oncall\"\n\
         # # note = \"inside the example\"\n# role = \"viewer\"\n\
         # More tokens, from a file.\n# tokens_file = \"/etc/rewind/tokens.toml\"\n\n\
         # [[apps]]\n# name = \"x\"\n",
    );
    let expected: BTreeSet<String> = [
        "server.listen",
        "server.token",
        "api.tokens",
        "api.tokens.name",
        "api.tokens.role",
        "api.tokens_file",
        "apps.name",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(keys, expected);
    let documented = documented_keys(
        "| key | default |\n| --- | --- |\n| `apps[].name` | — |\n| `server.listen` | x |\n| `REWIND_CONFIG` | y |\n",
    );
    assert_eq!(
        documented,
        ["apps.name", "server.listen"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}
