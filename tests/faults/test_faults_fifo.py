"""The fault suite on a FIFO queue: processors SIGKILLed mid-traffic over three message groups."""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING

from tests.faults.harness import Stack, assert_exact, queue_empty, stats
from tests.faults.traffic import Traffic, make_traffic
from tests.integration.processing.processor_support import queue_depth
from tests.polling import scaled, wait_until
from tests.sqs_messages import drain, send_fifo, sqs_client

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient

GROUPS = ("customer-a", "customer-b", "customer-c")


def _processed(stack: Stack) -> int:
    assert stack.api is not None
    return sum(count for count, _ in stats(stack.api.port).values())


def test_sigkilled_processors_on_a_fifo_queue_lose_double_and_reorder_nothing(
    stack: Stack,
) -> None:
    """1,500 events with producer retries and malformed bodies over three message groups of a
    FIFO queue, two processors, one SIGKILLed and restarted three times: the totals are exact,
    every malformed body is in the FIFO dead-letter queue exactly once with its reason (a second
    forward after a kill carries the same deduplication id), in its group's order, and the queue
    is drained."""
    stack.queue = f"{stack.queue}.fifo"
    stack.extra_env["EXPORTER_VISIBILITY_TIMEOUT_SECONDS"] = "5"  # killed work back in 5 s
    traffic: Traffic = make_traffic(1500, seed=21, malformed_ratio=0.04)
    rng = random.Random(8)
    plan = [(rng.choice(GROUPS), body) for body in traffic.bodies]
    stack.start_api()
    stack.add_processor()
    stack.add_processor()
    client = sqs_client(stack.sqs_endpoint)
    queue_url = client.get_queue_url(QueueName=stack.queue)["QueueUrl"]
    dlq_name = stack.queue.removesuffix(".fifo") + "-dlq.fifo"
    dlq_url = client.get_queue_url(QueueName=dlq_name)["QueueUrl"]
    sender = threading.Thread(target=send_fifo, args=(client, queue_url, plan), daemon=True)
    sender.start()
    for round_ in range(1, 4):
        at_least = traffic.valid_events * round_ // 5
        wait_until(
            lambda: _processed(stack) >= at_least,  # noqa: B023 - called before the next round
            timeout=120,
            interval=0.1,
            message=f"{round_}/5 of the events processed",
        )
        victim = stack.processors[0]
        victim.kill()
        victim.restart()
    sender.join(timeout=scaled(120))
    assert stack.processors[0].restarts == 3

    def settled() -> bool:
        return queue_empty(client, queue_url) and _processed(stack) >= traffic.valid_events

    try:
        wait_until(settled, timeout=180, interval=0.5, message="FIFO queue drained")
    except TimeoutError:
        logs = "\n".join(p.tail(15) for p in stack.processors)
        raise AssertionError(
            f"{queue_depth(client, queue_url)} messages left, {_processed(stack)} of "
            f"{traffic.valid_events} events counted\n{logs}"
        ) from None
    assert stack.api is not None
    assert_exact(traffic, stats(stack.api.port))

    letters = _drain_in_order(client, dlq_url)
    reasons = dict(traffic.malformed)
    assert all(reason == reasons.get(body) for _, body, reason in letters), "a wrong reason"
    bad = set(reasons)
    for group in GROUPS:
        sent = [body for g, body in plan if g == group and body in bad]
        got = [body for g, body, _ in letters if g == group]
        # Each malformed body once (a second forward after a kill carries the same
        # deduplication id), in the order its group sent them.
        assert got == sent, f"group {group}: {len(got)} dead letters for {len(sent)} sent"


def _drain_in_order(client: SQSClient, dlq_url: str) -> list[tuple[str, str, str]]:
    """Every (group, body, reason) of a FIFO dead-letter queue in delivery order, consumed."""
    return [
        (str(letter.group), letter.body, letter.attributes.get("reason", ""))
        for letter in drain(client, dlq_url)
    ]
