"""The fault suite: real processes are killed, Redis crashes, SQS goes dark; nothing is lost."""

from __future__ import annotations

import random
import time

import pytest

from tests.faults.harness import (
    Stack,
    assert_dead_lettered,
    assert_exact,
    drain_dead_letters_in_full,
    queue_urls,
    ready,
    send_in_background,
    settle,
    time_to_consume,
    wait_processed,
)
from tests.faults.proxy import TcpProxy
from tests.faults.traffic import make_traffic
from tests.polling import scaled, wait_until
from tests.servers import STARTUP_TIMEOUT_SECONDS, MotoServer, RedisServer
from tests.sqs_messages import sqs_client


def _with_quick_redelivery(stack: Stack) -> None:
    """Killed work reappears after 5 s instead of 20 s (dead letters become at-least-once)."""
    stack.extra_env["EXPORTER_VISIBILITY_TIMEOUT_SECONDS"] = "5"


def test_sigkilled_processors_lose_and_double_nothing(stack: Stack) -> None:
    """5,000 events with retries and malformed bodies, processors SIGKILLed and restarted 6 times:
    the totals are exact and every malformed body reaches the dead-letter queue."""
    _with_quick_redelivery(stack)
    traffic = make_traffic(5000, seed=11)
    stack.start_api()
    stack.add_processor()
    stack.add_processor()
    sender = send_in_background(stack, traffic)
    rng = random.Random(5)
    for round_ in range(1, 7):
        wait_processed(stack, traffic.valid_events * round_ // 8)
        victim = rng.choice(stack.processors)
        victim.kill()
        victim.restart()
    sender.join(timeout=scaled(120))
    assert_exact(traffic, settle(stack, traffic))
    _, dlq = queue_urls(stack)
    found = drain_dead_letters_in_full(sqs_client(stack.sqs_endpoint), dlq)
    # A kill between forwarding and deleting may forward a body twice: at least once here.
    assert_dead_lettered(traffic, found, exactly_once=False)
    assert sum(p.restarts for p in stack.processors) == 6


def test_redis_killed_mid_stream_loses_nothing(
    stack: Stack, fresh_redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redis SIGKILLed mid-stream and restarted from its append-only file: the processors and
    the API consume again within 10 s of it answering (printed), and totals stay exact."""
    _with_quick_redelivery(stack)
    traffic = make_traffic(2000, seed=12, malformed_ratio=0.02)
    stack.start_api()
    stack.add_processor()
    stack.add_processor()
    sender = send_in_background(stack, traffic)
    wait_processed(stack, traffic.valid_events // 3)
    fresh_redis_server.kill()
    ports = [p.port for p in stack.processors]
    wait_until(lambda: not any(ready(port) for port in ports), timeout=30, message="not ready")
    fresh_redis_server.start()
    times = time_to_consume(stack, stack.processors, "Redis restarted")
    with capsys.disabled():
        resumed = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in sorted(times.items()))
        print(f"\n  one Redis restarted: healthy -> consuming again: {resumed}", end="")
    sender.join(timeout=scaled(120))
    assert_exact(traffic, settle(stack, traffic))
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
    sender = send_in_background(stack, traffic)  # the test itself talks to moto directly
    wait_processed(stack, traffic.valid_events // 4)
    proxy.cut()
    time.sleep(_OUTAGE_SECONDS)  # the outage itself
    proxy.start()
    sender.join(timeout=scaled(120))
    assert_exact(traffic, settle(stack, traffic))
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
    sender = send_in_background(stack, traffic)
    wait_processed(stack, traffic.valid_events // 3)
    started = time.monotonic()
    code = stack.processors[0].terminate(timeout=30)
    elapsed = time.monotonic() - started
    assert code == 0, stack.processors[0].tail()
    assert elapsed < 10 + 5, f"took {elapsed:.1f}s to drain"
    sender.join(timeout=scaled(120))
    assert_exact(traffic, settle(stack, traffic))
    _, dlq = queue_urls(stack)
    assert_dead_lettered(
        traffic, drain_dead_letters_in_full(sqs_client(stack.sqs_endpoint), dlq), exactly_once=True
    )
