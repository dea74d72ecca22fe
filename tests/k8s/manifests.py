"""The Kubernetes manifests as `kubectl kustomize` renders them, for deploy/kubernetes' tests."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.servers import require_binary

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("local", "production", "production-hpa")
# API groups served by Kubernetes itself; everything else is a custom resource.
BUILT_IN_GROUPS = {"", "apps", "policy", "autoscaling", "batch", "networking.k8s.io"}

Manifest = dict[str, Any]


def kubectl() -> str:
    """kubectl's path: skip without it locally, fail in CI (where .ci/run installs it)."""
    return require_binary("kubectl")


@functools.cache
def _render(directory: str) -> tuple[Manifest, ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", directory],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(overlay: str) -> list[Manifest]:
    """Every object of one overlay (or `base`), as kubectl kustomize renders it."""
    path = KUBERNETES / ("base" if overlay == "base" else f"overlays/{overlay}")
    return [dict(doc) for doc in _render(str(path))]


def render_with_components(overlay: str, components: list[str], workdir: Path) -> list[Manifest]:
    """One overlay with more of `components/` added, as a user's own kustomization (written in
    `workdir`) would add them."""
    here = Path(workdir)

    def relative(path: Path) -> str:  # kustomize refuses absolute paths
        return os.path.relpath(path, here)

    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [relative(KUBERNETES / "overlays" / overlay)],
        "components": [relative(KUBERNETES / "components" / name) for name in components],
    }
    (here / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return [dict(doc) for doc in _render(str(here))]


def group(manifest: Manifest) -> str:
    """The API group of an object ("" for the core group)."""
    api_version: str = manifest["apiVersion"]
    return api_version.rpartition("/")[0]


def is_built_in(manifest: Manifest) -> bool:
    """Whether Kubernetes itself serves this kind (its schema is in kubernetes-validate)."""
    return group(manifest) in BUILT_IN_GROUPS


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    """Objects of one kind (and name, when given)."""
    return [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one object of a kind (and name)."""
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_templates(manifests: list[Manifest]) -> list[tuple[str, Manifest]]:
    """(workload name, pod spec) of every Deployment and StatefulSet."""
    return [
        (m["metadata"]["name"], m["spec"]["template"]["spec"])
        for m in manifests
        if m["kind"] in ("Deployment", "StatefulSet")
    ]


def config_map_data(manifests: list[Manifest]) -> dict[str, str]:
    """The exporter's settings ConfigMap (its name carries a content hash)."""
    (config,) = [
        m
        for m in find(manifests, "ConfigMap")
        if m["metadata"]["name"].startswith("sqs-metrics-exporter-")
        and "grafana_dashboard" not in m["metadata"].get("labels", {})
    ]
    data: dict[str, str] = config["data"]
    return data


def container(manifests: list[Manifest], deployment: str) -> Manifest:
    """The one container of a Deployment."""
    (found,) = one(manifests, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    result: Manifest = found
    return result
