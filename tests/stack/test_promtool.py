"""promtool accepts the Prometheus config and rules, and the alert unit tests pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import require_binary
from tests.stack.files import ALERT_TESTS, ALERTS, PROMETHEUS_CONFIG, PROMETHEUS_DIR


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture(name="container_layout")
def fixture_container_layout(tmp_path: Path) -> Path:
    """The prometheus/ directory copied as the container mounts it (/etc/prometheus)."""
    target = tmp_path / "etc" / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, target)
    return target


def test_promtool_check_config(container_layout: Path) -> None:
    """The config, with its rule files found relative to it, is valid."""
    # Run from elsewhere on purpose: rule files resolve against the config file, not the cwd.
    config = container_layout / PROMETHEUS_CONFIG.name
    result = _promtool("check", "config", str(config), cwd=Path("/"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_rules() -> None:
    """Every rule parses and is well formed."""
    result = _promtool("check", "rules", ALERTS.name, cwd=PROMETHEUS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    """The alert unit tests pass: each alert fires when it should and stays quiet otherwise."""
    result = _promtool("test", "rules", ALERT_TESTS.name, cwd=PROMETHEUS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
