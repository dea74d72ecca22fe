"""An SQS stand-in that answers at once: `python -m tests.perf.sqs_standin PORT [LATENCY_MS]`.

It speaks SQS's JSON protocol (`application/x-amz-json-1.0`, `X-Amz-Target: AmazonSQS.<Op>`) for
the calls the processor and the benchmarks make, with an endless supply of valid events: every
ReceiveMessage returns 10 new messages with correct MD5s, receipt handles and attributes. It does
not check signatures (it only counts requests that carry none), so a benchmark against it sees the
client's own cost and nothing of the server's.

With LATENCY_MS, every SQS call is answered that many milliseconds late, as a network round trip
to SQS would be (tests/perf/measure_k8s_sizing.py). `GET /counts` tells what it served;
`POST /faults {"fail_next": N, "status": 500}` makes the next N calls fail (the transient-error
tests use it). A queue whose name starts with `missing` does not exist, and the access key
`refused` is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import struct
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from tests.perf.bodies import make_bodies

ACCOUNT: Final = "123456789012"
JSON_TYPE: Final = "application/x-amz-json-1.0"
TRACEPARENT: Final = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
BATCH: Final = 10

Reply = tuple[int, dict[str, Any]]


def md5_of_attributes(attributes: Mapping[str, Mapping[str, str]]) -> str:
    """SQS's MD5OfMessageAttributes: names sorted, each field length-prefixed (String values)."""
    digest = hashlib.md5()  # noqa: S324 - SQS's checksum, not security
    for name in sorted(attributes):
        value = attributes[name]
        for part in (name, value["DataType"]):
            encoded = part.encode()
            digest.update(struct.pack(">I", len(encoded)) + encoded)
        encoded = value["StringValue"].encode()
        digest.update(b"\x01" + struct.pack(">I", len(encoded)) + encoded)
    return digest.hexdigest()


def md5_of_body(body: str) -> str:
    """SQS's MD5OfBody."""
    return hashlib.md5(body.encode()).hexdigest()  # noqa: S324 - SQS's checksum


ATTRIBUTES: Final = {"traceparent": {"DataType": "String", "StringValue": TRACEPARENT}}
MD5_OF_ATTRIBUTES: Final = md5_of_attributes(ATTRIBUTES)


@dataclass
class Counts:
    """What the stand-in served, by kind."""

    requests: int = 0
    unsigned: int = 0
    received: int = 0
    deleted: int = 0
    visibility_changed: int = 0
    sent: int = 0
    failed: int = 0


@dataclass
class StandIn:
    """The stand-in's state: bodies to hand out, counters, and faults to inject."""

    base_url: str
    bodies: list[tuple[str, str]]
    counts: Counts = field(default_factory=Counts)
    fail_next: int = 0
    fail_status: int = 500
    ids: itertools.count[int] = field(default_factory=itertools.count)

    def queue_url(self, name: str) -> str:
        """The URL of queue `name`."""
        return f"{self.base_url}/{ACCOUNT}/{name}"

    def receive(self, request: Mapping[str, Any]) -> Reply:
        """Ten new messages, with the attributes asked for."""
        now = str(int(time.time() * 1000))
        wanted = request.get("MessageAttributeNames") or []
        messages = []
        for _ in range(min(int(request.get("MaxNumberOfMessages", 1)), BATCH)):
            n = next(self.ids)
            body, md5 = self.bodies[n % len(self.bodies)]
            message_id = f"{n:08x}-0000-4000-8000-{n:012x}"
            message: dict[str, Any] = {
                "MessageId": message_id,
                "ReceiptHandle": f"rh-{message_id}",
                "MD5OfBody": md5,
                "Body": body,
                "Attributes": {
                    "ApproximateReceiveCount": "1",
                    "ApproximateFirstReceiveTimestamp": now,
                    "SentTimestamp": now,
                },
            }
            if wanted:
                message["MessageAttributes"] = ATTRIBUTES
                message["MD5OfMessageAttributes"] = MD5_OF_ATTRIBUTES
            messages.append(message)
        self.counts.received += len(messages)
        return 200, {"Messages": messages}

    def delete(self, request: Mapping[str, Any]) -> Reply:
        """Every entry deleted."""
        entries = request["Entries"]
        self.counts.deleted += len(entries)
        return 200, {"Successful": [{"Id": e["Id"]} for e in entries], "Failed": []}

    def change_visibility(self, request: Mapping[str, Any]) -> Reply:
        """Every entry's visibility changed."""
        entries = request["Entries"]
        self.counts.visibility_changed += len(entries)
        return 200, {"Successful": [{"Id": e["Id"]} for e in entries], "Failed": []}

    def send(self, request: Mapping[str, Any]) -> Reply:
        """Every entry accepted, with the MD5s SQS would return."""
        successful = []
        for entry in request["Entries"]:
            reply = {
                "Id": entry["Id"],
                "MessageId": f"sent-{next(self.ids)}",
                "MD5OfMessageBody": md5_of_body(entry["MessageBody"]),
            }
            if entry.get("MessageAttributes"):
                reply["MD5OfMessageAttributes"] = md5_of_attributes(entry["MessageAttributes"])
            successful.append(reply)
        self.counts.sent += len(successful)
        return 200, {"Successful": successful, "Failed": []}

    def get_queue_url(self, request: Mapping[str, Any]) -> Reply:
        """The URL of any queue, unless its name says it is missing."""
        return 200, {"QueueUrl": self.queue_url(request["QueueName"])}

    def create_queue(self, request: Mapping[str, Any]) -> Reply:
        """Any queue exists already."""
        return self.get_queue_url(request)

    def queue_attributes(self, request: Mapping[str, Any]) -> Reply:
        """An ARN and depths of zero."""
        name = str(request["QueueUrl"]).rsplit("/", 1)[-1]
        return 200, {
            "Attributes": {
                "QueueArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}",
                "ApproximateNumberOfMessages": "0",
                "ApproximateNumberOfMessagesNotVisible": "0",
                "ApproximateNumberOfMessagesDelayed": "0",
            }
        }


