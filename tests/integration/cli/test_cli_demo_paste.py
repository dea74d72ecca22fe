"""`uv run exporter demo` as the README says, and its printed commands pasted into a fresh shell."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pytest

from tests.polling import scaled, wait_until
from tests.servers import (
    IN_CI,
    STARTUP_TIMEOUT_SECONDS,
    free_port,
    start_process,
)

ROOT = Path(__file__).resolve().parents[3]
STOP_TIMEOUT_SECONDS = 15


def fresh_shell_path() -> str:
    """The PATH of a terminal the user just opened: without the bin directory `uv run` put first
    for this test run, nor any other directory holding an `exporter` to find by name."""
    kept = [
        directory
        for directory in os.environ.get("PATH", "").split(os.pathsep)
        if directory and not Path(directory, "exporter").exists()
    ]
    return os.pathsep.join(kept)


class ReadmeDemo:
    """`uv run exporter demo` started from the project root in a shell with only PATH set."""

    def __init__(self, path: str) -> None:
        self.api_port = free_port()
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.process = start_process(
            [
                "uv", "run", "exporter", "demo",
                "--rate", "0",
                "--api-port", str(self.api_port),
                "--metrics-port", str(free_port()),
            ],
            cwd=ROOT,
            env={"PATH": path},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # A group of its own: should uv not pass Ctrl-C on, the group is ended, never left.
            start_new_session=True,
        )  # fmt: skip
        # Both pipes are drained as they fill, so that the demo never blocks writing to one.
        pipes = [(self.process.stdout, self.lines), (self.process.stderr, self.errors)]
        self.readers = [threading.Thread(target=_collect, args=pipe, daemon=True) for pipe in pipes]
        for reader in self.readers:
            reader.start()

    def banner_command(self, label: str) -> str:
        """The command the banner prints after `label:`."""
        for line in list(self.lines):
            if line.strip().startswith(label + ":"):
                return line.split(":", 1)[1].strip()
        raise AssertionError(f"no {label!r} line in the banner:\n{''.join(self.lines)}")

    def get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.api_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def counted(self) -> int:
        return sum(item["count"] for item in self.get("/stats"))

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C (uv passes it to the demo), then the exit code and everything on stderr."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=scaled(STOP_TIMEOUT_SECONDS))
        for reader in self.readers:
            reader.join(timeout=scaled(STOP_TIMEOUT_SECONDS))
        return code, "".join(self.errors)

    def stop(self) -> None:
        """End it if it still runs: Ctrl-C first (the demo stops its private redis-server), the
        whole group killed only if that is not enough."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=scaled(STOP_TIMEOUT_SECONDS))
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _collect(stream: IO[str], into: list[str]) -> None:
    """Append each line as it arrives (the test reads the banner while the demo runs)."""
    for line in stream:
        into.append(line)  # noqa: PERF402 - one at a time, not a copy at the end


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
    demo = ReadmeDemo(shell_path)
    try:
        wait_until(
            lambda: (
                any("see dead letters:" in line for line in demo.lines) and demo.get("/stats") == []
            ),
            timeout=STARTUP_TIMEOUT_SECONDS,
            message="the demo's banner and API",
        )
        yield demo
    finally:
        demo.stop()


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
