"""A real Redis Cluster for tests: redis-server processes joined by `redis-cli --cluster create`."""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
from pathlib import Path

from tests.servers import require_binary, wait_until

# The cluster bus listens on port + 10000, which must stay a valid port.
MAX_NODE_PORT = 55535


def _free(port: int) -> bool:
    for candidate in (port, port + 10000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                return False
    return True


def cluster_port() -> int:
    """A loopback port that is free, and whose cluster bus port is free too."""
    for _ in range(1000):
        port = random.randint(20000, MAX_NODE_PORT)
        if _free(port):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _command(port: int, *args: str) -> bytes:
    """One command over a raw socket, as redis-cli would send it; the first reply's bytes."""
    parts = [f"*{len(args)}\r\n".encode()]
    parts += (f"${len(arg.encode())}\r\n{arg}\r\n".encode() for arg in args)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"".join(parts))
        return sock.recv(65536)


class RedisClusterNodes:
    """`masters` masters (and `replicas` replicas each) on loopback, each in its own directory."""

    def __init__(self, workdir: Path, *, masters: int = 3, replicas: int = 0) -> None:
        self.server = require_binary("redis-server")
        self.cli = require_binary("redis-cli")
        self.workdir = workdir
        self.ports = [cluster_port() for _ in range(masters * (1 + replicas))]
        self.replicas = replicas
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def url(self, port: int | None = None) -> str:
        """The URL of one node (the first by default); any node leads to the whole cluster."""
        return f"redis://127.0.0.1:{port or self.ports[0]}/0"

    def start(self) -> None:
        """Start every node, join them into a cluster, and wait until every node says ok."""
        try:
            for port in self.ports:
                self._start_node(port)
            create = [
                self.cli,
                "--cluster", "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas", str(self.replicas),
                "--cluster-yes",
            ]  # fmt: skip
            subprocess.run(
                create,
                check=True,
                capture_output=True,
                timeout=120,
            )
            wait_until(self.healthy, timeout=120, interval=0.2, message="cluster_state:ok")
        except BaseException:
            self.stop()
            raise

    def _start_node(self, port: int) -> None:
        directory = self.workdir / str(port)
        directory.mkdir(parents=True, exist_ok=True)
        args = [
            self.server,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(directory),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "2000",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(directory / "redis.log"),
        ]  # fmt: skip
        self.processes[port] = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(
            lambda: _command(port, "PING").startswith(b"+PONG"),
            timeout=60,
            message=f"cluster node on {port}",
        )

    def healthy(self) -> bool:
        """The cluster is whole, and every master has its replicas in sync."""
        # A replica counts once its first sync is done: until then WAIT never counts it.
        return self.whole() and all(
            _command(port, "INFO", "replication").count(b"state=online") >= self.replicas
            for port in self.masters()
        )

    def whole(self) -> bool:
        """Every live node reports cluster_state:ok (every slot served, by a master that runs)."""
        live = [p for p, proc in self.processes.items() if proc.poll() is None]
        return all(b"cluster_state:ok" in _command(port, "CLUSTER", "INFO") for port in live)

    def masters(self) -> list[int]:
        """Ports of live nodes that are masters now."""
        return [
            port
            for port, proc in self.processes.items()
            if proc.poll() is None and b"role:master" in _command(port, "INFO", "replication")
        ]

    def kill(self, port: int) -> None:
        """SIGKILL one node, as a crash would."""
        process = self.processes[port]
        process.kill()
        process.wait(timeout=10)

    def restart(self, port: int) -> None:
        """Start a killed node again; it rejoins the cluster (a failed-over master as a replica)."""
        self._start_node(port)

    def flush(self) -> None:
        """Empty every master."""
        for port in self.masters():
            _command(port, "FLUSHALL")

    def stop(self) -> None:
        """Stop every node still running."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


__all__ = ["MAX_NODE_PORT", "RedisClusterNodes", "cluster_port"]
