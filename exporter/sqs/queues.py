"""Finding the queues at start-up (and creating them when allowed), on the SQS wire client.

Kept apart from the source itself: this runs once at start-up, the source runs for every batch.
Everything is looked up and checked first, and only then is anything created: a mistake in the
second queue's settings must not leave the first one's dead-letter queue behind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from exporter.sqs.config import QueueSpec, SqsConfig
from exporter.sqs.errors import SqsFailure, classify, is_missing_queue
from exporter.sqs.messages import SourceMisconfigured
from exporter.sqs.names import (
    BadQueueName,
    check_name,
    dead_letter_loop,
    default_dlq_name,
    is_fifo,
    pairing_problem,
)
from exporter.sqs.wire import SqsClient

log = logging.getLogger(__name__)

# SQS's longest retention: dead letters wait for an operator as long as SQS allows.
DLQ_RETENTION_SECONDS: Final = "1209600"
_MAIN_ATTRIBUTES: Final = ["QueueArn", "RedrivePolicy", "FifoQueue"]


@dataclass(frozen=True, slots=True)
class ResolvedQueue:
    """A queue the processor consumes, found or created, with its dead-letter queue."""

    name: str
    url: str
    dlq_name: str
    dlq_url: str

    @property
    def fifo(self) -> bool:
        """Whether it is a FIFO queue (its dead-letter queue is then FIFO too)."""
        return is_fifo(self.name)


async def _call(client: SqsClient, operation: str, payload: dict[str, object]) -> dict[str, object]:
    try:
        return await client.call(operation, payload)
    except SqsFailure as exc:
        raise classify(exc, operation) from exc


async def _attributes(client: SqsClient, url: str, names: Sequence[str]) -> Mapping[str, str]:
    response = await _call(
        client, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": list(names)}
    )
    attributes = response.get("Attributes")
    if not isinstance(attributes, dict) or "QueueArn" not in attributes:
        raise SourceMisconfigured(f"SQS GetQueueAttributes: no QueueArn for {url}")
    return {str(k): str(v) for k, v in attributes.items()}


async def _existing(client: SqsClient, url: str, setting: str) -> Mapping[str, str]:
    """The attributes of the queue at a configured URL; a URL names a queue that must exist."""
    try:
        response = await client.call(
            "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": _MAIN_ATTRIBUTES}
        )
    except SqsFailure as exc:
        if is_missing_queue(exc):
            raise SourceMisconfigured(
                f"{setting} {url!r}: no such queue (check the URL, the region and the account)"
            ) from exc
        raise classify(exc, "GetQueueAttributes") from exc
    attributes = response.get("Attributes")
    if not isinstance(attributes, dict) or "QueueArn" not in attributes:
        raise SourceMisconfigured(f"SQS GetQueueAttributes: no QueueArn for {url}")
    return {str(k): str(v) for k, v in attributes.items()}


async def find_queue(client: SqsClient, name: str) -> str | None:
    """The URL of the queue called `name`, or None when it does not exist."""
    try:
        response = await client.call("GetQueueUrl", {"QueueName": name})
    except SqsFailure as exc:
        if is_missing_queue(exc):
            return None
        raise classify(exc, "GetQueueUrl") from exc
    return str(response["QueueUrl"])


def redrive_target(attributes: Mapping[str, str]) -> str | None:
    """The name of the dead-letter queue a queue's redrive policy sends to, if it has one."""
    try:
        policy = json.loads(attributes.get("RedrivePolicy") or "null")
    except ValueError:
        return None
    if not isinstance(policy, dict):
        return None
    arn = policy.get("deadLetterTargetArn")
    # arn:aws:sqs:<region>:<account>:<name>; SQS keeps a dead-letter queue in its source's
    # account and region, so the name is enough to find it.
    return arn.rsplit(":", 1)[-1] if isinstance(arn, str) and arn.count(":") >= 5 else None


