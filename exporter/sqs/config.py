"""Where the queues are and how to talk to them: plain values, no AWS library imported.

The queues to read are derived from the queue settings once, when an `SqsConfig` is made, and
checked then (`queue_specs`): a name or URL SQS would refuse is BadQueueName before any call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from exporter.sqs.names import (
    BadQueueName,
    check_name,
    dead_letter_loop,
    name_from_url,
    pairing_problem,
)


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """Credentials given explicitly (the demo's for its embedded SQS) instead of the usual chain."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One queue to consume as configured: by URL (it must exist) or by name (created when
    allowed); its dead-letter queue by name, or None for the one its redrive policy names, else
    the default name (`<name>-dlq`, `<base>-dlq.fifo` for a FIFO queue). `setting` is the
    variable it came from, which an error about it names."""

    name: str
    url: str | None = None
    dlq_name: str | None = None
    setting: str = "SQS_QUEUE_NAME"


def queue_specs(
    queue_name: str, queue_url: str | None, queue_urls: Sequence[str], dlq_name: str | None
) -> tuple[QueueSpec, ...]:
    """The queues the settings name, in order, each once (a URL given both as SQS_QUEUE_URL and
    in SQS_QUEUE_URLS is SQS_QUEUE_URL's); BadQueueName naming the setting for any name or URL
    SQS would refuse, for one queue name given by two URLs, and for a shared dead-letter queue
    (SQS_DLQ_NAME) of the other kind (FIFO or standard) or among the queues read."""
    by_url = {queue_url: "SQS_QUEUE_URL"} if queue_url else {}
    for url in queue_urls:
        by_url.setdefault(url, "SQS_QUEUE_URLS")
    if dlq_name is not None:
        check_name("SQS_DLQ_NAME", dlq_name)
    if by_url:
        specs = tuple(
            QueueSpec(name_from_url(setting, url), url, dlq_name, setting)
            for url, setting in by_url.items()
        )
    else:
        specs = (QueueSpec(check_name("SQS_QUEUE_NAME", queue_name), None, dlq_name),)
    names = [spec.name for spec in specs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        given_by = dict.fromkeys(spec.setting for spec in specs if spec.name == twice[0])
        verb = "name" if len(given_by) > 1 else "names"
        raise BadQueueName(
            f"{' and '.join(given_by)} {verb} queue {twice[0]!r} more than once, by different "
            "URLs: a processor reads queues of one name once"
        )
    if dlq_name is not None:
        # Shared by every queue: if it is one of them, it is that queue's own dead-letter queue.
        loop = dead_letter_loop(dlq_name, dlq_name, names, "SQS_DLQ_NAME")
        if loop is not None:
            raise BadQueueName(loop)
        for name in names:
            problem = pairing_problem(name, dlq_name)
            if problem is not None:
                raise BadQueueName(f"SQS_DLQ_NAME: {problem}")
    return specs


@dataclass(frozen=True, slots=True)
class SqsConfig:
    """Where the queues are and how to talk to them; built by the CLI from the settings.

    One queue is `queue_name` (or `queue_url`, which wins); `queue_urls` adds more, each with
    its own dead-letter queue unless `dlq_name` names one for all. Made with a name or URL SQS
    would refuse, it raises BadQueueName (a ValueError).
    """

    queue_name: str
    dlq_name: str | None
    queue_url: str | None = None
    queue_urls: tuple[str, ...] = ()
    endpoint_url: str | None = None
    region: str = "us-east-1"
    wait_time_seconds: int = 20
    visibility_timeout_seconds: int = 30
    max_receive_count: int = 5
    create_queues: bool = False
    # What to tell the user when a queue is missing and may not be created: advice that works
    # for the command at hand (`exporter dlq` has no --create-queues flag).
    missing_queue_advice: str = "run with --create-queues (EXPORTER_CREATE_QUEUES=true)"
    # Pollers per queue: each queue gets its own, so that one queue's backlog cannot take them.
    pollers: int = 4
    _specs: tuple[QueueSpec, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        specs = queue_specs(self.queue_name, self.queue_url, self.queue_urls, self.dlq_name)
        object.__setattr__(self, "_specs", specs)

    def specs(self) -> tuple[QueueSpec, ...]:
        """The queues to consume, in order, each once, as derived when the config was made."""
        return self._specs


__all__ = ["AwsCredentials", "QueueSpec", "SqsConfig", "queue_specs"]
