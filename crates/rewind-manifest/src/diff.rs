//! The semantic diff of an app between two commits: rendered objects
//! matched by (apiVersion, kind, namespace, name), changed fields with old
//! and new values (lists of named things matched by name), the images, and
//! a unified text diff of the input files.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::error::ManifestError;
use crate::finding::Finding;
use crate::inputs::{AppInputs, Escapes, app_inputs_with};
use crate::node::{Node, shorten};
use crate::parse::MAX_FILE_BYTES;
use crate::render::{Object, ObjectId, Rendered, images_of, render_with};
use crate::source::{CachedTree, TreeSource};

/// Field changes listed per object before the rest is summarised.
const MAX_FIELDS_PER_OBJECT: usize = 200;
/// Longest value shown in the human rendering.
const MAX_SHOWN: usize = 120;
/// Shown instead of Secret data.
pub const REDACTED: &str = "<redacted>";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppDiff {
    pub app_path: String,
    pub added: Vec<ObjectRef>,
    pub removed: Vec<ObjectRef>,
    pub changed: Vec<ObjectChange>,
    pub images: ImageChange,
    pub files: Vec<FileChange>,
    /// Unified diff of the input files.
    pub text: String,
    pub warnings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    #[serde(flatten)]
    pub id: ObjectId,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectChange {
    #[serde(flatten)]
    pub id: ObjectId,
    pub fields: Vec<FieldChange>,
    /// Field changes not listed (over the per-object cap).
    pub more: usize,
}

/// One changed field. `old`/`new` are absent when the field is added or
/// removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub old: Option<serde_json::Value>,
    pub new: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ImageChange {
    pub from: Vec<String>,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Added,
    Removed,
    Modified,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    pub status: FileStatus,
}

impl AppDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.files.is_empty()
    }

    /// Every field change with its object, for checks over the diff.
    pub fn field_changes(&self) -> impl Iterator<Item = (&ObjectId, &FieldChange)> {
        self.changed
            .iter()
            .flat_map(|c| c.fields.iter().map(move |f| (&c.id, f)))
    }

    /// The human rendering: a summary, images, objects with their changed
    /// fields, the files and the unified diff.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} changed, {} added, {} removed, {} files",
            self.app_path,
            self.changed.len(),
            self.added.len(),
            self.removed.len(),
            self.files.len()
        );
        if self.images.from != self.images.to {
            out.push_str("images:\n");
            for image in self
                .images
                .from
                .iter()
                .filter(|i| !self.images.to.contains(i))
            {
                let _ = writeln!(out, "  - {image}");
            }
            for image in self
                .images
                .to
                .iter()
                .filter(|i| !self.images.from.contains(i))
            {
                let _ = writeln!(out, "  + {image}");
            }
        }
        for change in &self.changed {
            let _ = writeln!(out, "~ {}", change.id);
            for field in &change.fields {
                let _ = writeln!(
                    out,
                    "    {}: {} → {}",
                    field.path,
                    show(&field.old),
                    show(&field.new)
                );
            }
            if change.more > 0 {
                let _ = writeln!(out, "    … and {} more fields", change.more);
            }
        }
        for object in &self.added {
            let _ = writeln!(out, "+ {}  ({})", object.id, object.source);
        }
        for object in &self.removed {
            let _ = writeln!(out, "- {}  ({})", object.id, object.source);
        }
        if !self.files.is_empty() {
            out.push_str("files:\n");
            for file in &self.files {
                let mark = match file.status {
                    FileStatus::Added => 'A',
                    FileStatus::Removed => 'D',
                    FileStatus::Modified => 'M',
                };
                let _ = writeln!(out, "  {mark} {}", file.path);
            }
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "{warning}");
        }
        if !self.text.is_empty() {
            out.push('\n');
            out.push_str(&self.text);
        }
        out
    }
}

fn show(value: &Option<serde_json::Value>) -> String {
    match value {
        None => "(none)".to_string(),
        Some(serde_json::Value::String(s)) => shorten(s, MAX_SHOWN),
        Some(other) => shorten(&other.to_string(), MAX_SHOWN),
    }
}

/// Everything a comparison computes, for risk checks that need more than
/// the report.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub diff: AppDiff,
    pub from: Rendered,
    pub to: Rendered,
    pub from_inputs: AppInputs,
    pub to_inputs: AppInputs,
}

/// The semantic diff of the app at `app_path` from `from` to `to`.
pub fn semantic_diff(
    from: &dyn TreeSource,
    to: &dyn TreeSource,
    app_path: &str,
) -> Result<AppDiff, ManifestError> {
    Ok(compare(from, to, app_path)?.diff)
}

