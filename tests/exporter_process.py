"""`exporter <command>` as a test runs it: to its end (`run_exporter`), or in the background
(`ExporterProcess`) with its environment, its readiness, its output captured and its stop
(the command's own signal, SIGKILL if that is not enough) on every path."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

from tests.polling import scaled, wait_until
from tests.servers import STARTUP_TIMEOUT_SECONDS, start_process

EXPORTER: Final = str(Path(sys.executable).parent / "exporter")
"""The console script the package installs, as a user runs it."""
# How long a stopped command may take to exit before it is killed (scaled).
STOP_TIMEOUT_SECONDS: Final = 15.0


# The prefixes of the exporter's own settings, which a developer's shell may hold.
SETTING_PREFIXES: Final = ("EXPORTER_", "SQS_", "OTEL_")


def exporter_env(
    env: Mapping[str, str | None] | None = None,
    *,
    inherit: bool = True,
    fresh_settings: bool = False,
) -> dict[str, str]:
    """The test's environment (unless not `inherit`; without the exporter's own settings with
    `fresh_settings`) with `env` over it; a None value removes a name."""
    inherited = {
        name: value
        for name, value in (os.environ.items() if inherit else ())
        if not (fresh_settings and name.startswith(SETTING_PREFIXES))
    }
    merged: dict[str, str | None] = {**inherited, **(env or {})}
    return {name: value for name, value in merged.items() if value is not None}


def run_exporter(
    args: Sequence[str],
    env: Mapping[str, str | None] | None = None,
    *,
    timeout: float = 90,
    input: str | None = None,
    inherit: bool = True,
    fresh_settings: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run `exporter *args` to its end (it must end by itself within `timeout`, scaled), its
    output captured as text; the exit code is the caller's to check."""
    return subprocess.run(
        [EXPORTER, *args],
        env=exporter_env(env, inherit=inherit, fresh_settings=fresh_settings),
        input=input,
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        check=False,
    )


class ExporterProcess:
    """One `exporter <command>` in the background. Its output goes to `log` (stdout and stderr
    in one file, appended) or, without one, is read as it comes (so the command never blocks on
    a full pipe) into `stdout` and `stderr`. Use it as a context manager, or call `end()` in a
    `finally`: it is then stopped whatever happened."""

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str | None] | None = None,
        *,
        log: Path | None = None,
        program: Sequence[str] = (EXPORTER,),
        stop_signal: int = signal.SIGTERM,
        cwd: Path | None = None,
        inherit: bool = True,
        fresh_settings: bool = False,
        own_group: bool = False,
    ) -> None:
        """Start `program *args`. `stop_signal` is what `end()` sends first (the demo wants
        SIGINT, so that it stops the redis-server it started); `own_group` starts it in a
        process group of its own, which a SIGKILL then ends whole (for `uv run`)."""
        self.args = list(args)
        self.log = log
        self.stop_signal = stop_signal
        self.own_group = own_group
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._readers: list[threading.Thread] = []
        output: dict[str, Any]
        if log is None:
            output = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        else:
            handle = log.open("ab")
            output = {"stdout": handle, "stderr": subprocess.STDOUT}
        try:
            self.popen: subprocess.Popen[Any] = start_process(
                [*program, *args],
                env=exporter_env(env, inherit=inherit, fresh_settings=fresh_settings),
                cwd=cwd,
                start_new_session=own_group,
                **output,
            )
        finally:
            if log is not None:
                handle.close()  # the child holds its own copy
        if log is None:
            for name in ("stdout", "stderr"):
                reader = threading.Thread(
                    target=_collect,
                    args=(getattr(self.popen, name), self._lines[name]),
                    daemon=True,
                )
                reader.start()
                self._readers.append(reader)

    # What a test reads of it.

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit code, None while it runs."""
        return self.popen.returncode

    def poll(self) -> int | None:
        """The exit code if it has ended, else None."""
        return self.popen.poll()

    @property
    def stdout(self) -> str:
        """Everything it wrote to stdout so far (empty with a `log`)."""
        return "".join(self._lines["stdout"])

    @property
    def stderr(self) -> str:
        """Everything it wrote to stderr so far (with a `log`: the log)."""
        if self.log is not None:
            return self.log.read_text(errors="replace") if self.log.exists() else ""
        return "".join(self._lines["stderr"])

    def tail(self, lines: int = 30) -> str:
        """The end of its stderr (or log), for failure messages."""
        return "\n".join(self.stderr.splitlines()[-lines:])

    def wait_ready(
        self,
        condition: Callable[[], object],
        *,
        message: str,
        timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        """Poll `condition` until it holds; fail at once, with its output, if the command exits
        first; on any failure end it, so that it is never left behind."""

        try:
            # An exit ends the wait at once: waiting on would only hide why.
            wait_until(
                lambda: self.poll() is not None or condition(),
                timeout=timeout,
                interval=0.05,
                message=message,
            )
        except BaseException:
            self.end()
            raise
        if self.poll() is not None:
            self.end()  # reaps it and reads the rest of its output
            raise AssertionError(
                f"exporter {' '.join(self.args)} exited with {self.returncode} before "
                f"{message}:\n{self.tail()}"
            )

    # How it ends.

    def send_signal(self, signum: int) -> None:
        """Send `signum` (nothing once it has ended)."""
        if self.poll() is None:
            self.popen.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        """Wait `timeout` seconds (scaled) for it to exit, and then for its output to be read;
        the exit code. subprocess.TimeoutExpired if it still runs."""
        code = self.popen.wait(timeout=scaled(timeout))
        for reader in self._readers:
            reader.join(timeout=scaled(timeout))
        return code

    def stop(self, signum: int | None = None, *, timeout: float = 30) -> int:
        """Send `signum` (the stop signal unless given) and wait for the exit code; past
        `timeout` (scaled) it is killed and subprocess.TimeoutExpired raised, so a command that
        does not stop fails its test and is not left behind."""
        self.send_signal(self.stop_signal if signum is None else signum)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def finish(self, signum: int | None = None, *, timeout: float = 30) -> tuple[int, str]:
        """`stop`, then the exit code and everything it wrote to stderr."""
        return self.stop(signum, timeout=timeout), self.stderr

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would, and reap it."""
        if self.poll() is None:
            if self.own_group:
                os.killpg(self.popen.pid, signal.SIGKILL)
            else:
                self.popen.kill()
        self.wait(STOP_TIMEOUT_SECONDS)

    def end(self) -> None:
        """Stop it if it still runs: its stop signal first, SIGKILL if that is not enough."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.stop(timeout=STOP_TIMEOUT_SECONDS)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.end()


def _collect(stream: IO[str], into: list[str]) -> None:
    """Append each line as it arrives (tests read output while the command runs)."""
    for line in stream:
        into.append(line)  # noqa: PERF402 - one at a time, not a copy at the end
    stream.close()
