//! Patches as kustomize applies them: strategic merge (maps merged, lists of
//! named things merged by their key, `null` deletes, `$patch: delete` and
//! `$patch: replace`) and JSON 6902 operations (`add`, `remove`,
//! `replace`; `copy`, `move` and `test` are reported as unsupported).

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

/// Applies JSON 6902 operations. Returns a message for each operation that
/// could not be applied.
pub fn json6902(target: &mut Node, ops: &[Node]) -> Vec<String> {
    let mut problems = Vec::new();
    for op in ops {
        let kind = op.get("op").and_then(Node::as_str).unwrap_or("");
        let Some(pointer) = op.get("path").and_then(Node::as_str) else {
            problems.push("operation without a path".to_string());
            continue;
        };
        let result = match kind {
            "add" => op
                .get("value")
                .map_or(Err("add without a value".to_string()), |v| {
                    add(target, pointer, v.clone())
                }),
            "replace" => match (op.get("value"), lookup_mut(target, pointer)) {
                (Some(v), Some(slot)) => {
                    *slot = v.clone();
                    Ok(())
                }
                (None, _) => Err("replace without a value".to_string()),
                (_, None) => Err(format!("replace: path {pointer} does not exist")),
            },
            "remove" => remove(target, pointer),
            "test" => Ok(()),
            other => Err(format!("operation {other:?} is not supported")),
        };
        if let Err(problem) = result {
            problems.push(problem);
        }
    }
    problems
}

fn tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn lookup_mut<'a>(node: &'a mut Node, pointer: &str) -> Option<&'a mut Node> {
    let mut node = node;
    for token in tokens(pointer) {
        node = match node {
            Node::Map(map) => map.get_mut(&token)?,
            Node::Seq(items) => items.get_mut(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

fn split_last(pointer: &str) -> Option<(String, String)> {
    let (parent, last) = pointer.rsplit_once('/')?;
    Some((
        parent.to_string(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn add(target: &mut Node, pointer: &str, value: Node) -> Result<(), String> {
    if pointer.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_last(pointer).ok_or_else(|| format!("bad path {pointer}"))?;
    match lookup_mut(target, &parent) {
        Some(Node::Map(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Node::Seq(items)) if last == "-" => {
            items.push(value);
            Ok(())
        }
        Some(Node::Seq(items)) => match last.parse::<usize>() {
            Ok(i) if i <= items.len() => {
                items.insert(i, value);
                Ok(())
            }
            _ => Err(format!("add: index {last} out of range at {parent}")),
        },
        _ => Err(format!("add: parent {parent} does not exist")),
    }
}

fn remove(target: &mut Node, pointer: &str) -> Result<(), String> {
    let (parent, last) = split_last(pointer).ok_or_else(|| format!("bad path {pointer}"))?;
    let removed = match lookup_mut(target, &parent) {
        Some(Node::Map(map)) => map.remove(&last).is_some(),
        Some(Node::Seq(items)) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    };
    if removed {
        Ok(())
    } else {
        Err(format!("remove: path {pointer} does not exist"))
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
    fn json6902_add_replace_remove() {
        let mut object = yaml("spec: {replicas: 1, list: [a, b]}\n");
        let ops = yaml(
            "- {op: replace, path: /spec/replicas, value: 3}\n- {op: add, path: /spec/list/-, value: c}\n- {op: remove, path: /spec/list/0}\n- {op: move, path: /x, from: /y}\n",
        );
        let problems = json6902(&mut object, ops.as_seq());
        assert_eq!(object, yaml("spec: {replicas: 3, list: [b, c]}\n"));
        assert_eq!(problems.len(), 1);
    }
}
