"""The `exporter` console script: --version, and every subcommand's --help names env and default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exporter import __version__
from exporter.cli import SUBCOMMANDS, _describe_default, _load_command
from exporter.settings import Settings, env_name
from tests.servers import scaled

EXPORTER = str(Path(sys.executable).parent / "exporter")
INSTALLED = [name for name in SUBCOMMANDS if _load_command(name) is not None]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # Wide columns: argparse would otherwise wrap "us-east-1" at its hyphen.
    env = {**os.environ, "COLUMNS": "400"}
    return subprocess.run(
        [EXPORTER, *args], capture_output=True, text=True, env=env, timeout=scaled(30), check=False
    )


def test_version_is_the_package_version() -> None:
    """`exporter --version` prints the installed version and exits 0."""
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"exporter {__version__}"


def test_the_top_level_help_lists_the_subcommands() -> None:
    """`exporter --help` names api, produce and demo alongside the processor's commands."""
    result = run("--help")
    assert result.returncode == 0
    for name in ("api", "produce", "demo"):
        assert name in INSTALLED
        assert name in result.stdout


@pytest.mark.parametrize("command", INSTALLED)
def test_every_setting_flag_names_its_variable_and_default(command: str) -> None:
    """Each subcommand's --help shows, per setting, the flag, the env variable and the default
    (the command's own where it has one: the demo binds loopback)."""
    module = _load_command(command)
    assert module is not None
    own = getattr(module, "DEFAULTS", {})
    result = run(command, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for field in module.SETTINGS:
        default = _describe_default(own.get(field, Settings.model_fields[field].default))
        assert "--" + field.replace("_", "-") in text
        assert f"[env {env_name(field)}; default {default}]" in text, field


def test_the_demo_help_gives_the_defaults_it_uses() -> None:
    """`exporter demo --help` says the demo binds 127.0.0.1, keys under exporter-demo, and has no
    REDIS_URL unless one is set (not the other commands' 0.0.0.0, exporter, localhost)."""
    text = " ".join(run("demo", "--help").stdout.split())
    assert "[env EXPORTER_API_HOST; default 127.0.0.1]" in text
    assert "[env EXPORTER_METRICS_HOST; default 127.0.0.1]" in text
    assert "[env EXPORTER_REDIS_PREFIX; default exporter-demo]" in text
    assert "[env REDIS_URL; default unset]" in text


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        ("produce", ["--count", "--rate", "--malformed-ratio", "--types", "--seed", "--file"]),
        ("produce", ["--with-ids", "--summary-json", "--wait-for-queue"]),
        ("demo", ["--rate"]),
    ],
)
def test_own_flags_are_documented_with_defaults(command: str, flags: list[str]) -> None:
    """Subcommand-specific flags appear in --help, with their defaults where they have one."""
    text = " ".join(run(command, "--help").stdout.split())
    for flag in flags:
        assert flag in text
    assert "default" in text


def test_a_bad_setting_is_refused_naming_the_variable() -> None:
    """An invalid setting value exits 2 naming the environment variable, not a stack trace."""
    result = run("api", "--api-port", "70000")
    assert result.returncode == 2
    assert "EXPORTER_API_PORT" in result.stderr
    assert "Traceback" not in result.stderr
