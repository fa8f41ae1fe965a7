//! House rule: every module of the crate opens with a `//!` doc comment.

use std::path::Path;

fn check(dir: &Path, missing: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            check(&path, missing);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            if !text.trim_start().starts_with("//!") {
                missing.push(path.display().to_string());
            }
        }
    }
}

#[test]
fn every_module_has_a_doc_comment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    for dir in ["src", "tests", "benches"] {
        check(&root.join(dir), &mut missing);
    }
    check_file(&root.join("build.rs"), &mut missing);
    assert!(
        missing.is_empty(),
        "modules without a //! comment: {missing:?}"
    );
}

fn check_file(path: &Path, missing: &mut Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    if !text.trim_start().starts_with("//!") {
        missing.push(path.display().to_string());
    }
}
