//! One rollback per risk code this crate produces, on in-memory trees:
//! the code appears when its cause is in the change and not otherwise.
//! `crd` and `unrenderable` had no test before; `drift` comes from the
//! cluster (rewind-engine), not from here.

use rewind_domain::RiskCode;
use rewind_manifest::{Escapes, FindingCode, MemoryTree, app_inputs_with, doctor, rollback_risks};

const APP: &str = "apps/a";

fn app(files: &[(&str, &str)]) -> MemoryTree {
    let mut tree = MemoryTree::new().with(
        "apps/a/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: a\n        image: registry.example/a:1.0.0\n",
    );
    for (path, content) in files {
        tree.insert(path, *content);
    }
    tree
}

fn codes(current: &MemoryTree, target: &MemoryTree) -> Vec<RiskCode> {
    rollback_risks(current, target, APP, &[])
        .expect("risks")
        .into_iter()
        .map(|r| r.code)
        .collect()
}

fn detail(current: &MemoryTree, target: &MemoryTree, code: RiskCode) -> String {
    rollback_risks(current, target, APP, &[])
        .expect("risks")
        .into_iter()
        .find(|r| r.code == code)
        .map(|r| r.detail)
        .unwrap_or_default()
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec: {group: example.com}\n";

#[test]
fn crd_changes_are_a_risk() {
    let current = app(&[("apps/a/crd.yaml", CRD)]);
    let target = app(&[(
        "apps/a/crd.yaml",
        &CRD.replace("{group: example.com}", "{group: example.org}"),
    )]);
    assert_eq!(codes(&current, &target), [RiskCode::Crd]);
    assert!(detail(&current, &target, RiskCode::Crd).contains("widgets.example.com changes"));
    // Added and removed count too; an unchanged CRD does not.
    assert_eq!(codes(&app(&[]), &current), [RiskCode::Crd]);
    assert_eq!(codes(&current, &app(&[])), [RiskCode::Crd]);
    assert!(codes(&current, &current.clone()).is_empty());
}

const BOMB: &str = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";

/// A name, the files that make the target broken, the file the detail names.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

/// Each kind of target rewind cannot render or trust carries
/// `unrenderable` naming the file; the same problem at the current commit
/// only does not.
#[test]
fn what_cannot_be_rendered_in_the_target_is_unrenderable() {
    let big = format!(
        "kind: ConfigMap\nmetadata: {{name: big}}\ndata: {{x: \"{}\"}}\n",
        "y".repeat(5 << 20)
    );
    let cases: [Case<'_>; 6] = [
        (
            "invalid yaml",
            vec![("apps/a/bad.yaml", "kind: [unclosed\n")],
            "apps/a/bad.yaml",
        ),
        (
            "alias bomb",
            vec![("apps/a/bomb.yaml", BOMB)],
            "apps/a/bomb.yaml",
        ),
        (
            "too large",
            vec![("apps/a/big.yaml", big.as_str())],
            "apps/a/big.yaml",
        ),
        (
            "binary",
            vec![("apps/a/bin.yaml", "kind: \0\u{1}")],
            "apps/a/bin.yaml",
        ),
        (
            "cycle",
            vec![
                (
                    "apps/a/kustomization.yaml",
                    "resources: [deploy.yaml, loop]\n",
                ),
                ("apps/a/loop/kustomization.yaml", "resources: [../loop]\n"),
            ],
            "apps/a/loop",
        ),
        (
            "escaping reference",
            vec![(
                "apps/a/kustomization.yaml",
                "resources: [deploy.yaml, ../../../etc]\n",
            )],
            "apps/a/kustomization.yaml",
        ),
    ];
    let clean = app(&[("apps/a/kustomization.yaml", "resources: [deploy.yaml]\n")]);
    for (name, files, file) in cases {
        let broken = app(&files);
        let codes_to_broken = codes(&clean, &broken);
        assert!(
            codes_to_broken.contains(&RiskCode::Unrenderable),
            "{name}: {codes_to_broken:?}"
        );
        let detail = detail(&clean, &broken, RiskCode::Unrenderable);
        assert!(detail.contains(file), "{name}: {detail}");
        // Rolling away from it is no unrenderable risk.
        let away = codes(&broken, &clean);
        assert!(!away.contains(&RiskCode::Unrenderable), "{name}: {away:?}");
    }
}

/// `doctor` reports the escaping reference as a finding instead of
/// failing, and the strict inputs still refuse it (the config hash is
/// undefined for it).
#[test]
fn doctor_reports_escaping_references() {
    let tree = app(&[(
        "apps/a/kustomization.yaml",
        "resources: [deploy.yaml, ../../../etc]\n",
    )]);
    let findings = doctor(&tree, Some(&[APP.to_owned()])).expect("doctor");
    assert!(
        findings.iter().any(|f| f.code == FindingCode::Escape
            && f.path.as_deref() == Some("apps/a/kustomization.yaml")),
        "{findings:#?}"
    );
    assert!(rewind_manifest::app_inputs(&tree, APP).is_err());
    assert!(app_inputs_with(&tree, APP, Escapes::Report).is_ok());
}
