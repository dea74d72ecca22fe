"""The fault suite: real processes are killed, Redis crashes, SQS goes dark; nothing is lost."""

from __future__ import annotations

import random
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from tests.faults.harness import (
    Stack,
    assert_dead_lettered,
    assert_exact,
    drain_dead_letters_in_full,
    queue_empty,
    send_all,
    sqs_client,
    stats,
)
from tests.faults.proxy import TcpProxy
from tests.faults.traffic import Traffic, make_traffic
from tests.integration.processing.processor_support import queue_depth
from tests.redis_cluster import RedisClusterNodes
from tests.servers import STARTUP_TIMEOUT_SECONDS, MotoServer, RedisServer, scaled, wait_until


def _with_quick_redelivery(stack: Stack) -> None:
    """Killed work reappears after 5 s instead of 20 s (dead letters become at-least-once)."""
    stack.extra_env["EXPORTER_VISIBILITY_TIMEOUT_SECONDS"] = "5"


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as reply:
            return bool(reply.status == 200)
    except urllib.error.HTTPError:
        return False


def _processed(stack: Stack) -> int:
    assert stack.api is not None
    return sum(count for count, _ in stats(stack.api.port).values())


def _settle(stack: Stack, traffic: Traffic, timeout: float = 180) -> dict[str, tuple[int, Decimal]]:
    """Wait until the queue is empty and the totals are complete; return them."""
    assert stack.api is not None
    client = sqs_client(stack.sqs_endpoint)
    url = client.get_queue_url(QueueName=stack.queue)["QueueUrl"]
    api_port = stack.api.port

    def done() -> bool:
        return queue_empty(client, url) and _processed(stack) >= traffic.valid_events

    try:
        wait_until(done, timeout=timeout, interval=0.5, message="queue drained and totals complete")
    except TimeoutError:
        logs = "\n".join(p.tail(15) for p in stack.processors)
        raise AssertionError(
            f"not settled: {stats(api_port)} of {traffic.valid_events} valid events; "
            f"{queue_depth(client, url)} messages left in the queue (visible, in flight or "
            f"delayed)\n{logs}"
        ) from None
    return stats(api_port)


def _queue_urls(stack: Stack) -> tuple[str, str]:
    client = sqs_client(stack.sqs_endpoint)
    main = client.get_queue_url(QueueName=stack.queue)["QueueUrl"]
    dlq = client.get_queue_url(QueueName=f"{stack.queue}-dlq")["QueueUrl"]
    return main, dlq


def _send_in_background(stack: Stack, traffic: Traffic) -> threading.Thread:
    main, _ = _queue_urls(stack)
    sender = threading.Thread(
        target=send_all, args=(sqs_client(stack.sqs_endpoint), main, traffic.bodies), daemon=True
    )
    sender.start()
    return sender


def _wait_processed(stack: Stack, at_least: int) -> None:
    wait_until(
        lambda: _processed(stack) >= at_least,
        timeout=120,
        interval=0.1,
        message=f"{at_least} events processed",
    )


