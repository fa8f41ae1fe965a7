//! References from workloads to ConfigMaps and Secrets by name, and the
//! renames kustomize carries into them: when `namePrefix`/`nameSuffix` or a
//! generator's content hash renames a ConfigMap or Secret, every pod spec
//! (and Ingress TLS, ServiceAccount) that names it follows, which is what
//! makes a Deployment roll when generated config changes.

use crate::node::Node;
use crate::render::Object;

/// Kinds whose pod specs kustomize rewrites references in.
const POD_SPEC_KINDS: [&str; 8] = [
    "Pod",
    "Deployment",
    "ReplicaSet",
    "DaemonSet",
    "StatefulSet",
    "Job",
    "CronJob",
    "ReplicationController",
];

/// Calls `f(kind, name)` on every ConfigMap/Secret name an object refers to.
pub fn for_each_ref(object: &mut Object, f: &mut dyn FnMut(&'static str, &mut String)) {
    let kind = object.kind().to_string();
    let Some(spec) = object.body.get_mut("spec") else {
        if kind == "ServiceAccount"
            && let Node::Map(map) = &mut object.body
        {
            for key in ["secrets", "imagePullSecrets"] {
                named_items(map.get_mut(key), "Secret", f);
            }
        }
        return;
    };
    if POD_SPEC_KINDS.contains(&kind.as_str()) {
        walk(spec, f);
    } else if kind == "Ingress"
        && let Some(Node::Seq(items)) = spec.get_mut("tls")
    {
        for item in items {
            if let Some(Node::Str(name)) = item.get_mut("secretName") {
                f("Secret", name);
            }
        }
    }
}

fn named_items(
    node: Option<&mut Node>,
    kind: &'static str,
    f: &mut dyn FnMut(&'static str, &mut String),
) {
    if let Some(Node::Seq(items)) = node {
        for item in items {
            if let Some(Node::Str(name)) = item.get_mut("name") {
                f(kind, name);
            }
        }
    }
}

fn walk(node: &mut Node, f: &mut dyn FnMut(&'static str, &mut String)) {
    match node {
        Node::Map(map) => {
            for (key, value) in map.iter_mut() {
                let target = match key.as_str() {
                    "configMapRef" | "configMapKeyRef" | "configMap" => Some(("ConfigMap", "name")),
                    "secretRef" | "secretKeyRef" => Some(("Secret", "name")),
                    // A volume names it `secretName`, a projected source `name`.
                    "secret" if value.get("secretName").is_some() => Some(("Secret", "secretName")),
                    "secret" => Some(("Secret", "name")),
                    "imagePullSecrets" => {
                        named_items(Some(value), "Secret", f);
                        continue;
                    }
                    _ => None,
                };
                if let Some((kind, field)) = target
                    && let Some(Node::Str(name)) = value.get_mut(field)
                {
                    f(kind, name);
                }
                walk(value, f);
            }
        }
        Node::Seq(items) => items.iter_mut().for_each(|item| walk(item, f)),
        _ => {}
    }
}

/// One ConfigMap or Secret renamed in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub from: String,
    pub to: String,
}

/// Rewrites references in `objects` after `renames`, matching kind, old
/// name and namespace (references are namespace-local).
pub fn apply_renames(objects: &mut [Object], renames: &[Rename]) {
    if renames.is_empty() {
        return;
    }
    for object in objects.iter_mut() {
        let namespace = object
            .body
            .str_at(&["metadata", "namespace"])
            .map(str::to_string);
        for_each_ref(object, &mut |kind, name| {
            if let Some(rename) = renames
                .iter()
                .find(|r| r.kind == kind && r.from == *name && r.namespace == namespace)
            {
                *name = rename.to.clone();
            }
        });
    }
}

/// The ConfigMap/Secret names an object refers to.
pub fn refs_of(object: &Object) -> Vec<(&'static str, String)> {
    let mut copy = object.clone();
    let mut out = Vec::new();
    for_each_ref(&mut copy, &mut |kind, name| out.push((kind, name.clone())));
    out.sort();
    out.dedup();
    out
}