/// Like [`semantic_diff`], keeping the rendered objects and inputs.
pub fn compare(
    from: &dyn TreeSource,
    to: &dyn TreeSource,
    app_path: &str,
) -> Result<Comparison, ManifestError> {
    let (from, to) = (CachedTree::new(from), CachedTree::new(to));
    let (from, to): (&dyn TreeSource, &dyn TreeSource) = (&from, &to);
    // An app missing on one side (created or deleted in between) compares
    // as empty there: every object is added or removed.
    let (from_side, to_side) = (side(from, app_path)?, side(to, app_path)?);
    if from_side.is_none() && to_side.is_none() {
        return Err(ManifestError::AppNotFound {
            path: crate::inputs::normalize_app_path(app_path)?,
        });
    }
    let empty = || -> Result<(AppInputs, Rendered), ManifestError> {
        let inputs = AppInputs {
            app_path: crate::inputs::normalize_app_path(app_path)?,
            ..AppInputs::default()
        };
        Ok((inputs, Rendered::default()))
    };
    let (from_inputs, from_rendered) = match from_side {
        Some(side) => side,
        None => empty()?,
    };
    let (to_inputs, to_rendered) = match to_side {
        Some(side) => side,
        None => empty()?,
    };

    let index = |objects: &[Object]| -> BTreeMap<ObjectId, usize> {
        objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.id(), i))
            .collect()
    };
    let old = index(&from_rendered.objects);
    let new = index(&to_rendered.objects);
    let mut diff = AppDiff {
        app_path: to_inputs.app_path.clone(),
        added: Vec::new(),
        removed: Vec::new(),
        changed: Vec::new(),
        images: ImageChange {
            from: images_of(&from_rendered.objects),
            to: images_of(&to_rendered.objects),
        },
        files: Vec::new(),
        text: String::new(),
        warnings: Vec::new(),
    };
    for (id, &i) in &old {
        match new.get(id) {
            None => diff.removed.push(ObjectRef {
                id: id.clone(),
                source: from_rendered.objects[i].source.clone(),
            }),
            Some(&j) => {
                let mut fields = Vec::new();
                diff_nodes(
                    &mut String::new(),
                    Some(&from_rendered.objects[i].body),
                    Some(&to_rendered.objects[j].body),
                    &mut fields,
                );
                if !fields.is_empty() {
                    if id.kind == "Secret" {
                        redact(&mut fields);
                    }
                    let more = fields.len().saturating_sub(MAX_FIELDS_PER_OBJECT);
                    fields.truncate(MAX_FIELDS_PER_OBJECT);
                    diff.changed.push(ObjectChange {
                        id: id.clone(),
                        fields,
                        more,
                    });
                }
            }
        }
    }
    for (id, &j) in &new {
        if !old.contains_key(id) {
            diff.added.push(ObjectRef {
                id: id.clone(),
                source: to_rendered.objects[j].source.clone(),
            });
        }
    }
    text_diff(from, to, &from_inputs, &to_inputs, &mut diff)?;
    let mut warnings: BTreeSet<Finding> = to_rendered.warnings.iter().cloned().collect();
    warnings.extend(to_inputs.warnings.iter().cloned());
    diff.warnings = warnings.into_iter().collect();
    Ok(Comparison {
        diff,
        from: from_rendered,
        to: to_rendered,
        from_inputs,
        to_inputs,
    })
}

