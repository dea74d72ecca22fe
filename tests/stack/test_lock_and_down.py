"""The stack fixture's guards against another run and a bad day: the machine's lock, a `down`
that retries, and an image build tried once more when a download fails.

The lock is tested with a real second process holding it. The retries are logic over an engine's
answers, so an engine stand-in (a script that keeps its containers in a file, refuses the first
removal as podman does when a dependent is half-removed, and fails a build as a timed-out wheel
download does) plays the engine; the real engine's `down` and build run in the compose stack test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.stack.engine import Engine, StackError
from tests.stack.lock import one_stack_at_a_time

HOLD = textwrap.dedent(
    """
    import fcntl, sys, time
    handle = open(sys.argv[1], "a+")
    fcntl.flock(handle, fcntl.LOCK_EX)
    handle.seek(0); handle.truncate(); handle.write("4242"); handle.flush()
    print("held", flush=True)
    sys.stdin.read()
    """
)


def test_a_second_run_waits_for_the_first_and_names_it_when_it_gives_up(tmp_path: Path) -> None:
    path = tmp_path / "stack.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(StackError, match=r"pid 4242\) held .* for more than 1 s"),
            one_stack_at_a_time(within=1, path=path),
        ):
            pytest.fail("the lock was taken while another process held it")
    finally:
        holder.communicate(input="", timeout=30)
    # Once the holder is gone, whatever way it ended, the lock is free.
    with one_stack_at_a_time(within=5, path=path):
        assert path.read_text() == str(os.getpid())


STANDIN = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    state = Path(sys.argv[1])
    data = json.loads(state.read_text())
    args = sys.argv[2:]
    data["calls"].append(args)
    if args[0] == "compose" and "build" in args:
        if data["build_failures"] > 0:
            data["build_failures"] -= 1
            state.write_text(json.dumps(data))
            print("error: Failed to download `urllib3==2.5.0`: operation timed out",
                  file=sys.stderr)
            sys.exit(1)
    elif args[0] == "ps":
        print("\\n".join(data["containers"]))
    elif args[0] == "rm":
        if data["refusals"] > 0:
            data["refusals"] -= 1
            names = [name for name in args[1:] if not name.startswith("-")]
            # The dependent goes; the one it depended on stays until a later `rm`.
            if len(data["containers"]) > 1:
                data["containers"] = [n for n in data["containers"] if n != names[0]]
            state.write_text(json.dumps(data))
            print("Error: container has dependent containers which must be removed before it",
                  file=sys.stderr)
            sys.exit(125)
        data["containers"] = []
    state.write_text(json.dumps(data))
    """
)


def _standin(
    tmp_path: Path, *, refusals: int = 0, name: str = "podman", build_failures: int = 0
) -> tuple[Engine, Path]:
    state = tmp_path / "state.json"
    state.write_text(
        '{"containers": ["p_processor_3", "p_redis_1", "p_sqs_1"], "calls": [], '
        f'"refusals": {refusals}, "build_failures": {build_failures}}}'
    )
    script = tmp_path / "standin.py"
    script.write_text(STANDIN)
    launcher = tmp_path / name
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} {script} {state} "$@"\n')
    launcher.chmod(0o755)
    # compose is the same stand-in: it records `down` and removes nothing, as podman-compose
    # leaves containers added by --scale.
    return Engine(str(launcher), (str(launcher), "compose")), state


def test_down_repeats_the_removal_a_dependency_refused(tmp_path: Path) -> None:
    engine, state = _standin(tmp_path, refusals=1)
    engine.down(volumes=True, timeout=30)
    data = json.loads(state.read_text())
    assert data["containers"] == []
    removals = [call for call in data["calls"] if call[0] == "rm"]
    assert len(removals) == 2, removals


def test_down_gives_up_at_its_deadline_with_what_the_engine_said(tmp_path: Path) -> None:
    engine, _ = _standin(tmp_path, refusals=10_000)
    started = time.monotonic()
    with pytest.raises(StackError, match=r"(?s)survived `down` for 2 s.*dependent containers"):
        engine.down(volumes=False, timeout=2)
    assert time.monotonic() - started < 30


def _first_removal(state: Path) -> list[str]:
    calls: list[list[str]] = json.loads(state.read_text())["calls"]
    return next(call for call in calls if call[0] == "rm")


def test_down_takes_dependents_along_on_podman_only(tmp_path: Path) -> None:
    (tmp_path / "podman").mkdir()
    podman, state = _standin(tmp_path / "podman", refusals=0)
    podman.down(volumes=True, timeout=30)
    assert "--depend" in _first_removal(state)
    (tmp_path / "docker").mkdir()
    docker, state = _standin(tmp_path / "docker", refusals=0, name="docker")
    docker.down(volumes=True, timeout=30)
    assert "--depend" not in _first_removal(state)


def _builds(state: Path) -> list[list[str]]:
    calls: list[list[str]] = json.loads(state.read_text())["calls"]
    return [call for call in calls if call[0] == "compose" and "build" in call]


def test_a_failed_build_is_tried_once_more_saying_why(tmp_path: Path) -> None:
    """A build that fails once (a download timed out) is run again, and the fixture is told
    that it is and what the engine said."""
    engine, state = _standin(tmp_path, build_failures=1)
    said: list[str] = []
    engine.build("processor", "sqs", timeout=30, say=said.append)
    assert len(_builds(state)) == 2
    assert all(call[-2:] == ["processor", "sqs"] for call in _builds(state))
    (message,) = said
    assert "building once more" in message
    assert "Failed to download `urllib3==2.5.0`: operation timed out" in message


def test_a_build_that_fails_twice_fails_with_what_the_engine_said(tmp_path: Path) -> None:
    """A second failure is the build's own: no third try, and the error carries its output."""
    engine, state = _standin(tmp_path, build_failures=2)
    said: list[str] = []
    with pytest.raises(StackError, match="urllib3"):
        engine.build("processor", timeout=30, say=said.append)
    assert len(_builds(state)) == 2
    assert len(said) == 1


def test_a_build_that_works_is_run_once_in_silence(tmp_path: Path) -> None:
    """A build that succeeds is not repeated and prints nothing."""
    engine, state = _standin(tmp_path)
    said: list[str] = []
    engine.build("processor", timeout=30, say=said.append)
    assert len(_builds(state)) == 1
    assert said == []
