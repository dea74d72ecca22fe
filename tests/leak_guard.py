"""A session-end check that the tests left no process of theirs running: a fixture that failed
half-way must not leave an `exporter api` behind, and the run fails if one did."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from tests.servers import STARTED


def _live_children(pid: int) -> dict[int, str]:
    """The direct children of `pid` that are alive (not zombies), with their command lines."""
    found: dict[int, str] = {}
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            try:
                state = Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()[0]
                command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue  # it ended while we looked
            if state != "Z":
                found[int(child)] = command.decode(errors="replace").strip()
    return found


def leaked_processes() -> dict[int, str]:
    """Processes the tests started that still run: tracked ones and any other child of pytest."""
    leaked = {
        process.pid: " ".join(map(str, process.args))  # type: ignore[arg-type]
        for process in STARTED
        if process.poll() is None
    }
    leaked.update(_live_children(os.getpid()))
    return leaked


# Last: pytest tears session fixtures down in its own sessionfinish when a run stops early (-x),
# and their servers are not leaks.
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Kill whatever the tests left running, name it, and fail the run."""
    del exitstatus
    leaked = leaked_processes()
    if not leaked:
        return
    for pid in leaked:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    tracked = {process.pid: process for process in STARTED}
    for pid in leaked:
        if pid in tracked:
            tracked[pid].wait()
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)  # reap it: a zombie would outlive the session
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = "\n".join(f"  pid {pid}: {command[:200]}" for pid, command in sorted(leaked.items()))
    message = f"processes started by the tests were still running at the end (killed now):\n{lines}"
    if reporter is not None:
        reporter.write_line(message, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
