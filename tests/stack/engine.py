"""The container engine that runs the compose stack: docker compose, or podman with podman-compose.

The stack test drives the engine only through the compose file and plain engine commands (ps, exec,
inspect, kill, rm), so the same test runs on Docker and on podman.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.stack.files import COMPOSE, ROOT

# A project name of the test's own: a developer's own `docker compose up` (project
# sqs-metrics-exporter) is never touched, and whatever the test starts carries this label.
PROJECT = "sqs-metrics-exporter-stacktest"
PROJECT_LABEL = f"com.docker.compose.project={PROJECT}"
SERVICE_LABEL = "com.docker.compose.service"


class StackError(Exception):
    """A command of the engine failed; the message carries the command and its output."""


def timeout_scale() -> float:
    """EXPORTER_TEST_TIMEOUT_SCALE: every deadline of the stack test is multiplied by it."""
    raw = os.environ.get("EXPORTER_TEST_TIMEOUT_SCALE", "") or "1"
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"EXPORTER_TEST_TIMEOUT_SCALE={raw!r} is not a number") from None
    if scale <= 0:
        raise ValueError(f"EXPORTER_TEST_TIMEOUT_SCALE={raw!r} must be positive")
    return scale


def seconds(base: float) -> float:
    """A deadline of `base` seconds on an unloaded machine, scaled for this one."""
    return base * timeout_scale()


def _run(
    command: list[str], timeout: float, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=None if env is None else {**os.environ, **env},
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"`{' '.join(command)}` did not finish within {timeout:.0f} s") from exc
    if check and result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise StackError(f"`{' '.join(command)}` exited with {result.returncode}:\n{output}")
    return result


@dataclass(frozen=True, slots=True)
class Engine:
    """One container engine and the compose front end that goes with it."""

    name: str  # "docker" or "podman": the command for ps, exec, inspect, kill, rm
    compose_command: tuple[str, ...]
    compose_env: tuple[tuple[str, str], ...] = ()

    def compose(
        self, *args: str, timeout: float, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a compose subcommand on the repository's compose file, in the test's project."""
        command = [*self.compose_command, "-f", str(COMPOSE), "-p", PROJECT, *args]
        return _run(command, timeout, check, dict(self.compose_env))

    def build(self, *services: str, timeout: float, say: Callable[[str], None] = print) -> None:
        """`compose build` of `services`, tried once more when it fails, saying so and why.

        One download that times out inside the build (a registry's hiccup) must not cost every
        stack test; the second try fetches only what uv's cache mount does not hold yet. A
        second failure is the build's own and raises.
        """
        try:
            self.compose("build", *services, timeout=timeout)
        except StackError as exc:
            why = "\n".join(str(exc).splitlines()[-12:])
            say(f"stack: the image build failed; building once more. It said:\n{why}")
            self.compose("build", *services, timeout=timeout)

    def run(
        self, *args: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run an engine command (`docker ...` or `podman ...`)."""
        return _run([self.name, *args], timeout, check)

    def containers(self, service: str | None = None, *, every: bool = False) -> list[str]:
        """Names of the project's containers (of one service), running ones unless `every`."""
        args = ["ps", "--filter", f"label={PROJECT_LABEL}", "--format", "{{.Names}}"]
        if service is not None:
            args[3:3] = ["--filter", f"label={SERVICE_LABEL}={service}"]
        if every:
            args.insert(1, "--all")
        return sorted(line for line in self.run(*args).stdout.split() if line)

    def inspect(self, container: str) -> dict[str, Any]:
        """`inspect` of one container."""
        data = json.loads(self.run("inspect", container).stdout)
        assert isinstance(data, list), f"inspect {container} returned {data!r}"
        assert data, f"inspect {container} returned nothing"
        first: dict[str, Any] = data[0]
        return first

    def exec(
        self, container: str, *command: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a running container; the result is returned, not checked."""
        return self.run("exec", container, *command, timeout=timeout, check=False)

    def image_exists(self, image: str) -> bool:
        """Whether the image is on this machine (nothing is pulled)."""
        return self.run("image", "inspect", image, check=False).returncode == 0

    def down(self, *, volumes: bool, timeout: float) -> None:
        """Stop and remove every container of the project, whatever started it; volumes optional.

        podman-compose's `down` only removes the replicas the compose file declares, so containers
        added by `--scale` are removed by label, then `down` removes networks (and volumes). A run
        killed mid-stack (or a machine restarted under it) can leave containers that one `rm`
        cannot remove at once: one still being removed, or one another depends on. Removal is
        therefore repeated until none is left or the deadline passes, and on podman takes the
        dependents with it (`--depend`).
        """
        flags = ["down", "-v"] if volumes else ["down"]
        deadline = time.monotonic() + timeout
        self.compose(*flags, timeout=timeout, check=False)
        refused = ""
        for attempt in itertools.count():
            leftovers = self.containers(every=True)
            if not leftovers:
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"containers of {PROJECT} survived `down` for {timeout:.0f} s: "
                    f"{', '.join(leftovers)}; the last `rm` said:\n{refused[-4000:]}"
                )
            if attempt:
                time.sleep(1)  # what was refused is often a removal still under way
            removal = self.run(
                "rm", "--force", *self._rm_dependents(), *leftovers, timeout=timeout, check=False
            )
            refused = f"exit {removal.returncode}: {removal.stdout}{removal.stderr}"
            self.compose(*flags, timeout=timeout, check=False)

    def _rm_dependents(self) -> tuple[str, ...]:
        # Docker's `rm` has no such flag: its compose removes in dependency order itself.
        return ("--depend",) if os.path.basename(self.name) == "podman" else ()


def _works(command: list[str]) -> bool:
    try:
        return _run(command, timeout=30, check=False).returncode == 0
    except StackError:
        return False


def detect() -> Engine | str:
    """The engine that can run the stack here, or why none can.

    EXPORTER_STACK_ENGINE=docker or podman picks one; otherwise a Docker daemon with the compose
    plugin is preferred, then podman with podman-compose.
    """
    wanted = os.environ.get("EXPORTER_STACK_ENGINE", "")
    reasons = []
    if wanted in ("", "docker"):
        if shutil.which("docker") is None:
            reasons.append("docker is not on PATH")
        elif not _works(["docker", "info"]):
            reasons.append("docker is installed but no Docker engine answers (`docker info`)")
        elif not _works(["docker", "compose", "version"]):
            reasons.append("docker has no compose plugin (`docker compose version`)")
        else:
            return Engine("docker", ("docker", "compose"))
    if wanted in ("", "podman"):
        compose = os.environ.get("EXPORTER_PODMAN_COMPOSE") or shutil.which("podman-compose")
        if shutil.which("podman") is None:
            reasons.append("podman is not on PATH")
        elif compose is None:
            reasons.append("podman-compose is not on PATH")
        elif not _works(["podman", "info"]):
            reasons.append("podman is installed but `podman info` fails")
        else:
            # podman builds OCI images by default, which drop the Dockerfile's HEALTHCHECK;
            # Docker's image format keeps it, as `docker build` does.
            return Engine("podman", (compose,), (("BUILDAH_FORMAT", "docker"),))
    return "no container engine for the compose stack: " + "; ".join(reasons)