def queue_attributes(name: str, extra: Mapping[str, str]) -> dict[str, str]:
    """CreateQueue attributes: a FIFO queue says so, without content-based deduplication (every
    send of ours carries its own deduplication id)."""
    attributes = dict(extra)
    if is_fifo(name):
        attributes |= {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    return attributes


async def _create_queue(client: SqsClient, name: str, attributes: dict[str, str]) -> str:
    log.info("creating queue", extra={"queue": name})
    response = await _call(
        client, "CreateQueue", {"QueueName": name, "Attributes": queue_attributes(name, attributes)}
    )
    return str(response["QueueUrl"])


@dataclass(slots=True)
class _Plan:
    spec: QueueSpec
    url: str | None
    dlq_name: str


REDRIVE_SOURCE: Final = "the redrive policy's dead-letter queue"


async def _plan(client: SqsClient, spec: QueueSpec, read: frozenset[str]) -> _Plan:
    """Find one configured queue and decide its dead-letter queue; create nothing yet.

    `read` holds the names of every queue read: no dead-letter queue may be one of them, neither
    the one the processor forwards to nor the one SQS moves messages to by itself.
    """
    if spec.url is not None:
        url: str | None = spec.url
        attributes = await _existing(client, spec.url, spec.setting)
        if attributes.get("FifoQueue", "false").lower() == "true" and not is_fifo(spec.name):
            raise SourceMisconfigured(
                f"{spec.setting} {spec.url!r}: SQS says the queue is FIFO, yet its name is not"
            )
    else:
        url = await find_queue(client, spec.name)
        attributes = await _attributes(client, url, _MAIN_ATTRIBUTES) if url else {}
    target = redrive_target(attributes)
    try:
        dlq_name = spec.dlq_name or (
            check_name("the redrive policy's dead-letter queue", target)
            if target
            else default_dlq_name(spec.setting, spec.name)
        )
    except BadQueueName as exc:
        raise SourceMisconfigured(str(exc)) from None
    if spec.dlq_name and target and target != spec.dlq_name:
        log.warning(
            "the queue's redrive policy sends to another dead-letter queue than SQS_DLQ_NAME: "
            "messages SQS moves itself go there, the processor's dead letters to SQS_DLQ_NAME",
            extra={"queue": spec.name, "redrive_to": target, "dlq": spec.dlq_name},
        )
    # SQS_DLQ_NAME was checked with the settings (config.queue_specs); what only SQS can tell
    # is checked here: the redrive policy's dead-letter queue, and the one taken by default.
    found: list[tuple[str | None, str]] = [(target, REDRIVE_SOURCE)]
    if spec.dlq_name is None:
        found.append((dlq_name, "the default dead-letter queue"))
    for name, source in found:
        loop = dead_letter_loop(spec.name, name, read, source) if name else None
        if loop is not None:
            raise SourceMisconfigured(loop)
    problem = None if spec.dlq_name else pairing_problem(spec.name, dlq_name)
    if problem is not None:
        raise SourceMisconfigured(problem)
    return _Plan(spec, url, dlq_name)


def _refuse_missing(plans: Sequence[_Plan], missing_dlqs: Sequence[str], advice: str) -> None:
    """SourceMisconfigured naming the first queue missing, and its dead-letter queue if that is
    missing too, when queues may not be created."""
    for plan in plans:
        dlq_missing = plan.dlq_name in missing_dlqs
        if plan.url is None and dlq_missing:
            raise SourceMisconfigured(
                f"queue {plan.spec.name!r} does not exist, nor does its dead-letter queue "
                f"{plan.dlq_name!r}; create them, set SQS_QUEUE_URL, or {advice}"
            )
        if plan.url is None:
            raise SourceMisconfigured(
                f"queue {plan.spec.name!r} does not exist; create it, set SQS_QUEUE_URL, or "
                f"{advice}"
            )
        if dlq_missing:
            raise SourceMisconfigured(
                f"dead-letter queue {plan.dlq_name!r} does not exist; create it or {advice}"
            )


async def resolve_queues(client: SqsClient, config: SqsConfig) -> tuple[ResolvedQueue, ...]:
    """Every configured queue with its dead-letter queue, created when allowed, after all of them
    were found and checked."""
    specs = config.specs()
    read = frozenset(spec.name for spec in specs)
    plans = [await _plan(client, spec, read) for spec in specs]
    dlq_urls: dict[str, str | None] = {}
    for plan in plans:
        if plan.dlq_name not in dlq_urls:
            dlq_urls[plan.dlq_name] = await find_queue(client, plan.dlq_name)
    missing = [name for name, url in dlq_urls.items() if url is None]
    if not config.create_queues:
        _refuse_missing(plans, missing, config.missing_queue_advice)
    # Everything was checked: only now is anything created, dead-letter queues first, since a
    # queue's redrive policy names its dead-letter queue's ARN.
    for name in missing:
        dlq_urls[name] = await _create_queue(
            client, name, {"MessageRetentionPeriod": DLQ_RETENTION_SECONDS}
        )
    resolved = []
    for plan in plans:
        dlq_url = dlq_urls[plan.dlq_name]
        assert dlq_url is not None
        url = plan.url
        if url is None:
            dlq_arn = (await _attributes(client, dlq_url, ["QueueArn"]))["QueueArn"]
            redrive = {
                "deadLetterTargetArn": dlq_arn,
                "maxReceiveCount": str(config.max_receive_count),
            }
            url = await _create_queue(
                client,
                plan.spec.name,
                {
                    "VisibilityTimeout": str(config.visibility_timeout_seconds),
                    "RedrivePolicy": json.dumps(redrive),
                },
            )
        resolved.append(ResolvedQueue(plan.spec.name, url, plan.dlq_name, dlq_url))
    return tuple(resolved)


__all__ = ["ResolvedQueue", "find_queue", "queue_attributes", "redrive_target", "resolve_queues"]
