"""How a command printed for a user runs this same exporter again from a fresh shell.

A fresh shell has neither the PATH that `uv run` gives its child nor an activated virtualenv, so
`exporter` alone reaches this installation only where it is on PATH for good (pipx, a system
install); elsewhere the printed command names the uv project, or the path of the script.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Installation:
    """Where this exporter runs from: sys.argv[0], the interpreter and its (base) prefix."""

    program: str
    executable: str
    prefix: str
    base_prefix: str

    @classmethod
    def current(cls) -> Installation:
        """This process's."""
        return cls(sys.argv[0], sys.executable, sys.prefix, sys.base_prefix)

    @property
    def in_virtualenv(self) -> bool:
        """Whether the interpreter is a virtualenv's (which a fresh shell has not activated)."""
        return self.prefix != self.base_prefix


def uv_project(installation: Installation) -> Path | None:
    """The uv project whose environment this is (`<project>/.venv` next to its uv.lock), if any."""
    if not installation.in_virtualenv:
        return None
    root = Path(installation.prefix).parent
    if (root / "pyproject.toml").is_file() and (root / "uv.lock").is_file():
        return root
    return None


def exporter_command(
    installation: Installation | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    which: Callable[[str], str | None] = shutil.which,
) -> str:
    """The shell words that run this exporter from a fresh shell in any directory."""
    installation = installation or Installation.current()
    project = uv_project(installation)
    # `uv run` puts the project's bin on its child's PATH only, so `exporter` alone would fail
    # in another terminal; `--project` makes the command work from any directory.
    uv = "uv" if which("uv") else environ.get("UV")
    if project is not None and uv:
        return f"{shlex.quote(uv)} run --project {shlex.quote(str(project))} exporter"
    if installation.program.endswith("__main__.py"):  # python -m exporter
        return f"{shlex.quote(installation.executable)} -m exporter"
    program = Path(installation.program)
    if program.parent == Path():  # started by name: find what the name meant
        found = which(installation.program)
        program = Path(found) if found else program
    on_path = which("exporter")
    if on_path is not None and Path(on_path).resolve() == program.resolve():
        # On PATH because a virtualenv is activated here: a fresh shell would not find it.
        activated = Path(installation.prefix, "bin").resolve() == Path(on_path).parent.resolve()
        if not (installation.in_virtualenv and activated):
            return "exporter"
    return shlex.quote(str(program.resolve()))


__all__ = ["Installation", "exporter_command", "uv_project"]
