"""The suite's session-end guard: a process a test leaves running fails the run and is killed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _run_inner_session(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(
        "from tests.leak_guard import pytest_sessionfinish  # noqa: F401\n"
    )
    (tmp_path / "test_inner.py").write_text(body)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize(
    "start",
    [
        "from tests.servers import start_process\nprocess = start_process(['sleep', '300'])",
        # Started without the helper: found as a child of pytest all the same.
        "import subprocess\nprocess = subprocess.Popen(['sleep', '300'])",
    ],
)
def test_a_leaked_process_fails_the_run_and_is_killed(tmp_path: Path, start: str) -> None:
    """A passing test that leaves `sleep 300` running makes the session fail, naming the command,
    and the process is gone afterwards."""
    indented = start.replace("\n", "\n    ")
    record = "open('leaked.pid', 'w').write(str(process.pid))"
    result = _run_inner_session(
        tmp_path, f"def test_leaks() -> None:\n    {indented}\n    {record}\n"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "still running at the end" in result.stdout
    assert "sleep 300" in result.stdout
    pid = (tmp_path / "leaked.pid").read_text()
    assert not Path(f"/proc/{pid}").exists(), "the leaked process is still running"


def test_a_session_that_cleans_up_passes(tmp_path: Path) -> None:
    """A test that ends what it started leaves the run green."""
    body = (
        "from tests.servers import end_process, start_process\n"
        "def test_tidy() -> None:\n"
        "    end_process(start_process(['sleep', '300']))\n"
    )
    result = _run_inner_session(tmp_path, body)
    assert result.returncode == 0, result.stdout + result.stderr
