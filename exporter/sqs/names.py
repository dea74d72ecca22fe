"""SQS's rules for queue names and URLs, FIFO queues, and dead-letter names: pure, checked at start.

A queue name is 1-80 letters, digits, hyphens and underscores; a FIFO queue's name ends in
`.fifo` (counted in the 80), and only a FIFO queue's may (CreateQueue, QueueName). A queue URL is
`<endpoint>/<account id>/<name>`; emulators add path segments before the account
(LocalStack's `/queue/<region>/...`), so only the scheme, a host and the last two segments are
required. Checked before any call, so that a typo is refused before anything is created.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final
from urllib.parse import urlsplit

MAX_NAME_CHARS: Final = 80
FIFO_SUFFIX: Final = ".fifo"
DLQ_SUFFIX: Final = "-dlq"
_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,80}")
_FIFO_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo")
NAME_RULE: Final = "1-80 letters, digits, hyphens or underscores (a FIFO queue's ending in .fifo)"
URL_EXAMPLE: Final = "https://sqs.<region>.amazonaws.com/<account id>/<queue name>"


class BadQueueName(ValueError):
    """A queue name or URL SQS would refuse; the message names the setting and the value."""


def is_fifo(name: str) -> bool:
    """Whether `name` is a FIFO queue's (SQS requires the suffix of every FIFO queue, and of no
    other)."""
    return name.endswith(FIFO_SUFFIX)


def is_queue_name(name: str) -> bool:
    """Whether SQS would accept `name` as a queue name."""
    return bool(_NAME.fullmatch(name) or _FIFO_NAME.fullmatch(name))


def shown_value(value: str) -> str:
    """`value` for an error message: cut short, any password in a URL hidden."""
    try:
        password = urlsplit(value).password if "://" in value else None
    except ValueError:  # an unbalanced IPv6 bracket: no password to find
        password = None
    if password:
        value = value.replace(f":{password}@", ":***@", 1)
    return repr(value if len(value) <= 120 else value[:117] + "...")


def check_name(setting: str, name: str) -> str:
    """`name` if SQS accepts it as a queue name, else BadQueueName naming `setting`."""
    if not is_queue_name(name):
        raise BadQueueName(f"{setting} {shown_value(name)} is not a queue name: {NAME_RULE}")
    return name


def url_name(url: str) -> str:
    """The last part of a queue URL's path: the queue's name (unchecked; `name_from_url` checks
    it, for a URL from the settings rather than from SQS)."""
    return url.strip().rstrip("/").rpartition("/")[2]


def name_from_url(setting: str, url: str) -> str:
    """The queue name at the end of a queue URL, or BadQueueName naming `setting`."""
    problem = f"{setting} {shown_value(url)} is not a queue URL (expected {URL_EXAMPLE})"
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # an unbalanced IPv6 bracket
        raise BadQueueName(problem) from None
    segments = [segment for segment in parts.path.split("/") if segment]
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or len(segments) < 2
        or not is_queue_name(url_name(parts.path))
    ):
        raise BadQueueName(problem)
    return url_name(parts.path)


def default_dlq_name(setting: str, queue_name: str) -> str:
    """The dead-letter queue's name when none is given: `<name>-dlq`, or `<base>-dlq.fifo` for a
    FIFO queue (a FIFO queue's dead-letter queue must be FIFO, and the suffix must stay last)."""
    if is_fifo(queue_name):
        name = queue_name.removesuffix(FIFO_SUFFIX) + DLQ_SUFFIX + FIFO_SUFFIX
    else:
        name = queue_name + DLQ_SUFFIX
    if not is_queue_name(name):
        raise BadQueueName(
            f"{setting} {shown_value(queue_name)} leaves no room for the default dead-letter queue "
            f"name {shown_value(name)} (at most {MAX_NAME_CHARS} characters): set SQS_DLQ_NAME"
        )
    return name


def pairing_problem(queue_name: str, dlq_name: str) -> str | None:
    """Why SQS would refuse `dlq_name` as the dead-letter queue of `queue_name`, or None.

    SQS requires the dead-letter queue of a FIFO queue to be FIFO, and of a standard queue to be
    standard; a processor forwarding between the two kinds would fail on every dead letter.
    """
    if is_fifo(queue_name) == is_fifo(dlq_name):
        return None
    kinds = ("FIFO", "standard") if is_fifo(queue_name) else ("standard", "FIFO")
    hint = "a name ending in .fifo" if kinds[0] == "FIFO" else "a name without .fifo"
    return (
        f"queue {queue_name!r} is {kinds[0]} but its dead-letter queue {dlq_name!r} is "
        f"{kinds[1]}: SQS requires both to be of one kind; give it a {kinds[0]} dead-letter "
        f"queue ({hint})"
    )


def dead_letter_loop(queue: str, dlq_name: str, read: Collection[str], source: str) -> str | None:
    """Why `dlq_name` (named by `source`) cannot take the dead letters of `queue`, a queue among
    `read`, the queues a processor reads; None when it is not one of them.

    A dead letter forwarded to a queue the processor reads is received again, judged again and,
    if still bad, forwarded again: one malformed event becomes an endless stream of receives
    (and, on AWS, of billed requests).
    """
    if dlq_name not in read:
        return None
    if dlq_name == queue:
        return (
            f"{source} {dlq_name!r} is the queue {queue!r} itself: every dead letter would be "
            f"received and dead-lettered again, for ever; give the dead-letter queue a name of "
            f"its own (the default is {_default_or_any(queue)})"
        )
    return (
        f"{source} {dlq_name!r} of queue {queue!r} is also a queue this processor reads: every "
        f"dead letter would be received and judged again; give the dead-letter queue a name "
        f"that no queue read has"
    )


def _default_or_any(queue: str) -> str:
    try:
        return repr(default_dlq_name("SQS_QUEUE_NAME", queue))
    except BadQueueName:
        return "<name>-dlq"


__all__ = [
    "DLQ_SUFFIX",
    "FIFO_SUFFIX",
    "MAX_NAME_CHARS",
    "NAME_RULE",
    "URL_EXAMPLE",
    "BadQueueName",
    "check_name",
    "dead_letter_loop",
    "default_dlq_name",
    "is_fifo",
    "is_queue_name",
    "name_from_url",
    "pairing_problem",
    "shown_value",
    "url_name",
]
