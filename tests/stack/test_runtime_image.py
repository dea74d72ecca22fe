"""The slim runtime image and the demo image, built from the Dockerfile's two targets and run the
way Kubernetes runs them (deploy/kubernetes): read-only root, every capability dropped, no
privilege escalation, the image's uid, the base ConfigMap's settings.

The processor and the API talk to a real redis-server and moto server on this machine's loopback
(host network). Both images are tagged with names of this test's own, so an image someone built
for themselves is never replaced; containers are removed on every path.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.k8s.manifests import config_map_data, render
from tests.polling import wait_until
from tests.servers import AWS_TEST_ENV, IN_CI, MotoServer, RedisServer, free_port
from tests.stack.engine import Engine, detect, seconds
from tests.stack.files import ROOT

RUNTIME = "localhost/sqs-metrics-exporter-imagetest:runtime"
DEMO = "localhost/sqs-metrics-exporter-imagetest:demo"
# As the Deployments set them (deploy/kubernetes/base): what Kubernetes' securityContext means
# to the container runtime.
RESTRICTED = (
    "--read-only",
    "--tmpfs=/tmp",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--user=10001:10001",
)
PROCESSOR_GRACE_SECONDS = 45  # terminationGracePeriodSeconds of the processor Deployment


@dataclass(frozen=True, slots=True)
class Images:
    """The engine and the two images it built."""

    engine: Engine

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`<engine> run --rm` with the restricted flags; the result is returned, not checked."""
        return self.engine.run("run", "--rm", *RESTRICTED, *args, timeout=timeout, check=False)

    def size_mb(self, image: str) -> float:
        """The image's size as the engine reports it, in MB (10^6 bytes)."""
        out = self.engine.run("image", "inspect", "--format", "{{.Size}}", image).stdout
        return int(out.strip()) / 1e6


def _build(engine: Engine, target: str, tag: str) -> None:
    env = {**os.environ, "BUILDAH_FORMAT": "docker"} if engine.name == "podman" else None
    result = subprocess.run(
        [engine.name, "build", "--target", target, "-t", tag, "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds(900),
        env=env,
    )
    assert result.returncode == 0, f"build of {target} failed:\n{result.stderr[-3000:]}"


@pytest.fixture(name="images", scope="module")
def fixture_images() -> Images:
    """Both targets built (from the layer cache after the compose stack's build)."""
    found = detect()
    if isinstance(found, str):
        message = f"{found}. `bash .ci/run` installs podman (docs/stack.md)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    _build(found, "runtime", RUNTIME)
    _build(found, "demo", DEMO)
    return Images(found)


@pytest.fixture(name="restricted_servers", scope="module")
def fixture_restricted_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RedisServer, MotoServer]]:
    """A redis-server and a moto server of this module's own, on loopback."""
    redis = RedisServer(tmp_path_factory.mktemp("image-redis"))
    moto = MotoServer()
    redis.start()
    try:
        moto.start()
        try:
            yield redis, moto
        finally:
            moto.stop()
    finally:
        redis.stop()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - loopback
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _kubernetes_env(redis: RedisServer, moto: MotoServer) -> list[str]:
    """The base ConfigMap's settings, plus where this machine's Redis and SQS are."""
    settings = {
        **config_map_data(render("base")),
        **AWS_TEST_ENV,
        "REDIS_URL": redis.url,
        "AWS_ENDPOINT_URL": moto.url,
        "SQS_QUEUE_NAME": f"image-{uuid.uuid4().hex[:10]}",
        "EXPORTER_CREATE_QUEUES": "true",  # the test's queue is new, as on the local overlay
        "EXPORTER_REDIS_PREFIX": f"image{uuid.uuid4().hex[:8]}",
    }
    return [f"--env={key}={value}" for key, value in settings.items()]


