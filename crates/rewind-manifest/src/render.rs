//! A built-in "kustomize-lite": renders an app's objects so diffs and risks
//! speak of what the cluster will see. Applied: `resources`/`bases`,
//! `components`, `configMapGenerator`/`secretGenerator` (with kustomize's
//! content-hash name suffix, see [`crate::namehash`]), `patches`,
//! `patchesStrategicMerge`, `patchesJson6902`, `images`, `replicas`,
//! `namespace`, `namePrefix`/`nameSuffix`, `commonLabels`/`labels`,
//! `commonAnnotations`, and the ConfigMap/Secret name references that
//! prefixes and hashes rename ([`crate::nameref`]). Objects named only by
//! `metadata.generateName` (Argo CD hook Jobs) are kept, keyed by it. Not
//! applied (a finding says so): remote bases, Helm template rendering
//! (values and Chart.yaml are shown as pseudo-objects instead),
//! replacements, vars, references to other kinds after prefixes, regex
//! patch targets.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::error::ManifestError;
use crate::finding::{Finding, FindingCode};
use crate::inputs::{Escapes, resolve_reference};
use crate::kustomization::{self, Kustomization, failure_finding};
use crate::namehash;
use crate::nameref::{self, Rename};
use crate::node::Node;
use crate::parse::{is_yaml_path, parse_documents};
use crate::patch;
use crate::path;
use crate::source::{CachedTree, EntryKind, TreeSource};

/// A ConfigMap's or Secret's `data` (or `binaryData`).
type DataMap = BTreeMap<String, Node>;

/// How deep kustomizations may nest before rendering stops.
const MAX_NESTING: usize = 32;

/// The detail of the finding for a patch that selects nothing: the file
/// exists and parses, so it is no reason to distrust the render.
pub const PATCH_MATCHES_NO_OBJECT: &str = "patch matches no object";

/// API version of the pseudo-objects that stand for Helm inputs.
pub const HELM_PSEUDO_API_VERSION: &str = "rewind.dev/v1";

/// The identity objects are matched by across commits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.api_version, self.kind)?;
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        f.write_str(&self.name)
    }
}

/// One rendered object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub body: Node,
    /// The file the object came from (for generated objects, the
    /// kustomization).
    pub source: String,
    /// Made by a generator; `true` when its name carries a content hash
    /// (so a change of data rolls the pods that use it).
    pub generated: Option<bool>,
}

impl Object {
    pub fn kind(&self) -> &str {
        self.body.str_at(&["kind"]).unwrap_or("")
    }

    /// `metadata.name`, or `metadata.generateName` for an object that has
    /// only that (the API server completes it on creation).
    pub fn name(&self) -> &str {
        self.body
            .str_at(&["metadata", "name"])
            .or_else(|| self.generate_name())
            .unwrap_or("")
    }

    /// `metadata.generateName` when the object has no `metadata.name`.
    pub fn generate_name(&self) -> Option<&str> {
        match self.body.str_at(&["metadata", "name"]) {
            Some(_) => None,
            None => self.body.str_at(&["metadata", "generateName"]),
        }
    }

    /// The metadata key that names the object.
    fn name_key(&self) -> &'static str {
        if self.generate_name().is_some() {
            "generateName"
        } else {
            "name"
        }
    }

    pub fn id(&self) -> ObjectId {
        ObjectId {
            api_version: self.body.str_at(&["apiVersion"]).unwrap_or("").to_string(),
            kind: self.kind().to_string(),
            namespace: self
                .body
                .str_at(&["metadata", "namespace"])
                .map(str::to_string),
            name: self.name().to_string(),
        }
    }
}

/// An app's rendered objects and what the renderer could not do.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub objects: Vec<Object>,
    pub warnings: Vec<Finding>,
}

/// Renders the app at `app_path`.
pub fn render(src: &dyn TreeSource, app_path: &str) -> Result<Rendered, ManifestError> {
    render_with(src, app_path, Escapes::Refuse)
}

