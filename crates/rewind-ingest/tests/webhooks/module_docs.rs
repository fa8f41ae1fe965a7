//! House rule: every module of the crate opens with a `//!` doc comment.

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("//!"),
                "{} lacks a //! module doc",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} modules found");
}
