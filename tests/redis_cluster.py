"""A real Redis Cluster for tests: redis-server processes joined by `redis-cli --cluster create`."""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
from pathlib import Path

import redis

from tests.polling import wait_until
from tests.servers import ServerTls, end_process, require_binary, require_tls_redis, start_process

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


def _command(port: int, *args: str, tls: ServerTls | None = None) -> bytes:
    """One command over a raw socket (TLS with `tls`), as redis-cli would send it; the first
    reply's bytes."""
    parts = [f"*{len(args)}\r\n".encode()]
    parts += (f"${len(arg.encode())}\r\n{arg}\r\n".encode() for arg in args)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
        if tls is None:
            raw.sendall(b"".join(parts))
            return raw.recv(65536)
        with tls.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(b"".join(parts))
            return sock.recv(65536)


class RedisClusterNodes:
    """`masters` masters (and `replicas` replicas each) on loopback, each in its own directory;
    with `appendonly` every write is on disk before it is acknowledged (appendfsync always), so a
    node killed and restarted comes back with everything it acknowledged."""

    def __init__(
        self,
        workdir: Path,
        *,
        masters: int = 3,
        replicas: int = 0,
        appendonly: bool = False,
        tls: ServerTls | None = None,
    ) -> None:
        self.server = require_binary("redis-server") if tls is None else require_tls_redis()
        self.cli = require_binary("redis-cli")
        self.tls = tls
        self.workdir = workdir
        self.ports = [cluster_port() for _ in range(masters * (1 + replicas))]
        self.replicas = replicas
        self.appendonly = appendonly
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def url(self, port: int | None = None) -> str:
        """The URL of one node (the first by default); any node leads to the whole cluster."""
        scheme = "redis" if self.tls is None else "rediss"
        return f"{scheme}://127.0.0.1:{port or self.ports[0]}/0"

    def _send(self, port: int, *args: str) -> bytes:
        return _command(port, *args, tls=self.tls)

    def _cli_tls(self) -> list[str]:
        """redis-cli's options to reach the nodes (none without TLS)."""
        if self.tls is None:
            return []
        options = ["--tls", "--cacert", str(self.tls.ca_file)]
        if self.tls.client_cert is not None and self.tls.client_key is not None:
            options += ["--cert", str(self.tls.client_cert), "--key", str(self.tls.client_key)]
        return options

    def start(self) -> None:
        """Start every node, join them into a cluster, and wait until every node says ok."""
        try:
            for port in self.ports:
                self._start_node(port)
            create = [
                self.cli,
                *self._cli_tls(),
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
        # Over TLS, clients and the cluster bus (port + 10000) speak TLS only.
        ports = ["--port", str(port)]
        if self.tls is not None:
            ports = ["--port", "0", "--tls-port", str(port), "--tls-cluster", "yes"]
            ports += self.tls.server_args()
        args = [
            self.server,
            *ports,
            "--bind", "127.0.0.1",
            "--dir", str(directory),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "2000",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(directory / "redis.log"),
        ]  # fmt: skip
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        process = start_process(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes[port] = process
        try:
            wait_until(
                lambda: self._send(port, "PING").startswith(b"+PONG"),
                timeout=60,
                message=f"cluster node on {port}",
            )
        except BaseException:
            end_process(process)
            raise

    def healthy(self) -> bool:
        """The cluster is whole, and every master has its replicas in sync."""
        # A replica counts once its first sync is done: until then WAIT never counts it.
        return self.whole() and all(
            self._send(port, "INFO", "replication").count(b"state=online") >= self.replicas
            for port in self.masters()
        )

    def whole(self) -> bool:
        """Every live node reports cluster_state:ok (every slot served, by a master that runs)."""
        live = [p for p, proc in self.processes.items() if proc.poll() is None]
        return all(b"cluster_state:ok" in self._send(port, "CLUSTER", "INFO") for port in live)

    def masters(self) -> list[int]:
        """Ports of live nodes that are masters now."""
        return [
            port
            for port, proc in self.processes.items()
            if proc.poll() is None and b"role:master" in self._send(port, "INFO", "replication")
        ]

    def kill(self, port: int) -> None:
        """SIGKILL one node, as a crash would."""
        process = self.processes[port]
        process.kill()
        process.wait(timeout=10)

    def restart(self, port: int) -> None:
        """Start a killed node again; it rejoins the cluster (a failed-over master as a replica)."""
        self._start_node(port)

    def node_id(self, port: int) -> str:
        """The cluster's id of the node on `port`."""
        return self._send(port, "CLUSTER", "MYID").decode().split("\r\n")[1]

    def slot_of(self, key: str) -> int:
        """The hash slot of `key`."""
        return int(self._send(self.masters()[0], "CLUSTER", "KEYSLOT", key)[1:].strip())

    def owner_of_slot(self, slot: int) -> int:
        """The port of the master serving `slot` now, as the first live master tells it."""
        nodes = self._send(self.masters()[0], "CLUSTER", "NODES").decode()
        for line in nodes.splitlines():
            fields = line.split()
            if len(fields) < 9 or "master" not in fields[2]:
                continue
            for part in fields[8:]:
                first, _, last = part.partition("-")
                if not first[0].isdigit():
                    continue
                if int(first) <= slot <= int(last or first):
                    return int(fields[1].split("@")[0].rpartition(":")[2])
        raise AssertionError(f"no master serves slot {slot}")

    def replica_of(self, master: int) -> int:
        """The port of a live replica of `master`."""
        master_id = self.node_id(master)
        for port, process in self.processes.items():
            if process.poll() is None and port != master:
                info = self._send(port, "CLUSTER", "NODES").decode()
                mine = next(line for line in info.splitlines() if "myself" in line)
                if mine.split()[3] == master_id:
                    return port
        raise AssertionError(f"no live replica of {master}")

    def manual_failover(self, replica: int) -> None:
        """CLUSTER FAILOVER on `replica`: it takes over its master's slots, nothing lost."""
        reply = self._send(replica, "CLUSTER", "FAILOVER")
        assert reply.startswith(b"+OK"), reply

    def add_node(self, *, replica_of: int | None = None) -> int:
        """Start one more node and join it: an empty master, or a replica of `replica_of`."""
        port = cluster_port()
        self.ports.append(port)
        self._start_node(port)
        join = [
            self.cli,
            *self._cli_tls(),
            "--cluster",
            "add-node",
            f"127.0.0.1:{port}",
            f"127.0.0.1:{self.masters()[0]}",
        ]
        if replica_of is not None:
            join += ["--cluster-slave", "--cluster-master-id", self.node_id(replica_of)]
        subprocess.run(join, check=True, capture_output=True, timeout=60)
        wait_until(
            lambda: (
                b"cluster_state:ok" in self._send(port, "CLUSTER", "INFO")
                and all(
                    self.node_id(port).encode() in self._send(other, "CLUSTER", "NODES")
                    for other in self.live()
                )
            ),
            timeout=60,
            interval=0.2,
            message=f"node {port} known to every node",
        )
        return port

    def move_slot(self, slot: int, target: int) -> int:
        """Migrate `slot` with its keys to the master on `target`, as resharding does (clients
        meet ASK while it moves and MOVED after); returns how many keys moved."""
        source = self.owner_of_slot(slot)
        source_id, target_id = self.node_id(source), self.node_id(target)
        assert self._send(
            target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id
        ).startswith(b"+OK")
        assert self._send(
            source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id
        ).startswith(b"+OK")
        moved = 0
        with redis.Redis(port=source) as client:
            while keys := client.cluster("GETKEYSINSLOT", slot, 100):
                client.execute_command(
                    "MIGRATE", "127.0.0.1", target, "", 0, 5000, "REPLACE", "KEYS", *keys
                )
                moved += len(keys)
        for port in self.masters():
            self._send(port, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        return moved

    def forget(self, port: int) -> None:
        """Remove a node that is gone for good from every live node's table."""
        node = self.node_id_of_dead(port)
        for other in self.live():
            self._send(other, "CLUSTER", "FORGET", node)
        self.processes.pop(port, None)

    def node_id_of_dead(self, port: int) -> str:
        """The id a dead node had, as the live nodes still list it."""
        nodes = self._send(self.live()[0], "CLUSTER", "NODES").decode()
        for line in nodes.splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[1].split("@")[0].endswith(f":{port}"):
                return fields[0]
        raise AssertionError(f"no node on {port} is listed")

    def live(self) -> list[int]:
        """Ports of the nodes running now."""
        return [port for port, proc in self.processes.items() if proc.poll() is None]

    def flush(self) -> None:
        """Empty every master."""
        for port in self.masters():
            self._send(port, "FLUSHALL")

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
