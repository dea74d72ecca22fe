"""The queue settings as the commands use them: every name and URL checked before any call.

A name or URL SQS would refuse is a ConfigurationError naming the setting and the value, raised
before anything connects, so that a typo never creates a queue (`SQS_QUEUE_URL=garbage` used to
create `garbage-dlq` before failing).
"""

from __future__ import annotations

from exporter.settings import ConfigurationError, Settings
from exporter.sqs.names import (
    BadQueueName,
    check_name,
    dead_letter_loop,
    name_from_url,
    pairing_problem,
)


def checked_queue_names(settings: Settings) -> list[str]:
    """The names of the queues the settings name, in order; ConfigurationError for any name or
    URL SQS would refuse, for one queue name given twice, for a dead-letter queue of the other
    kind (FIFO or standard), or for a dead-letter queue that is one of the queues read."""
    try:
        # Each URL's name, and the variable it came from (an error names that one).
        by_url: dict[str, tuple[str, str]] = {}
        if settings.sqs_queue_url:
            url = settings.sqs_queue_url
            by_url[url] = (name_from_url("SQS_QUEUE_URL", url), "SQS_QUEUE_URL")
        for url in settings.sqs_queue_urls:
            by_url.setdefault(url, (name_from_url("SQS_QUEUE_URLS", url), "SQS_QUEUE_URLS"))
        names = [name for name, _ in by_url.values()] or [
            check_name("SQS_QUEUE_NAME", settings.sqs_queue_name)
        ]
        if settings.sqs_dlq_name is not None:
            check_name("SQS_DLQ_NAME", settings.sqs_dlq_name)
    except BadQueueName as exc:
        raise ConfigurationError(str(exc)) from None
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        given_by = dict.fromkeys(s for name, s in by_url.values() if name == twice[0])
        verb = "name" if len(given_by) > 1 else "names"
        raise ConfigurationError(
            f"{' and '.join(given_by)} {verb} queue {twice[0]!r} more than once, by different "
            "URLs: a processor reads queues of one name once"
        )
    if settings.sqs_dlq_name is not None:
        # Shared by every queue: if it is one of them, it is that queue's own dead-letter queue.
        dlq = settings.sqs_dlq_name
        loop = dead_letter_loop(dlq, dlq, names, "SQS_DLQ_NAME")
        if loop is not None:
            raise ConfigurationError(loop)
        for name in names:
            problem = pairing_problem(name, settings.sqs_dlq_name)
            if problem is not None:
                raise ConfigurationError(f"SQS_DLQ_NAME: {problem}")
    return names


def checked_send_target(settings: Settings) -> None:
    """ConfigurationError unless the one queue a producer sends to (SQS_QUEUE_URL, else
    SQS_QUEUE_NAME) is named as SQS allows."""
    try:
        if settings.sqs_queue_url:
            name_from_url("SQS_QUEUE_URL", settings.sqs_queue_url)
        else:
            check_name("SQS_QUEUE_NAME", settings.sqs_queue_name)
    except BadQueueName as exc:
        raise ConfigurationError(str(exc)) from None


__all__ = ["checked_queue_names", "checked_send_target"]