def test_sigkilled_processors_lose_and_double_nothing(stack: Stack) -> None:
    """5,000 events with retries and malformed bodies, processors SIGKILLed and restarted 6 times:
    the totals are exact and every malformed body reaches the dead-letter queue."""
    _with_quick_redelivery(stack)
    traffic = make_traffic(5000, seed=11)
    stack.start_api()
    stack.add_processor()
    stack.add_processor()
    sender = _send_in_background(stack, traffic)
    rng = random.Random(5)
    for round_ in range(1, 7):
        _wait_processed(stack, traffic.valid_events * round_ // 8)
        victim = rng.choice(stack.processors)
        victim.kill()
        victim.restart()
    sender.join(timeout=scaled(120))
    assert_exact(traffic, _settle(stack, traffic))
    _, dlq = _queue_urls(stack)
    found = drain_dead_letters_in_full(sqs_client(stack.sqs_endpoint), dlq)
    # A kill between forwarding and deleting may forward a body twice: at least once here.
    assert_dead_lettered(traffic, found, exactly_once=False)
    assert sum(p.restarts for p in stack.processors) == 6


def test_redis_killed_mid_stream_loses_nothing(
    stack: Stack, fresh_redis_server: RedisServer
) -> None:
    """Redis SIGKILLed mid-stream and restarted from its append-only file: totals stay exact."""
    _with_quick_redelivery(stack)
    traffic = make_traffic(2000, seed=12, malformed_ratio=0.02)
    stack.start_api()
    stack.add_processor()
    stack.add_processor()
    sender = _send_in_background(stack, traffic)
    _wait_processed(stack, traffic.valid_events // 3)
    fresh_redis_server.kill()
    ports = [p.port for p in stack.processors]
    wait_until(lambda: not any(_ready(port) for port in ports), timeout=30, message="not ready")
    fresh_redis_server.start()
    sender.join(timeout=scaled(120))
    assert_exact(traffic, _settle(stack, traffic))
    for processor in stack.processors:
        assert processor.process is not None
        assert processor.process.poll() is None, processor.tail()


# The outage test's own waits at their limits: three processes starting, the first quarter
# processed, the outage, the sender, and settling. pytest's limit is above their sum, so a wait
# that runs out fails with its own message instead of a bare timeout.
_OUTAGE_SECONDS = 10
_OUTAGE_WAITS = 3 * STARTUP_TIMEOUT_SECONDS + 120 + _OUTAGE_SECONDS + 120 + 180


@pytest.mark.timeout(_OUTAGE_WAITS + 60)
def test_sqs_outage_of_ten_seconds_recovers_by_itself(
    stack: Stack, moto_server: MotoServer
) -> None:
    """The SQS endpoint goes dark for 10 s: processors back off, then resume on their own; exact."""
    _with_quick_redelivery(stack)
    traffic = make_traffic(2000, seed=13, malformed_ratio=0.02)
    proxy = TcpProxy(moto_server.port)
    proxy.start()
    stack.start_api()
    stack.add_processor(endpoint=proxy.url)
    stack.add_processor(endpoint=proxy.url)
    sender = _send_in_background(stack, traffic)  # the test itself talks to moto directly
    _wait_processed(stack, traffic.valid_events // 4)
    proxy.cut()
    time.sleep(_OUTAGE_SECONDS)  # the outage itself
    proxy.start()
    sender.join(timeout=scaled(120))
    assert_exact(traffic, _settle(stack, traffic))
    for processor in stack.processors:
        assert processor.process is not None
        assert processor.process.poll() is None, processor.tail()
    proxy.cut()


def test_sigterm_under_load_drains_and_exits_zero(stack: Stack) -> None:
    """SIGTERM to a busy processor: exit 0 within the deadline, and nothing is lost or doubled."""
    stack.extra_env["EXPORTER_SHUTDOWN_TIMEOUT_SECONDS"] = "10"
    traffic = make_traffic(3000, seed=14)
    stack.start_api()
    stack.add_processor()
    stack.add_processor()
    sender = _send_in_background(stack, traffic)
    _wait_processed(stack, traffic.valid_events // 3)
    started = time.monotonic()
    code = stack.processors[0].terminate(timeout=scaled(30))
    elapsed = time.monotonic() - started
    assert code == 0, stack.processors[0].tail()
    assert elapsed < 10 + 5, f"took {elapsed:.1f}s to drain"
    sender.join(timeout=scaled(120))
    assert_exact(traffic, _settle(stack, traffic))
    _, dlq = _queue_urls(stack)
    assert_dead_lettered(
        traffic, drain_dead_letters_in_full(sqs_client(stack.sqs_endpoint), dlq), exactly_once=True
    )


def test_a_cluster_master_killed_mid_stream_loses_nothing(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """A 3-master, 3-replica cluster, three shards, every batch acknowledged by one replica: the
    master holding the global slot is SIGKILLed mid-stream; once its replica is promoted and the
    killed node is back as the new replica, the totals are exact, and the dead-letter queue holds
    only malformed bodies with their reason."""
    cluster = RedisClusterNodes(tmp_path / "cluster", masters=3, replicas=1)
    cluster.start()
    stack = Stack(
        redis_url=cluster.url(),
        sqs_endpoint=moto_server.url,
        workdir=tmp_path,
        queue=f"failover-{tmp_path.name[-12:]}".replace("_", "-"),
    )
    _with_quick_redelivery(stack)
    stack.extra_env |= {"EXPORTER_REDIS_SHARDS": "3", "EXPORTER_REDIS_MIN_REPLICAS": "1"}
    try:
        traffic = make_traffic(2000, seed=15, malformed_ratio=0.02)
        stack.start_api()
        stack.add_processor()
        stack.add_processor()
        sender = _send_in_background(stack, traffic)
        _wait_processed(stack, traffic.valid_events // 3)
        victim = _owner_of(cluster, "{exporter}")
        cluster.kill(victim)
        wait_until(
            lambda: cluster.whole() and len(cluster.masters()) == 3,
            timeout=120,
            interval=0.2,
            message="the replica promoted",
        )
        # One replica must acknowledge every batch: the promoted master has none until the killed
        # node returns (as its replica), so until then it applies but deletes nothing.
        cluster.restart(victim)
        sender.join(timeout=120)
        assert_exact(traffic, _settle(stack, traffic))
        _, dlq = _queue_urls(stack)
        found = drain_dead_letters_in_full(sqs_client(stack.sqs_endpoint), dlq)
        assert_dead_lettered(traffic, found, exactly_once=False)
        reasons = {(letter.body, letter.reason) for letter in found}
        assert reasons <= set(traffic.malformed), "a dead letter without its malformed reason"
        for processor in stack.processors:
            assert processor.process is not None
            assert processor.process.poll() is None, processor.tail()
    finally:
        stack.stop_all()
        cluster.stop()


def _owner_of(cluster: RedisClusterNodes, key: str) -> int:
    """The master serving `key`: the only one that answers instead of redirecting (MOVED)."""
    for port in cluster.masters():
        with redis.Redis(port=port) as client:
            try:
                client.exists(key)
            except redis.ResponseError:
                continue
            return port
    raise AssertionError(f"no master serves {key}")
