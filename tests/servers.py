"""Real servers for tests: redis-server and moto's SQS server as subprocesses on free ports."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from tests.polling import scaled, wait_until

IN_CI = os.environ.get("CI", "").lower() == "true"


# A real server or exporter process gets this long (times the scale) to become ready: polling
# returns as soon as it is, so a generous limit costs nothing on an idle machine.
STARTUP_TIMEOUT_SECONDS: Final = 120.0
# Every process the tests start, so that the session can prove none outlived it.
STARTED: Final[list[subprocess.Popen[Any]]] = []


def start_process(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """subprocess.Popen, remembered so that the session-end check finds it if it leaks."""
    process: subprocess.Popen[Any] = subprocess.Popen(args, **kwargs)
    STARTED.append(process)
    return process


def end_process(process: subprocess.Popen[Any] | None) -> None:
    """Terminate `process` (kill it if it ignores that) and reap it; nothing if it is gone."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=scaled(10))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=scaled(10))


def wait_ready(
    process: subprocess.Popen[Any], condition: Callable[[], object], *, message: str
) -> None:
    """Wait for a just-started `process` to be ready; on any failure end it, so it never leaks."""
    try:
        wait_until(condition, timeout=STARTUP_TIMEOUT_SECONDS, interval=0.05, message=message)
    except BaseException:
        end_process(process)
        raise


def require_binary(name: str) -> str:
    """The path of `name`; skip the test without it locally, fail in CI where it must exist."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not on PATH (install it: apt-get install {name})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@functools.cache
def _serves_tls(binary: str) -> bool:
    # A build with TLS tries to load the certificate it is given (and fails on a missing one);
    # a build without it never reads the file.
    probe = subprocess.run(
        [
            binary, "--port", "0", "--tls-port", "1", "--save", "", "--appendonly", "no",
            "--tls-cert-file", "/nonexistent", "--tls-key-file", "/nonexistent",
            "--tls-ca-cert-file", "/nonexistent",
        ],
        capture_output=True,
        text=True,
        timeout=scaled(30),
        check=False,
    )  # fmt: skip
    return "Failed to load certificate" in probe.stdout + probe.stderr


def require_tls_redis() -> str:
    """The path of a redis-server that serves TLS; skip without one locally, fail in CI."""
    binary = require_binary("redis-server")
    if not _serves_tls(binary):
        message = f"{binary} was built without TLS (build it with BUILD_TLS=yes)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return binary


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True, slots=True)
class ServerTls:
    """TLS of a test redis-server, which then serves TLS only (`--port 0 --tls-port`)."""

    cert_file: Path
    key_file: Path
    ca_file: Path
    """The CA that signs the server's certificate and the clients' ones; tests trust it."""
    client_cert: Path | None = None
    client_key: Path | None = None
    """With a client certificate the server requires one (`--tls-auth-clients yes`), and the
    tests' own connections present this one."""

    def server_args(self) -> list[str]:
        """redis-server's TLS options, for a node of a cluster too (its bus and replication)."""
        return [
            "--tls-cert-file", str(self.cert_file),
            "--tls-key-file", str(self.key_file),
            "--tls-ca-cert-file", str(self.ca_file),
            "--tls-auth-clients", "yes" if self.client_cert else "no",
            "--tls-replication", "yes",
        ]  # fmt: skip

    def client_options(self) -> dict[str, Any]:
        """redis-py's options for the tests' own clients (the exporter gets its settings)."""
        options: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(self.ca_file)}
        if self.client_cert is not None and self.client_key is not None:
            options |= {"ssl_certfile": str(self.client_cert), "ssl_keyfile": str(self.client_key)}
        return options

    def client_context(self) -> ssl.SSLContext:
        """An ssl context for the tests' raw sockets, trusting the CA, with the client's
        certificate when the server requires one."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if self.client_cert is not None:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


def ping(port: int, tls: ServerTls | None = None) -> bool:
    """Whether a redis-server on loopback `port` answers PING (over TLS with `tls`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw:
        if tls is None:
            raw.sendall(b"PING\r\n")
            return raw.recv(64).startswith(b"+PONG")
        with tls.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")


class RedisServer:
    """A private redis-server; kill and restart it to test faults (append-only when asked), over
    TLS only with `tls`."""

    def __init__(
        self, workdir: Path, *, appendonly: bool = False, tls: ServerTls | None = None
    ) -> None:
        self.binary = require_binary("redis-server") if tls is None else require_tls_redis()
        self.workdir = workdir
        self.appendonly = appendonly
        self.tls = tls
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        scheme = "redis" if self.tls is None else "rediss"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) on the same port and directory, and wait until it answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        ports = ["--port", str(self.port)]
        if self.tls is not None:
            ports = ["--port", "0", "--tls-port", str(self.port), *self.tls.server_args()]
        args = [
            self.binary,
            *ports,
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.workdir / "redis.log"),
        ]  # fmt: skip
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.process = start_process(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(self.process, self._answers, message=f"redis-server on {self.port}")

    def _answers(self) -> bool:
        return ping(self.port, self.tls)

    def kill(self) -> None:
        """SIGKILL, as a crash would, and wait until it is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=scaled(10))
        self.process = None

    def stop(self) -> None:
        """Stop politely."""
        end_process(self.process)
        self.process = None


@contextlib.contextmanager
def two_redis_servers(workdir: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    """Two redis-servers of the test's own, to become a primary and its replica (when and how
    they are linked is what such tests check); both killed at the end, whatever happened."""
    primary, replica = RedisServer(workdir / "primary"), RedisServer(workdir / "replica")
    primary.start()
    try:
        replica.start()
        yield primary, replica
    finally:
        replica.kill()
        primary.kill()


class MotoServer:
    """moto's SQS-compatible server in its own process, over HTTP on a free port, its FIFO
    receives in the group order AWS documents (`tests/moto_fifo.py` says where moto differs)."""

    def __init__(self, port: int | None = None, *, checks_keys: bool = False) -> None:
        self.port = port or free_port()
        # moto accepts any keys unless told to check them against its own (empty) IAM: then
        # every call is refused as AWS refuses unknown keys (403 InvalidClientTokenId).
        self.checks_keys = checks_keys
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The endpoint URL for boto3 (`AWS_ENDPOINT_URL`)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start and wait until it serves HTTP."""
        self.process = start_process(
            [sys.executable, "-m", "tests.moto_fifo", "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"} if self.checks_keys else None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_ready(self.process, self._serves, message=f"moto server on {self.port}")

    def _serves(self) -> bool:
        if not _port_open(self.port):
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):  # noqa: S310
                return True
        except urllib.error.HTTPError:
            return True

    def reset(self) -> None:
        """Forget every queue, so tests do not see each other's messages."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310
            pass

    def stop(self) -> None:
        """Stop the server process."""
        end_process(self.process)
        self.process = None


EVICTING_POLICIES: Final = (
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
)
"""Every maxmemory-policy of redis-server but noeviction: each lets Redis delete keys."""

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
