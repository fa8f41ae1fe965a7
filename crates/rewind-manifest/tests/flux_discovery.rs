//! Flux app discovery on the real layouts of
//! fluxcd/flux2-kustomize-helm-example (`tests/fixtures/`, see its README),
//! and on hand-made layouts for what that repository does not show.

use std::path::Path;

use rewind_manifest::flux::cluster_of_file;
use rewind_manifest::{FluxKind, MemoryTree, discover_flux};

/// The fixture directory as a tree, paths relative to it.
fn tree_of(dir: &Path) -> MemoryTree {
    fn walk(root: &Path, dir: &Path, tree: &mut MemoryTree) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, tree);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                tree.insert(&rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut tree = MemoryTree::new();
    walk(dir, dir, &mut tree);
    tree
}

fn example(layout: &str) -> MemoryTree {
    tree_of(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/flux2-kustomize-helm-example")
            .join(layout),
    )
}

/// `(cluster, key, kind, path)` of every discovered app.
fn table(tree: &MemoryTree, clusters: &[String]) -> Vec<(String, String, &'static str, String)> {
    discover_flux(tree, clusters)
        .unwrap()
        .apps
        .into_iter()
        .map(|a| (a.cluster.clone(), a.key(), a.kind.as_str(), a.path))
        .collect()
}

fn row(
    cluster: &str,
    key: &str,
    kind: &'static str,
    path: &str,
) -> (String, String, &'static str, String) {
    (cluster.into(), key.into(), kind, path.into())
}

/// Both clusters of the example: three Kustomizations and the three
/// HelmReleases they apply; `ingress` differs between the two layouts.
fn expected(ingress: &str) -> Vec<(String, String, &'static str, String)> {
    let mut rows = Vec::new();
    for cluster in ["production", "staging"] {
        let apps = format!("apps/{cluster}");
        rows.extend([
            row(
                cluster,
                "cert-manager/cert-manager",
                "HelmRelease",
                "infrastructure/controllers",
            ),
            row(
                cluster,
                ingress,
                "HelmRelease",
                "infrastructure/controllers",
            ),
            row(cluster, "flux-system/apps", "Kustomization", &apps),
            row(
                cluster,
                "flux-system/infra-configs",
                "Kustomization",
                "infrastructure/configs",
            ),
            row(
                cluster,
                "flux-system/infra-controllers",
                "Kustomization",
                "infrastructure/controllers",
            ),
            row(cluster, "podinfo/podinfo", "HelmRelease", &apps),
        ]);
    }
    rows.sort();
    rows
}

#[test]
fn flux_2_7_layout_external_artifacts_map_back_to_the_repository() {
    let tree = example("flux-2.7");
    let mut got = table(&tree, &[]);
    got.sort();
    assert_eq!(
        got,
        expected("envoy-gateway-system/envoy-gateway"),
        "{got:#?}"
    );
    let discovery = discover_flux(&tree, &[]).unwrap();
    let apps = discovery
        .apps
        .iter()
        .find(|a| a.key() == "flux-system/apps" && a.cluster == "staging")
        .unwrap();
    assert_eq!(apps.source_ref.kind, "ExternalArtifact");
    assert_eq!(apps.source_ref.name, "apps");
    assert_eq!(apps.defined_in, "clusters/staging/apps.yaml");
    let podinfo = discovery
        .apps
        .iter()
        .find(|a| a.key() == "podinfo/podinfo" && a.cluster == "production")
        .unwrap();
    assert_eq!(podinfo.kind, FluxKind::HelmRelease);
    assert_eq!(podinfo.source_ref.kind, "HelmRepository");
    assert_eq!(podinfo.source_ref.name, "podinfo");
}

#[test]
fn flux_2_6_layout_git_repository_paths() {
    let tree = example("flux-2.6");
    let mut got = table(&tree, &[]);
    got.sort();
    assert_eq!(got, expected("ingress-nginx/ingress-nginx"), "{got:#?}");
    let discovery = discover_flux(&tree, &[]).unwrap();
    assert!(discovery.apps.iter().all(|a| a.source_url.is_none()));
    assert!(
        discovery
            .apps
            .iter()
            .filter(|a| a.kind == FluxKind::Kustomization)
            .all(|a| a.source_ref.kind == "GitRepository" && a.source_ref.name == "flux-system")
    );
}

const GIT_REPO: &str = "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flux-system, namespace: flux-system}
spec: {url: 'https://github.com/acme/fleet', ref: {branch: main}}
";

fn kustomization(name: &str, path: &str, source: &str) -> String {
    format!(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: {name}, namespace: flux-system}}
spec:
  interval: 10m
  path: {path}
  sourceRef: {{kind: {source}, name: flux-system}}
"
    )
}

