//! The GitOps repository of the end-to-end tests: a bare repository with
//! one kustomize app (base + prod overlay), written with git2 and inspected
//! with the git CLI, an independent referee.

use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{Oid, Repository, Signature, build::TreeUpdateBuilder};

pub const APP: &str = "checkout";
pub const APP_PATH: &str = "apps/checkout/overlays/prod";
pub const BASE_PATH: &str = "apps/checkout/base";

#[derive(Debug)]
pub struct Repo {
    pub path: PathBuf,
    /// v1.4.1: the known-good configuration.
    pub good: String,
    /// v1.4.2 with a feature flag on: the bad deploy.
    pub bad: String,
}

pub fn deployment(flag: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\nspec:\n  replicas: 3\n  revisionHistoryLimit: 10\n  selector:\n    matchLabels:\n      app: checkout\n  template:\n    metadata:\n      labels:\n        app: checkout\n    spec:\n      containers:\n        - name: api\n          image: registry.example.com/shop/checkout:v1.4.0\n          env:\n            - name: NEW_CHECKOUT_FLOW\n              value: \"{flag}\"\n"
    )
}

pub fn overlay(tag: &str) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\nimages:\n  - name: registry.example.com/shop/checkout\n    newTag: {tag}\n"
    )
}

impl Repo {
    pub fn create(path: &Path) -> Repo {
        let repository = Repository::init_bare(path).expect("init bare");
        drop(repository);
        let mut repo = Repo {
            path: path.to_path_buf(),
            good: String::new(),
            bad: String::new(),
        };
        repo.good = repo.commit(
            &[
                ("README.md", "# shop\n".into()),
                (
                    "apps/checkout/base/kustomization.yaml",
                    "resources:\n  - deployment.yaml\n".into(),
                ),
                ("apps/checkout/base/deployment.yaml", deployment("false")),
                (
                    "apps/checkout/overlays/prod/kustomization.yaml",
                    overlay("v1.4.1"),
                ),
                ("apps/other/kustomization.yaml", "resources: []\n".into()),
            ],
            "deploy(checkout/prod): v1.4.1",
        );
        repo.bad = repo.commit(
            &[
                ("apps/checkout/base/deployment.yaml", deployment("true")),
                (
                    "apps/checkout/overlays/prod/kustomization.yaml",
                    overlay("v1.4.2"),
                ),
            ],
            "deploy(checkout/prod): v1.4.2",
        );
        repo
    }

    /// Commits `files` on top of `main`, as a developer's push would.
    pub fn commit(&self, files: &[(&str, String)], message: &str) -> String {
        let repo = Repository::open_bare(&self.path).expect("open");
        let signature = Signature::now("Dev Eloper", "dev@example.com").expect("signature");
        let parent = repo
            .find_reference("refs/heads/main")
            .ok()
            .and_then(|r| r.peel_to_commit().ok());
        let base = match &parent {
            Some(p) => p.tree().expect("tree"),
            None => repo
                .find_tree(repo.treebuilder(None).expect("tb").write().expect("write"))
                .expect("empty tree"),
        };
        let mut update = TreeUpdateBuilder::new();
        for (path, content) in files {
            let blob = repo.blob(content.as_bytes()).expect("blob");
            update.upsert(*path, blob, git2::FileMode::Blob);
        }
        let tree: Oid = update.create_updated(&repo, &base).expect("tree");
        let tree = repo.find_tree(tree).expect("tree");
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = repo
            .commit(
                Some("refs/heads/main"),
                &signature,
                &signature,
                message,
                &tree,
                &parents,
            )
            .expect("commit");
        repo.set_head("refs/heads/main").expect("head");
        id.to_string()
    }

    /// Commits on top of `main`: `files` written, `links` as symbolic
    /// links (path → target text), `removed` deleted.
    pub fn commit_entries(
        &self,
        files: &[(&str, String)],
        links: &[(&str, &str)],
        removed: &[&str],
        message: &str,
    ) -> String {
        let repo = Repository::open_bare(&self.path).expect("open");
        let signature = Signature::now("Dev Eloper", "dev@example.com").expect("signature");
        let parent = repo
            .find_reference("refs/heads/main")
            .expect("main")
            .peel_to_commit()
            .expect("commit");
        let mut update = TreeUpdateBuilder::new();
        for (path, content) in files {
            let blob = repo.blob(content.as_bytes()).expect("blob");
            update.upsert(*path, blob, git2::FileMode::Blob);
        }
        for (path, target) in links {
            let blob = repo.blob(target.as_bytes()).expect("blob");
            update.upsert(*path, blob, git2::FileMode::Link);
        }
        for path in removed {
            update.remove(*path);
        }
        let tree = update
            .create_updated(&repo, &parent.tree().expect("tree"))
            .expect("tree");
        let tree = repo.find_tree(tree).expect("tree");
        repo.commit(
            Some("refs/heads/main"),
            &signature,
            &signature,
            message,
            &tree,
            &[&parent],
        )
        .expect("commit")
        .to_string()
    }

    /// `git <args>` in the bare repository; its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .arg("--git-dir")
            .arg(&self.path)
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// `git rev-parse <rev>:<path>`: the object a path names at a revision.
    pub fn object(&self, rev: &str, path: &str) -> String {
        self.git(&["rev-parse", &format!("{rev}:{path}")])
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "refs/heads/main"])
    }

    /// Branches under `rewind/`.
    pub fn rewind_branches(&self) -> Vec<String> {
        self.git(&[
            "for-each-ref",
            "--format=%(refname:short)",
            "refs/heads/rewind/",
        ])
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// `git fsck` passes.
    pub fn fsck(&self) {
        self.git(&["fsck", "--no-progress"]);
    }
}
