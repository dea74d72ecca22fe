"""Every kind of malformed body, and bodies hypothesis makes up, end in the dead-letter queue with
the right reason; no processor crashes and the valid totals are untouched."""

from __future__ import annotations

import collections
import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.events import InvalidEvent, parse_event
from tests.faults.harness import (
    DeadLetterSeen,
    Stack,
    drain_dead_letters_in_full,
    queue_empty,
    stats,
)
from tests.faults.malformed import MALFORMED
from tests.polling import wait_until
from tests.sqs_messages import send, sqs_client

# SQS accepts only these characters in a body (XML 1.0 minus a few): tab, newline, CR, and
# everything from space up, without surrogates.
SQS_TEXT = st.characters(
    codec="utf-8", exclude_categories=["Cs"], exclude_characters="".join(map(chr, range(0x20)))
) | st.sampled_from("\t\n\r")

GENERATED_BODIES = st.lists(
    st.one_of(
        st.text(SQS_TEXT, min_size=1, max_size=200),
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.text(SQS_TEXT, max_size=70) | st.integers() | st.none(),
                "value": st.floats(allow_nan=False)
                | st.text(SQS_TEXT, max_size=10)
                | st.booleans(),
                "occurred_at": st.text(SQS_TEXT, max_size=30) | st.integers(),
                "id": st.text(SQS_TEXT, max_size=140) | st.integers(),
            },
        ).map(json.dumps),
    ),
    min_size=60,
    max_size=60,
)


def _reason(body: str) -> str | None:
    try:
        parse_event(body.encode())
    except InvalidEvent as exc:
        return exc.reason
    return None


def _run(stack: Stack, bodies: list[str], valid: list[str]) -> list[DeadLetterSeen]:
    client = sqs_client(stack.sqs_endpoint)
    main = client.get_queue_url(QueueName=stack.queue)["QueueUrl"]
    dlq = client.get_queue_url(QueueName=f"{stack.queue}-dlq")["QueueUrl"]
    mixed = bodies + valid
    random.Random(3).shuffle(mixed)
    send(client, main, mixed)
    assert stack.api is not None
    port = stack.api.port
    wait_until(
        lambda: queue_empty(client, main) and sum(c for c, _ in stats(port).values()) >= len(valid),
        timeout=90,
        interval=0.3,
        message="corpus processed",
    )
    return drain_dead_letters_in_full(client, dlq)


def test_corpus_of_malformed_bodies_is_dead_lettered_with_reasons(stack: Stack) -> None:
    """38 kinds of malformed body land in the DLQ exactly once each, with the contract's reason."""
    stack.start_api()
    stack.add_processor()
    bodies = [body for body, _ in MALFORMED.values()]
    valid = [json.dumps({"type": "ok", "value": 2, "occurred_at": "2026-11-26 10:00:00"})] * 1
    valid += [
        json.dumps({"type": "ok", "value": 2, "occurred_at": "2026-11-26 10:00:00", "id": f"v{i}"})
        for i in range(20)
    ]
    found = _run(stack, bodies, valid)
    # One dead letter per SQS message; copies of one message share its original MessageId.
    per_message = {f.original_message_id: (f.body, f.reason) for f in found}
    assert collections.Counter(per_message.values()) == collections.Counter(MALFORMED.values())
    assert stack.api is not None
    assert {k: (c, float(s)) for k, (c, s) in stats(stack.api.port).items()} == {"ok": (21, 42.0)}
    assert stack.processors[0].process is not None
    assert stack.processors[0].process.poll() is None


@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(bodies=GENERATED_BODIES)
def test_generated_bodies_never_crash_a_processor(stack: Stack, bodies: list[str]) -> None:
    """Bodies hypothesis invents: each is applied or dead-lettered with the parser's reason."""
    if not stack.processors:
        stack.start_api()
        stack.add_processor()
    client = sqs_client(stack.sqs_endpoint)
    dlq = client.get_queue_url(QueueName=f"{stack.queue}-dlq")["QueueUrl"]
    drain_dead_letters_in_full(client, dlq)
    expected_dead = collections.Counter(
        (body, reason) for body in bodies if (reason := _reason(body)) is not None
    )
    valid = [body for body in bodies if _reason(body) is None]
    assert stack.api is not None
    before = sum(c for c, _ in stats(stack.api.port).values())
    found = _run(stack, bodies, [])
    # One entry per SQS message: a send to the dead-letter queue that SQS took but answered too
    # late is retried, and its copy carries the same original MessageId (at least once, by design).
    distinct = {f.original_message_id: (f.body, f.reason) for f in found}
    assert collections.Counter(distinct.values()) == expected_dead
    assert sum(c for c, _ in stats(stack.api.port).values()) <= before + len(valid)
    assert stack.processors[0].process is not None
    assert stack.processors[0].process.poll() is None
