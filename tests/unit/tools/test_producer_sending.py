"""The producer's batching, pacing and retries, against a scripted SQS client."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.exceptions import EndpointConnectionError
from opentelemetry.sdk.trace import TracerProvider

from exporter.sqs.batches import MAX_BATCH_BYTES
from exporter.tools.producer import Producer


@dataclass
class ScriptedSqs:
    """Stands in for boto3's client (the logic is pure): fails the entries it is told to."""

    fail_times: dict[str, int] = field(default_factory=dict)
    sender_fault: set[str] = field(default_factory=set)
    raise_times: int = 0
    calls: list[list[str]] = field(default_factory=list)
    entries: list[list[dict[str, Any]]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        assert len(Entries) <= 10
        assert sum(len(e["MessageBody"]) for e in Entries) <= MAX_BATCH_BYTES
        self.calls.append([e["MessageBody"] for e in Entries])
        self.entries.append(list(Entries))
        if self.raise_times:
            self.raise_times -= 1
            raise EndpointConnectionError(endpoint_url=QueueUrl)
        ok, failed = [], []
        for entry in Entries:
            body = entry["MessageBody"]
            if body in self.sender_fault:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "InvalidMessage"})
            elif self.fail_times.get(body, 0) > 0:
                self.fail_times[body] -= 1
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"})
            else:
                ok.append({"Id": entry["Id"], "MessageId": "m"})
                self.accepted.append(body)
        return {"Successful": ok, "Failed": failed}


def event(n: int) -> bytes:
    return f'{{"type":"t{n % 3}","value":{n},"occurred_at":"2020-10-06 10:02:05"}}'.encode()


def producer(sqs: ScriptedSqs) -> Producer:
    return Producer(cast(Any, sqs), "http://queue", retry_delay_seconds=0.001)


def test_events_go_in_batches_of_ten_and_all_are_counted() -> None:
    """25 events make three calls (10, 10, 5) and the summary holds exactly the 25."""
    sqs = ScriptedSqs()
    summary = producer(sqs).run([event(n) for n in range(25)])
    assert [len(call) for call in sqs.calls] == [10, 10, 5]
    assert summary.sent == 25
    assert summary.to_json()["types"]["t0"] == {"count": 9, "sum": str(sum(range(0, 25, 3)))}


def test_count_limits_an_endless_source() -> None:
    """With count, an infinite iterator stops after exactly that many events."""
    sqs = ScriptedSqs()

    def endless() -> Any:
        n = 0
        while True:
            yield event(n)
            n += 1

    summary = producer(sqs).run(endless(), count=13)
    assert summary.sent == 13
    assert len(sqs.accepted) == 13


def test_entries_sqs_failed_are_retried_until_accepted() -> None:
    """Entries failed by SQS (not the sender's fault) are resent; each is counted once."""
    bodies = [event(n) for n in range(10)]
    sqs = ScriptedSqs(fail_times={bodies[2].decode(): 2, bodies[7].decode(): 1})
    summary = producer(sqs).run(bodies)
    assert summary.sent == 10
    assert summary.failed == 0
    assert sorted(sqs.accepted) == sorted(b.decode() for b in bodies)
    assert sqs.calls[1] == [bodies[2].decode(), bodies[7].decode()]


def test_a_whole_call_that_raises_is_retried() -> None:
    """A connection error resends the batch; nothing is counted before SQS accepted it."""
    sqs = ScriptedSqs(raise_times=2)
    summary = producer(sqs).run([event(n) for n in range(4)])
    assert len(sqs.calls) == 3
    assert summary.sent == 4


def test_what_is_never_accepted_is_reported_failed_not_sent() -> None:
    """Sender faults fail at once; entries failing past every retry count as failed."""
    bodies = [event(n) for n in range(5)]
    sqs = ScriptedSqs(fail_times={bodies[0].decode(): 99}, sender_fault={bodies[1].decode()})
    summary = producer(sqs).run(bodies)
    assert (summary.sent, summary.failed) == (3, 2)
    assert bodies[0].decode() not in sqs.accepted
    too_big = b"x" * (MAX_BATCH_BYTES + 1)
    summary = producer(ScriptedSqs()).run([too_big, event(1)])
    assert (summary.sent, summary.failed) == (1, 1)


def test_a_stop_request_ends_sending_between_batches() -> None:
    """A set stop event ends a paced, endless run; the summary still adds up."""
    sqs = ScriptedSqs()
    stop = threading.Event()
    sent_batches = []

    def progress(summary: Any) -> None:
        sent_batches.append(summary.sent)
        if len(sent_batches) == 3:
            stop.set()

    summary = producer(sqs).run(
        (event(n) for n in range(10**9)), rate=1000, stop=stop, progress=progress
    )
    assert summary.sent == sum(len(call) for call in sqs.calls) == sent_batches[-1]
    assert len(sqs.calls) == 3


def test_with_a_tracer_each_batch_is_a_span_its_messages_carry() -> None:
    """Every message of a batch carries the batch span's W3C traceparent; batches differ."""
    sqs = ScriptedSqs()
    tracer = TracerProvider().get_tracer("test")
    Producer(cast(Any, sqs), "http://queue", tracer=tracer).run([event(n) for n in range(15)])
    parents = [
        [e["MessageAttributes"]["traceparent"]["StringValue"] for e in call] for call in sqs.entries
    ]
    assert [len(p) for p in parents] == [10, 5]
    assert all(len(set(p)) == 1 for p in parents)
    first, second = parents[0][0], parents[1][0]
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", first)
    assert first.split("-")[1] != second.split("-")[1]


def test_without_a_tracer_no_attributes_are_sent() -> None:
    """Tracing off: plain messages, no attributes at all."""
    sqs = ScriptedSqs()
    producer(sqs).run([event(1)])
    assert "MessageAttributes" not in sqs.entries[0][0]


def test_the_summary_judges_bodies_as_sqs_receives_them() -> None:
    """A stray non-UTF-8 byte in an ignored field is sent replaced, and counted as the valid event
    the processor will see, not as malformed."""
    body = b'{"type":"t","value":2,"occurred_at":"2020-10-06 10:02:05","note":"caf\xe9"}'
    sqs = ScriptedSqs()
    summary = producer(sqs).run([body])
    assert sqs.accepted == [body.decode("utf-8", "replace")]
    assert summary.malformed == 0
    assert summary.types["t"].count == 1


def test_a_fifo_queue_gets_groups_by_type_and_one_deduplication_id_per_message() -> None:
    """On `*.fifo` every entry has its type as group and a deduplication id that its retry keeps."""
    sqs = ScriptedSqs(fail_times={event(1).decode(): 1})
    fifo = Producer(cast(Any, sqs), "http://host/123/events.fifo", retry_delay_seconds=0.001)
    summary = fifo.run([event(n) for n in range(3)] + [b"not json"])
    assert summary.sent == 4
    first, retry = sqs.entries
    assert [e["MessageGroupId"] for e in first] == ["t0", "t1", "t2", "exporter-produce"]
    assert len({e["MessageDeduplicationId"] for e in first}) == 4
    [again] = retry
    assert again["MessageDeduplicationId"] == first[1]["MessageDeduplicationId"]


def test_a_standard_queue_gets_no_fifo_fields() -> None:
    """Without `.fifo`, entries carry neither a group nor a deduplication id."""
    sqs = ScriptedSqs()
    producer(sqs).run([event(0)])
    [[entry]] = sqs.entries
    assert "MessageGroupId" not in entry
    assert "MessageDeduplicationId" not in entry
