#!/usr/bin/env bash
# Fails when test-only code would be linked into the product: the fake
# GitHub (rewind-forge feature `fake`) and the ledger's test databases
# (rewind-ledger feature `testing`).
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

pattern='^(rewind-forge feature "fake"|rewind-ledger feature "testing")'

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
if [ "$(features -p rewind-tests | grep -cE "$pattern" || true)" -lt 2 ]; then
  echo "FAIL: the pattern no longer finds the test features in rewind-tests; update $0" >&2
  exit 1
fi

check "cargo build --release -p rewind" -p rewind
# No -p: the workspace's default members, as a root `cargo build --release`.
check "cargo build --release (workspace root)"
