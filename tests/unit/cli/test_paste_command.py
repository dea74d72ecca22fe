"""Which words a printed command uses to run this exporter again from a fresh shell."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from exporter.cli.paste import Installation, exporter_command

BASE = "/usr"


def found(**names: Path) -> Callable[[str], str | None]:
    """A PATH lookup that finds exactly `names`."""
    return lambda name: str(names[name]) if name in names else None


def venv(root: Path, *, project: bool) -> Path:
    """A virtualenv at `root`/.venv with an `exporter` script, in a uv project or not."""
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "exporter").touch()
    if project:
        (root / "pyproject.toml").touch()
        (root / "uv.lock").touch()
    return root / ".venv"


def test_a_uv_project_environment_is_run_with_uv_from_any_directory(tmp_path: Path) -> None:
    """`uv run exporter` in a project gives its child a PATH a fresh shell lacks: the command
    names the project, so it works from any directory (the path quoted for the shell)."""
    root = tmp_path / "my projects" / "exporter"
    prefix = venv(root, project=True)
    here = Installation(
        str(prefix / "bin" / "exporter"), str(prefix / "bin" / "python"), str(prefix), BASE
    )
    command = exporter_command(
        here, environ={}, which=found(uv=Path("/usr/bin/uv"), exporter=prefix / "bin" / "exporter")
    )
    assert command == f"uv run --project '{root}' exporter"


def test_uv_off_path_is_named_by_the_path_uv_run_gave(tmp_path: Path) -> None:
    """Started by a uv that is not on PATH, the command names that uv by its path ($UV)."""
    prefix = venv(tmp_path, project=True)
    here = Installation(str(prefix / "bin" / "exporter"), "python", str(prefix), BASE)
    command = exporter_command(here, environ={"UV": "/opt/uv/bin/uv"}, which=found())
    assert command == f"/opt/uv/bin/uv run --project {tmp_path} exporter"


def test_without_uv_a_project_environment_is_run_by_its_script_path(tmp_path: Path) -> None:
    """A project's virtualenv, activated, with no uv at all: the script's path, not the name
    that only the activated shell finds."""
    prefix = venv(tmp_path, project=True)
    script = prefix / "bin" / "exporter"
    here = Installation(str(script), str(prefix / "bin" / "python"), str(prefix), BASE)
    assert exporter_command(here, environ={}, which=found(exporter=script)) == str(script)


def test_python_dash_m_is_repeated_with_the_same_interpreter(tmp_path: Path) -> None:
    """`python -m exporter` outside a uv project: the same interpreter's path and `-m`."""
    prefix = venv(tmp_path, project=False)
    here = Installation(
        "/src/exporter/__main__.py", str(prefix / "bin" / "python"), str(prefix), BASE
    )
    assert exporter_command(here, environ={}, which=found()) == f"{prefix}/bin/python -m exporter"


def test_a_script_on_path_for_good_is_named(tmp_path: Path) -> None:
    """Installed with its own virtualenv and linked into a PATH directory (pipx), or into the
    system: `exporter` alone works in any shell."""
    prefix = venv(tmp_path / "pipx", project=False)
    link_dir = tmp_path / "local-bin"
    link_dir.mkdir()
    (link_dir / "exporter").symlink_to(prefix / "bin" / "exporter")
    linked = Installation(str(link_dir / "exporter"), "python", str(prefix), BASE)
    assert exporter_command(linked, environ={}, which=found(exporter=link_dir / "exporter")) == (
        "exporter"
    )
    system = Installation("/usr/local/bin/exporter", "/usr/bin/python3", BASE, BASE)
    on_path = found(exporter=Path("/usr/local/bin/exporter"))
    assert exporter_command(system, environ={}, which=on_path) == "exporter"


def test_a_script_found_by_another_name_or_not_at_all_is_run_by_its_path(tmp_path: Path) -> None:
    """An `exporter` on PATH that is another installation, or none: this script's own path."""
    prefix = venv(tmp_path, project=False)
    script = prefix / "bin" / "exporter"
    here = Installation(str(script), "python", str(prefix), BASE)
    other = found(exporter=Path("/usr/local/bin/exporter"))
    assert exporter_command(here, environ={}, which=other) == str(script)
    assert exporter_command(here, environ={}, which=found()) == str(script)
