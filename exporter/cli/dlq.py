"""`exporter dlq peek|redrive`: inspect dead-lettered messages, or move them back to the queue."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Protocol

from exporter.cli.aws_settings import checked_aws
from exporter.cli.dlq_peek import Peeked, left_unread, peek, report
from exporter.cli.exits import UsageError
from exporter.cli.parts import sqs_config
from exporter.logs import configure_logging
from exporter.settings import Settings
from exporter.sqs.dead_letter_queues import SqsDeadLetterQueue, dead_letter_queues
from exporter.sqs.messages import Message
from exporter.sqs.source import SqsSource

HELP = (
    "Inspect the dead-letter queue (peek: print each message with its reason and detail, "
    "one JSON object per line, leaving it in place) or move its messages back to the main "
    "queue (redrive: deleted from the dead-letter queue only after the send succeeded)."
)
ACTIONS: Final = {
    "peek": "Print up to --limit dead-lettered messages, each once, one JSON object per line "
    "with its reason, detail and original MessageId, and leave every one of them in the queue; "
    "when some are left unshown, the last lines say how many and why.",
    "redrive": "Move up to --limit dead-lettered messages back to the main queue once the cause "
    "is fixed; each is deleted from the dead-letter queue only after SQS accepted it.",
}
SETTINGS = (
    "sqs_queue_name",
    "sqs_queue_url",
    "sqs_queue_urls",
    "sqs_dlq_name",
    "aws_endpoint_url",
    "aws_region",
    "log_level",
    "log_format",
)
DEFAULT_LIMIT: Final = 100
REDRIVE_VISIBILITY_SECONDS: Final = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """How many messages an action may touch (on `dlq` and on each action, see `exporter.cli`)."""
    parser.add_argument(
        "--limit",
        type=int,
        # Unset unless given, so that an action's parser never hides a `dlq --limit` before it.
        default=argparse.SUPPRESS,
        metavar="N",
        help=f"handle at most N messages (default {DEFAULT_LIMIT})",
    )


class DeadLetterQueue(Protocol):
    """What redrive needs of a dead-letter queue (an `SqsDeadLetterQueue`)."""

    async def receive_dead_letters(
        self, max_messages: int, visibility_seconds: int
    ) -> Sequence[Message]: ...

    async def release_dead_letters(self, messages: Sequence[Message]) -> None: ...

    async def delete_dead_letters(self, messages: Sequence[Message]) -> Sequence[Message]: ...

    async def requeue(self, messages: Sequence[Message]) -> Sequence[Message]: ...


@dataclass(frozen=True, slots=True)
class Redriven:
    """How many messages went back to the queue, and those still in the dead-letter queue too."""

    moved: int
    not_deleted: Sequence[Message]


async def redrive(source: DeadLetterQueue, limit: int) -> Redriven:
    """Move up to `limit` messages back to the main queue; stop at the first failure."""
    moved = 0
    while moved < limit:
        batch = await source.receive_dead_letters(
            min(10, limit - moved), REDRIVE_VISIBILITY_SECONDS
        )
        if not batch:
            break
        sent = await source.requeue(batch)
        moved += len(sent)
        # Sent but still here: they reappear in the dead-letter queue, and redriving them again
        # would put a second copy in the main queue, counted twice if the event has no `id`.
        not_deleted = await source.delete_dead_letters(sent)
        if not_deleted:
            return Redriven(moved, not_deleted)
        sent_ids = {id(m) for m in sent}
        unsent = [m for m in batch if id(m) not in sent_ids]
        if unsent:
            await source.release_dead_letters(unsent)
            break
    return Redriven(moved, ())


def _where(queues: Sequence[SqsDeadLetterQueue]) -> str:
    if len(queues) == 1:
        return "the dead-letter queue"
    return "the dead-letter queues " + ", ".join(repr(queue.name) for queue in queues)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Peek or redrive; 1 when a redriven message could not be deleted from the dead-letter
    queue. What stops it earlier ends it by `exporter.cli.exits`' table: queues that do not
    exist 2, SQS unreachable 1, Ctrl-C 130 (a redrive cut short leaves at most one batch in both
    queues; its copies keep their original MessageId, so redriving again does not count them
    twice)."""
    configure_logging(settings.log_level, settings.log_format)
    limit: int = getattr(args, "limit", DEFAULT_LIMIT)
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    config = replace(
        sqs_config(settings.model_copy(update={"create_queues": False})),
        missing_queue_advice="create them, or start `exporter processor` with the same queue "
        "settings and queue creation on",
    )
    checked_aws(settings, os.environ)

    async def main() -> int:
        source = await SqsSource.open(config, environ=os.environ)
        try:
            queues = dead_letter_queues(source.calls, source.queues)
            if args.action == "peek":
                peeked = Peeked(0)
                for queue in queues:
                    if peeked.shown < limit:
                        peeked += await peek(queue, limit - peeked.shown, sys.stdout)
                    else:
                        peeked += await left_unread(queue)
                for line in report(peeked, _where(queues), limit):
                    print(line, file=sys.stderr)
                if any(queue.fifo for queue in queues) and peeked.shown:
                    print(
                        "(a FIFO queue shows at most 10 messages of each message group until "
                        "the earlier ones are deleted or redriven)",
                        file=sys.stderr,
                    )
            else:
                moved = 0
                not_deleted: list[Message] = []
                for queue in queues:
                    result = await redrive(queue, limit - moved)
                    moved += result.moved
                    not_deleted += result.not_deleted
                    if not_deleted or moved >= limit:
                        break
                print(f"{moved} message(s) moved back to the queue", file=sys.stderr)
                result = Redriven(moved, not_deleted)
                if result.not_deleted:
                    ids = " ".join(m.message_id for m in result.not_deleted)
                    print(
                        f"exporter dlq: {len(result.not_deleted)} of them could not be deleted "
                        f"from the dead-letter queue and will reappear there; delete them "
                        f"rather than redrive them again (dead-letter MessageIds: {ids})",
                        file=sys.stderr,
                    )
                    return 1
        finally:
            await source.close()
        return 0

    return asyncio.run(main())
