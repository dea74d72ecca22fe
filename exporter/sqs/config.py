"""Where the queues are and how to talk to them: plain values, no AWS library imported."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """Credentials given explicitly (the demo's for its embedded SQS) instead of the usual chain."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SqsConfig:
    """Where the queues are and how to talk to them; built by the CLI from the settings."""

    queue_name: str
    dlq_name: str
    queue_url: str | None = None
    endpoint_url: str | None = None
    region: str = "us-east-1"
    wait_time_seconds: int = 20
    visibility_timeout_seconds: int = 30
    max_receive_count: int = 5
    create_queues: bool = True
    # What to tell the user when a queue is missing and may not be created: advice that works
    # for the command at hand (`exporter dlq` has no --create-queues flag).
    missing_queue_advice: str = "run with --create-queues (EXPORTER_CREATE_QUEUES=true)"
    pollers: int = 4


__all__ = ["AwsCredentials", "SqsConfig"]
