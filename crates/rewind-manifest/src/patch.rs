//! Patches as kustomize applies them: strategic merge (maps merged, lists of
//! named things merged by their key, `null` deletes, `$patch: delete` and
//! `$patch: replace`) and JSON 6902 operations (through the `json-patch`
//! crate).

use std::collections::BTreeMap;

use crate::node::Node;

/// The merge key of a list field, as the Kubernetes API declares it for the
/// fields patches commonly touch; other lists are replaced whole.
fn merge_key(field: &str, items: &[Node]) -> Option<&'static str> {
    let has = |key: &str| items.iter().all(|item| item.get(key).is_some()) && !items.is_empty();
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "hostAliases" => Some("ip"),
        "topologySpreadConstraints" => Some("topologyKey"),
        "ports" if has("containerPort") => Some("containerPort"),
        "ports" if has("port") => Some("port"),
        _ => None,
    }
}

fn directive(node: &Node) -> Option<&str> {
    node.get("$patch").and_then(Node::as_str)
}

/// A copy of a patch value with its `$` directives removed.
fn strip(node: &Node) -> Node {
    match node {
        Node::Map(map) => Node::Map(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Node::Seq(items) => Node::Seq(items.iter().map(strip).collect()),
        other => other.clone(),
    }
}

/// Applies a strategic-merge patch to an object.
pub fn strategic_merge(target: &mut Node, patch: &Node) {
    merge_value(target, patch, "");
}

fn merge_value(target: &mut Node, patch: &Node, field: &str) {
    match (target, patch) {
        (Node::Map(t), Node::Map(p)) => {
            if directive(patch) == Some("replace") {
                *t = match strip(patch) {
                    Node::Map(m) => m,
                    _ => BTreeMap::new(),
                };
                return;
            }
            for (key, value) in p {
                if key.starts_with('$') {
                    continue;
                }
                if *value == Node::Null || directive(value) == Some("delete") {
                    t.remove(key);
                } else if let Some(existing) = t.get_mut(key) {
                    merge_value(existing, value, key);
                } else {
                    t.insert(key.clone(), strip(value));
                }
            }
        }
        (Node::Seq(t), Node::Seq(p)) => match merge_key(field, p) {
            Some(key) if t.iter().all(|item| item.get(key).is_some()) => {
                for item in p {
                    let id = item.get(key);
                    let position = t.iter().position(|existing| existing.get(key) == id);
                    match (position, directive(item)) {
                        (Some(i), Some("delete")) => {
                            t.remove(i);
                        }
                        (None, Some("delete")) => {}
                        (Some(i), _) => merge_value(&mut t[i], item, ""),
                        (None, _) => t.push(strip(item)),
                    }
                }
            }
            _ => *t = p.iter().map(strip).collect(),
        },
        (target, patch) => *target = strip(patch),
    }
}

/// Applies JSON 6902 operations with the `json-patch` crate (RFC 6902:
/// `add`, `remove`, `replace`, `move`, `copy`, `test`). Like kustomize, a
/// patch applies whole or not at all: on the first failing operation the
/// object is left unchanged and the problem is returned.
pub fn json6902(target: &mut Node, ops: &[Node]) -> Vec<String> {
    let ops_json = serde_json::Value::Array(ops.iter().map(Node::to_json).collect());
    let patch: json_patch::Patch = match serde_json::from_value(ops_json) {
        Ok(patch) => patch,
        Err(e) => return vec![format!("not a JSON 6902 patch: {e}")],
    };
    let mut doc = target.to_json();
    match json_patch::patch(&mut doc, &patch) {
        Ok(()) => {
            *target = Node::from_json(&doc);
            Vec::new()
        }
        Err(e) => vec![format!("JSON 6902 patch not applied: {e}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_documents;

    fn yaml(text: &str) -> Node {
        parse_documents(text.as_bytes()).unwrap().remove(0)
    }

    #[test]
    fn containers_and_env_merge_by_name() {
        let mut object = yaml(
            "spec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: api\n        image: x:1\n        env: [{name: A, value: '1'}, {name: B, value: '2'}]\n      - name: side\n        image: y:1\n",
        );
        let patch = yaml(
            "spec:\n  replicas: 5\n  template:\n    spec:\n      containers:\n      - name: api\n        env: [{name: B, value: '3'}, {name: C, value: '4'}]\n        resources: {limits: {cpu: '1'}}\n",
        );
        strategic_merge(&mut object, &patch);
        let expected = yaml(
            "spec:\n  replicas: 5\n  template:\n    spec:\n      containers:\n      - name: api\n        image: x:1\n        env: [{name: A, value: '1'}, {name: B, value: '3'}, {name: C, value: '4'}]\n        resources: {limits: {cpu: '1'}}\n      - name: side\n        image: y:1\n",
        );
        assert_eq!(object, expected);
    }

    #[test]
    fn null_and_delete_directives_remove() {
        let mut object = yaml("a: 1\nb: 2\nlist: [{name: x}, {name: y}]\n");
        strategic_merge(&mut object, &yaml("a: null\nvolumes: []\n"));
        assert_eq!(object.get("a"), None);
        let mut object = yaml("containers: [{name: x}, {name: y}]\n");
        strategic_merge(
            &mut object,
            &yaml("containers: [{name: x, $patch: delete}]\n"),
        );
        assert_eq!(object, yaml("containers: [{name: y}]\n"));
    }

    #[test]
    fn json6902_applies_every_operation_or_none() {
        let mut object = yaml("spec: {replicas: 1, list: [a, b], 'a/b': {'~x': 1}}\n");
        let ops = yaml(
            "- {op: replace, path: /spec/replicas, value: 3}\n- {op: add, path: /spec/list/-, value: c}\n- {op: remove, path: /spec/list/0}\n- {op: test, path: /spec/replicas, value: 3}\n- {op: copy, from: /spec/list, path: /spec/copy}\n- {op: move, from: /spec/a~1b/~0x, path: /spec/moved}\n",
        );
        assert_eq!(json6902(&mut object, ops.as_seq()), Vec::<String>::new());
        assert_eq!(
            object,
            yaml("spec: {replicas: 3, list: [b, c], copy: [b, c], 'a/b': {}, moved: 1}\n")
        );
        // A failing operation leaves the object as it was.
        let before = object.clone();
        let ops =
            yaml("- {op: replace, path: /spec/replicas, value: 9}\n- {op: remove, path: /nope}\n");
        let problems = json6902(&mut object, ops.as_seq());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("/nope"), "{problems:?}");
        assert_eq!(object, before);
        let problems = json6902(&mut object, yaml("- {op: frobnicate, path: /x}\n").as_seq());
        assert!(
            problems[0].contains("not a JSON 6902 patch"),
            "{problems:?}"
        );
    }
}
