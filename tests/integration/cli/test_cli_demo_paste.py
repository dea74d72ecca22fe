"""`uv run exporter demo` as the README says, and its printed commands pasted into a fresh shell."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.exporter_process import STOP_TIMEOUT_SECONDS, ExporterProcess
from tests.polling import scaled, wait_until
from tests.servers import IN_CI, free_port

ROOT = Path(__file__).resolve().parents[3]


def fresh_shell_path() -> str:
    """The PATH of a terminal the user just opened: without the bin directory `uv run` put first
    for this test run, nor any other directory holding an `exporter` to find by name."""
    kept = [
        directory
        for directory in os.environ.get("PATH", "").split(os.pathsep)
        if directory and not Path(directory, "exporter").exists()
    ]
    return os.pathsep.join(kept)


class ReadmeDemo(ExporterProcess):
    """`uv run exporter demo` started from the project root in a shell with only PATH set; Ctrl-C
    ends it (uv passes it to the demo, which stops its private redis-server)."""

    def __init__(self, path: str) -> None:
        self.api_port = free_port()
        super().__init__(
            [
                "demo",
                "--rate", "0",
                "--api-port", str(self.api_port),
                "--metrics-port", str(free_port()),
            ],
            {"PATH": path},
            program=("uv", "run", "exporter"),
            inherit=False,
            cwd=ROOT,
            stop_signal=signal.SIGINT,
            # A group of its own: should uv not pass Ctrl-C on, the group is ended, never left.
            own_group=True,
        )  # fmt: skip

    def banner_command(self, label: str) -> str:
        """The command the banner prints after `label:`."""
        for line in self.stdout.splitlines():
            if line.strip().startswith(label + ":"):
                return line.split(":", 1)[1].strip()
        raise AssertionError(f"no {label!r} line in the banner:\n{self.stdout}")

    def get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.api_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def counted(self) -> int:
        return sum(item["count"] for item in self.get("/stats"))

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, then the exit code and everything on stderr."""
        return self.finish(timeout=STOP_TIMEOUT_SECONDS)


@pytest.fixture(name="shell_path")
def fixture_shell_path() -> str:
    """A fresh shell's PATH, on which uv is found (as it was for `uv run pytest`)."""
    path = fresh_shell_path()
    if shutil.which("uv", path=path) is None:
        message = "uv is not on PATH: the README's commands start with `uv run`"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(name="demo")
def fixture_demo(shell_path: str) -> Iterator[ReadmeDemo]:
    """The demo, its banner printed and its API answering."""
    with ReadmeDemo(shell_path) as demo:
        demo.wait_ready(
            lambda: "see dead letters:" in demo.stdout and demo.get("/stats") == [],
            message="the demo's banner and API",
        )
        yield demo


def paste(command: str, *, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`command` as a user pastes it: one line into a new shell."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )


def malformed_sent(result: subprocess.CompletedProcess[str]) -> int:
    assert result.returncode == 0, result.stderr
    summary = re.search(r"sent 25, of which malformed (\d+)", result.stdout)
    assert summary is not None, result.stdout
    return int(summary.group(1))


def test_the_printed_commands_work_pasted_into_a_fresh_shell(
    demo: ReadmeDemo, shell_path: str, tmp_path: Path
) -> None:
    """The banner's `send events` line, pasted at the project root into a shell with only PATH
    (no venv, no AWS credentials), sends 25 events the demo counts; pasted into a shell whose own
    AWS and SQS settings point elsewhere it still reaches the demo; the `see dead letters` line,
    pasted in another directory, shows every malformed one; Ctrl-C then stops the demo, exit 0."""
    fresh = {"PATH": shell_path}
    send = demo.banner_command("send events")
    malformed = malformed_sent(paste(send, cwd=ROOT, env=fresh))
    wait_until(lambda: demo.counted() == 25 - malformed, timeout=60, message="25 events counted")
    elsewhere = {
        **fresh,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_DEFAULT_REGION": "eu-west-3",
        "SQS_QUEUE_NAME": "not-the-demos",
        "AWS_ACCESS_KEY_ID": "AKIAREALLOOKINGKEY00",
        "AWS_SECRET_ACCESS_KEY": "not-the-demos",
    }
    malformed += malformed_sent(paste(send, cwd=ROOT, env=elsewhere))
    wait_until(lambda: demo.counted() == 50 - malformed, timeout=60, message="50 events counted")
    wait_until(
        lambda: demo.get("/rejected")["total"] >= malformed,
        timeout=60,
        message="the malformed events dead-lettered",
    )
    peeked = paste(demo.banner_command("see dead letters"), cwd=tmp_path, env=fresh)
    assert peeked.returncode == 0, peeked.stderr
    # Dead letters are at least once per delivery (docs/reliability.md): count distinct originals.
    originals = {json.loads(line)["original_message_id"] for line in peeked.stdout.splitlines()}
    assert len(originals) == malformed, peeked.stdout
    shown = len(peeked.stdout.splitlines())
    assert peeked.stderr.splitlines()[-1] == f"{shown} message(s) in the dead-letter queue shown"
    code, err = demo.interrupt()
    assert code == 0, err
    assert "Traceback" not in err