/// [`render`], with escaping references handled as `escapes` says.
pub fn render_with(
    src: &dyn TreeSource,
    app_path: &str,
    escapes: Escapes,
) -> Result<Rendered, ManifestError> {
    let cached = CachedTree::new(src);
    let src = &cached;
    let app_path = crate::inputs::normalize_app_path(app_path)?;
    if src.kind(&app_path)? != Some(EntryKind::Dir) {
        return Err(ManifestError::AppNotFound { path: app_path });
    }
    let mut renderer = Renderer {
        src,
        escapes,
        warnings: Vec::new(),
        stack: Vec::new(),
    };
    let mut objects = renderer.render_dir(&app_path)?;
    // kustomize hashes generated names last, over the final data, then
    // fixes the references to them.
    add_name_hashes(&mut objects);
    let mut warnings = renderer.warnings;
    warnings.sort();
    warnings.dedup();
    Ok(Rendered { objects, warnings })
}

struct Renderer<'a> {
    src: &'a dyn TreeSource,
    escapes: Escapes,
    warnings: Vec<Finding>,
    stack: Vec<String>,
}

impl Renderer<'_> {
    fn warn(&mut self, code: FindingCode, path: &str, detail: impl Into<String>) {
        self.warnings.push(Finding::warning(code, path, detail));
    }

    fn render_dir(&mut self, dir: &str) -> Result<Vec<Object>, ManifestError> {
        if self.stack.iter().any(|d| d == dir) {
            self.warn(
                FindingCode::Cycle,
                dir,
                "kustomization includes itself; the loop is cut here",
            );
            return Ok(Vec::new());
        }
        if self.stack.len() >= MAX_NESTING {
            self.warn(
                FindingCode::Unsupported,
                dir,
                format!("kustomizations nest deeper than {MAX_NESTING}; not rendered"),
            );
            return Ok(Vec::new());
        }
        self.stack.push(dir.to_string());
        let result = match kustomization::load(self.src, dir, &mut self.warnings)? {
            Some(k) => {
                let mut objects = Vec::new();
                self.apply(&k, &mut objects).map(|()| objects)
            }
            None => self.plain_dir(dir),
        };
        self.stack.pop();
        result
    }

    /// A directory without a kustomization: its YAML files, as Argo CD's
    /// directory source reads them, or a Helm chart's inputs.
    fn plain_dir(&mut self, dir: &str) -> Result<Vec<Object>, ManifestError> {
        let entries = self.src.list_dir(dir)?.unwrap_or_default();
        let is_chart = entries.iter().any(|e| e.name == "Chart.yaml");
        let mut objects = Vec::new();
        for entry in entries {
            let file = path::child(dir, &entry.name);
            if entry.kind != EntryKind::File || !is_yaml_path(&file) {
                continue;
            }
            if is_chart {
                if entry.name == "Chart.yaml"
                    || (entry.name.starts_with("values") && is_yaml_path(&entry.name))
                {
                    objects.extend(self.helm_pseudo(&file)?);
                }
            } else {
                objects.extend(self.load_objects(&file, false)?);
            }
        }
        if is_chart {
            self.warnings.push(Finding::notice(
                FindingCode::Unsupported,
                dir,
                "Helm chart: templates are not rendered; Chart.yaml and values files are compared instead",
            ));
        }
        Ok(objects)
    }

    fn helm_pseudo(&mut self, file: &str) -> Result<Vec<Object>, ManifestError> {
        let kind = if path::file_name(file) == "Chart.yaml" {
            "HelmChart"
        } else {
            "HelmValues"
        };
        Ok(self
            .load_docs(file)?
            .into_iter()
            .map(|doc| {
                let mut body = BTreeMap::new();
                body.insert(
                    "apiVersion".to_string(),
                    Node::Str(HELM_PSEUDO_API_VERSION.to_string()),
                );
                body.insert("kind".to_string(), Node::Str(kind.to_string()));
                let mut meta = BTreeMap::new();
                meta.insert("name".to_string(), Node::Str(file.to_string()));
                body.insert("metadata".to_string(), Node::Map(meta));
                body.insert("values".to_string(), doc);
                Object {
                    body: Node::Map(body),
                    source: file.to_string(),
                    generated: None,
                }
            })
            .collect())
    }

    fn load_docs(&mut self, file: &str) -> Result<Vec<Node>, ManifestError> {
        let Some(bytes) = self.src.read_file(file)? else {
            self.warn(
                FindingCode::MissingPath,
                file,
                "referenced file does not exist",
            );
            return Ok(Vec::new());
        };
        match parse_documents(&bytes) {
            Ok(docs) => Ok(docs),
            Err(failure) => {
                self.warnings.push(failure_finding(file, &failure));
                Ok(Vec::new())
            }
        }
    }

    /// The objects of one manifest file. `in_kustomization`: listed by a
    /// kustomization, which real kustomize refuses to build when an object
    /// has only `generateName`.
    fn load_objects(
        &mut self,
        file: &str,
        in_kustomization: bool,
    ) -> Result<Vec<Object>, ManifestError> {
        let mut objects = Vec::new();
        for doc in self.load_docs(file)? {
            let docs = if doc.str_at(&["kind"]) == Some("List") {
                doc.get("items")
                    .map(|n| n.as_seq().to_vec())
                    .unwrap_or_default()
            } else {
                vec![doc]
            };
            for doc in docs {
                let named = doc.str_at(&["metadata", "name"]).is_some()
                    || doc.str_at(&["metadata", "generateName"]).is_some();
                if doc.str_at(&["kind"]).is_none() || !named {
                    self.warn(
                        FindingCode::InvalidYaml,
                        file,
                        "a document without kind or metadata.name (or generateName) is skipped",
                    );
                    continue;
                }
                let object = Object {
                    body: doc,
                    source: file.to_string(),
                    generated: None,
                };
                if in_kustomization && let Some(generate_name) = object.generate_name() {
                    self.warn(
                        FindingCode::Unsupported,
                        file,
                        format!(
                            "{} {generate_name} has only metadata.generateName: kustomize refuses to build it (kubernetes-sigs/kustomize#641), so this kustomization cannot sync; rewind compares it keyed by generateName",
                            object.kind()
                        ),
                    );
                }
                objects.push(object);
            }
        }
        Ok(objects)
    }

    /// `None`: an escaping reference, reported and skipped.
    fn resolve(
        &mut self,
        k: &Kustomization,
        reference: &str,
    ) -> Result<Option<String>, ManifestError> {
        resolve_reference(k, reference, self.escapes, &mut self.warnings)
    }

    /// Applies one kustomization onto `objects` (empty for a plain
    /// kustomization, the parent's objects for a component).
    fn apply(&mut self, k: &Kustomization, objects: &mut Vec<Object>) -> Result<(), ManifestError> {
        for reference in k.resources() {
            if path::is_remote(reference) {
                self.warn(
                    FindingCode::Remote,
                    &k.file,
                    format!("remote resource {reference:?} is not fetched"),
                );
                continue;
            }
            let Some(target) = self.resolve(k, reference)? else {
                continue;
            };
            if self.src.kind(&target)? == Some(EntryKind::Dir) {
                objects.extend(self.render_dir(&target)?);
            } else {
                objects.extend(self.load_objects(&target, true)?);
            }
        }
        for reference in k.components() {
            if path::is_remote(reference) {
                self.warn(
                    FindingCode::Remote,
                    &k.file,
                    format!("remote component {reference:?} is not fetched"),
                );
                continue;
            }
            let Some(target) = self.resolve(k, reference)? else {
                continue;
            };
            if self.stack.contains(&target) {
                self.warn(
                    FindingCode::Cycle,
                    &target,
                    "component includes itself; the loop is cut here",
                );
                continue;
            }
            if let Some(component) = kustomization::load(self.src, &target, &mut self.warnings)? {
                self.stack.push(target);
                let result = self.apply(&component, objects);
                self.stack.pop();
                result?;
            }
        }
        self.generators(k, objects)?;
        self.patches(k, objects)?;
        transform_images(k, objects);
        transform_replicas(k, objects);
        transform_metadata(k, objects);
        if !k.list("helmCharts").is_empty() {
            self.warnings.push(Finding::notice(
                FindingCode::Unsupported,
                &k.file,
                "helmCharts are not inflated; their values files are compared instead",
            ));
            for chart in k.list("helmCharts") {
                if let Some(values) = chart.get("valuesFile").and_then(Node::as_str)
                    && let Some(file) = self.resolve(k, values)?
                {
                    objects.extend(self.helm_pseudo(&file)?);
                }
            }
        }
        for key in [
            "replacements",
            "vars",
            "transformers",
            "generators",
            "helmChartInflationGenerator",
        ] {
            if k.doc.get(key).is_some() {
                self.warnings.push(Finding::notice(
                    FindingCode::Unsupported,
                    &k.file,
                    format!("`{key}` is not applied by the built-in renderer"),
                ));
            }
        }
        Ok(())
    }

    fn generators(
        &mut self,
        k: &Kustomization,
        objects: &mut Vec<Object>,
    ) -> Result<(), ManifestError> {
        let global_no_hash = k
            .doc
            .at(&["generatorOptions", "disableNameSuffixHash"])
            .and_then(bool_of);
        for (key, kind) in [
            ("configMapGenerator", "ConfigMap"),
            ("secretGenerator", "Secret"),
        ] {
            for generator in k.list(key) {
                let Some(name) = generator.get("name").and_then(Node::as_str) else {
                    self.warn(
                        FindingCode::InvalidYaml,
                        &k.file,
                        format!("a {key} entry has no name"),
                    );
                    continue;
                };
                let (data, binary) = self.generator_data(k, generator, kind == "Secret")?;
                // An explicit option wins; a merge or replace without one
                // keeps what the generator it changes said (as kustomize).
                let no_hash_option = generator
                    .at(&["options", "disableNameSuffixHash"])
                    .and_then(bool_of)
                    .or(global_no_hash);
                let no_hash = no_hash_option.unwrap_or(false);
                let behavior = generator
                    .get("behavior")
                    .and_then(Node::as_str)
                    .unwrap_or("create");
                let existing = objects
                    .iter()
                    .position(|o| o.kind() == kind && o.name() == name);
                match (behavior, existing) {
                    ("merge", Some(i)) => {
                        for (field, values) in [("data", data), ("binaryData", binary)] {
                            if !values.is_empty() {
                                objects[i].body.map_at_mut(&[field]).extend(values);
                            }
                        }
                        if let Some(no_hash) = no_hash_option {
                            objects[i].generated = Some(!no_hash);
                        }
                    }
                    ("replace", Some(i)) => {
                        let map = objects[i].body.map_at_mut(&[]);
                        for (field, values) in [("data", data), ("binaryData", binary)] {
                            map.remove(field);
                            if !values.is_empty() {
                                map.insert(field.into(), Node::Map(values));
                            }
                        }
                        if let Some(no_hash) = no_hash_option {
                            objects[i].generated = Some(!no_hash);
                        }
                    }
                    _ => {
                        let mut body = Node::Map(BTreeMap::new());
                        let map = body.map_at_mut(&[]);
                        map.insert("apiVersion".into(), Node::Str("v1".into()));
                        map.insert("kind".into(), Node::Str(kind.into()));
                        // Like kustomize: no empty `data`/`binaryData`.
                        for (field, values) in [("data", data), ("binaryData", binary)] {
                            if !values.is_empty() {
                                map.insert(field.into(), Node::Map(values));
                            }
                        }
                        if kind == "Secret" {
                            map.insert(
                                "type".into(),
                                Node::Str(
                                    generator
                                        .get("type")
                                        .and_then(Node::as_str)
                                        .unwrap_or("Opaque")
                                        .into(),
                                ),
                            );
                        }
                        let meta = body.map_at_mut(&["metadata"]);
                        meta.insert("name".into(), Node::Str(name.into()));
                        if let Some(ns) = generator.get("namespace").and_then(Node::as_str) {
                            meta.insert("namespace".into(), Node::Str(ns.into()));
                        }
                        objects.push(Object {
                            body,
                            source: k.file.clone(),
                            generated: Some(!no_hash),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// A generator's `data` and `binaryData` as kustomize builds them:
    /// literals (`k=v`, surrounding quotes removed), files (`[key=]path`;
    /// not UTF-8 goes to `binaryData`) and env files (`k=v` lines, no
    /// unquoting). A Secret's values are base64, all in `data`.
    fn generator_data(
        &mut self,
        k: &Kustomization,
        generator: &Node,
        secret: bool,
    ) -> Result<(DataMap, DataMap), ManifestError> {
        let mut data = BTreeMap::new();
        let mut binary = BTreeMap::new();
        let mut put = |key: &str, bytes: Vec<u8>| {
            let value = if secret {
                Node::Str(namehash::base64(&bytes))
            } else {
                match String::from_utf8(bytes) {
                    Ok(text) => Node::Str(text),
                    Err(e) => {
                        binary.insert(key.to_string(), Node::Str(namehash::base64(e.as_bytes())));
                        return;
                    }
                }
            };
            data.insert(key.to_string(), value);
        };
        let strings = |field: &str| -> Vec<&str> {
            generator
                .get(field)
                .map_or(&[][..], Node::as_seq)
                .iter()
                .filter_map(Node::as_str)
                .collect()
        };
        for literal in strings("literals") {
            if let Some((key, value)) = literal.split_once('=') {
                put(key, unquote(value).as_bytes().to_vec());
            }
        }
        for spec in strings("files") {
            let (key, file) = spec
                .split_once('=')
                .unwrap_or((path::file_name(spec), spec));
            let Some(target) = self.resolve(k, file)? else {
                continue;
            };
            match self.src.read_file(&target)? {
                Some(bytes) => put(key, bytes),
                None => self.warn(
                    FindingCode::MissingPath,
                    &k.file,
                    format!("generator file {file:?} does not exist"),
                ),
            }
        }
        let mut envs = strings("envs");
        envs.extend(generator.get("env").and_then(Node::as_str));
        for env in envs {
            let Some(target) = self.resolve(k, env)? else {
                continue;
            };
            match self.src.read_file(&target)? {
                Some(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    for line in text.lines() {
                        let line = line.trim_start_matches('\u{feff}').trim_start();
                        if line.is_empty() || line.starts_with('#') {
                            continue;
                        }
                        if let Some((key, value)) = line.split_once('=') {
                            put(key, value.as_bytes().to_vec());
                        }
                    }
                }
                None => self.warn(
                    FindingCode::MissingPath,
                    &k.file,
                    format!("env file {env:?} does not exist"),
                ),
            }
        }
        Ok((data, binary))
    }

    fn patches(
        &mut self,
        k: &Kustomization,
        objects: &mut Vec<Object>,
    ) -> Result<(), ManifestError> {
        // (label for findings, patch documents, explicit target)
        let mut all: Vec<(String, Vec<Node>, Option<Node>)> = Vec::new();
        for entry in k.list("patches").iter().chain(k.list("patchesJson6902")) {
            let target = entry.get("target").cloned();
            if let Some(file) = entry.get("path").and_then(Node::as_str) {
                if let Some(file) = self.resolve(k, file)? {
                    let docs = self.load_docs(&file)?;
                    all.push((file, docs, target));
                }
            } else if let Some(inline) = entry.get("patch").and_then(Node::as_str) {
                match parse_documents(inline.as_bytes()) {
                    Ok(docs) => all.push((k.file.clone(), docs, target)),
                    Err(failure) => self.warnings.push(failure_finding(&k.file, &failure)),
                }
            }
        }
        for entry in k.strings("patchesStrategicMerge") {
            if entry.contains('\n') || entry.contains(": ") {
                match parse_documents(entry.as_bytes()) {
                    Ok(docs) => all.push((k.file.clone(), docs, None)),
                    Err(failure) => self.warnings.push(failure_finding(&k.file, &failure)),
                }
            } else {
                if let Some(file) = self.resolve(k, entry)? {
                    let docs = self.load_docs(&file)?;
                    all.push((file, docs, None));
                }
            }
        }
        for (label, docs, target) in all {
            for doc in docs {
                let selected: Vec<usize> = objects
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| match &target {
                        Some(selector) => selects(selector, o),
                        None => {
                            doc.str_at(&["kind"]) == Some(o.kind())
                                && doc.str_at(&["metadata", "name"]) == Some(o.name())
                                && doc.str_at(&["metadata", "namespace"]).is_none_or(|ns| {
                                    o.body
                                        .str_at(&["metadata", "namespace"])
                                        .is_none_or(|own| own == ns)
                                })
                        }
                    })
                    .map(|(i, _)| i)
                    .collect();
                if selected.is_empty() {
                    self.warn(FindingCode::MissingPath, &label, PATCH_MATCHES_NO_OBJECT);
                }
                // A strategic-merge patch whose top level says `$patch:
                // delete` removes the objects it selects.
                if doc.str_at(&["$patch"]) == Some("delete") {
                    for i in selected.into_iter().rev() {
                        objects.remove(i);
                    }
                    continue;
                }
                for i in selected {
                    if let Node::Seq(ops) = &doc {
                        for problem in patch::json6902(&mut objects[i].body, ops) {
                            self.warn(FindingCode::Unsupported, &label, problem);
                        }
                    } else {
                        let mut body_patch = doc.clone();
                        if target.is_some() {
                            // A targeted patch does not rename its target.
                            if let Node::Map(map) = &mut body_patch {
                                map.remove("metadata");
                                map.remove("kind");
                                map.remove("apiVersion");
                            }
                        }
                        patch::strategic_merge(&mut objects[i].body, &body_patch);
                    }
                }
            }
        }
        Ok(())
    }
}

fn bool_of(node: &Node) -> Option<bool> {
    match node {
        Node::Bool(b) => Some(*b),
        _ => None,
    }
}

/// A literal's value without one pair of surrounding quotes (kustomize
/// does not trim spaces).
fn unquote(value: &str) -> &str {
    let v = value;
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// A kustomize patch `target` selector: group, version, kind, name,
/// namespace and `key=value` label/annotation selectors (exact matches).
fn selects(selector: &Node, object: &Object) -> bool {
    let api_version = object.body.str_at(&["apiVersion"]).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let field = |key: &str| selector.get(key).and_then(Node::as_str);
    let matches =
        |want: Option<&str>, have: &str| want.is_none_or(|w| w == have || w == "*" || w == ".*");
    let pairs_match = |key: &str, meta: &str| {
        field(key).is_none_or(|sel| {
            sel.split(',').all(|pair| match pair.split_once('=') {
                Some((k, v)) => object.body.str_at(&["metadata", meta, k.trim()]) == Some(v.trim()),
                None => false,
            })
        })
    };
    matches(field("group"), group)
        && matches(field("version"), version)
        && matches(field("kind"), object.kind())
        && matches(field("name"), object.name())
        && matches(
            field("namespace"),
            object.body.str_at(&["metadata", "namespace"]).unwrap_or(""),
        )
        && pairs_match("labelSelector", "labels")
        && pairs_match("annotationSelector", "annotations")
}

/// Splits an image reference into (name, tag, digest).
pub fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(colon) => (
            &rest[..slash + colon],
            Some(&rest[slash + colon + 1..]),
            digest,
        ),
        None => (rest, None, digest),
    }
}

/// Calls `f` on every container image field of an object.
pub fn for_each_image(node: &mut Node, f: &mut dyn FnMut(&mut String)) {
    match node {
        Node::Map(map) => {
            for (key, value) in map.iter_mut() {
                if matches!(
                    key.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                ) && let Node::Seq(items) = value
                {
                    for item in items {
                        if let Some(Node::Str(image)) = item.get_mut("image") {
                            f(image);
                        }
                    }
                }
                for_each_image(value, f);
            }
        }
        Node::Seq(items) => items.iter_mut().for_each(|item| for_each_image(item, f)),
        _ => {}
    }
}

fn transform_images(k: &Kustomization, objects: &mut [Object]) {
    let rules = k.list("images");
    if rules.is_empty() {
        return;
    }
    for object in objects.iter_mut() {
        for_each_image(&mut object.body, &mut |image| {
            let (name, tag, digest) = split_image(image);
            let Some(rule) = rules
                .iter()
                .find(|r| r.get("name").and_then(Node::as_str) == Some(name))
            else {
                return;
            };
            let new_name = rule.get("newName").and_then(Node::as_str).unwrap_or(name);
            let new_tag = rule.get("newTag").map(|t| match t {
                Node::Str(s) => s.clone(),
                other => other.short(200),
            });
            let new_digest = rule.get("digest").and_then(Node::as_str);
            *image = match (new_digest, new_tag) {
                (Some(d), _) => format!("{new_name}@{d}"),
                (None, Some(t)) => format!("{new_name}:{t}"),
                (None, None) => {
                    let mut s = new_name.to_string();
                    if let Some(t) = tag {
                        s.push(':');
                        s.push_str(t);
                    }
                    if let Some(d) = digest {
                        s.push('@');
                        s.push_str(d);
                    }
                    s
                }
            };
        });
    }
}

fn transform_replicas(k: &Kustomization, objects: &mut [Object]) {
    for rule in k.list("replicas") {
        let (Some(name), Some(count)) =
            (rule.get("name").and_then(Node::as_str), rule.get("count"))
        else {
            continue;
        };
        for object in objects.iter_mut() {
            if object.name() == name
                && matches!(
                    object.kind(),
                    "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController"
                )
            {
                object
                    .body
                    .map_at_mut(&["spec"])
                    .insert("replicas".into(), count.clone());
            }
        }
    }
}

/// Kinds that have no namespace.
fn cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "PersistentVolume"
            | "StorageClass"
            | "PriorityClass"
            | "ValidatingWebhookConfiguration"
            | "MutatingWebhookConfiguration"
            | "APIService"
            | "IngressClass"
            | "RuntimeClass"
            | "Node"
            | "CSIDriver"
            | "ClusterIssuer"
            | "HelmChart"
            | "HelmValues"
    )
}

fn add_labels(
    object: &mut Object,
    labels: &BTreeMap<String, Node>,
    selectors: bool,
    templates: bool,
) {
    object
        .body
        .map_at_mut(&["metadata", "labels"])
        .extend(labels.clone());
    let workload = object.body.at(&["spec", "template"]).is_some();
    if selectors && workload {
        object
            .body
            .map_at_mut(&["spec", "selector", "matchLabels"])
            .extend(labels.clone());
    }
    if selectors && object.kind() == "Service" {
        object
            .body
            .map_at_mut(&["spec", "selector"])
            .extend(labels.clone());
    }
    if (selectors || templates) && workload {
        object
            .body
            .map_at_mut(&["spec", "template", "metadata", "labels"])
            .extend(labels.clone());
    }
}

fn transform_metadata(k: &Kustomization, objects: &mut [Object]) {
    let namespace = k.str_field("namespace");
    let prefix = k.str_field("namePrefix").unwrap_or("");
    let suffix = k.str_field("nameSuffix").unwrap_or("");
    let common_labels = k.doc.get("commonLabels").and_then(Node::as_map);
    let annotations = k.doc.get("commonAnnotations").and_then(Node::as_map);
    let mut renames = Vec::new();
    for object in objects.iter_mut() {
        if object.body.str_at(&["apiVersion"]) == Some(HELM_PSEUDO_API_VERSION) {
            continue;
        }
        let kind = object.kind().to_string();
        if let Some(ns) = namespace
            && !cluster_scoped(&kind)
        {
            object
                .body
                .map_at_mut(&["metadata"])
                .insert("namespace".into(), Node::Str(ns.into()));
        }
        if (!prefix.is_empty() || !suffix.is_empty())
            && kind != "Namespace"
            && kind != "CustomResourceDefinition"
        {
            let old = object.name().to_string();
            let name = format!("{prefix}{old}{suffix}");
            if let Some(kind) = config_kind(&kind) {
                renames.push(Rename {
                    kind,
                    namespace: object
                        .body
                        .str_at(&["metadata", "namespace"])
                        .map(str::to_string),
                    from: old,
                    to: name.clone(),
                });
            }
            let key = object.name_key();
            object
                .body
                .map_at_mut(&["metadata"])
                .insert(key.into(), Node::Str(name));
        }
        if let Some(labels) = common_labels {
            add_labels(object, labels, true, true);
        }
        for entry in k.list("labels") {
            if let Some(pairs) = entry.get("pairs").and_then(Node::as_map) {
                let selectors = entry.get("includeSelectors") == Some(&Node::Bool(true));
                let templates = entry.get("includeTemplates") == Some(&Node::Bool(true));
                add_labels(object, pairs, selectors, templates);
            }
        }
        if let Some(annotations) = annotations {
            object
                .body
                .map_at_mut(&["metadata", "annotations"])
                .extend(annotations.clone());
            if object.body.at(&["spec", "template"]).is_some() {
                object
                    .body
                    .map_at_mut(&["spec", "template", "metadata", "annotations"])
                    .extend(annotations.clone());
            }
        }
    }
    nameref::apply_renames(objects, &renames);
}

/// `ConfigMap` or `Secret`: the kinds whose renames references follow.
fn config_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "ConfigMap" => Some("ConfigMap"),
        "Secret" => Some("Secret"),
        _ => None,
    }
}

