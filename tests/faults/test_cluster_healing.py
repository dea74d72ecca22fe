"""Processors heal by themselves whatever the Redis Cluster does.

Each event happens while two processors (and the API) consume a steady stream on a 3-master,
3-replica cluster whose nodes write every acknowledged write to disk, with every batch acknowledged
by one replica before it leaves SQS. Each test ends with exact totals, nothing in the dead-letter
queue without its reason, no processor exited, and prints the time from "cluster healthy" to
"processor consuming again" (docs/reliability.md lists them).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from exporter.store.keys import StoreKeys
from tests.faults.harness import (
    Exporter,
    Stack,
    assert_dead_lettered,
    assert_exact,
    drain_dead_letters_in_full,
    queue_urls,
    settle,
    time_to_consume,
    wait_processed,
)
from tests.faults.traffic import Traffic, make_traffic
from tests.polling import scaled, wait_until
from tests.redis_cluster import RedisClusterNodes
from tests.servers import MotoServer
from tests.sqs_messages import send, sqs_client
from tests.store_support import DEFAULT_KEYS

# Bodies sent per request and the pause between requests until the processors have resumed: the
# stream must still flow when they do, or "consuming again" could not be seen.
PACE_BODIES = 10
PACE_SECONDS = 0.1


@dataclass
class Healing:
    """A cluster, an API and two processors consuming a paced stream; the test adds the fault."""

    cluster: RedisClusterNodes
    stack: Stack
    traffic: Traffic
    report: list[str]
    hurry: threading.Event = field(default_factory=threading.Event)
    sender: threading.Thread | None = None

    def start(self) -> None:
        """Start the API, two processors and the stream; return once a quarter is counted."""
        self.stack.start_api()
        self.stack.add_processor()
        self.stack.add_processor()
        main, _ = queue_urls(self.stack)
        self.sender = threading.Thread(target=self._send, args=(main,), daemon=True)
        self.sender.start()
        wait_processed(self.stack, self.traffic.valid_events // 4)

    def _send(self, queue_url: str) -> None:
        client = sqs_client(self.stack.sqs_endpoint)
        bodies = self.traffic.bodies
        for start in range(0, len(bodies), PACE_BODIES):
            send(client, queue_url, bodies[start : start + PACE_BODIES])
            if not self.hurry.is_set():
                self.hurry.wait(PACE_SECONDS)

    def resumed(self, scenario: str, *, processors: list[Exporter] | None = None) -> None:
        """Once the cluster is healthy, time until each processor consumes again and the API
        answers /stats (harness.time_to_consume)."""
        wait_until(self.cluster.healthy, timeout=120, interval=0.1, message="a healthy cluster")
        times = time_to_consume(self.stack, processors or self.stack.processors, scenario)
        self.report.append(
            f"{scenario}: cluster healthy -> consuming again: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in sorted(times.items()))
        )
        self.hurry.set()

    def settled(self) -> None:
        """Every event counted exactly once, every dead letter a malformed body with its reason,
        and no processor exited."""
        assert self.sender is not None
        self.hurry.set()
        self.sender.join(timeout=scaled(120))
        assert_exact(self.traffic, settle(self.stack, self.traffic))
        _, dlq = queue_urls(self.stack)
        found = drain_dead_letters_in_full(sqs_client(self.stack.sqs_endpoint), dlq)
        assert_dead_lettered(self.traffic, found, exactly_once=False)
        reasons = {(letter.body, letter.reason) for letter in found}
        assert reasons <= set(self.traffic.malformed), "a dead letter without its malformed reason"
        for proc in self.stack.processors:
            assert proc.process is not None
            assert proc.process.poll() is None, proc.tail()


@pytest.fixture(name="healing_report")
def fixture_healing_report(capsys: pytest.CaptureFixture[str]) -> Iterator[list[str]]:
    """Lines the test prints to the terminal at its end, captured output or not."""
    lines: list[str] = []
    yield lines
    with capsys.disabled():
        for line in lines:
            print(f"\n  {line}", end="")


@contextlib.contextmanager
def healing(
    moto: MotoServer,
    workdir: Path,
    report: list[str],
    *,
    shards: int,
    seed: int,
    redis_url: Callable[[RedisClusterNodes], str] | None = None,
) -> Iterator[Healing]:
    """A healthy 3+3 cluster and a stack consuming a stream on it; everything ends afterwards."""
    cluster = RedisClusterNodes(workdir / "cluster", masters=3, replicas=1, appendonly=True)
    cluster.start()
    stack = Stack(
        redis_url=redis_url(cluster) if redis_url is not None else cluster.url(),
        sqs_endpoint=moto.url,
        workdir=workdir,
        queue=f"heal-{workdir.name[-12:]}".replace("_", "-"),
    )
    # Killed work reappears after 5 s; every batch waits for one replica before its delete.
    stack.extra_env |= {
        "EXPORTER_VISIBILITY_TIMEOUT_SECONDS": "5",
        "EXPORTER_REDIS_SHARDS": str(shards),
        "EXPORTER_REDIS_MIN_REPLICAS": "1",
    }
    run = Healing(cluster, stack, make_traffic(1500, seed=seed, malformed_ratio=0.02), report)
    try:
        run.start()
        yield run
    finally:
        run.hurry.set()
        stack.stop_all()
        cluster.stop()


def _store_slots(cluster: RedisClusterNodes, shards: int) -> list[int]:
    """The slots of the store's global tag and of each shard's tag."""
    keys = StoreKeys.build(DEFAULT_KEYS.prefix, shards)
    return sorted({cluster.slot_of(tag) for tag in [keys.tag, *(s.tag for s in keys.shards)]})


_TIMEOUT = 600


@pytest.mark.timeout(_TIMEOUT)
def test_a_master_restarted_on_its_address_before_any_failover(
    moto_server: MotoServer, tmp_path: Path, healing_report: list[str]
) -> None:
    """The master of the global slot is SIGKILLed and restarted at once on the same address (no
    replica promoted): the processors pause, then consume again on their own."""
    with healing(moto_server, tmp_path, healing_report, shards=16, seed=21) as run:
        victim = run.cluster.owner_of_slot(run.cluster.slot_of(DEFAULT_KEYS.tag))
        run.cluster.kill(victim)
        run.cluster.restart(victim)
        run.resumed("master restarted on its address, K=16")
        run.settled()


@pytest.mark.timeout(_TIMEOUT)
@pytest.mark.parametrize("shards", [1, 16])
def test_a_killed_master_fails_over_to_its_replica(
    moto_server: MotoServer, tmp_path: Path, healing_report: list[str], shards: int
) -> None:
    """The master of the global slot is SIGKILLed; once its replica is promoted and the killed
    node is back as the new replica, the processors consume again on their own."""
    with healing(moto_server, tmp_path, healing_report, shards=shards, seed=22) as run:
        cluster = run.cluster
        victim = cluster.owner_of_slot(cluster.slot_of(DEFAULT_KEYS.tag))
        cluster.kill(victim)
        wait_until(
            lambda: cluster.whole() and len(cluster.masters()) == 3,
            timeout=120,
            interval=0.2,
            message="the replica promoted",
        )
        cluster.restart(victim)
        run.resumed(f"killed master failed over, K={shards}")
        run.settled()


@pytest.mark.timeout(_TIMEOUT)
@pytest.mark.parametrize("shards", [1, 16])
def test_a_manual_failover_is_followed(
    moto_server: MotoServer, tmp_path: Path, healing_report: list[str], shards: int
) -> None:
    """CLUSTER FAILOVER on the replica of the global slot's master (as managed Redis does for
    maintenance): roles swap under traffic, and the processors follow."""
    with healing(moto_server, tmp_path, healing_report, shards=shards, seed=23) as run:
        cluster = run.cluster
        master = cluster.owner_of_slot(cluster.slot_of(DEFAULT_KEYS.tag))
        replica = cluster.replica_of(master)
        cluster.manual_failover(replica)
        wait_until(
            lambda: replica in cluster.masters() and master not in cluster.masters(),
            timeout=60,
            interval=0.1,
            message="the replica promoted by CLUSTER FAILOVER",
        )
        run.resumed(f"CLUSTER FAILOVER, K={shards}")
        run.settled()


@pytest.mark.timeout(_TIMEOUT)
def test_every_master_restarted(
    moto_server: MotoServer, tmp_path: Path, healing_report: list[str]
) -> None:
    """All three masters SIGKILLed and restarted at once: every connection of the client breaks
    at the same moment; the processors consume again once the cluster is whole."""
    with healing(moto_server, tmp_path, healing_report, shards=16, seed=24) as run:
        masters = run.cluster.masters()
        for port in masters:
            run.cluster.kill(port)
        for port in masters:
            run.cluster.restart(port)
        run.resumed("every master restarted, K=16")
        run.settled()


@pytest.mark.timeout(_TIMEOUT)
def test_slots_moved_to_a_new_node_while_events_flow(
    moto_server: MotoServer, tmp_path: Path, healing_report: list[str]
) -> None:
    """A new master (with its replica) joins and the store's slots move to it key by key, as
    resharding does: the processors meet ASK while a slot moves and MOVED after, and keep
    counting exactly once."""
    with healing(moto_server, tmp_path, healing_report, shards=16, seed=25) as run:
        cluster = run.cluster
        source = cluster.owner_of_slot(cluster.slot_of(DEFAULT_KEYS.tag))
        target = cluster.add_node()
        cluster.add_node(replica_of=target)
        moving = [s for s in _store_slots(cluster, 16) if cluster.owner_of_slot(s) == source]
        for slot in moving:
            cluster.move_slot(slot, target)
        assert all(cluster.owner_of_slot(slot) == target for slot in moving)
        run.resumed(f"{len(moving)} store slots moved to a new node, K=16")
        run.settled()


@pytest.mark.timeout(_TIMEOUT)
def test_the_node_redis_url_names_first_is_gone_for_good(
    moto_server: MotoServer, tmp_path: Path, healing_report: list[str]
) -> None:
    """REDIS_URL lists two nodes; the first, a master, dies for good and a new node replaces it
    (its replica promoted, a fresh replica added, the dead one forgotten). The running processors
    heal, and a processor started afterwards with the same REDIS_URL finds the cluster through
    the second node."""

    def two_nodes(cluster: RedisClusterNodes) -> str:
        first, second = cluster.masters()[:2]
        return f"redis://127.0.0.1:{first},127.0.0.1:{second}/0"

    with healing(
        moto_server, tmp_path, healing_report, shards=16, seed=26, redis_url=two_nodes
    ) as run:
        cluster = run.cluster
        gone = int(run.stack.redis_url.split(",")[0].rpartition(":")[2])
        replica = cluster.replica_of(gone)
        cluster.kill(gone)
        wait_until(
            lambda: replica in cluster.masters() and cluster.whole(),
            timeout=120,
            interval=0.2,
            message="the dead master's replica promoted",
        )
        cluster.add_node(replica_of=replica)
        cluster.forget(gone)
        # Started with REDIS_URL's first node gone: it must find the cluster through the second.
        run.stack.add_processor()
        run.resumed("REDIS_URL's first node replaced (3 processors, one started after), K=16")
        run.settled()
