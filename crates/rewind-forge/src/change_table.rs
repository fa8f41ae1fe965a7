//! The rollback's changes as a reviewer reads them: one row per changed
//! field (object · field · now → after rollback), grouped per object, images
//! first. Built from the semantic diff a rollback stores (the JSON of
//! `rewind_manifest::AppDiff`), so the pull request body (Markdown, in
//! `report.rs`) and the web UI's rollback page (HTML, in rewind-server) show
//! the same table.
//!
//! The JSON is read leniently: rollbacks recorded by older versions, or
//! diffs that lack a part, still give a table (missing parts are empty), and
//! a shape that is not a diff at all gives an empty table rather than an
//! error, because the text diff next to it still tells the story.

use serde_json::Value;

/// Longest value shown in one cell; longer values end in `…` (the text diff
/// has them whole).
const MAX_VALUE_CHARS: usize = 120;

/// What happens to an object when the rollback is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectChangeKind {
    /// Some fields change.
    Modified,
    /// The object exists only after the rollback.
    Added,
    /// The object is gone after the rollback.
    Removed,
}

impl ObjectChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectChangeKind::Modified => "changes",
            ObjectChangeKind::Added => "added by the rollback",
            ObjectChangeKind::Removed => "removed by the rollback",
        }
    }
}

/// One changed field: its path and its value now and after the rollback
/// (`None`: the field is absent on that side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRow {
    pub field: String,
    pub now: Option<String>,
    pub after: Option<String>,
}

impl FieldRow {
    /// Whether the field is a container image (`...containers[0].image`):
    /// those rows come first.
    pub fn is_image(&self) -> bool {
        self.field == "image" || self.field.ends_with(".image")
    }
}

/// The changes of one Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChanges {
    /// `Deployment shop/checkout` (kind, then namespace/name).
    pub object: String,
    pub kind: ObjectChangeKind,
    /// Image fields first, then the rest in the diff's order.
    pub fields: Vec<FieldRow>,
    /// Field changes the diff did not list (over its per-object cap).
    pub more: usize,
    /// For added and removed objects: the file it comes from.
    pub source: Option<String>,
}

impl ObjectChanges {
    fn changes_an_image(&self) -> bool {
        self.fields.iter().any(FieldRow::is_image)
    }
}

/// An image the app runs now or after the rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    /// The image reference without its tag or digest, when both sides name
    /// the same repository (`registry.example/shop/checkout`).
    pub image: String,
    pub now: Option<String>,
    pub after: Option<String>,
}

/// A changed input file and how (`added`, `removed`, `modified`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub path: String,
    pub status: String,
}

/// The whole table. Empty when the rollback changes no object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeTable {
    /// The app's images, now → after rollback; only those that change.
    pub images: Vec<ImageRow>,
    /// Objects that change an image first, then the rest in diff order.
    pub objects: Vec<ObjectChanges>,
    pub files: Vec<FileRow>,
}

impl ChangeTable {
    /// The table of a rollback's stored semantic diff.
    pub fn from_semantic(semantic: &Value) -> ChangeTable {
        let mut table = ChangeTable {
            images: image_rows(semantic.get("images")),
            ..ChangeTable::default()
        };
        // `changed` of an AppDiff; a bare list of objects is read the same
        // way (older reports and hand-written fixtures).
        let changed = semantic
            .get("changed")
            .or_else(|| semantic.is_array().then_some(semantic));
        for object in changed.and_then(Value::as_array).into_iter().flatten() {
            let mut fields: Vec<FieldRow> = object
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(field_row)
                .collect();
            // Stable: image fields first, the rest keep the diff's order.
            fields.sort_by_key(|f| !f.is_image());
            let kind = match object.get("change").and_then(Value::as_str) {
                Some("added") => ObjectChangeKind::Added,
                Some("removed") => ObjectChangeKind::Removed,
                _ => ObjectChangeKind::Modified,
            };
            table.objects.push(ObjectChanges {
                object: object_name(object),
                kind,
                fields,
                more: object.get("more").and_then(Value::as_u64).unwrap_or(0) as usize,
                source: None,
            });
        }
        table.objects.sort_by_key(|o| !o.changes_an_image());
        for (key, kind) in [
            ("added", ObjectChangeKind::Added),
            ("removed", ObjectChangeKind::Removed),
        ] {
            for object in semantic
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                table.objects.push(ObjectChanges {
                    object: object_name(object),
                    kind,
                    fields: Vec::new(),
                    more: 0,
                    source: object
                        .get("source")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
            }
        }
        table.files = semantic
            .get("files")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| {
                Some(FileRow {
                    path: f.get("path")?.as_str()?.to_owned(),
                    status: f
                        .get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("modified")
                        .to_owned(),
                })
            })
            .collect();
        table
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty() && self.objects.is_empty()
    }

