//! The manifest reader on arbitrary YAML: the bytes are parsed as a
//! multi-document file, and also laid out as an app whose
//! `kustomization.yaml` and resource are the two halves of the input, then
//! rendered and hashed. Errors and findings are fine; a panic, a hang or
//! unbounded memory (alias bombs, deep nesting) is the finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind_manifest::MemoryTree;

fuzz_target!(|data: &[u8]| {
    let _ = rewind_manifest::parse::parse_documents(data);

    let split = data
        .windows(4)
        .position(|w| w == b"\n---")
        .unwrap_or(data.len() / 2);
    let (kustomization, resource) = data.split_at(split);
    let tree = MemoryTree::new()
        .with("apps/app/kustomization.yaml", kustomization)
        .with("apps/app/resource.yaml", resource)
        .with("apps/base/kustomization.yaml", "resources:\n- resource.yaml\n")
        .with("apps/base/resource.yaml", resource);
    let _ = rewind_manifest::render(&tree, "apps/app");
    let _ = rewind_manifest::config_hash(&tree, "apps/app");
});
