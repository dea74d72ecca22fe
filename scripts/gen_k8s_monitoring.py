"""Write the Prometheus Operator and Grafana objects of deploy/kubernetes from the repository's own
alert rules and dashboard, so that Kubernetes runs exactly what the compose stack and its tests do.

    uv run python scripts/gen_k8s_monitoring.py           # rewrite both files
    uv run python scripts/gen_k8s_monitoring.py --check   # exit 1 if either is out of date

prometheus/alerts.yml becomes a PrometheusRule whose `spec.groups` are its groups, unchanged;
grafana/dashboards/exporter.json becomes a ConfigMap labelled `grafana_dashboard: "1"`, which
Grafana's dashboard sidecar (kube-prometheus-stack, the Grafana chart) loads. A test
(tests/k8s/test_monitoring_objects.py) fails when either file differs from what this script writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "grafana" / "dashboards" / "exporter.json"
OUT = ROOT / "deploy" / "kubernetes" / "components" / "monitoring"
RULE_FILE = OUT / "prometheusrule.yaml"
DASHBOARD_FILE = OUT / "grafana-dashboard.yaml"
LABELS = {"app.kubernetes.io/name": "sqs-metrics-exporter"}


def _header(source: Path) -> str:
    relative = source.relative_to(ROOT)
    return (
        f"# Generated from {relative} by scripts/gen_k8s_monitoring.py: do not edit; change\n"
        f"# {relative} and run the script (a test fails while the two differ).\n"
    )


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the generated files read like the sources."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def prometheus_rule() -> dict[str, Any]:
    """A PrometheusRule carrying alerts.yml's groups as they are."""
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "sqs-metrics-exporter", "labels": dict(LABELS)},
        "spec": {"groups": groups},
    }


def dashboard_config_map() -> dict[str, Any]:
    """A ConfigMap holding the dashboard JSON, for Grafana's sidecar."""
    text = DASHBOARD.read_text(encoding="utf-8")
    json.loads(text)  # a broken dashboard fails here, not in Grafana
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "sqs-metrics-exporter-dashboard",
            "labels": {**LABELS, "grafana_dashboard": "1"},
        },
        "data": {"sqs-metrics-exporter.json": text.rstrip("\n") + "\n"},
    }


def rendered() -> dict[Path, str]:
    """Each generated file and the text it must hold."""
    return {
        RULE_FILE: _header(ALERTS) + _dump(prometheus_rule()),
        DASHBOARD_FILE: _header(DASHBOARD) + _dump(dashboard_config_map()),
    }


def main(argv: list[str] | None = None) -> int:
    """Write the files, or with --check report those that differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        names = ", ".join(str(path) for path in stale)
        print(f"out of date: {names}; run `uv run python scripts/gen_k8s_monitoring.py`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
