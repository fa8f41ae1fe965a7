//! Properties of the config hash and of the parser, over generated input:
//! layout, key order, comments and document splitting never change the
//! hash; any change of a value, object or file does; arbitrary bytes never
//! make anything panic.

use proptest::prelude::*;
use rewind_manifest::{
    MemoryTree, app_inputs, config_hash, doctor, parse::parse_documents, render,
};
use serde_json::Value;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        "[a-z0-9 ._:-]{0,10}".prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn document() -> impl Strategy<Value = Value> {
    (
        "[a-z]{1,8}",
        prop::collection::btree_map("[a-z]{1,6}", value(), 0..5),
    )
        .prop_map(|(name, data)| {
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name},
                "data": Value::Object(data.into_iter().collect()),
            })
        })
}

/// JSON (which is YAML) with keys in reverse order and a comment.
fn reversed_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| format!("{}:  {}", Value::String(k.clone()), reversed_json(v)))
                .collect();
            format!("{{\n  {}\n}}", items.join(",\n  "))
        }
        Value::Array(items) => format!(
            "[ {} ]",
            items
                .iter()
                .map(reversed_json)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// All documents in one multi-document block-style file.
fn joined(docs: &[Value]) -> MemoryTree {
    let text: Vec<String> = docs
        .iter()
        .map(|d| serde_yaml::to_string(d).unwrap())
        .collect();
    MemoryTree::new().with(
        "app/all.yaml",
        format!("# generated\n{}", text.join("---\n")),
    )
}

/// One document per file, reversed keys, flow style, comments.
fn split(docs: &[Value]) -> MemoryTree {
    let mut tree = MemoryTree::new();
    for (i, doc) in docs.iter().enumerate() {
        tree.insert(
            &format!("app/doc-{i}.yaml"),
            format!("# document {i}\n---\n{}\n", reversed_json(doc)),
        );
    }
    tree
}

fn hash(tree: &MemoryTree) -> String {
    config_hash(tree, "app").unwrap().to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn layout_key_order_comments_and_splitting_keep_the_hash(docs in prop::collection::vec(document(), 1..5)) {
        prop_assert_eq!(hash(&joined(&docs)), hash(&split(&docs)));
    }

    #[test]
    fn changed_added_or_removed_content_changes_the_hash(
        docs in prop::collection::vec(document(), 1..5),
        pick in any::<prop::sample::Index>(),
    ) {
        let base = hash(&joined(&docs));
        let i = pick.index(docs.len());

        let mut changed = docs.clone();
        changed[i]["data"]["mutated"] = Value::Bool(true);
        prop_assert_ne!(&base, &hash(&joined(&changed)));

        let mut renamed = docs.clone();
        let name = renamed[i]["metadata"]["name"].as_str().unwrap().to_string();
        renamed[i]["metadata"]["name"] = Value::String(format!("{name}x"));
        prop_assert_ne!(&base, &hash(&joined(&renamed)));

        let mut fewer = docs.clone();
        fewer.remove(i);
        if !fewer.is_empty() {
            prop_assert_ne!(&base, &hash(&joined(&fewer)));
        }
        let mut more = docs.clone();
        more.push(docs[i].clone());
        prop_assert_ne!(&base, &hash(&joined(&more)));

        let with_file = joined(&docs).with("app/migrations/0001.up.sql", "CREATE TABLE t ();\n");
        prop_assert_ne!(&base, &hash(&with_file));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_documents(&bytes);
        exercise(&bytes);
    }

    #[test]
    fn yaml_like_text_never_panics(text in "[-:a-z0-9 \n\\[\\]{}&*!|>'\"#,.?@%]{0,300}") {
        let _ = parse_documents(text.as_bytes());
        exercise(text.as_bytes());
    }
}

/// Every entry point over a tree whose kustomization and manifest are the
/// given bytes: errors are fine, panics are not.
fn exercise(bytes: &[u8]) {
    let tree = MemoryTree::new()
        .with("app/kustomization.yaml", bytes.to_vec())
        .with("app/x.yaml", bytes.to_vec())
        .with("plain/x.yaml", bytes.to_vec());
    for app in ["app", "plain"] {
        let _ = app_inputs(&tree, app);
        let _ = config_hash(&tree, app);
        let _ = render(&tree, app);
    }
    let _ = doctor(&tree, None);
}

#[test]
fn formatting_a_kustomization_keeps_the_hash_and_a_new_value_changes_it() {
    let base = MemoryTree::new().with(
        "app/d.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n",
    );
    let one = base.clone().with(
        "app/kustomization.yaml",
        "resources: [d.yaml]\nimages:\n- name: x\n  newTag: v1\n",
    );
    let two = base.clone().with(
        "app/kustomization.yaml",
        "# promote by changing the tag\nimages:\n  - newTag: \"v1\"\n    name: 'x'\nresources:\n  - d.yaml\n",
    );
    let three = base.with(
        "app/kustomization.yaml",
        "resources: [d.yaml]\nimages:\n- name: x\n  newTag: v2\n",
    );
    assert_eq!(hash(&one), hash(&two));
    assert_ne!(hash(&one), hash(&three));
}

#[test]
fn generator_inputs_are_hashed_by_bytes() {
    // A YAML file that becomes ConfigMap data: re-indenting it changes what
    // the pods read, so it changes the hash.
    let k = "configMapGenerator:\n- name: c\n  files: [app.yaml]\n";
    let a = MemoryTree::new()
        .with("app/kustomization.yaml", k)
        .with("app/app.yaml", "a:\n  b: 1\n");
    let b = MemoryTree::new()
        .with("app/kustomization.yaml", k)
        .with("app/app.yaml", "a:\n    b: 1\n");
    assert_ne!(hash(&a), hash(&b));
}

#[test]
fn hostile_files_are_findings_naming_the_file() {
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for (name, prev) in [
        ("b", "a"),
        ("c", "b"),
        ("d", "c"),
        ("e", "d"),
        ("f", "e"),
        ("g", "f"),
        ("h", "g"),
    ] {
        bomb.push_str(&format!("{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    let tree = MemoryTree::new()
        .with(
            "app/kustomization.yaml",
            "resources: [bomb.yaml, deep.yaml, bin.yaml, big.yaml]\n",
        )
        .with("app/bomb.yaml", bomb)
        .with("app/deep.yaml", "[".repeat(50_000))
        .with("app/bin.yaml", vec![0u8, 159, 146, 150])
        .with(
            "app/big.yaml",
            vec![b'#'; rewind_manifest::parse::MAX_FILE_BYTES + 10],
        );
    let rendered = render(&tree, "app").unwrap();
    for file in ["bomb.yaml", "deep.yaml", "bin.yaml", "big.yaml"] {
        assert!(
            rendered
                .warnings
                .iter()
                .any(|w| w.path.as_deref() == Some(&format!("app/{file}"))),
            "no finding for {file}: {:?}",
            rendered.warnings
        );
    }
    // Hashing still works, over the bytes of what does not parse.
    assert!(config_hash(&tree, "app").is_ok());
}
