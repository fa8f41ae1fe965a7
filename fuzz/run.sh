#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20), seeded from the
# real payloads in crates/rewind-ingest/tests/fixtures and the GitOps trees
# in crates/rewind-manifest/tests/fixtures. New interesting inputs go to
# fuzz/corpus/<target> (not committed); a crash stops the run and leaves
# its input in fuzz/artifacts/<target>.
#
#   bash fuzz/run.sh 20          # CI: about 3 minutes for all seven
#   bash fuzz/run.sh 1800        # the longer run quoted in docs/security.md
#
# Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass
# its sanitizer flags (-Zsanitizer=address) to the stable compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
export RUSTC_BOOTSTRAP=1
fuzz=(cargo fuzz)
cargo fuzz --help >/dev/null 2>&1 || { echo "FATAL: cargo-fuzz is not on PATH" >&2; exit 1; }

declare -A seeds=(
  [argocd]=crates/rewind-ingest/tests/fixtures/argocd
  [flux]=crates/rewind-ingest/tests/fixtures/flux
  [alertmanager]=crates/rewind-ingest/tests/fixtures/alertmanager
  [github]=crates/rewind-ingest/tests/fixtures/github
  [flagger]=crates/rewind-ingest/tests/fixtures/flagger
  [argo_rollouts]=crates/rewind-ingest/tests/fixtures/argo-rollouts
  [manifest]=crates/rewind-manifest/tests/fixtures
)
targets=(argocd flux alertmanager github flagger argo_rollouts manifest)

"${fuzz[@]}" build --fuzz-dir fuzz
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  printf '\n== fuzz %s for %ss\n' "$target" "$seconds"
  # -max_len: webhook bodies and manifests of interest are well below 64
  # KiB; -rss_limit_mb: an alias bomb that escaped the node budget would
  # blow past it and count as a crash; -timeout: so would a hang.
  "${fuzz[@]}" run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" "${seeds[$target]}" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=1024 -timeout=10 \
    -print_final_stats=1 2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE|==[0-9]+==|SUMMARY|thread .* panicked|Test unit written)' || true
  if ls "fuzz/artifacts/$target"/crash-* "fuzz/artifacts/$target"/oom-* "fuzz/artifacts/$target"/timeout-* >/dev/null 2>&1; then
    echo "FATAL: fuzz target $target found an input that crashes, hangs or exhausts memory:" >&2
    ls "fuzz/artifacts/$target" >&2
    exit 1
  fi
done
