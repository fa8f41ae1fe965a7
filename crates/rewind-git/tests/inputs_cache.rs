//! The manifest crate's `InputsCache` over real Git trees: carried from
//! commit to commit through generated histories (shared-base changes,
//! renames, new and removed apps), it must always answer exactly what
//! computing the kustomization closure afresh answers.

mod common;

use common::{corpus, open_cache};
use rewind_domain::CommitId;
use rewind_manifest::{InputsCache, app_inputs};

#[test]
fn cached_inputs_equal_fresh_ones_on_every_commit() {
    for generated in corpus() {
        let (_dir, mut repo) = open_cache(&generated.url(), "main");
        repo.fetch().unwrap();
        let paths: Vec<&String> = generated
            .summary
            .apps
            .iter()
            .flat_map(|app| app.paths.values())
            .collect();
        let mut cache = InputsCache::new();
        // Every commit, oldest first, like a service following `main`.
        for sha in &generated.commits {
            let commit = CommitId::new(sha).unwrap();
            let tree = repo.tree(&commit).unwrap();
            for path in &paths {
                let fresh = app_inputs(&tree, path);
                let cached = cache.app_inputs(&tree, path);
                match (fresh, cached) {
                    (Ok(fresh), Ok(cached)) => assert_eq!(
                        cached, fresh,
                        "{path} at {sha}: the cache answered stale inputs"
                    ),
                    (Err(_), Err(_)) => {}
                    (fresh, cached) => {
                        panic!("{path} at {sha}: fresh {fresh:?}, cached {cached:?}")
                    }
                }
            }
        }
        assert!(!cache.is_empty(), "nothing was cached over Git trees");
    }
}
