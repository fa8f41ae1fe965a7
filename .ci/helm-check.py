"""Lints rewind's Helm chart with Helm's own library and renders it offline.

Usage: python3.12 .ci/helm-check.py CHART OUT_DIR

- Lint: helm-sdkpy (Helm's Go code through its C ABI), on the chart as it
  is, then on a copy whose values.yaml enables every optional object.
- Render: helm-python-sdk (Helm v4's engine, offline), once per scenario
  below, each written to OUT_DIR/<scenario>.yaml for the Kubernetes schema
  check and `rewind doctor`, after checking the values against
  values.schema.json. The refused scenarios must fail (schema or render)
  with a message naming the problem.

Exit 1 on any lint error or unexpected render result.
"""

import asyncio
import json
import pathlib
import shutil
import sys
import tempfile

import helm_python
import helm_sdkpy

SCENARIOS = {
    "default": {},
    "postgres-ha": {
        "replicaCount": 3,
        "database": {"kind": "postgres"},
        "metrics": {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True},
        },
        "apiTokens": [
            {"name": "admin", "role": "admin", "key": "api-token-admin"},
            {"name": "oncall", "role": "operator", "key": "api-token-oncall"},
        ],
        "secrets": {
            "files": {
                "gitSshKey": "git-ssh-key",
                "githubAppPrivateKey": "github-app-key.pem",
                "apiTokensFile": "tokens.toml",
            }
        },
        "config": {
            "forge": {
                "kind": "github",
                "owner": "acme",
                "repo": "gitops",
                "app_id": 12345,
                "installation_id": 67890,
            },
            "git": {"url": "git@github.com:acme/gitops.git"},
            "apps": [
                {"name": "shop/checkout", "path": "apps/checkout/overlays/prod", "cluster": "prod-eu"}
            ],
        },
    },
    "sqlite-no-persistence": {"persistence": {"enabled": False}},
}

REFUSED = {
    "two-replicas-on-sqlite": ({"replicaCount": 2}, "needs database.kind: postgres"),
    "secret-in-values": (
        {"config": {"webhooks": {"argocd_token": "x"}}},
        "is a secret",
    ),
    "database-url-in-values": (
        {"config": {"database": {"url": "postgres://u:p@h/db"}}},
        "would put the database password in a ConfigMap",
    ),
    # values.schema.json
    "unknown-database-kind": ({"database": {"kind": "mysql"}}, "value must be one of"),
    "token-without-role": ({"apiTokens": [{"name": "x", "key": "k"}]}, "missing property 'role'"),
}


def lint(path: pathlib.Path) -> list[str]:
    config = helm_sdkpy.Configuration(namespace="rewind")
    report = asyncio.run(helm_sdkpy.Lint(config).run(str(path)))
    problems = []
    for message in report.get("Messages") or []:
        # Severity 1 is information (such as "icon is recommended").
        if message.get("Severity", 0) >= 2:
            problems.append(f"{message.get('Path')}: {message.get('Err')}")
    problems.extend(str(e) for e in report.get("Errors") or [])
    return problems


def with_values(chart: pathlib.Path, values: dict, into: pathlib.Path) -> pathlib.Path:
    """A copy of the chart whose values.yaml is the defaults merged with `values`."""
    copy = into / chart.name
    shutil.copytree(chart, copy)
    merged = helm_python.Chart.load(str(chart)).merge_values(values)
    (copy / "values.yaml").write_text(json.dumps(merged, indent=1))
    return copy


def main() -> int:
    chart = pathlib.Path(sys.argv[1]).resolve()
    out = pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    failures = []

    problems = lint(chart)
    print(f"lint {chart.name}: {'ok' if not problems else problems}")
    failures += problems
    with tempfile.TemporaryDirectory() as tmp:
        full = with_values(chart, SCENARIOS["postgres-ha"], pathlib.Path(tmp))
        problems = lint(full)
        print(f"lint {chart.name} with every option: {'ok' if not problems else problems}")
        failures += problems
    # Helm's lint mode turns `fail` into a log line, so the refusals are
    # checked by rendering below, not by lint.

    loaded = helm_python.Chart.load(str(chart))
    for name, values in SCENARIOS.items():
        try:
            loaded.validate_schema(values)
            manifests = loaded.render(values=values, name="rewind", namespace="rewind", is_install=True)
        except Exception as e:  # noqa: BLE001 - any failure is reported
            failures.append(f"render {name}: {e}")
            continue
        docs = [
            f"# Source: {path}\n{text.strip()}\n"
            for path, text in sorted(manifests.items())
            if path.endswith(".yaml") and text.strip()
        ]
        target = out / f"{name}.yaml"
        target.write_text("---\n".join(docs))
        print(f"render {name}: {len(docs)} manifests -> {target}")
    for name, (values, expected) in REFUSED.items():
        try:
            loaded.validate_schema(values)
            loaded.render(values=values, name="rewind", namespace="rewind", is_install=True)
        except Exception as e:  # noqa: BLE001
            if expected in str(e):
                print(f"render {name}: refused as it should be ({expected})")
            else:
                failures.append(f"render {name}: refused, but not saying {expected!r}: {e}")
            continue
        failures.append(f"render {name}: rendered, but must be refused")

    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