def _missing(request: Mapping[str, Any]) -> bool:
    name = request.get("QueueName") or str(request.get("QueueUrl", "")).rsplit("/", 1)[-1]
    return str(name).startswith("missing")


def make_app(state: StandIn, latency_seconds: float = 0.0) -> web.Application:
    """The stand-in's aiohttp application; SQS calls answered `latency_seconds` late."""
    operations: dict[str, Callable[[Mapping[str, Any]], Reply]] = {
        "ReceiveMessage": state.receive,
        "DeleteMessageBatch": state.delete,
        "ChangeMessageVisibilityBatch": state.change_visibility,
        "SendMessageBatch": state.send,
        "GetQueueUrl": state.get_queue_url,
        "CreateQueue": state.create_queue,
        "GetQueueAttributes": state.queue_attributes,
    }

    async def call(request: web.Request) -> web.Response:
        state.counts.requests += 1
        authorization = request.headers.get("Authorization", "")
        if not authorization:
            state.counts.unsigned += 1
        operation = request.headers.get("X-Amz-Target", "").removeprefix("AmazonSQS.")
        payload = json.loads(await request.read() or b"{}")
        headers: dict[str, str] = {}
        if state.fail_next > 0:
            state.fail_next -= 1
            state.counts.failed += 1
            status, reply = state.fail_status, {"__type": "InternalFailure", "message": "injected"}
        elif "Credential=refused/" in authorization:
            status = 403
            reply = {
                "__type": "com.amazon.coral.service#UnrecognizedClientException",
                "message": "The security token included in the request is invalid.",
            }
        elif operation not in operations:
            status, reply = 400, {"__type": "InvalidAction", "message": operation}
        elif _missing(payload):
            status = 400
            reply = {"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "no such queue"}
            headers["x-amzn-query-error"] = "AWS.SimpleQueueService.NonExistentQueue;Sender"
        else:
            status, reply = operations[operation](payload)
        if latency_seconds > 0:
            await asyncio.sleep(latency_seconds)
        return web.Response(
            status=status, body=json.dumps(reply).encode(), content_type=JSON_TYPE, headers=headers
        )

    async def counts(_request: web.Request) -> web.Response:
        return web.json_response(vars(state.counts))

    async def faults(request: web.Request) -> web.Response:
        wanted = await request.json()
        state.fail_next = int(wanted.get("fail_next", 0))
        state.fail_status = int(wanted.get("status", 500))
        return web.json_response({"fail_next": state.fail_next})

    app = web.Application()
    app.router.add_post("/", call)
    app.router.add_get("/counts", counts)
    app.router.add_post("/faults", faults)
    return app


def prepared_bodies(count: int = 1000) -> list[tuple[str, str]]:
    """Valid event bodies and their MD5s, computed once."""
    return [(body.decode(), md5_of_body(body.decode())) for body in make_bodies(count)]


async def serve(port: int, latency_ms: float = 0.0) -> None:
    """Serve on 127.0.0.1:`port` until cancelled; print `ready` once listening."""
    state = StandIn(f"http://127.0.0.1:{port}", prepared_bodies())
    runner = web.AppRunner(make_app(state, latency_ms / 1000), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0))
    except KeyboardInterrupt:
        sys.exit(0)
