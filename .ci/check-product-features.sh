#!/usr/bin/env bash
# Fails when test-only code would be linked into the product: the fake
# GitHub (rewind-forge feature `fake`), the ledger's test databases
# (rewind-ledger feature `testing`) and the crash tests' failpoints
# (rewind-engine feature `failpoints`, the `fail` crate's `failpoints`).
#
# With `--binary PATH [--test-binary PATH]` it also looks inside a built
# `rewind`: no failpoint name (each `failpoint!("…")` in rewind-engine) may
# occur in it, while the test build (`rewind-failpoints`, when given) must
# hold them all, so the check can fail.
#
# Why `cargo tree` and not a release build: `cargo tree -e features
# --edges normal` resolves features with the same resolver and the same
# package selection as `cargo build`, so it answers "would this build enable
# the feature" exactly, in about a second, without compiling anything and
# without guessing from symbol names in a binary. Dev-dependencies (where
# the features belong) are not part of a `cargo build`, hence
# `--edges normal`.
set -euo pipefail
cd "$(dirname "$0")/.."

pattern='^(rewind-forge feature "fake"|rewind-ledger feature "testing"|rewind-engine feature "failpoints"|fail feature "failpoints")'

features() {
  cargo tree --locked --quiet -e features --edges normal --prefix none "$@"
}

check() {
  local what=$1
  shift
  local found
  found=$(features "$@" | grep -E "$pattern" | sort -u || true)
  if [ -n "$found" ]; then
    echo "FAIL: $what would link test code:" >&2
    echo "$found" >&2
    echo "(who enables it: cargo tree -e features -i rewind-forge $*)" >&2
    exit 1
  fi
  echo "ok: $what links no test code"
}

# The check must be able to fail: the end-to-end harness does enable both
# features, so if the pattern stops matching there (a renamed feature), the
# checks below would pass for the wrong reason.
if [ "$(features -p rewind-tests | grep -E "$pattern" | sort -u | wc -l)" -lt 4 ]; then
  echo "FAIL: the pattern no longer finds the test features in rewind-tests; update $0" >&2
  exit 1
fi

if [ "${1:-}" = "--binary" ]; then
  product=$2
  test_binary=""
  if [ "${3:-}" = "--test-binary" ]; then test_binary=$4; fi
  names=$(grep -rhoE 'failpoint!\("[^"]+"\)' crates/rewind-engine/src | sed -E 's/failpoint!\("([^"]+)"\)/\1/' | sort -u)
  if [ -z "$names" ]; then
    echo "FAIL: no failpoint!(\"…\") found in crates/rewind-engine/src; update $0" >&2
    exit 1
  fi
  for name in $names; do
    if grep -qaF "$name" "$product"; then
      echo "FAIL: the product binary $product holds failpoint $name" >&2
      exit 1
    fi
    if [ -n "$test_binary" ] && ! grep -qaF "$name" "$test_binary"; then
      echo "FAIL: the test binary $test_binary lacks failpoint $name: the binary check cannot fail" >&2
      exit 1
    fi
  done
  echo "ok: $product holds none of the $(echo "$names" | wc -w) failpoints"
  exit 0
fi

check "cargo build --release -p rewind" -p rewind
# No -p: the workspace's default members, as a root `cargo build --release`.
check "cargo build --release (workspace root)"
