//! The config hash: what the cluster was told to run, independent of
//! formatting. The exact algorithm is in `docs/config-hash.md`; keep the
//! two in step (the version tag changes when the algorithm does).

use std::collections::BTreeMap;

use rewind_domain::ConfigHash;
use sha2::{Digest, Sha256};

use crate::error::ManifestError;
use crate::inputs::{AppInputs, app_inputs};
use crate::kustomization::KUSTOMIZATION_NAMES;
use crate::node::{Node, encode_bytes};
use crate::parse::{is_yaml_path, parse_documents};
use crate::path;
use crate::source::{CachedTree, EntryKind, TreeSource};

/// The first bytes hashed: names the algorithm version.
pub const HASH_VERSION_TAG: &[u8] = b"rewind-config-hash/v1\n";

/// The config hash of the app at `app_path`.
pub fn config_hash(src: &dyn TreeSource, app_path: &str) -> Result<ConfigHash, ManifestError> {
    let cached = CachedTree::new(src);
    let src = &cached;
    let inputs = app_inputs(src, app_path)?;
    hash_inputs(src, &inputs)
}

/// The config hash over already-computed inputs.
pub fn hash_inputs(src: &dyn TreeSource, inputs: &AppInputs) -> Result<ConfigHash, ManifestError> {
    let entries = hash_entries(src, inputs)?;
    let mut hasher = Sha256::new();
    hasher.update(HASH_VERSION_TAG);
    for entry in &entries {
        hasher.update(entry);
    }
    Ok(ConfigHash::from_digest(hasher.finalize().into()))
}

/// The sorted, encoded entries the hash is computed over. Public so tests
/// and `docs/config-hash.md` examples can show them.
pub fn hash_entries(
    src: &dyn TreeSource,
    inputs: &AppInputs,
) -> Result<Vec<Vec<u8>>, ManifestError> {
    let mut entries = Vec::new();
    let mut chart_dirs: BTreeMap<String, bool> = BTreeMap::new();
    for entry in inputs.entries(src)? {
        let path = entry.path.as_str();
        match entry.kind {
            EntryKind::Symlink => {
                let target = src.read_file(path)?.unwrap_or_default();
                entries.push(tuple(&[b"symlink", path.as_bytes(), &target]));
            }
            EntryKind::Submodule => {
                let id = src.object_id(path)?.unwrap_or_default();
                entries.push(tuple(&[b"submodule", path.as_bytes(), id.as_bytes()]));
            }
            EntryKind::File | EntryKind::Dir => {
                let Some(bytes) = src.read_file(path)? else {
                    continue;
                };
                let canonical = is_yaml_path(path)
                    && !inputs.data_files.contains(path)
                    && !in_chart_templates(src, path, &mut chart_dirs)?;
                let docs = if canonical {
                    parse_documents(&bytes).ok()
                } else {
                    None
                };
                match docs {
                    Some(docs) => {
                        let name = path::file_name(path);
                        let kustomization = KUSTOMIZATION_NAMES.contains(&name);
                        for doc in docs {
                            entries.push(document_entry(
                                &doc,
                                kustomization.then(|| path::parent(path)),
                            ));
                        }
                    }
                    None => entries.push(tuple(&[b"file", path.as_bytes(), &bytes])),
                }
            }
        }
    }
    entries.sort();
    Ok(entries)
}

/// `L S"document" <doc> E`, or `L S"kustomization" S<dir> <doc> E`: a
/// kustomization's meaning depends on where it is (its paths are relative).
fn document_entry(doc: &Node, kustomization_dir: Option<&str>) -> Vec<u8> {
    let mut out = vec![b'L'];
    match kustomization_dir {
        Some(dir) => {
            encode_bytes(b"kustomization", &mut out);
            encode_bytes(dir.as_bytes(), &mut out);
        }
        None => encode_bytes(b"document", &mut out),
    }
    doc.encode(&mut out);
    out.push(b'E');
    out
}

fn tuple(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![b'L'];
    for part in parts {
        encode_bytes(part, &mut out);
    }
    out.push(b'E');
    out
}

/// Helm templates are Go templates, not YAML: their bytes count.
fn in_chart_templates(
    src: &dyn TreeSource,
    file: &str,
    cache: &mut BTreeMap<String, bool>,
) -> Result<bool, ManifestError> {
    let mut dir = path::parent(file);
    while !dir.is_empty() {
        if path::file_name(dir) == "templates" {
            let chart = path::parent(dir).to_string();
            let is_chart = match cache.get(&chart) {
                Some(known) => *known,
                None => {
                    let found = src.kind(&path::child(&chart, "Chart.yaml"))?.is_some();
                    cache.insert(chart, found);
                    found
                }
            };
            if is_chart {
                return Ok(true);
            }
        }
        dir = path::parent(dir);
    }
    Ok(false)
}
