//! Flux apps found in the repository itself, so a Flux user need not copy
//! every `Kustomization` into `[[apps]]`.
//!
//! [`discover_flux`] walks the tree for `kustomize.toolkit.fluxcd.io`
//! Kustomizations (with the `GitRepository` objects and Flux 2.7
//! `ArtifactGenerator`s they read from), resolves each one's `spec.path` to
//! a directory of this repository, and renders that directory to find the
//! `helm.toolkit.fluxcd.io` HelmReleases it applies. The cluster of an app
//! is the directory its definition lives in: `clusters/<name>/…`, or any
//! directory named like a configured cluster; a Kustomization defined
//! outside such a directory inherits the cluster of the Kustomization whose
//! path contains its file (`clusters/prod/infra.yaml` applies
//! `infrastructure/`, which defines more Kustomizations).
//!
//! Pure: reads only through [`TreeSource`]; files that do not parse are
//! skipped with a [`Finding`], never an error.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ManifestError;
use crate::finding::{Finding, FindingCode};
use crate::node::Node;
use crate::parse::{is_yaml_path, parse_documents};
use crate::path;
use crate::render::render;
use crate::source::{CachedTree, EntryKind, TreeSource};

/// Directory depth the walk goes to.
const MAX_DEPTH: usize = 16;
/// Files read at most: a bound on the work of one discovery.
const MAX_FILES: usize = 20_000;
/// Rounds of cluster inheritance (nesting of Kustomizations).
const MAX_ROUNDS: usize = 8;

/// What kind of Flux object an app is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FluxKind {
    Kustomization,
    HelmRelease,
}

impl FluxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FluxKind::Kustomization => "Kustomization",
            FluxKind::HelmRelease => "HelmRelease",
        }
    }
}

/// A Flux `sourceRef` (or a HelmRelease's chart source).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// One Flux app: a Kustomization or HelmRelease on one cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FluxApp {
    /// The cluster (see the module doc); empty when the layout names none.
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub kind: FluxKind,
    /// The directory of this repository rewind rolls back: the
    /// Kustomization's `spec.path` (through an `ArtifactGenerator`'s copy
    /// rules when it reads an `ExternalArtifact`); for a HelmRelease, the
    /// path of the Kustomization that applies it.
    pub path: String,
    /// A Kustomization's `spec.sourceRef`; a HelmRelease's chart source
    /// (`spec.chart.spec.sourceRef` or `spec.chartRef`).
    pub source_ref: SourceRef,
    /// `spec.url` of the GitRepository the files come from, when this
    /// repository defines it: callers keep only apps of their own repository.
    pub source_url: Option<String>,
    /// The file that defines a Kustomization; for a HelmRelease, the file
    /// it was rendered from.
    pub defined_in: String,
}