/// The inputs and rendered objects of the app, `None` when it is missing.
fn side(
    src: &dyn TreeSource,
    app_path: &str,
) -> Result<Option<(AppInputs, Rendered)>, ManifestError> {
    // A broken commit (an escaping reference) is described, not refused:
    // the commit a rollback leaves may be exactly such a one.
    match app_inputs_with(src, app_path, Escapes::Report) {
        Ok(inputs) => Ok(Some((inputs, render_with(src, app_path, Escapes::Report)?))),
        Err(ManifestError::AppNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn redact(fields: &mut [FieldChange]) {
    for field in fields {
        if field.path.starts_with("data") || field.path.starts_with("stringData") {
            let hide = |v: &mut Option<serde_json::Value>| {
                if v.is_some() {
                    *v = Some(serde_json::Value::String(REDACTED.to_string()));
                }
            };
            hide(&mut field.old);
            hide(&mut field.new);
        }
    }
}

/// Appends `.key`, or `["key"]` when the key is not a plain word (label
/// names, ConfigMap keys with dots).
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        let _ = write!(path, "[{}]", serde_json::Value::String(key.to_string()));
    }
}

/// The names of a list's elements, when every element is a map with a
/// distinct string `name`.
fn names(items: &[Node]) -> Option<Vec<&str>> {
    let names: Vec<&str> = items
        .iter()
        .map(|i| i.get("name").and_then(Node::as_str))
        .collect::<Option<_>>()?;
    let distinct: BTreeSet<&str> = names.iter().copied().collect();
    (distinct.len() == names.len() && !names.is_empty()).then_some(names)
}

fn diff_nodes(
    path: &mut String,
    old: Option<&Node>,
    new: Option<&Node>,
    out: &mut Vec<FieldChange>,
) {
    if old == new || out.len() > MAX_FIELDS_PER_OBJECT * 4 {
        return;
    }
    let len = path.len();
    match (old, new) {
        (Some(Node::Map(a)), Some(Node::Map(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                push_key(path, key);
                diff_nodes(path, a.get(key), b.get(key), out);
                path.truncate(len);
            }
        }
        (Some(Node::Seq(a)), Some(Node::Seq(b))) => {
            if let (Some(na), Some(nb)) = (names(a), names(b)) {
                let mut all: Vec<&str> = na.clone();
                all.extend(nb.iter().filter(|n| !na.contains(n)));
                for name in all {
                    let _ = write!(path, "[name={name}]");
                    let old_item = na.iter().position(|n| *n == name).map(|i| &a[i]);
                    let new_item = nb.iter().position(|n| *n == name).map(|i| &b[i]);
                    diff_nodes(path, old_item, new_item, out);
                    path.truncate(len);
                }
            } else if a.len() == b.len() {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    let _ = write!(path, "[{i}]");
                    diff_nodes(path, Some(x), Some(y), out);
                    path.truncate(len);
                }
            } else {
                out.push(change(path, old, new));
            }
        }
        _ => out.push(change(path, old, new)),
    }
}

fn change(path: &str, old: Option<&Node>, new: Option<&Node>) -> FieldChange {
    FieldChange {
        path: path.to_string(),
        old: old.map(Node::to_json),
        new: new.map(Node::to_json),
    }
}

/// Input files that differ, and their unified diff.
fn text_diff(
    from: &dyn TreeSource,
    to: &dyn TreeSource,
    from_inputs: &AppInputs,
    to_inputs: &AppInputs,
    diff: &mut AppDiff,
) -> Result<(), ManifestError> {
    let old_files = from_inputs.all_files(from)?;
    let new_files = to_inputs.all_files(to)?;
    let secret =
        |p: &str| from_inputs.secret_files.contains(p) || to_inputs.secret_files.contains(p);
    for path in old_files.union(&new_files) {
        let (in_old, in_new) = (old_files.contains(path), new_files.contains(path));
        if in_old
            && in_new
            && let (Some(a), Some(b)) = (from.object_id(path)?, to.object_id(path)?)
            && a == b
        {
            continue;
        }
        let a = if in_old {
            from.read_file(path)?.unwrap_or_default()
        } else {
            Vec::new()
        };
        let b = if in_new {
            to.read_file(path)?.unwrap_or_default()
        } else {
            Vec::new()
        };
        if in_old && in_new && a == b {
            continue;
        }
        let status = match (in_old, in_new) {
            (true, true) => FileStatus::Modified,
            (false, _) => FileStatus::Added,
            (true, false) => FileStatus::Removed,
        };
        diff.files.push(FileChange {
            path: path.clone(),
            status,
        });
        let old_name = if in_old {
            format!("a/{path}")
        } else {
            "/dev/null".to_string()
        };
        let new_name = if in_new {
            format!("b/{path}")
        } else {
            "/dev/null".to_string()
        };
        match (std::str::from_utf8(&a), std::str::from_utf8(&b)) {
            _ if secret(path) => {
                let _ = writeln!(diff.text, "Secret input {path} differs (content not shown)");
            }
            (Ok(x), Ok(y)) if a.len() <= MAX_FILE_BYTES && b.len() <= MAX_FILE_BYTES => {
                let text = similar::TextDiff::from_lines(x, y);
                let _ = write!(
                    diff.text,
                    "{}",
                    text.unified_diff()
                        .context_radius(3)
                        .header(&old_name, &new_name)
                );
            }
            _ => {
                let _ = writeln!(diff.text, "Binary files {old_name} and {new_name} differ");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryTree;

    #[test]
    fn an_app_missing_on_one_side_is_all_added_and_secrets_are_redacted() {
        let old = MemoryTree::new().with("README.md", "x\n");
        let new = MemoryTree::new().with(
            "app/cm.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: c2VjcmV0}\n",
        );
        let diff = semantic_diff(&old, &new, "app").unwrap();
        assert_eq!(diff.added.len(), 1);
        assert_eq!(diff.files[0].status, FileStatus::Added);
        assert!(matches!(
            semantic_diff(&old, &old, "app"),
            Err(ManifestError::AppNotFound { .. })
        ));

        let changed = MemoryTree::new().with(
            "app/cm.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: b3RoZXI=}\n",
        );
        let diff = semantic_diff(&new, &changed, "app").unwrap();
        let field = &diff.changed[0].fields[0];
        assert_eq!(field.path, "data.k");
        assert_eq!(field.new, Some(serde_json::Value::String(REDACTED.into())));
        assert!(
            !serde_json::to_string(&diff.changed)
                .unwrap()
                .contains("b3RoZXI=")
        );
    }
}
