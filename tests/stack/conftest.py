"""The compose stack, up once per module from the repository's own files, and always torn down."""

from __future__ import annotations

import atexit
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType

import pytest

from tests.servers import IN_CI
from tests.stack.engine import PROJECT, Engine, StackError, detect, seconds
from tests.stack.files import compose_services
from tests.stack.lock import one_stack_at_a_time
from tests.stack.probes import API, PROMETHEUS, get_json, port_is_free, wait_for

# What the checks need; the other services (Grafana; the tracing profile) come up when their
# images are on the machine, and are named as left out otherwise.
REQUIRED = ("sqs", "redis", "processor", "api", "producer", "prometheus")
HOST_PORTS = (8000, 9090)


@dataclass(slots=True)
class Stack:
    """The running stack: the engine, the services brought up, and those left out and why."""

    engine: Engine
    services: list[str]
    left_out: dict[str, str] = field(default_factory=dict)

    def up(self, *services: str, extra: tuple[str, ...] = ()) -> None:
        """`compose up -d` of some services (all brought-up ones when none are named)."""
        names = list(services) or self.services
        self.engine.compose("up", "-d", *extra, *names, timeout=seconds(600))


@dataclass(slots=True)
class Guard:
    """Tears down the project on every engine used, at the session's end or at exit."""

    engines: list[Engine] = field(default_factory=list)

    def teardown(self) -> None:
        """Remove the project's containers and volumes on every engine used; keep images."""
        while self.engines:
            engine = self.engines.pop()
            try:
                engine.down(volumes=True, timeout=seconds(180))
            except StackError as exc:  # pragma: no cover - reported, never hidden
                print(f"stack teardown failed: {exc}", file=sys.stderr)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # A CI runner stops a job with SIGTERM: turn it into KeyboardInterrupt so that the
    # fixtures' finally blocks, and with them the teardown, run.
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(name="stack_guard", scope="session")
def fixture_stack_guard() -> Iterator[Guard]:
    """A last line of defence: whatever the stack fixture left, the session's end removes."""
    guard = Guard()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    atexit.register(guard.teardown)
    try:
        yield guard
    finally:
        guard.teardown()
        atexit.unregister(guard.teardown)
        signal.signal(signal.SIGTERM, previous)


def _engine() -> Engine:
    found = detect()
    if isinstance(found, str):
        message = f"{found}. `bash .ci/run` installs podman and podman-compose (docs/stack.md)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def _plan(engine: Engine) -> tuple[list[str], dict[str, str]]:
    """The services to bring up, and the ones left out with the reason."""
    services, left_out = [], {}
    for name, service in compose_services().items():
        if service.get("profiles"):
            left_out[name] = f"in profile {service['profiles']}, off by default"
        elif "build" in service or engine.image_exists(service["image"]):
            services.append(name)
        else:
            left_out[name] = f"image {service['image']} is not on this machine"
    missing = [name for name in REQUIRED if name not in services]
    if missing:
        details = ", ".join(f"{name}: {left_out[name]}" for name in missing)
        pytest.fail(
            f"the stack cannot come up ({details}). Pull the images (`docker compose pull`) or, "
            "where no registry is reachable, build stand-ins: docker/standins/prepare.sh"
        )
    return services, left_out


def _ports_free() -> tuple[bool, str]:
    taken = [port for port in HOST_PORTS if not port_is_free(port)]
    return not taken, f"ports {taken} accept connections"


def _ready() -> tuple[bool, str]:
    health = get_json(f"{API}/health")
    with_prometheus = get_json(f"{PROMETHEUS}/api/v1/status/buildinfo")
    return True, f"api {health}, prometheus {with_prometheus.get('status')}"


def _say(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Print to the terminal at once, past pytest's capture: CI's log shows a retried build even
    when the test then passes."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return lambda text: print(text, file=sys.stderr)
    write_line: Callable[[str], None] = reporter.write_line
    return write_line


@pytest.fixture(name="stack", scope="module")
def fixture_stack(stack_guard: Guard, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """`compose build` (tried once more if it fails), then `compose up -d`, of every service that
    can run here; `down -v` afterwards, always."""
    engine = _engine()
    services, left_out = _plan(engine)
    with one_stack_at_a_time(within=seconds(600)):
        stack_guard.engines.append(engine)
        try:
            # A stack of an earlier, killed run would hold the ports and the volumes: start clean.
            engine.down(volumes=True, timeout=seconds(180))
            wait_for(
                f"host ports {HOST_PORTS} to be free (the stack publishes them; is another up?)",
                _ports_free,
                30,
            )
            # The README's `docker compose up --build`, detached, limited to what can run here,
            # with the build as a step of its own so that a failed one is tried once more.
            built = [name for name in services if "build" in compose_services()[name]]
            engine.build(*built, timeout=seconds(1200), say=_say(request))
            engine.compose("up", "-d", *services, timeout=seconds(600))
            wait_for("the API and Prometheus to answer", _ready, 120)
            yield Stack(engine, services, left_out)
        finally:
            stack_guard.teardown()


__all__ = ["PROJECT", "Stack"]