impl FluxApp {
    /// The app key Flux events use: `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Every Flux app found, sorted by cluster, namespace and name, and what
/// could not be followed.
#[derive(Debug, Clone, Default)]
pub struct FluxDiscovery {
    pub apps: Vec<FluxApp>,
    pub findings: Vec<Finding>,
}

/// A Kustomization document as found in a file.
#[derive(Debug, Clone)]
struct RawKustomization {
    file: String,
    namespace: String,
    name: String,
    path: String,
    source_ref: SourceRef,
    target_namespace: Option<String>,
}

#[derive(Debug, Clone)]
struct GitRepository {
    file: String,
    namespace: String,
    name: String,
    url: String,
}

#[derive(Debug, Clone)]
struct Generator {
    file: String,
    namespace: String,
    /// alias → GitRepository (namespace, name).
    sources: BTreeMap<String, (String, String)>,
    /// artifact name → (alias, repository dir, artifact dir) copy rules.
    artifacts: BTreeMap<String, Vec<(String, String, String)>>,
}

#[derive(Debug, Default)]
struct Found {
    kustomizations: Vec<RawKustomization>,
    repositories: Vec<GitRepository>,
    generators: Vec<Generator>,
    findings: Vec<Finding>,
    files: usize,
    /// The configured cluster names.
    clusters: Vec<String>,
}

/// Finds the Flux apps of the tree. `clusters` are configured cluster
/// names (`[[clusters]]`); a directory with one of these names marks the
/// cluster like `clusters/<name>/` does.
pub fn discover_flux(
    src: &dyn TreeSource,
    clusters: &[String],
) -> Result<FluxDiscovery, ManifestError> {
    let cached = CachedTree::new(src);
    let src: &dyn TreeSource = &cached;
    let mut found = Found {
        clusters: clusters.to_vec(),
        ..Found::default()
    };
    walk(src, "", 0, &mut found)?;

    let mut findings = std::mem::take(&mut found.findings);
    // Resolve each Kustomization's path once; unresolvable ones are skipped.
    let mut resolved: Vec<(RawKustomization, String, Option<String>)> = Vec::new();
    for k in &found.kustomizations {
        let cluster = cluster_of_file(&k.file, clusters);
        match resolve_path(k, cluster.as_deref(), &found) {
            Ok((dir, url)) => match src.kind(&dir)? {
                Some(EntryKind::Dir) => resolved.push((k.clone(), dir, url)),
                _ => findings.push(Finding::notice(
                    FindingCode::MissingPath,
                    &k.file,
                    format!(
                        "Kustomization {}/{}: path {dir:?} is not a directory here",
                        k.namespace, k.name
                    ),
                )),
            },
            Err(reason) => findings.push(Finding::notice(
                FindingCode::Remote,
                &k.file,
                format!("Kustomization {}/{}: {reason}", k.namespace, k.name),
            )),
        }
    }

    // Clusters: from the file's directory, else inherited from the
    // Kustomizations whose path holds the file.
    let mut cluster_sets: Vec<BTreeSet<String>> = resolved
        .iter()
        .map(|(k, _, _)| cluster_of_file(&k.file, clusters).into_iter().collect())
        .collect();
    for _ in 0..MAX_ROUNDS {
        let mut changed = false;
        for i in 0..resolved.len() {
            if cluster_of_file(&resolved[i].0.file, clusters).is_some() {
                continue;
            }
            let file = resolved[i].0.file.clone();
            let inherited: BTreeSet<String> = resolved
                .iter()
                .zip(&cluster_sets)
                .enumerate()
                .filter(|(j, ((_, dir, _), _))| *j != i && path::is_within(&file, dir))
                .flat_map(|(_, (_, set))| set.iter().cloned())
                .collect();
            if !inherited.is_subset(&cluster_sets[i]) {
                cluster_sets[i].extend(inherited);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    let mut apps: BTreeMap<(String, String), FluxApp> = BTreeMap::new();
    let mut add = |app: FluxApp, findings: &mut Vec<Finding>| {
        let key = (app.cluster.clone(), app.key());
        match apps.get(&key) {
            Some(known) if known.path != app.path => findings.push(Finding::notice(
                FindingCode::Unsupported,
                &app.defined_in,
                format!(
                    "{} {} is also defined in {} (path {}); that one is kept",
                    app.kind.as_str(),
                    app.key(),
                    known.defined_in,
                    known.path
                ),
            )),
            Some(_) => {}
            None => {
                apps.insert(key, app);
            }
        }
    };
    for ((k, dir, url), set) in resolved.iter().zip(&cluster_sets) {
        let clusters_of_k: Vec<String> = if set.is_empty() {
            vec![String::new()]
        } else {
            set.iter().cloned().collect()
        };
        let releases = helm_releases(src, k, dir, &mut findings)?;
        for cluster in clusters_of_k {
            add(
                FluxApp {
                    cluster: cluster.clone(),
                    namespace: k.namespace.clone(),
                    name: k.name.clone(),
                    kind: FluxKind::Kustomization,
                    path: dir.clone(),
                    source_ref: k.source_ref.clone(),
                    source_url: url.clone(),
                    defined_in: k.file.clone(),
                },
                &mut findings,
            );
            for (namespace, name, source_ref, file) in &releases {
                add(
                    FluxApp {
                        cluster: cluster.clone(),
                        namespace: namespace.clone(),
                        name: name.clone(),
                        kind: FluxKind::HelmRelease,
                        path: dir.clone(),
                        source_ref: source_ref.clone(),
                        source_url: url.clone(),
                        defined_in: file.clone(),
                    },
                    &mut findings,
                );
            }
        }
    }
    findings.sort();
    findings.dedup();
    Ok(FluxDiscovery {
        apps: apps.into_values().collect(),
        findings,
    })
}

fn walk(
    src: &dyn TreeSource,
    dir: &str,
    depth: usize,
    found: &mut Found,
) -> Result<(), ManifestError> {
    let Some(entries) = src.list_dir(dir)? else {
        return Ok(());
    };
    for entry in entries {
        if entry.name.starts_with('.') {
            continue;
        }
        let child = path::child(dir, &entry.name);
        match entry.kind {
            EntryKind::Dir if depth < MAX_DEPTH => walk(src, &child, depth + 1, found)?,
            EntryKind::File if is_yaml_path(&child) => {
                if found.files >= MAX_FILES {
                    found.findings.push(Finding::notice(
                        FindingCode::TooLarge,
                        dir,
                        format!("more than {MAX_FILES} YAML files; the rest were not searched"),
                    ));
                    return Ok(());
                }
                found.files += 1;
                read_file(src, &child, found)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn read_file(src: &dyn TreeSource, file: &str, found: &mut Found) -> Result<(), ManifestError> {
    let Some(bytes) = src.read_file(file)? else {
        return Ok(());
    };
    // Cheap filter: only files that mention a Flux API group are parsed.
    if !bytes.windows(9).any(|w| w == b"fluxcd.io") {
        return Ok(());
    }
    let docs = match parse_documents(&bytes) {
        Ok(docs) => docs,
        Err(failure) => {
            found.findings.push(Finding::notice(
                FindingCode::InvalidYaml,
                file,
                format!("not searched for Flux objects: {failure}"),
            ));
            return Ok(());
        }
    };
    for doc in docs {
        let group = doc
            .str_at(&["apiVersion"])
            .and_then(|v| v.split_once('/'))
            .map_or("", |(group, _)| group);
        let kind = doc.str_at(&["kind"]).unwrap_or_default();
        let Some(name) = doc.str_at(&["metadata", "name"]).filter(|n| !n.is_empty()) else {
            continue;
        };
        let namespace = doc
            .str_at(&["metadata", "namespace"])
            .filter(|n| !n.is_empty())
            .unwrap_or("default")
            .to_owned();
        let name = name.to_owned();
        match (group, kind) {
            ("kustomize.toolkit.fluxcd.io", "Kustomization") => {
                let spec = doc.get("spec").cloned().unwrap_or(Node::Null);
                found.kustomizations.push(RawKustomization {
                    file: file.to_owned(),
                    path: spec.str_at(&["path"]).unwrap_or_default().to_owned(),
                    source_ref: source_ref(spec.get("sourceRef"), &namespace),
                    target_namespace: spec
                        .str_at(&["targetNamespace"])
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned),
                    namespace,
                    name,
                });
            }
            ("source.toolkit.fluxcd.io", "GitRepository") => {
                if let Some(url) = doc.str_at(&["spec", "url"]) {
                    found.repositories.push(GitRepository {
                        file: file.to_owned(),
                        namespace,
                        name,
                        url: url.to_owned(),
                    });
                }
            }
            ("source.extensions.fluxcd.io", "ArtifactGenerator") => {
                found.generators.push(generator(&doc, file, namespace));
            }
            _ => {}
        }
    }
    Ok(())
}

fn source_ref(node: Option<&Node>, default_namespace: &str) -> SourceRef {
    let field = |key: &str| {
        node.and_then(|n| n.str_at(&[key]))
            .filter(|v| !v.is_empty())
    };
    SourceRef {
        kind: field("kind").unwrap_or("GitRepository").to_owned(),
        namespace: field("namespace").unwrap_or(default_namespace).to_owned(),
        name: field("name").unwrap_or_default().to_owned(),
    }
}

fn generator(doc: &Node, file: &str, namespace: String) -> Generator {
    let mut sources = BTreeMap::new();
    for s in doc
        .at(&["spec", "sources"])
        .map(Node::as_seq)
        .unwrap_or_default()
    {
        if let (Some(alias), Some(name)) = (s.str_at(&["alias"]), s.str_at(&["name"]))
            && s.str_at(&["kind"]).unwrap_or("GitRepository") == "GitRepository"
        {
            let ns = s.str_at(&["namespace"]).unwrap_or(&namespace).to_owned();
            sources.insert(alias.to_owned(), (ns, name.to_owned()));
        }
    }
    let mut artifacts = BTreeMap::new();
    for a in doc
        .at(&["spec", "artifacts"])
        .map(Node::as_seq)
        .unwrap_or_default()
    {
        let Some(name) = a.str_at(&["name"]) else {
            continue;
        };
        let rules = a
            .get("copy")
            .map(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| copy_rule(c.str_at(&["from"])?, c.str_at(&["to"])?))
            .collect();
        artifacts.insert(name.to_owned(), rules);
    }
    Generator {
        file: file.to_owned(),
        namespace,
        sources,
        artifacts,
    }
}

/// `from: "@monorepo/apps/base/**"`, `to: "@artifact/base/"` →
/// `("monorepo", "apps/base", "base")`. Only whole-directory copies map a
/// Kustomization path back to the repository; file globs are skipped.
fn copy_rule(from: &str, to: &str) -> Option<(String, String, String)> {
    let from = from.strip_prefix('@')?;
    let (alias, rest) = from.split_once('/').unwrap_or((from, ""));
    let dir = rest
        .strip_suffix("**")
        .unwrap_or(rest)
        .trim_end_matches('/');
    if dir.contains('*') || dir.contains('?') || dir.contains('[') {
        return None;
    }
    let to = to.strip_prefix("@artifact")?.trim_matches('/');
    Some((
        alias.to_owned(),
        path::normalize(dir)?,
        path::normalize(to)?,
    ))
}

/// The repository directory a Kustomization applies, and the URL of the
/// GitRepository it reads when the repository defines it; `Err` names
/// why it is not in this repository.
fn resolve_path(
    k: &RawKustomization,
    cluster: Option<&str>,
    found: &Found,
) -> Result<(String, Option<String>), String> {
    let wanted = path::normalize(k.path.trim_start_matches("./"))
        .ok_or_else(|| format!("path {:?} leaves the source", k.path))?;
    let r = &k.source_ref;
    match r.kind.as_str() {
        "GitRepository" => Ok((
            wanted,
            repository_url(found, &r.namespace, &r.name, cluster),
        )),
        "ExternalArtifact" => {
            let generator = found
                .generators
                .iter()
                .filter(|g| g.namespace == r.namespace && g.artifacts.contains_key(&r.name))
                .min_by_key(|g| cluster_of_file(&g.file, &found.clusters).as_deref() != cluster)
                .ok_or_else(|| {
                    format!(
                        "reads ExternalArtifact {}/{}, which no ArtifactGenerator here produces",
                        r.namespace, r.name
                    )
                })?;
            let rules = &generator.artifacts[&r.name];
            let (alias, dir, to) = rules
                .iter()
                .filter(|(_, _, to)| path::is_within(&wanted, to))
                .max_by_key(|(_, _, to)| to.len())
                .ok_or_else(|| {
                    format!(
                        "path {wanted:?} of ExternalArtifact {} is not copied from a directory",
                        r.name
                    )
                })?;
            let rest = wanted[to.len()..].trim_start_matches('/');
            let url = generator
                .sources
                .get(alias)
                .and_then(|(ns, name)| repository_url(found, ns, name, cluster));
            Ok((path::join(dir, rest).unwrap_or_else(|| dir.clone()), url))
        }
        other => Err(format!(
            "reads {other} {}/{}, not a Git repository",
            r.namespace, r.name
        )),
    }
}

fn repository_url(
    found: &Found,
    namespace: &str,
    name: &str,
    cluster: Option<&str>,
) -> Option<String> {
    found
        .repositories
        .iter()
        .filter(|g| g.namespace == namespace && g.name == name)
        .min_by_key(|g| cluster_of_file(&g.file, &found.clusters).as_deref() != cluster)
        .map(|g| g.url.clone())
}

/// The HelmReleases a Kustomization applies: `(namespace, name, chart
/// source, file)`. Rendering failures are findings.
fn helm_releases(
    src: &dyn TreeSource,
    k: &RawKustomization,
    dir: &str,
    findings: &mut Vec<Finding>,
) -> Result<Vec<(String, String, SourceRef, String)>, ManifestError> {
    let rendered = match render(src, dir) {
        Ok(rendered) => rendered,
        Err(ManifestError::Source(e)) => return Err(ManifestError::Source(e)),
        Err(e) => {
            findings.push(Finding::notice(
                FindingCode::Unsupported,
                dir,
                format!(
                    "Kustomization {}/{}: not rendered: {e}",
                    k.namespace, k.name
                ),
            ));
            return Ok(Vec::new());
        }
    };
    let mut out = Vec::new();
    for object in rendered.objects {
        let api = object.body.str_at(&["apiVersion"]).unwrap_or_default();
        if !api.starts_with("helm.toolkit.fluxcd.io/") || object.kind() != "HelmRelease" {
            continue;
        }
        let name = object.name().to_owned();
        if name.is_empty() {
            continue;
        }
        let namespace = k
            .target_namespace
            .clone()
            .or_else(|| {
                object
                    .body
                    .str_at(&["metadata", "namespace"])
                    .map(str::to_owned)
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let chart = object
            .body
            .at(&["spec", "chart", "spec", "sourceRef"])
            .or_else(|| object.body.at(&["spec", "chartRef"]));
        let chart = source_ref(chart, &namespace);
        out.push((namespace, name, chart, object.source.clone()));
    }
    Ok(out)
}

/// `clusters/<name>/…` names the cluster, as does any directory named like
/// a configured cluster. Only directories count, never the file name.
pub fn cluster_of_file(file: &str, clusters: &[String]) -> Option<String> {
    let dirs: Vec<&str> = path::parent(file)
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(i) = dirs.iter().position(|d| *d == "clusters")
        && let Some(name) = dirs.get(i + 1)
    {
        return Some((*name).to_owned());
    }
    dirs.iter()
        .find(|d| clusters.iter().any(|c| c == *d))
        .map(|d| (*d).to_owned())
}
