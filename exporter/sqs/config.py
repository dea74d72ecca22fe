"""Where the queues are and how to talk to them: plain values, no AWS library imported."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.sqs.names import name_from_url


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


@dataclass(frozen=True, slots=True)
class SqsConfig:
    """Where the queues are and how to talk to them; built by the CLI from the settings.

    One queue is `queue_name` (or `queue_url`, which wins); `queue_urls` adds more, each with
    its own dead-letter queue unless `dlq_name` names one for all.
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

    def specs(self) -> tuple[QueueSpec, ...]:
        """The queues to consume, in order, each once (URLs are checked by the CLI first); a
        URL given both as SQS_QUEUE_URL and in SQS_QUEUE_URLS is SQS_QUEUE_URL's."""
        by_url = {self.queue_url: "SQS_QUEUE_URL"} if self.queue_url else {}
        for url in self.queue_urls:
            by_url.setdefault(url, "SQS_QUEUE_URLS")
        if not by_url:
            return (QueueSpec(self.queue_name, None, self.dlq_name),)
        return tuple(
            QueueSpec(name_from_url(setting, url), url, self.dlq_name, setting)
            for url, setting in by_url.items()
        )


__all__ = ["AwsCredentials", "QueueSpec", "SqsConfig"]