    /// How many field rows the objects have (added and removed objects
    /// count as one row each).
    pub fn row_count(&self) -> usize {
        self.objects.iter().map(|o| o.fields.len().max(1)).sum()
    }
}

/// `Deployment shop/checkout`: kind, then namespace/name.
fn object_name(object: &Value) -> String {
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    let kind = text("kind").unwrap_or("object");
    let name = text("name").unwrap_or("?");
    match text("namespace") {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// A field change; reads `old`/`new` (AppDiff) or `from`/`to`.
fn field_row(field: &Value) -> FieldRow {
    let side = |a: &str, b: &str| {
        field
            .get(a)
            .or_else(|| field.get(b))
            .filter(|v| !v.is_null())
            .map(shown_value)
    };
    FieldRow {
        field: field
            .get("path")
            .or_else(|| field.get("field"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned(),
        now: side("old", "from"),
        after: side("new", "to"),
    }
}

fn shown_value(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > MAX_VALUE_CHARS {
        let mut cut: String = text.chars().take(MAX_VALUE_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        text
    }
}

/// Images that change, paired by repository: `checkout:2.0.0 → 1.9.3`.
fn image_rows(images: Option<&Value>) -> Vec<ImageRow> {
    let list = |key: &str| -> Vec<String> {
        images
            .and_then(|i| i.get(key))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let (now, after) = (list("from"), list("to"));
    let gone: Vec<&String> = now.iter().filter(|i| !after.contains(i)).collect();
    let mut new: Vec<&String> = after.iter().filter(|i| !now.contains(i)).collect();
    let mut rows = Vec::new();
    for image in gone {
        let repository = repository_of(image);
        let pair = new.iter().position(|n| repository_of(n) == repository);
        let after = pair.map(|i| new.remove(i).clone());
        rows.push(ImageRow {
            image: if after.is_some() {
                repository.to_owned()
            } else {
                image.clone()
            },
            now: Some(image.clone()),
            after,
        });
    }
    for image in new {
        rows.push(ImageRow {
            image: image.clone(),
            now: None,
            after: Some(image.clone()),
        });
    }
    rows
}

/// The reference without `@digest` and without `:tag` (a `:` before the
/// last `/` is a registry port, not a tag).
fn repository_of(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(colon) if !image[colon..].contains('/') => &image[..colon],
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_fields_and_objects_come_first() {
        let table = ChangeTable::from_semantic(&json!({
            "changed": [
                {"kind": "ConfigMap", "namespace": "shop", "name": "flags",
                 "fields": [{"path": "data.NEW", "old": "true", "new": "false"}], "more": 0},
                {"kind": "Deployment", "namespace": "shop", "name": "checkout",
                 "fields": [
                    {"path": "spec.replicas", "old": 6, "new": 4},
                    {"path": "spec.template.spec.containers[0].image", "old": "r/c:2", "new": "r/c:1"}
                 ], "more": 2}
            ],
            "added": [{"kind": "Secret", "name": "s", "source": "secret.yaml"}],
            "images": {"from": ["r/c:2", "localhost:5000/side:1"], "to": ["r/c:1", "localhost:5000/side:1"]}
        }));
        assert_eq!(table.objects[0].object, "Deployment shop/checkout");
        assert_eq!(
            table.objects[0].fields[0].field,
            "spec.template.spec.containers[0].image"
        );
        assert_eq!(table.objects[0].fields[1].now.as_deref(), Some("6"));
        assert_eq!(table.objects[0].more, 2);
        assert_eq!(table.objects[2].kind, ObjectChangeKind::Added);
        assert_eq!(
            table.images,
            vec![ImageRow {
                image: "r/c".into(),
                now: Some("r/c:2".into()),
                after: Some("r/c:1".into())
            }]
        );
        assert_eq!(table.row_count(), 4);
    }

    #[test]
    fn a_registry_port_is_not_a_tag() {
        assert_eq!(repository_of("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(repository_of("localhost:5000/app:1"), "localhost:5000/app");
        assert_eq!(repository_of("app@sha256:abc"), "app");
    }

    #[test]
    fn something_that_is_not_a_diff_is_an_empty_table() {
        assert!(ChangeTable::from_semantic(&json!("text")).is_empty());
        assert!(ChangeTable::from_semantic(&Value::Null).is_empty());
    }
}
