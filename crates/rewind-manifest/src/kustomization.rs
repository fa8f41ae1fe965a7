//! A `kustomization.yaml` as far as rewind needs it: which local files and
//! directories it reads, and the transformations the built-in renderer
//! applies.

use crate::error::ManifestError;
use crate::finding::{Finding, FindingCode};
use crate::node::Node;
use crate::parse::{ParseFailure, parse_documents};
use crate::path;
use crate::source::{EntryKind, TreeSource};

/// File names kustomize accepts, in the order it looks for them.
pub const KUSTOMIZATION_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// One parsed kustomization file.
#[derive(Debug, Clone)]
pub struct Kustomization {
    /// The directory the kustomization lives in.
    pub dir: String,
    /// The kustomization file itself.
    pub file: String,
    /// The parsed document; `Null` when the file did not parse (a finding
    /// says why).
    pub doc: Node,
}

impl Kustomization {
    /// Strings of a list field (`resources: [a, b]`).
    pub fn strings(&self, key: &str) -> Vec<&str> {
        self.doc.get(key).map_or_else(Vec::new, |n| {
            n.as_seq().iter().filter_map(Node::as_str).collect()
        })
    }

    pub fn list(&self, key: &str) -> &[Node] {
        self.doc.get(key).map_or(&[], Node::as_seq)
    }

    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.doc.get(key).and_then(Node::as_str)
    }

    /// `resources` and the deprecated `bases`: files or kustomization dirs.
    pub fn resources(&self) -> Vec<&str> {
        let mut out = self.strings("resources");
        out.extend(self.strings("bases"));
        out
    }

    pub fn components(&self) -> Vec<&str> {
        self.strings("components")
    }

    /// Files whose YAML content is applied as patches.
    pub fn patch_files(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .list("patches")
            .iter()
            .chain(self.list("patchesJson6902"))
            .filter_map(|p| p.get("path").and_then(Node::as_str))
            .collect();
        // Entries of patchesStrategicMerge are paths or inline patches;
        // inline ones span lines or start a mapping.
        out.extend(
            self.strings("patchesStrategicMerge")
                .into_iter()
                .filter(|s| !s.contains('\n') && !s.contains(": ")),
        );
        out
    }

    /// Files whose bytes end up in ConfigMap/Secret data (generators): a
    /// change of layout in them is a change of what the cluster sees.
    pub fn data_files(&self) -> Vec<&str> {
        self.generator_files("configMapGenerator")
            .into_iter()
            .chain(self.generator_files("secretGenerator"))
            .collect()
    }

    /// Files read by one kind of generator (`configMapGenerator` or
    /// `secretGenerator`).
    pub fn generator_files(&self, key: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for generator in self.list(key) {
            for file in generator.get("files").map_or(&[][..], Node::as_seq) {
                if let Some(spec) = file.as_str() {
                    out.push(spec.split_once('=').map_or(spec, |(_, p)| p));
                }
            }
            for env in generator.get("envs").map_or(&[][..], Node::as_seq) {
                if let Some(p) = env.as_str() {
                    out.push(p);
                }
            }
            if let Some(p) = generator.get("env").and_then(Node::as_str) {
                out.push(p);
            }
        }
        out
    }

    /// Other local files kustomize reads: CRD schemas, Helm values files,
    /// transformer and generator configs, OpenAPI schemas.
    pub fn other_files(&self) -> Vec<&str> {
        let mut out = self.strings("crds");
        out.extend(self.strings("configurations"));
        for key in ["transformers", "generators", "validators"] {
            out.extend(self.strings(key).into_iter().filter(|s| !s.contains('\n')));
        }
        if let Some(p) = self.doc.at(&["openapi", "path"]).and_then(Node::as_str) {
            out.push(p);
        }
        for chart in self.list("helmCharts") {
            if let Some(p) = chart.get("valuesFile").and_then(Node::as_str) {
                out.push(p);
            }
            for p in chart
                .get("additionalValuesFiles")
                .map_or(&[][..], Node::as_seq)
            {
                if let Some(p) = p.as_str() {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Directories Helm charts are read from (`helmGlobals.chartHome`,
    /// default `charts`), when the kustomization inflates charts.
    pub fn chart_home(&self) -> Option<&str> {
        if self.list("helmCharts").is_empty() {
            return None;
        }
        Some(
            self.doc
                .at(&["helmGlobals", "chartHome"])
                .and_then(Node::as_str)
                .unwrap_or("charts"),
        )
    }
}

/// The kustomization file in `dir`, if any, from an already-read listing.
pub fn kustomization_file(dir: &str, entries: &[crate::source::DirEntry]) -> Option<String> {
    KUSTOMIZATION_NAMES.iter().find_map(|name| {
        entries
            .iter()
            .find(|e| e.name == *name && e.kind == EntryKind::File)
            .map(|_| path::child(dir, name))
    })
}

/// Reads and parses the kustomization in `dir`. `Ok(None)` when the
/// directory has none (or is missing).
pub fn load(
    src: &dyn TreeSource,
    dir: &str,
    findings: &mut Vec<Finding>,
) -> Result<Option<Kustomization>, ManifestError> {
    let Some(entries) = src.list_dir(dir)? else {
        return Ok(None);
    };
    let Some(file) = kustomization_file(dir, &entries) else {
        return Ok(None);
    };
    let bytes = src.read_file(&file)?.unwrap_or_default();
    let doc = match parse_documents(&bytes) {
        Ok(mut docs) if docs.len() <= 1 => docs.pop().unwrap_or(Node::Null),
        Ok(_) => {
            findings.push(Finding::warning(
                FindingCode::InvalidYaml,
                &file,
                "a kustomization must hold exactly one document",
            ));
            Node::Null
        }
        Err(failure) => {
            findings.push(failure_finding(&file, &failure));
            Node::Null
        }
    };
    Ok(Some(Kustomization {
        dir: dir.to_string(),
        file,
        doc,
    }))
}

/// A finding that names `file` and why it could not be parsed.
pub fn failure_finding(file: &str, failure: &ParseFailure) -> Finding {
    let code = match failure {
        ParseFailure::TooLarge(_) => FindingCode::TooLarge,
        ParseFailure::Binary => FindingCode::Binary,
        ParseFailure::Invalid(_) => FindingCode::InvalidYaml,
    };
    Finding::warning(code, file, failure.to_string())
}