#[test]
fn nested_kustomizations_inherit_the_cluster_that_applies_them() {
    let tree = MemoryTree::new()
        .with("clusters/prod-eu/sync.yaml", GIT_REPO)
        .with(
            "clusters/prod-eu/tenants.yaml",
            kustomization("tenants", "./tenants", "GitRepository"),
        )
        .with(
            "tenants/shop.yaml",
            kustomization("shop", "./shop/prod", "GitRepository"),
        )
        .with(
            "shop/prod/deploy.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        );
    let got = table(&tree, &[]);
    assert_eq!(
        got,
        [
            row("prod-eu", "flux-system/shop", "Kustomization", "shop/prod"),
            row("prod-eu", "flux-system/tenants", "Kustomization", "tenants"),
        ]
    );
    let discovery = discover_flux(&tree, &[]).unwrap();
    assert!(
        discovery
            .apps
            .iter()
            .all(|a| a.source_url.as_deref() == Some("https://github.com/acme/fleet"))
    );
}

#[test]
fn configured_cluster_names_mark_directories_too() {
    let tree = MemoryTree::new()
        .with(
            "fleet/eu-west/apps.yaml",
            kustomization("apps", "./apps", "GitRepository"),
        )
        .with(
            "fleet/other/apps.yaml",
            kustomization("apps", "./apps", "GitRepository"),
        )
        .with(
            "apps/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        );
    assert_eq!(
        table(&tree, &["eu-west".into()]),
        [
            row("", "flux-system/apps", "Kustomization", "apps"),
            row("eu-west", "flux-system/apps", "Kustomization", "apps"),
        ]
    );
    assert_eq!(
        cluster_of_file("clusters/a/b/c.yaml", &[]).as_deref(),
        Some("a")
    );
    assert_eq!(cluster_of_file("clusters/file.yaml", &[]), None);
    assert_eq!(cluster_of_file("x/eu-west", &["eu-west".into()]), None);
}

#[test]
fn what_cannot_be_followed_is_a_finding_not_an_error() {
    let tree = MemoryTree::new()
        .with(
            "clusters/a/oci.yaml",
            kustomization("oci", "./x", "OCIRepository"),
        )
        .with(
            "clusters/a/gone.yaml",
            kustomization("gone", "./missing", "GitRepository"),
        )
        .with(
            "clusters/a/escape.yaml",
            kustomization("escape", "../../etc", "GitRepository"),
        )
        .with(
            "clusters/a/artifact.yaml",
            kustomization("art", "./x", "ExternalArtifact"),
        )
        .with(
            "clusters/a/broken.yaml",
            "kind: Kustomization\napiVersion: kustomize.toolkit.fluxcd.io/v1\nmetadata: [\n",
        )
        .with("clusters/a/binary.yaml", b"fluxcd.io\0\xff".to_vec());
    let discovery = discover_flux(&tree, &[]).unwrap();
    assert!(discovery.apps.is_empty(), "{:?}", discovery.apps);
    let details: Vec<String> = discovery.findings.iter().map(|f| f.to_string()).collect();
    let all = details.join("\n");
    for expected in [
        "reads OCIRepository flux-system/flux-system",
        "\"missing\" is not a directory",
        "leaves the source",
        "no ArtifactGenerator here produces",
        "clusters/a/broken.yaml",
        "clusters/a/binary.yaml",
    ] {
        assert!(all.contains(expected), "{expected} not in:\n{all}");
    }
}

#[test]
fn two_hundred_kustomizations_on_two_clusters() {
    // The Flux user: 200 Kustomizations, each cluster its own
    // directory, every app an overlay over a shared base with a HelmRelease.
    let mut tree = MemoryTree::new().with(
        "base/release.yaml",
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: web}\nspec:\n  chart: {spec: {chart: web, sourceRef: {kind: HelmRepository, name: charts}}}\n",
    );
    tree.insert("base/kustomization.yaml", "resources: [release.yaml]\n");
    for cluster in ["eu", "us"] {
        for i in 0..200 {
            let dir = format!("apps/app{i}/{cluster}");
            tree.insert(
                &format!("{dir}/kustomization.yaml"),
                format!("namespace: app{i}\nresources: [../../../base]\n"),
            );
            tree.insert(
                &format!("clusters/{cluster}/app{i}.yaml"),
                kustomization(&format!("app{i}"), &format!("./{dir}"), "GitRepository"),
            );
        }
    }
    let started = std::time::Instant::now();
    let discovery = discover_flux(&tree, &[]).unwrap();
    let elapsed = started.elapsed();
    println!("discovered {} apps in {elapsed:?}", discovery.apps.len());
    assert_eq!(discovery.apps.len(), 800, "{:?}", discovery.findings);
    let web = discovery
        .apps
        .iter()
        .find(|a| a.key() == "app7/web" && a.cluster == "us")
        .unwrap();
    assert_eq!(web.kind, FluxKind::HelmRelease);
    assert_eq!(web.path, "apps/app7/us");
}
