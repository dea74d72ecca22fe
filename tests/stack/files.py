"""Readers for the files that ship the stack (compose, Prometheus, Grafana), shared by its tests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_DIR = ROOT / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
GRAFANA_DIR = ROOT / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "exporter.json"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yaml"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"

# The images the compose file builds from this repository: the slim runtime (processors, API) and
# the demo target (the SQS emulator and the synthetic producer).
EXPORTER_IMAGE = "sqs-metrics-exporter:local"
DEMO_IMAGE = "sqs-metrics-exporter-demo:local"


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def compose_services() -> dict[str, dict[str, Any]]:
    """The compose file's services, merge keys resolved."""
    services: dict[str, dict[str, Any]] = load_yaml(COMPOSE)["services"]
    return services


def exporter_services() -> dict[str, dict[str, Any]]:
    """The services that run `exporter` from an image built here (runtime or demo target)."""
    return {
        name: service
        for name, service in compose_services().items()
        if service.get("image") in (EXPORTER_IMAGE, DEMO_IMAGE) and "entrypoint" not in service
    }


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of alerts.yml."""
    return [
        rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"] if "alert" in rule
    ]


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard JSON."""
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every query of every panel."""
    return [
        (panel["title"], target)
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub generates for a Markdown document's headings."""
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            text = match.group(1).strip().lower()
            text = re.sub(r"[^\w\- ]", "", text)
            anchors.add(text.replace(" ", "-"))
    return anchors