def test_the_runtime_image_holds_no_demo_and_answers_the_basic_commands(images: Images) -> None:
    """In the runtime image moto is not importable, and `exporter --version`, `--help`,
    `processor --help` and `api --help` work under the restricted flags."""
    no_moto = images.run("--entrypoint", "python", RUNTIME, "-c", "import moto")
    assert no_moto.returncode != 0
    assert "No module named 'moto'" in no_moto.stderr
    version = images.run(RUNTIME, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "exporter 0.1.0"
    usage = images.run(RUNTIME, "--help")
    assert usage.returncode == 0, usage.stderr
    assert "processor" in usage.stdout
    assert "api" in usage.stdout
    for command in ("processor", "api"):
        result = images.run(RUNTIME, command, "--help")
        assert result.returncode == 0, result.stderr
        assert "REDIS_URL" in result.stdout


def test_demo_in_the_runtime_image_names_the_target_to_use(images: Images) -> None:
    """`exporter demo` in the runtime image exits 2 with one line naming the demo target."""
    result = images.run(RUNTIME, "demo")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    engine_noise = [line for line in lines if "systemd" in line]  # podman without systemd
    (line,) = [line for line in lines if line not in engine_noise]
    assert "--target demo" in line
    assert "Traceback" not in result.stderr


def test_the_runtime_image_is_the_demo_image_without_moto(images: Images) -> None:
    """The demo target adds moto's server to the runtime: the runtime is the smaller by more than
    100 MB (measured: 451 MB against 676 on the Debian stand-in base, docs/stack.md)."""
    runtime, demo = images.size_mb(RUNTIME), images.size_mb(DEMO)
    print(f"image sizes: runtime {runtime:.0f} MB, demo {demo:.0f} MB")
    assert demo - runtime > 100, (runtime, demo)


def test_processor_and_api_run_restricted_and_the_processor_drains_in_its_grace(
    images: Images, restricted_servers: tuple[RedisServer, MotoServer]
) -> None:
    """With the base ConfigMap's settings and a read-only root, the processor becomes ready and
    the API serves /stats; on SIGTERM the processor exits 0 within the Deployment's grace."""
    redis, moto = restricted_servers
    metrics_port, api_port = free_port(), free_port()
    env = _kubernetes_env(redis, moto)
    name = f"exporter-imagetest-{uuid.uuid4().hex[:8]}"
    engine = images.engine
    common = ("run", "--detach", "--network=host", *RESTRICTED)
    try:
        engine.run(
            *common, f"--name={name}-processor", *env,
            "--env=EXPORTER_METRICS_HOST=127.0.0.1", f"--env=EXPORTER_METRICS_PORT={metrics_port}",
            RUNTIME, "processor",
        )  # fmt: skip
        engine.run(
            *common, f"--name={name}-api", *env,
            "--env=EXPORTER_API_HOST=127.0.0.1", f"--env=EXPORTER_API_PORT={api_port}",
            RUNTIME, "api",
        )  # fmt: skip
        wait_until(
            lambda: _status(f"http://127.0.0.1:{metrics_port}/ready") == 200,
            timeout=seconds(60),
            message="the restricted processor ready",
        )
        wait_until(
            lambda: _status(f"http://127.0.0.1:{api_port}/stats") == 200,
            timeout=seconds(60),
            message="the restricted API serving /stats",
        )
        started = time.monotonic()
        engine.run("stop", f"--time={PROCESSOR_GRACE_SECONDS}", f"{name}-processor",
                   timeout=PROCESSOR_GRACE_SECONDS + 30)  # fmt: skip
        stopped_in = time.monotonic() - started
        state = json.loads(engine.run("inspect", f"{name}-processor").stdout)[0]["State"]
        logs = engine.run("logs", f"{name}-processor", check=False)
        assert state["ExitCode"] == 0, logs.stdout[-2000:] + logs.stderr[-2000:]
        assert stopped_in < PROCESSOR_GRACE_SECONDS, stopped_in
        print(f"processor drained and exited 0 in {stopped_in:.1f} s after SIGTERM")
    finally:
        engine.run("rm", "--force", f"{name}-processor", f"{name}-api", check=False)


def test_the_demo_image_serves_sqs_read_only(images: Images) -> None:
    """moto's server from the demo image answers under the restricted flags, as the compose
    stack's and the local overlay's SQS emulator."""
    port = free_port()
    name = f"exporter-imagetest-{uuid.uuid4().hex[:8]}-sqs"
    engine = images.engine
    try:
        engine.run(
            "run", "--detach", "--network=host", *RESTRICTED, f"--name={name}",
            "--entrypoint=moto_server", DEMO, "-H", "127.0.0.1", "-p", str(port),
        )  # fmt: skip
        wait_until(
            lambda: _status(f"http://127.0.0.1:{port}/moto-api/") == 200,
            timeout=seconds(60),
            message="moto's server from the demo image",
        )
    finally:
        engine.run("rm", "--force", name, check=False)
