//! Keeps the cache's pack files few. libgit2 stores what each fetch brings
//! as one more pack and has no `git gc`: a rewind that merges all day
//! collected a pack per fetch (the soak: 68 in eight minutes). Each one is
//! an index that every lookup missing the earlier packs consults, a
//! descriptor while open, and structures (its delta-base cache among them)
//! that libgit2 keeps for the life of the repository handle.
//!
//! After a fetch that received objects, the smallest packs are rolled into
//! one, geometrically, as `git repack --geometric=2` chooses them: the packs
//! left, by size, each at least twice the one below. A roll-up rewrites only
//! packs smaller than what it produces, so each object is rewritten about
//! log₂(growth) times over the cache's life, and the big pack of the first
//! clone is left alone until the packs after it add up to half its size.
//! Packs over 64 MiB are never rewritten (see [`MAX_REWRITTEN_BYTES`]).
//!
//! Every object of the rolled-up packs is kept (reachable or not), the new
//! pack is complete before an old one is removed, and the repository handle
//! is reopened afterwards so libgit2 lets go of the old packs.

use std::path::{Path, PathBuf};

use git2::{Odb, Oid, Repository};

/// Each pack left is at least this many times the size of the next smaller.
const FACTOR: u64 = 2;

/// Packs larger than this are never rewritten. A roll-up runs inside the
/// fetch, holding the repository: rewriting a large pack (the first clone
/// of a big repository) would stall every Git operation for as long as
/// libgit2 takes to delta it, and its pack builder keeps a record per
/// object. Above the bound, the cache gains one pack per this many bytes
/// fetched, which stays a handful.
const MAX_REWRITTEN_BYTES: u64 = 64 << 20;

/// A pack file of the cache: its `.pack` path and size in bytes.
#[derive(Debug, Clone)]
pub(crate) struct Pack {
    pub(crate) path: PathBuf,
    pub(crate) bytes: u64,
}

/// What a roll-up did, for the log.
#[derive(Debug)]
pub(crate) struct RolledUp {
    pub(crate) packs: usize,
    pub(crate) objects: usize,
}

/// How many of `ascending` (pack sizes, smallest first) to roll into one:
/// 0, or at least 2.
pub(crate) fn roll_up_count(ascending: &[u64]) -> usize {
    let small = ascending.partition_point(|&bytes| bytes <= MAX_REWRITTEN_BYTES);
    let ascending = &ascending[..small];
    // From the largest down, the first pack not at least FACTOR times the
    // one below breaks the progression: it and everything below roll up.
    let mut split = 0;
    for i in (1..ascending.len()).rev() {
        if ascending[i] < ascending[i - 1].saturating_mul(FACTOR) {
            split = i + 1;
            break;
        }
    }
    // The roll-up may now be too big for the packs just above it.
    let mut total: u64 = ascending[..split].iter().sum();
    while split < ascending.len() && ascending[split] < total.saturating_mul(FACTOR) {
        total += ascending[split];
        split += 1;
    }
    if split < 2 { 0 } else { split }
}

/// The complete packs under `objects/pack` (index written, no `.keep`).
pub(crate) fn packs(objects: &Path) -> std::io::Result<Vec<Pack>> {
    let mut packs = Vec::new();
    for entry in std::fs::read_dir(objects.join("pack"))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "pack")
            || !path.with_extension("idx").exists()
            || path.with_extension("keep").exists()
        {
            continue;
        }
        let bytes = std::fs::metadata(&path)?.len();
        packs.push(Pack { path, bytes });
    }
    packs.sort_by(|a, b| a.bytes.cmp(&b.bytes).then_with(|| a.path.cmp(&b.path)));
    Ok(packs)
}

/// Rolls up the smallest packs of `repo` if the sizes call for it. The
/// caller holds the cache lock and must reopen `repo` when this answers
/// `Some`.
pub(crate) fn roll_up(repo: &Repository) -> Result<Option<RolledUp>, git2::Error> {
    let objects = repo.path().join("objects");
    let all = packs(&objects).map_err(io_error)?;
    let sizes: Vec<u64> = all.iter().map(|p| p.bytes).collect();
    let n = roll_up_count(&sizes);
    if n == 0 {
        return Ok(None);
    }
    let chosen = &all[..n];
    let oids = objects_of(&objects, chosen)?;

    let mut builder = repo.packbuilder()?;
    for &oid in &oids {
        builder.insert_object(oid, None)?;
    }
    let pack_dir = objects.join("pack");
    // Writes `pack-<hash>.pack` and its index under temporary names, then
    // renames them into place: complete before anything is removed.
    builder.write(&pack_dir, 0)?;
    let written = builder
        .name()?
        .map(|hash| pack_dir.join(format!("pack-{hash}.pack")));
    for pack in chosen {
        if Some(&pack.path) == written.as_ref() {
            continue;
        }
        for ext in ["pack", "idx", "rev"] {
            match std::fs::remove_file(pack.path.with_extension(ext)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(e)),
            }
        }
    }
    Ok(Some(RolledUp {
        packs: n,
        objects: oids.len(),
    }))
}

