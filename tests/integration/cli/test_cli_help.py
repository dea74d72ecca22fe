"""The `exporter` console script: --version, and every subcommand's --help names env and default."""

from __future__ import annotations

import subprocess

import pytest

from exporter import __version__
from exporter.cli import SUBCOMMANDS, _describe_default, _load_command, main
from exporter.settings import Settings, env_name, limits
from tests.exporter_process import run_exporter
from tests.setting_bounds import bound_numbers

INSTALLED = [name for name in SUBCOMMANDS if _load_command(name) is not None]


def _runnable() -> list[tuple[str, ...]]:
    """Every command line a user can run: each command, and each action of one that has them."""
    paths: list[tuple[str, ...]] = []
    for name in INSTALLED:
        actions = getattr(_load_command(name), "ACTIONS", {})
        paths += [(name, action) for action in actions] or [(name,)]
    return paths


RUNNABLE = _runnable()
COMMON_FLAGS = ("log_level", "log_format")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # Wide columns: argparse would otherwise wrap "us-east-1" at its hyphen.
    return run_exporter(args, {"COLUMNS": "400"}, timeout=30)


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


def test_every_command_a_user_can_run_is_checked_below() -> None:
    """The commands and actions the README names are all among those checked for help and flags
    (a command added later is checked without being listed here)."""
    named = {
        ("processor",),
        ("api",),
        ("produce",),
        ("dlq", "peek"),
        ("dlq", "redrive"),
        ("demo",),
    }
    assert named <= set(RUNNABLE)


@pytest.mark.parametrize("path", RUNNABLE, ids=" ".join)
def test_each_command_and_action_has_its_own_help_naming_every_setting(
    path: tuple[str, ...],
) -> None:
    """`exporter <command> [action] --help` prints that command line's own usage and description
    (an action's, not its command's) and, per setting (the common --log-level and --log-format
    among them), the flag, the env variable and the default (the command's own where it has one:
    the demo binds loopback)."""
    module = _load_command(path[0])
    assert module is not None
    assert set(COMMON_FLAGS) <= set(module.SETTINGS)
    description = module.ACTIONS[path[1]] if len(path) > 1 else module.HELP
    own = getattr(module, "DEFAULTS", {})
    result = run(*path, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: exporter {' '.join(path)} ")
    text = " ".join(result.stdout.split())
    assert " ".join(description.split()) in text
    if len(path) > 1:
        assert " ".join(module.HELP.split()) not in text, "the command's help, not the action's"
    for field in module.SETTINGS:
        default = _describe_default(own.get(field, Settings.model_fields[field].default))
        assert "--" + field.replace("_", "-") + " " in text
        bounds = limits(field)
        tail = f"; {bounds}]" if bounds else "]"
        assert f"[env {env_name(field)}; default {default}{tail}" in text, field
        for number in bound_numbers(field):  # read from the check itself, not from `limits`
            assert number in (bounds or ""), (field, number)


@pytest.mark.parametrize("path", RUNNABLE, ids=" ".join)
def test_each_command_and_action_parses_the_common_flags(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """The common flags are parsed by every command and action (in-process, as the help above
    already ran each command): a bad level is refused by that command line itself, exit 2, one
    line naming the flag and the value."""
    with pytest.raises(SystemExit) as exited:
        main([*path, "--log-format", "json", "--log-level", "LOUD"])
    assert exited.value.code == 2
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .startswith(
            f"exporter {' '.join(path)}: error: argument --log-level: invalid choice: 'LOUD'"
        )
    )


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
