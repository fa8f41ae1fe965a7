//! The reference implementation in `docs/config-hash.md` (Python) computes
//! the same config hash as this crate, on a generated repository and on a
//! repository of tricky files. Skipped when `python3` with PyYAML is absent.

mod support;

use std::path::Path;
use std::process::Command;

use git2::Repository;
use rewind_manifest::config_hash;
use support::GitTree;

fn python_ready() -> bool {
    Command::new("python3")
        .args(["-c", "import yaml"])
        .status()
        .is_ok_and(|s| s.success())
}

fn script(dir: &Path) -> std::path::PathBuf {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/config-hash.md"
    ))
    .unwrap();
    let start = doc.find("```python\n").expect("python block") + "```python\n".len();
    let end = start + doc[start..].find("\n```").unwrap();
    let path = dir.join("config_hash.py");
    std::fs::write(&path, &doc[start..end]).unwrap();
    path
}

fn python_hashes(script: &Path, root: &Path, apps: &[String]) -> Vec<String> {
    let out = Command::new("python3")
        .arg(script)
        .arg(root)
        .args(apps)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn rust_hashes(root: &Path, apps: &[String]) -> Vec<String> {
    let repo = Repository::open(root).unwrap();
    let tree = GitTree::at(&repo, "HEAD");
    apps.iter()
        .map(|a| config_hash(&tree, a).unwrap().to_string())
        .collect()
}

#[test]
fn python_reference_matches_on_a_generated_repository() {
    if !python_ready() {
        eprintln!("skipped: python3 with PyYAML not available");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let summary = dir.path().join("summary.json");
    let status = Command::new(support::GENERATOR)
        .arg(&root)
        .args([
            "--apps",
            "12",
            "--commits",
            "60",
            "--seed",
            "3",
            "--summary",
        ])
        .arg(&summary)
        .status()
        .unwrap();
    assert!(status.success());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let apps: Vec<String> = summary["apps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            a["paths"]
                .as_object()
                .unwrap()
                .values()
                .map(|p| p.as_str().unwrap().to_string())
        })
        .collect();
    let script = script(dir.path());
    assert_eq!(
        python_hashes(&script, &root, &apps),
        rust_hashes(&root, &apps)
    );
}

#[test]
fn python_reference_matches_on_tricky_files() {
    if !python_ready() {
        eprintln!("skipped: python3 with PyYAML not available");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let files: &[(&str, &str)] = &[
        (
            "app/kustomization.yaml",
            "resources: [objects.yaml, ../shared, chart]\nconfigMapGenerator:\n- name: c\n  files: [conf=../data/app.yaml]\n  envs: [../data/app.env]\npatchesStrategicMerge: [patch.yaml]\n",
        ),
        (
            "app/objects.yaml",
            "# comment\n---\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  hex: 0x1F\n  oct: 0o17\n  neg: -0x10\n  lead: 007\n  plus: +5\n  f1: 1e3\n  f2: .5\n  f3: -0.0\n  inf: .inf\n  nan: .NaN\n  yes: yes\n  tilde: ~\n  empty:\n  q: '12'\n  block: |\n    line\n  folded: >-\n    a\n    b\n  tagged: !Ref thing\n  anchor: &x {k: v}\n  alias: *x\n  80: int-key\n  true: bool-key\n  big: 123456789012345678901234567890\n  unicode: \"caf\\u00e9 ✓\"\n---\n---\n{\"kind\": \"Secret\", \"metadata\": {\"name\": \"s\"}, \"list\": [1, 2.5, null, false]}\n",
        ),
        ("app/patch.yaml", "kind: ConfigMap\nmetadata: {name: a}\n"),
        ("app/bad.yaml", "a: [unclosed\n"),
        ("app/dup.yaml", "a: 1\na: 2\n"),
        ("app/notes.txt", "plain text\n"),
        (
            "app/chart/Chart.yaml",
            "apiVersion: v2\nname: c\nversion: 1.0.0\n",
        ),
        ("app/chart/values.yaml", "image: {tag: v1}\n"),
        (
            "app/chart/templates/d.yaml",
            "kind: Deployment\nmetadata: {name: {{ .Release.Name }}}\n",
        ),
        ("shared/kustomization.yml", "resources: [s.json]\n"),
        (
            "shared/s.json",
            "{\"kind\": \"Service\", \"metadata\": {\"name\": \"s\"}, \"spec\": {\"ports\": [{\"port\": 80}]}}\n",
        ),
        ("data/app.yaml", "a:\n  b: 1\n"),
        ("data/app.env", "A=1\n"),
    ];
    for (path, content) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink("../data/app.env", root.join("app/link.env")).unwrap();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success());
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "fixture"]);
    let apps = vec![
        "app".to_string(),
        "shared".to_string(),
        "app/chart".to_string(),
    ];
    let script = script(dir.path());
    assert_eq!(
        python_hashes(&script, &root, &apps),
        rust_hashes(&root, &apps)
    );
}