/// Every object id stored in `packs`: read through an object database that
/// sees only those packs (hard links in a scratch `objects` directory).
fn objects_of(objects: &Path, packs: &[Pack]) -> Result<Vec<Oid>, git2::Error> {
    let scratch = objects.join("rewind-roll-up");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("pack")).map_err(io_error)?;
    let listed = (|| {
        for pack in packs {
            for ext in ["pack", "idx"] {
                let from = pack.path.with_extension(ext);
                let to = scratch
                    .join("pack")
                    .join(from.file_name().unwrap_or_default());
                if std::fs::hard_link(&from, &to).is_err() {
                    std::fs::copy(&from, &to).map_err(io_error)?;
                }
            }
        }
        let odb = Odb::new()?;
        odb.add_disk_alternate(&scratch.to_string_lossy())?;
        let mut oids = Vec::new();
        odb.foreach(|oid| {
            oids.push(*oid);
            true
        })?;
        Ok(oids)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    listed
}

fn io_error(e: std::io::Error) -> git2::Error {
    git2::Error::from_str(&format!("rolling up pack files: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progression_decides_what_rolls_up() {
        // One pack, or a clean progression: nothing to do.
        assert_eq!(roll_up_count(&[]), 0);
        assert_eq!(roll_up_count(&[1000]), 0);
        assert_eq!(roll_up_count(&[1, 1000]), 0);
        assert_eq!(roll_up_count(&[1, 2, 4, 1000]), 0);
        // Small packs after the first clone: they roll up, the clone stays.
        assert_eq!(roll_up_count(&[1, 1, 1000]), 2);
        assert_eq!(roll_up_count(&[1, 1, 1, 1, 1000]), 4);
        // A break higher up takes everything below it.
        assert_eq!(roll_up_count(&[1, 8, 9, 1000]), 3);
        // The roll-up grows past the next pack: that one joins too.
        assert_eq!(roll_up_count(&[3, 3, 10, 1000]), 3);
        assert_eq!(roll_up_count(&[300, 300, 1000]), 3);
        // Large packs are left alone, whatever the progression says.
        let big = MAX_REWRITTEN_BYTES;
        assert_eq!(roll_up_count(&[1, 1, big + 1, big + 2]), 2);
        assert_eq!(roll_up_count(&[big / 2, big / 2 + 1, big + 1]), 2);
        assert_eq!(roll_up_count(&[big + 1, big + 2]), 0);
    }

    /// A rewind that fetches after every merge: forty fetches that each
    /// bring one commit leave a handful of packs, not forty, and `git fsck`
    /// finds every object of every commit (and the cache reads them).
    #[test]
    fn fetch_after_fetch_keeps_few_packs_and_every_object() {
        use crate::test_remote::{TestRemote, git};
        let dir = tempfile::tempdir().unwrap();
        let TestRemote { remote, work } = TestRemote::new(dir.path());
        let url = remote.to_str().unwrap();
        // A first "clone" much bigger than what follows, as in production.
        for n in 0..200 {
            std::fs::write(
                work.join(format!("base{n}.txt")),
                format!("{n}\n").repeat(50),
            )
            .unwrap();
        }
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", "base"]);
        git(&work, &["push", "-q", url, "main"]);
        let cache = dir.path().join("cache");
        let settings = crate::GitSettings::new(format!("file://{url}"), "main", &cache);
        let mut repo = crate::GitRepo::open(settings).unwrap();
        repo.fetch().unwrap();
        let mut most = 0;
        for n in 0..40 {
            std::fs::write(work.join(format!("f{n}.txt")), format!("change {n}\n")).unwrap();
            git(&work, &["add", "."]);
            git(&work, &["commit", "-q", "-m", &format!("c{n}")]);
            git(&work, &["push", "-q", url, "main"]);
            repo.fetch().unwrap();
            most = most.max(packs(&repo.path().join("objects")).unwrap().len());
        }
        assert!(most <= 7, "up to {most} packs after 41 fetches");
        assert!(!repo.path().join("objects/rewind-roll-up").exists());

        let head = repo.head("main").unwrap().unwrap();
        let r = repo.repository();
        let mut walk = r.revwalk().unwrap();
        walk.push(Oid::from_str(head.as_str()).unwrap()).unwrap();
        let mut commits = 0;
        for oid in walk {
            let tree = r.find_commit(oid.unwrap()).unwrap().tree().unwrap();
            for entry in tree.iter() {
                r.find_blob(entry.id()).unwrap();
            }
            commits += 1;
        }
        assert_eq!(commits, 42);
        git(
            repo.path(),
            &["fsck", "--full", "--strict", "--no-dangling"],
        );
    }

    proptest::proptest! {
        /// Whatever the sizes, what is left after a roll-up (its total
        /// among the others) is a progression: a second roll-up right
        /// after finds nothing, so a fetch that brings nothing new never
        /// rewrites packs.
        #[test]
        fn after_a_roll_up_the_packs_are_a_progression(
            mut sizes in proptest::collection::vec(
                proptest::prop_oneof![
                    1u64..1_000_000,
                    MAX_REWRITTEN_BYTES / 2..MAX_REWRITTEN_BYTES * 2
                ],
                0..40,
            )
        ) {
            sizes.sort_unstable();
            let n = roll_up_count(&sizes);
            proptest::prop_assert!(n == 0 || n >= 2);
            let mut left: Vec<u64> = sizes[n..].to_vec();
            if n > 0 {
                left.push(sizes[..n].iter().sum());
            }
            left.sort_unstable();
            proptest::prop_assert_eq!(roll_up_count(&left), 0, "left {:?}", left);
        }
    }
}
