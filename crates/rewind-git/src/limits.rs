//! libgit2's process-wide memory bounds, and giving freed heap back.
//!
//! libgit2 keeps parsed objects (commits, and trees and tags up to 4 KiB;
//! never blobs) in a per-repository cache whose total over the process is
//! bounded by one global, 256 MiB by default. Resolving thousands of
//! history entries touches tens of thousands of distinct small trees, so
//! an idle rewind kept most of that bound as anonymous memory. Pack files
//! are read through `mmap` windows (`GIT_OPT_SET_MWINDOW_*`): those pages
//! are file-backed (page cache, `RssFile`), which the kernel reclaims
//! under pressure, so they are left at libgit2's defaults.

// git2 marks these option calls `unsafe` because libgit2 does not
// synchronise them with other threads' use of the library. Each one set
// here is a single integer that libgit2 reads when it stores an object;
// another thread reading it at the same moment sees the old or the new
// bound, both valid. `malloc_trim` is the other foreign call. This module
// is the crate's only unsafe code.
#![allow(unsafe_code)]

use crate::GitError;

/// Bounds libgit2's object cache to `bytes` for the whole process. Later
/// calls replace the bound; objects above it are evicted as new ones come.
pub fn set_object_cache_bytes(bytes: usize) -> Result<(), GitError> {
    let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
    // SAFETY: see the module comment; the value is a plain size.
    unsafe { git2::opts::set_cache_max_size(bytes) }.map_err(|e| GitError::Cache {
        path: "(libgit2 options)".to_string(),
        message: e.message().to_string(),
    })
}

/// Pack files libgit2 keeps open (descriptor and mapped windows) at once.
/// Every fetch that brings objects adds a pack to the cache and libgit2
/// keeps each one open for good, so a long-running rewind held one
/// descriptor per fetch (the soak: 42 → 140 in ten minutes) until
/// `Too many open files`. Past the limit libgit2 closes the least recently
/// used pack and reopens it when needed.
pub const OPEN_PACK_LIMIT: usize = 64;

/// Bounds the pack files libgit2 keeps open for the whole process.
pub fn set_open_pack_limit(packs: usize) -> Result<(), GitError> {
    // SAFETY: see the module comment; the value is a plain count that
    // libgit2 reads when it maps a pack.
    unsafe { git2::opts::set_mwindow_file_limit(packs) }.map_err(|e| GitError::Cache {
        path: "(libgit2 options)".to_string(),
        message: e.message().to_string(),
    })
}

/// Stops libgit2 from hashing every object again each time it reads it.
/// Each object in the cache was hashed when it arrived (libgit2 indexes a
/// fetched pack, hashing every object, before using it) or was written by
/// rewind itself; what is stored is zlib data, whose checksum catches a
/// damaged disk block on every read; `git fsck` is the full check. `git`
/// itself does not hash objects on ordinary reads either. A cold resolve
/// of a fleet spent 12 % of its CPU hashing, mostly the same large
/// `apps/` trees read once per history entry (docs/benchmarks.md).
pub fn skip_rehashing_reads() {
    git2::opts::strict_hash_verification(false);
}

/// Gives the heap's free pages back to the kernel (glibc's `malloc_trim`;
/// nothing elsewhere). glibc returns freed memory only from the top of each
/// arena, so after a burst (a pack indexed, thousands of resolves on
/// blocking threads, each with its own arena) the resident set stays at
/// the peak while idle. Takes a few milliseconds on a large heap: call it
/// after bursts, not per request.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists, under the
    // allocator's locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// libgit2's object cache: bytes held now and the bound.
pub fn object_cache_usage() -> Option<(usize, usize)> {
    // SAFETY: reads two integers; see the module comment.
    let (current, max) = unsafe { git2::opts::get_cached_memory() }.ok()?;
    Some((
        usize::try_from(current).unwrap_or(0),
        usize::try_from(max).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releasing_free_memory_is_harmless() {
        let big = vec![1u8; 8 << 20];
        drop(std::hint::black_box(big));
        release_free_memory();
    }

    /// Descriptors of this process open on `.pack` files under `dir`.
    fn open_packs_under(dir: &std::path::Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| {
                target.starts_with(dir) && target.extension().is_some_and(|e| e == "pack")
            })
            .count()
    }

    #[test]
    fn a_cache_of_many_packs_keeps_only_the_limit_open() {
        use crate::test_remote::{TestRemote, git};
        let dir = tempfile::tempdir().unwrap();
        let TestRemote { remote, work } = TestRemote::new(dir.path());
        let url = remote.to_str().unwrap();
        let cache = dir.path().join("cache");
        let settings = crate::GitSettings::new(format!("file://{url}"), "main", &cache);
        // As `Service::start` does: before the cache opens any pack.
        set_open_pack_limit(4).unwrap();
        let repo = crate::GitRepo::open(settings).unwrap();
        // One fetch per commit: libgit2 keeps each fetch as its own pack.
        // Straight through libgit2, as `GitRepo::fetch` rolls packs up.
        for n in 0..12 {
            std::fs::write(work.join(format!("f{n}.txt")), format!("{n}\n")).unwrap();
            git(&work, &["add", "."]);
            git(&work, &["commit", "-q", "-m", &format!("c{n}")]);
            git(&work, &["push", "-q", url, "main"]);
            repo.repository()
                .remote_anonymous(url)
                .unwrap()
                .fetch(&["+refs/heads/main:refs/remotes/origin/main"], None, None)
                .unwrap();
        }
        let packs = std::fs::read_dir(repo.path().join("objects/pack"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "pack")
            })
            .count();
        assert!(packs >= 12, "{packs} packs");

        // Read every file of every commit: every pack is needed.
        let head = repo.head("main").unwrap().unwrap();
        let r = repo.repository();
        let mut walk = r.revwalk().unwrap();
        walk.push(git2::Oid::from_str(head.as_str()).unwrap())
            .unwrap();
        for oid in walk {
            let tree = r.find_commit(oid.unwrap()).unwrap().tree().unwrap();
            for entry in tree.iter() {
                r.find_blob(entry.id()).unwrap();
            }
        }
        let open = open_packs_under(&cache);
        set_open_pack_limit(OPEN_PACK_LIMIT).unwrap();
        assert!(open <= 4, "{open} pack files open with a limit of 4");
    }

    #[test]
    fn the_bound_is_what_was_set() {
        set_object_cache_bytes(3 << 20).unwrap();
        let (_, max) = object_cache_usage().unwrap();
        assert_eq!(max, 3 << 20);
    }
}