/// Appends kustomize's content hash to the names of generated objects that
/// want one, and points the references at the new names.
fn add_name_hashes(objects: &mut [Object]) {
    let mut renames = Vec::new();
    for object in objects.iter_mut() {
        let Some(kind) = config_kind(object.kind()) else {
            continue;
        };
        if object.generated != Some(true) {
            continue;
        }
        let old = object.name().to_string();
        let name = format!("{old}-{}", namehash::suffix(kind, &object.body));
        renames.push(Rename {
            kind,
            namespace: object
                .body
                .str_at(&["metadata", "namespace"])
                .map(str::to_string),
            from: old,
            to: name.clone(),
        });
        object
            .body
            .map_at_mut(&["metadata"])
            .insert("name".into(), Node::Str(name));
    }
    nameref::apply_renames(objects, &renames);
}

/// The container images an app runs, after `images:` overrides; sorted,
/// without duplicates.
pub fn images_of(objects: &[Object]) -> Vec<String> {
    let mut out = Vec::new();
    for object in objects {
        let mut body = object.body.clone();
        for_each_image(&mut body, &mut |image| out.push(image.clone()));
    }
    out.sort();
    out.dedup();
    out
}

/// The images the app at `app_path` runs.
pub fn images(src: &dyn TreeSource, app_path: &str) -> Result<Vec<String>, ManifestError> {
    Ok(images_of(&render(src, app_path)?.objects))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryTree;

    #[test]
    fn image_references_split() {
        assert_eq!(
            split_image("r.io:5000/a/b:v1"),
            ("r.io:5000/a/b", Some("v1"), None)
        );
        assert_eq!(split_image("r.io:5000/a/b"), ("r.io:5000/a/b", None, None));
        assert_eq!(split_image("a@sha256:ab"), ("a", None, Some("sha256:ab")));
        assert_eq!(
            split_image("a:1@sha256:ab"),
            ("a", Some("1"), Some("sha256:ab"))
        );
    }

    #[test]
    fn overlay_applies_images_replicas_patches_namespace_prefix() {
        let src = MemoryTree::new()
            .with("base/kustomization.yaml", "resources: [d.yaml]\nconfigMapGenerator:\n- name: cfg\n  literals: [A=1]\n")
            .with("base/d.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - {name: api, image: 'reg/api:v1', env: [{name: X, value: a}]}\n")
            .with("prod/kustomization.yaml", "resources: [../base]\nnamespace: shop\nnamePrefix: p-\nimages:\n- {name: reg/api, newTag: v2}\nreplicas:\n- {name: api, count: 4}\npatches:\n- path: patch.yaml\n")
            .with("prod/patch.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: api, env: [{name: Y, value: b}]}\n");
        let rendered = render(&src, "prod").unwrap();
        assert!(rendered.warnings.is_empty(), "{:?}", rendered.warnings);
        let deploy = rendered
            .objects
            .iter()
            .find(|o| o.kind() == "Deployment")
            .unwrap();
        assert_eq!(deploy.id().to_string(), "apps/v1 Deployment shop/p-api");
        assert_eq!(deploy.body.at(&["spec", "replicas"]), Some(&Node::Int(4)));
        let container = &deploy
            .body
            .at(&["spec", "template", "spec", "containers"])
            .unwrap()
            .as_seq()[0];
        assert_eq!(container.str_at(&["image"]), Some("reg/api:v2"));
        assert_eq!(container.get("env").unwrap().as_seq().len(), 2);
        let cm = rendered
            .objects
            .iter()
            .find(|o| o.kind() == "ConfigMap")
            .unwrap();
        assert_eq!(cm.generated, Some(true));
        assert_eq!(images(&src, "prod").unwrap(), ["reg/api:v2"]);
    }
}
